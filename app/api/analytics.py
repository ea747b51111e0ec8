"""Analytics and usage: the headline figures, series and per-organization breakdowns."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import metrics
from ..accounts import get_organization
from ..errors import bad_request
from ..models import Partner
from ..periods import (
    Period,
    PeriodError,
    default_analytics_period,
    default_usage_period,
    resolve_period,
)
from . import bp
from .guards import current_partner
from .schemas import (
    AnalyticsOut,
    OrgAnalyticsOut,
    OrgAnalyticsQuery,
    OrgBreakdownOut,
    PeriodQuery,
    TimeseriesOut,
    TimeseriesQuery,
    UsageOut,
    UsageQuery,
)
from .spec import doc, validated_query

ANALYTICS_FIELDS = (
    "totalOrganizations",
    "activeOrganizations",
    "totalIdentifications",
    "creditsRemaining",
    "creditsUsed",
    "organizationsWithActivity",
)
ORG_FIGURES = ("identifications", "creditsUsed", "events", "quantity")
ORG_ANALYTICS_FIGURES = ("totalIdentifications", "creditsUsed", "totalQuantity", "totalEvents")
TAGS = ("analytics",)


def period_from(
    query: Any, partner: Partner, default: Callable[[str], Period] = default_analytics_period
) -> Period:
    """Return the query's period through periods.resolve_period, or the 400 naming the field."""
    try:
        return resolve_period(
            query.startDate, query.endDate, partner.timezone, default(partner.timezone)
        )
    except PeriodError as exc:
        raise bad_request(exc.field, exc.value, exc.message) from exc


def _pick(figures: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {name: figures[name] for name in fields}


def _with_period(period: Period, figures: dict[str, Any]) -> dict[str, Any]:
    return {"startDate": period.start.isoformat(), "endDate": period.end.isoformat(), **figures}


@bp.get("/partner/analytics")
@doc(AnalyticsOut, query=PeriodQuery, tags=TAGS, period=True)
def analytics() -> dict[str, Any]:
    """The partner's figures for a period (default: today - 30 days .. today)."""
    partner = current_partner()
    query = validated_query()
    period = period_from(query, partner)
    out: dict[str, Any] = {"partnerId": partner.id, **period.iso()}
    if query.compare == "previous":
        result = metrics.summary_with_comparison(partner, period)
        current = _pick(result["current"], ANALYTICS_FIELDS)
        previous = _pick(result["previous"], ANALYTICS_FIELDS)
        out.update(current)
        out["previous"] = _with_period(result["previousPeriod"], previous)
        out["change"] = metrics.compare(current, previous)
    else:
        out.update(_pick(metrics.summary(partner, period), ANALYTICS_FIELDS))
    return out


@bp.get("/partner/usage")
@doc(UsageOut, query=UsageQuery, errors=(404,), tags=TAGS, period=True)
def usage() -> dict[str, Any]:
    """Usage by event type (default: the first day of the month .. today)."""
    partner = current_partner()
    query = validated_query()
    period = period_from(query, partner, default_usage_period)
    org_id = None
    if query.organizationId is not None:
        org_id = get_organization(partner, query.organizationId).id
    out: dict[str, Any] = {
        "partnerId": partner.id,
        **period.iso(),
        "type": query.type,
        "organizationId": org_id,
    }
    current = metrics.usage(partner, period, query.type, org_id)
    out.update(current)
    if query.compare == "previous":
        before = period.previous()
        previous = metrics.usage(partner, before, query.type, org_id)
        out["previous"] = _with_period(before, previous)
        out["change"] = metrics.compare(_pick(current, ("totalQuantity", "totalEvents")), previous)
    return out


@bp.get("/partner/analytics/timeseries")
@doc(TimeseriesOut, query=TimeseriesQuery, errors=(404,), tags=TAGS, period=True)
def timeseries() -> dict[str, Any]:
    """One point per day, week (from Monday) or month of the period, zeros included."""
    partner = current_partner()
    query = validated_query()
    period = period_from(query, partner)
    org_id = None
    if query.organizationId is not None:
        org_id = get_organization(partner, query.organizationId).id
    totals = metrics.series_totals(partner, period, org_id)
    out: dict[str, Any] = {
        "partnerId": partner.id,
        "organizationId": org_id,
        **period.iso(),
        "granularity": query.granularity,
        "totals": totals,
        "points": metrics.timeseries(partner, period, query.granularity, org_id),
    }
    if query.compare == "previous":
        before = period.previous()
        previous_totals = metrics.series_totals(partner, before, org_id)
        out["previous"] = {
            **before.iso(),
            "totals": previous_totals,
            "points": metrics.timeseries(partner, before, query.granularity, org_id),
        }
        out["change"] = metrics.compare(totals, previous_totals)
    return out


@bp.get("/partner/analytics/organizations")
@doc(OrgBreakdownOut, query=OrgAnalyticsQuery, tags=TAGS, period=True)
def organization_breakdown() -> dict[str, Any]:
    """Per-organization figures for the period, sorted and paginated."""
    partner = current_partner()
    query = validated_query()
    period = period_from(query, partner)
    order = query.order or ("asc" if query.sort in ("name", "status") else "desc")
    items, total = metrics.organization_breakdown(
        partner,
        period,
        sort=query.sort,
        order=order,
        page=query.page,
        page_size=query.pageSize,
        status=query.status,
        search=query.search,
        external_id=query.externalId,
    )
    out: dict[str, Any] = {"partnerId": partner.id, **period.iso()}
    if query.compare == "previous":
        before = period.previous()
        earlier = metrics.organization_figures(
            partner, before, [i["organizationId"] for i in items]
        )
        for item in items:
            previous = earlier[item["organizationId"]]
            item["previous"] = previous
            item["change"] = metrics.compare(_pick(item, ORG_FIGURES), previous)
        out["previousStartDate"] = before.start.isoformat()
        out["previousEndDate"] = before.end.isoformat()
    out.update(
        {
            "sort": query.sort,
            "order": order,
            "organizations": items,
            "total": total,
            "page": query.page,
            "pageSize": query.pageSize,
        }
    )
    return out


@bp.get("/partner/organizations/<id>/analytics")
@doc(OrgAnalyticsOut, query=PeriodQuery, errors=(404,), tags=TAGS, period=True)
def organization_analytics(id: str) -> dict[str, Any]:  # noqa: A002
    """One organization's figures for a period (default: today - 30 days .. today)."""
    partner = current_partner()
    org = get_organization(partner, id)
    query = validated_query()
    period = period_from(query, partner)
    out: dict[str, Any] = {"partnerId": partner.id, **period.iso()}
    out.update(metrics.organization_summary(partner, org, period))
    if query.compare == "previous":
        before = period.previous()
        earlier = metrics.organization_summary(partner, org, before)
        previous = _pick(earlier, (*ORG_ANALYTICS_FIGURES, "byType"))
        out["previous"] = _with_period(before, previous)
        out["change"] = metrics.compare(_pick(out, ORG_ANALYTICS_FIGURES), previous)
    return out
