"""Billing: the current period's usage and cost by tier, past periods, and their CSV."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from flask import Blueprint, Response, render_template
from pydantic.alias_generators import to_camel

from .. import billing, charts, metrics
from ..exports import export_filename, table_csv
from .dashboard import current_partner
from .period import partner_keeping_range

bp = Blueprint("billing", __name__)

CSV_FIELDS = (
    "billing_period_start",
    "billing_period_end",
    "is_current",
    "identifications",
    "credits_used",
    "total_quantity",
    "total_events",
    "estimated_cost",
    "currency",
)
# The CSV's header names the columns as the API names the fields.
CSV_HEADER = [to_camel(name) for name in CSV_FIELDS]


def _cell(value: object) -> object:
    """Write a date as YYYY-MM-DD and an amount as the API's number (12.5, not 12.50)."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


@bp.get("/billing")
def index() -> str:
    """Show the billing settings, this period's usage, cost and projection, and past periods."""
    partner = partner_keeping_range()
    info = billing.billing_info(partner)
    usage = billing.current_usage(partner)
    ahead = usage.projected_identifications
    # The projection's cost by tier; None before the period has a complete day.
    later = None if ahead is None else billing.calculate(partner, ahead).breakdown
    tiers = [
        {"band": band, "now": now, "later": later[i] if later else None}
        for i, (band, now) in enumerate(zip(info.pricing_tiers, usage.cost_breakdown, strict=True))
    ]
    periods = billing.past_periods(partner)
    figures = {}
    if metrics.data_freshness(partner) is not None:
        figures["periods"] = charts.billing_periods(periods)
        figures["tiers"] = charts.cost_by_tier(
            info.pricing_tiers, usage.cost_breakdown, later, partner.currency
        )
    return render_template(
        "billing/index.html",
        partner=partner,
        info=info,
        usage=usage,
        projection=usage.projection,
        tiers=tiers,
        periods=periods,
        figures=figures,
    )


@bp.get("/billing.csv")
def export() -> Response:
    """Download the billing periods (newest first) for reconciliation against invoices."""
    partner = current_partner()
    periods = billing.past_periods(partner)
    rows = [[_cell(getattr(p, f)) for f in CSV_FIELDS] for p in periods]
    # Named by the days it covers: the oldest period's first to the newest's last (the
    # current period is always listed).
    start, end = periods[-1].billing_period_start, periods[0].billing_period_end
    return table_csv(CSV_HEADER, rows, export_filename(partner.slug, "billing", start, end))
