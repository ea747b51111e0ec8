"""Reports: the list of months and each month-end report, printable, with CSV and JSON."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, render_template, url_for

from .. import billing, charts, metrics, reports
from ..errors import AppError, error_page, sentence
from ..exports import csv_download, report_csv, report_data, report_filename
from ..periods import Period, add_months
from .dashboard import current_partner
from .kpis import REPORT_KPIS

bp = Blueprint("reports", __name__)


@bp.get("/reports")
def index() -> str:
    """List every month with data, newest first, with its headline figures."""
    partner = current_partner()
    return render_template(
        "reports/index.html", partner=partner, months=reports.month_index(partner)
    )


def _report_or_404(month: str) -> reports.MonthReport | tuple[str, int]:
    try:
        # Dates in the message as the pages write them; the API's message keeps ISO dates.
        return reports.report_for(current_partner(), month, in_words=True)
    except AppError as exc:
        if exc.status != 404:
            raise
        return error_page(
            404,
            sentence(exc.message),
            title=f"No report for “{month}”",
            back=(url_for("dashboard.reports.index"), "Back to the reports"),
        )


@bp.get("/reports/<month>")
def month(month: str) -> Any:
    """Show one month's report (a 404 page with a way back for a month without one)."""
    report = _report_or_404(month)
    if isinstance(report, tuple):
        return report
    start = report.start_date
    partner = current_partner()
    compared = metrics.comparable(partner, Period(start, report.through_date))
    months = reports.available_months(current_partner())
    newer = reports.month_key(add_months(start, 1))
    older = report.previous_month
    has_usage = any(p.events for p in report.daily)
    return render_template(
        "reports/month.html",
        report=report,
        kpis=REPORT_KPIS,
        previous_period=compared.previous,
        compared=compared,
        cost={
            "amount": report.estimated_cost,
            "currency": report.currency,
            "period": Period(start, report.through_date),
            "so_far": not report.complete,
        }
        if report.estimated_cost is not None
        else None,
        figure=charts.report_daily(report.daily) if has_usage else None,
        newer=newer if newer in months else None,
        older=older if older in months else None,
        newer_label=reports.month_label(*map(int, newer.split("-"))),
        # The billing day of each billing period the month touches (its terms'), in order.
        billing_days=list(
            dict.fromkeys(
                billing.terms_for(partner, b.billing_period_start).billing_day_of_month
                for b in report.billing_periods
            )
        ),
        partner_billing_period=partner.billing_period,
    )


@bp.get("/reports/<month>.json")
def month_json(month: str) -> Response:
    """Answer the report as JSON (the same data as the API's /partner/reports/<month>)."""
    report = reports.report_for(current_partner(), month)  # NotFound answers JSON here
    return jsonify(report_data(report))


@bp.get("/reports/<month>.csv")
def month_csv(month: str) -> Any:
    """Download the report as one CSV file."""
    report = _report_or_404(month)
    if isinstance(report, tuple):
        return report
    return csv_download(report_csv(report), report_filename(report, "csv"))
