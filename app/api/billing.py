"""Billing: settings and pool, the current period's cost, the cost calculator, past periods."""

from __future__ import annotations

from typing import Any

from ..billing import billing_info, calculate, current_usage, periods_page
from . import bp
from .guards import current_partner
from .schemas import (
    BillingOut,
    BillingPeriodsOut,
    BillingUsageOut,
    CalculateOut,
    CalculateQuery,
    PageQuery,
)
from .serializers import page_of
from .spec import doc, validated_query

TAGS = ("billing",)


@bp.get("/partner/billing")
@doc(BillingOut, tags=TAGS)
def billing() -> dict[str, Any]:
    """Billing settings, pricing tiers and the credit pool now."""
    return billing_info(current_partner())


@bp.get("/partner/billing/usage")
@doc(BillingUsageOut, tags=TAGS)
def billing_usage() -> dict[str, Any]:
    """The current billing period: usage, estimated cost by tier, and the projection.

    The projection extends the average daily identifications so far (today counted as a
    whole day) over the whole period.
    """
    partner = current_partner()
    return {"partnerId": partner.id, **current_usage(partner)}


@bp.get("/partner/billing/calculate")
@doc(CalculateOut, query=CalculateQuery, tags=TAGS)
def billing_calculate() -> dict[str, Any]:
    """The cost of a number of identifications under the partner's graduated tiers."""
    return calculate(current_partner(), validated_query().usage)


@bp.get("/partner/billing/periods")
@doc(BillingPeriodsOut, query=PageQuery, tags=TAGS)
def billing_periods() -> dict[str, Any]:
    """Past and current billing periods with their usage and cost, newest first."""
    partner = current_partner()
    query = validated_query()
    rows, total = periods_page(partner, query.page, query.pageSize)
    return {"partnerId": partner.id, **page_of("periods", rows, total, query.page, query.pageSize)}
