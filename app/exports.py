"""Downloads: CSV cells a spreadsheet cannot run, CSV files, and the month-end report as text.

Every CSV of the product (the organizations and billing tables of the pages, the report's
CSV on its page and from `flask report`) is written here, so the formula escaping has
one home.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from typing import Any

from flask import Response

# Spreadsheet programs run a cell starting with one of these as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
REPORT_FORMATS = ("csv", "json")

REPORT_COLUMNS = [
    ("name", "Organization"),
    ("externalId", "External ID"),
    ("organizationId", "Organization ID"),
    ("identifications", "Identifications"),
    ("creditsUsed", "Credits used"),
    ("events", "Events"),
    ("quantity", "Quantity"),
    ("sharePercent", "Share of identifications (%)"),
    ("creditsAllocated", "Allocation at month end"),
    ("statusAtEnd", "Status at month end"),
    ("new", "New"),
    ("churned", "Churned"),
    ("reactivated", "Reactivated"),
]


def csv_cell(value: Any, yes_no: bool = False) -> Any:
    """Neutralise text a spreadsheet would run as a formula; numbers pass unchanged.

    None is an empty cell. With yes_no a boolean is written yes or no (the report, read by
    people); otherwise as Python writes it, True or False (the billing table's isCurrent,
    read by reconciliation scripts).
    """
    if value is None:
        return ""
    if yes_no and isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def csv_text(rows: Iterable[Sequence[Any]], yes_no: bool = False) -> str:
    """Return rows as CSV text with CRLF line ends, every cell through csv_cell."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow([csv_cell(v, yes_no) for v in row])
    return buffer.getvalue()


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


def report_csv(report: dict[str, Any]) -> str:
    """Return the report as one CSV: a header block, the organization table, the totals."""
    late = report["lateData"]
    summary = report["summary"]
    block: list[list[Any]] = [
        ["Partner", report["partnerName"]],
        ["Month", report["month"]],
        [
            "Period",
            f"{report['startDate']} to {report['throughDate']}"
            + ("" if report["complete"] else " (month to date)"),
        ],
        ["Timezone", report["timezone"]],
        ["Generated at", report["generatedAt"]],
        ["Month closed at" if report["complete"] else "Month closes at", late["closedAt"]],
        ["Late events (received after the month closed)", late["lateEvents"]],
        ["Identifications added by late events", late["identificationsAdded"]],
        ["Credits added by late events", late["creditsAdded"]],
        ["Total organizations at month end", summary["totalOrganizations"]],
        ["Active organizations at month end", summary["activeOrganizations"]],
        ["Credits remaining at month end", summary["creditsRemaining"]],
    ]
    table = [[item[key] for key, _label in REPORT_COLUMNS] for item in report["organizations"]]
    totals = report["totals"]
    total_row = {key: "" for key, _label in REPORT_COLUMNS}
    total_row.update(
        {
            "name": "Total",
            "identifications": totals["identifications"],
            "creditsUsed": totals["creditsUsed"],
            "events": totals["events"],
            "quantity": totals["quantity"],
            "sharePercent": totals["sharePercent"],
            "creditsAllocated": totals["creditsAllocated"],
            "new": totals["new"],
            "churned": totals["churned"],
            "reactivated": totals["reactivated"],
        }
    )
    header = [label for _key, label in REPORT_COLUMNS]
    footer = [total_row[key] for key, _label in REPORT_COLUMNS]
    return csv_text([*block, [], header, *table, footer], yes_no=True)


def report_json(report: dict[str, Any]) -> str:
    """Return the report as indented JSON text."""
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"


def report_text(report: dict[str, Any], fmt: str) -> str:
    """Return the report as csv or json text (what `flask report` prints)."""
    return report_csv(report) if fmt == "csv" else report_json(report)


def report_filename(report: dict[str, Any], ext: str) -> str:
    """Return the download name of a report file."""
    return f"report-{report['partnerSlug']}-{report['month']}.{ext}"
