"""Billing: settings and pool, the current period's cost, the cost calculator, past periods."""

from __future__ import annotations

from ..billing import billing_info, calculate, current_usage, periods_page
from . import bp
from .analytics import pick
from .guards import current_partner
from .schemas import (
    BillingOut,
    BillingPeriodsOut,
    BillingUsageOut,
    CalculateOut,
    CalculateQuery,
    PageQuery,
)
from .spec import doc, validated_query

TAGS = ("billing",)


@bp.get("/partner/billing")
@doc(BillingOut, tags=TAGS)
def billing() -> BillingOut:
    """Billing settings, pricing tiers and the credit pool now."""
    return BillingOut.model_validate(billing_info(current_partner()))


@bp.get("/partner/billing/usage")
@doc(BillingUsageOut, tags=TAGS)
def billing_usage() -> BillingUsageOut:
    """The current billing period: usage, estimated cost by tier, and the projection.

    The projection (billing.projection, named by projectionMethod) counts the period's
    complete days as used, then the average of its last 7 complete days (or of its 1-6
    complete days) for today and each day after; null before the first complete day.
    """
    partner = current_partner()
    return BillingUsageOut.model_validate(
        pick(BillingUsageOut, current_usage(partner), partner_id=partner.id)
    )


@bp.get("/partner/billing/calculate")
@doc(CalculateOut, query=CalculateQuery, tags=TAGS)
def billing_calculate() -> CalculateOut:
    """The cost of a number of identifications under the partner's graduated tiers."""
    return CalculateOut.model_validate(calculate(current_partner(), validated_query().usage))


@bp.get("/partner/billing/periods")
@doc(BillingPeriodsOut, query=PageQuery, tags=TAGS)
def billing_periods() -> BillingPeriodsOut:
    """Past and current billing periods with their usage and cost, newest first."""
    partner = current_partner()
    query = validated_query()
    rows, total = periods_page(partner, query.page, query.pageSize)
    return BillingPeriodsOut.model_validate(
        {
            "partner_id": partner.id,
            "periods": rows,
            "total": total,
            "page": query.page,
            "page_size": query.pageSize,
        }
    )
