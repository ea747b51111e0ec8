"""Billing: the current period's usage and cost by tier, past periods, and their CSV."""

from __future__ import annotations

from flask import Blueprint, Response, render_template

from .. import billing, charts, metrics
from ..exports import table_csv
from .dashboard import current_partner
from .period import carry_range

bp = Blueprint("billing", __name__)

CSV_FIELDS = (
    "billingPeriodStart",
    "billingPeriodEnd",
    "isCurrent",
    "identifications",
    "creditsUsed",
    "totalQuantity",
    "totalEvents",
    "estimatedCost",
    "currency",
)


@bp.get("/billing")
def index() -> str:
    """Show the billing settings, this period's usage and cost, and the past periods."""
    partner = current_partner()
    carry_range(partner)
    info = billing.billing_info(partner)
    usage = billing.current_usage(partner)
    projected = billing.calculate(partner, usage["projectedIdentifications"])
    tiers = []
    for tier, now, later in zip(
        info["pricingTiers"], usage["costBreakdown"], projected["breakdown"], strict=True
    ):
        tiers.append(
            {
                **tier,
                "units": now["units"],
                "amount": now["amount"],
                "projectedUnits": later["units"],
                "projectedAmount": later["amount"],
            }
        )
    periods = billing.past_periods(partner)
    figures = {}
    if metrics.data_freshness(partner) is not None:
        figures["periods"] = charts.billing_periods(periods)
        figures["tiers"] = charts.cost_by_tier(
            usage["costBreakdown"], projected["breakdown"], partner.currency
        )
    return render_template(
        "billing/index.html",
        partner=partner,
        info=info,
        usage=usage,
        projected=projected,
        tiers=tiers,
        periods=periods,
        figures=figures,
    )


@bp.get("/billing.csv")
def export() -> Response:
    """Download the billing periods (newest first) for reconciliation against invoices."""
    partner = current_partner()
    rows = [[p[f] for f in CSV_FIELDS] for p in billing.past_periods(partner)]
    return table_csv(list(CSV_FIELDS), rows, f"billing_periods_{partner.slug}.csv")
