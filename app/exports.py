"""Downloads: CSV cells a spreadsheet cannot run, CSV files, and the month-end report as text.

Every CSV of the product (the organizations and billing tables of the pages, the report's
CSV on its page and from `flask report`) is written here, so the formula escaping has
one home. The report's JSON download is the API's answer (app/api/schemas.ReportOut),
so the two cannot differ.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from flask import Response

from .reports import MonthReport
from .timeutil import iso_z

# Spreadsheet programs run a cell starting with one of these as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

# (field of reports.ReportOrganization, heading)
REPORT_COLUMNS = [
    ("name", "Organization"),
    ("external_id", "External ID"),
    ("organization_id", "Organization ID"),
    ("identifications", "Identifications"),
    ("credits_used", "Credits used"),
    ("events", "Events"),
    ("quantity", "Quantity"),
    ("share_percent", "Share of identifications (%)"),
    ("credits_allocated", "Allocation at month end"),
    ("status_at_end", "Status at month end"),
    ("new", "New"),
    ("churned", "Churned"),
    ("reactivated", "Reactivated"),
]


def csv_cell(value: Any) -> Any:
    """Neutralise text a spreadsheet would run as a formula; numbers pass unchanged.

    None is an empty cell; a boolean is written true or false in every file (the billing
    table's isCurrent, the report's New, Churned and Reactivated), as the API writes it.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def csv_text(rows: Iterable[Sequence[Any]]) -> str:
    """Return rows as CSV text with CRLF line ends, every cell through csv_cell."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
    return buffer.getvalue()


def export_filename(slug: str, what: str, start: date, end: date) -> str:
    """Return the download name of a table over a period: <slug>-<what>-<start>_<end>.csv."""
    return f"{slug}-{what}-{start.isoformat()}_{end.isoformat()}.csv"


def csv_download(text: str, filename: str) -> Response:
    """Return CSV text as a download named filename."""
    return Response(
        text,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def table_csv(header: Sequence[str], rows: Iterable[Sequence[Any]], filename: str) -> Response:
    """Return a CSV download of rows under header (the tables of the pages)."""
    return csv_download(csv_text([header, *rows]), filename)


# --- the month-end report ------------------------------------------------------------------


def report_csv(report: MonthReport) -> str:
    """Return the report as one CSV: a header block, the organization table, the totals."""
    late = report.late_data
    summary = report.summary
    block: list[list[Any]] = [
        ["Partner", report.partner_name],
        ["Month", report.month],
        [
            "Period",
            f"{report.start_date} to {report.through_date}"
            + ("" if report.complete else " (month to date)"),
        ],
        ["Timezone", report.timezone],
        ["Generated at", iso_z(report.generated_at)],
        ["Month closed at" if report.complete else "Month closes at", iso_z(late.closed_at)],
        ["Late events (received after the month closed)", late.late_events],
        ["Identifications added by late events", late.identifications_added],
        ["Credits added by late events", late.credits_added],
        ["Total organizations at month end", summary.total_organizations],
        ["Active organizations at month end", summary.active_organizations],
        ["Credits remaining at month end", summary.credits_remaining],
    ]
    table = [
        [getattr(item, key) for key, _label in REPORT_COLUMNS] for item in report.organizations
    ]
    # The totals row: every column the totals have, blank for the others.
    totals = report.totals
    footer = [
        "Total" if key == "name" else getattr(totals, key, "") for key, _label in REPORT_COLUMNS
    ]
    header = [label for _key, label in REPORT_COLUMNS]
    return csv_text([*block, [], header, *table, footer])


def report_data(report: MonthReport) -> dict[str, Any]:
    """Return the report as the API answers it (GET /partner/reports/<month>)."""
    # Imported here, not at the top: the API's models (pydantic, spectree) load when a
    # report is written as JSON, not for every command that imports this module
    # (tests/test_cli_imports.py).
    from .api.schemas import ReportOut

    return ReportOut.model_validate(report).model_dump(mode="json", by_alias=True)


def report_json(report: MonthReport) -> str:
    """Return the report as indented JSON text."""
    return json.dumps(report_data(report), indent=2, ensure_ascii=False) + "\n"


def report_text(report: MonthReport, fmt: str) -> str:
    """Return the report as csv or json text (what `flask report` prints)."""
    return report_csv(report) if fmt == "csv" else report_json(report)


def report_filename(report: MonthReport, ext: str) -> str:
    """Return the download name of a report file: <slug>-report-<YYYY-MM>.<ext>."""
    return f"{report.partner_slug}-report-{report.month}.{ext}"
