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
    AnalyticsChange,
    AnalyticsOut,
    AnalyticsPrevious,
    OrgAnalyticsChange,
    OrgAnalyticsOut,
    OrgAnalyticsPrevious,
    OrgAnalyticsQuery,
    OrgBreakdownItem,
    OrgBreakdownOut,
    OrgFiguresChange,
    Out,
    PeriodQuery,
    SeriesChange,
    TimeseriesOut,
    TimeseriesQuery,
    UsageChange,
    UsageOut,
    UsagePrevious,
    UsageQuery,
)
from .spec import doc, validated_query

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


def period_request(
    default: Callable[[str], Period] = default_analytics_period,
) -> tuple[Partner, Any, Period]:
    """Return the request's partner, its validated query and the query's period."""
    partner = current_partner()
    query = validated_query()
    return partner, query, period_from(query, partner, default)


def pick(model: type[Out], result: Any, **more: Any) -> dict[str, Any]:
    """Return the fields of a typed result that model answers, plus more: its input."""
    return {
        name: getattr(result, name) for name in model.model_fields if hasattr(result, name)
    } | more


def dated(model: type[Out], period: Period, result: Any, **more: Any) -> dict[str, Any]:
    """Return pick() of a result with the period's dates."""
    return pick(model, result, start_date=period.start, end_date=period.end, **more)


def change(model: type[Out], current: Any, previous: Any) -> dict[str, float | None]:
    """Return the relative change of the figures a change model lists."""
    return metrics.compare(current, previous, tuple(model.model_fields))


@bp.get("/partner/analytics")
@doc(AnalyticsOut, query=PeriodQuery, tags=TAGS, period=True)
def analytics() -> AnalyticsOut:
    """The partner's figures for a period (default: today - 30 days .. today)."""
    partner = current_partner()
    query = validated_query()
    period = period_from(query, partner)
    if query.compare != "previous":
        current = metrics.summary(partner, period)
        return AnalyticsOut.model_validate(
            dated(AnalyticsOut, period, current, partner_id=partner.id)
        )
    result = metrics.summary_with_comparison(partner, period)
    return AnalyticsOut.model_validate(
        dated(
            AnalyticsOut,
            period,
            result.current,
            partner_id=partner.id,
            previous=dated(AnalyticsPrevious, result.previous_period, result.previous),
            change=change(AnalyticsChange, result.current, result.previous),
        )
    )


@bp.get("/partner/usage")
@doc(UsageOut, query=UsageQuery, errors=(404,), tags=TAGS, period=True)
def usage() -> UsageOut:
    """Usage by event type (default: the first day of the month .. today)."""
    partner, query, period = period_request(default_usage_period)
    org_id = None
    if query.organizationId is not None:
        org_id = get_organization(partner, query.organizationId).id
    current = metrics.usage(partner, period, query.type, org_id)
    out = dated(
        UsageOut, period, current, partner_id=partner.id, type=query.type, organization_id=org_id
    )
    if query.compare == "previous":
        before = metrics.comparable(partner, period).previous
        previous = metrics.usage(partner, before, query.type, org_id)
        out["previous"] = dated(UsagePrevious, before, previous)
        out["change"] = change(UsageChange, current, previous)
    return UsageOut.model_validate(out)


@bp.get("/partner/analytics/timeseries")
@doc(TimeseriesOut, query=TimeseriesQuery, errors=(404,), tags=TAGS, period=True)
def timeseries() -> TimeseriesOut:
    """One point per day, week (from Monday) or month of the period, zeros included."""
    partner, query, period = period_request()
    org_id = None
    if query.organizationId is not None:
        org_id = get_organization(partner, query.organizationId).id
    totals = metrics.series_totals(partner, period, org_id)
    out: dict[str, Any] = {
        "partner_id": partner.id,
        "organization_id": org_id,
        "start_date": period.start,
        "end_date": period.end,
        "granularity": query.granularity,
        "totals": totals,
        "points": metrics.timeseries(partner, period, query.granularity, org_id),
    }
    if query.compare == "previous":
        before = metrics.comparable(partner, period).previous
        previous_totals = metrics.series_totals(partner, before, org_id)
        out["previous"] = {
            "start_date": before.start,
            "end_date": before.end,
            "totals": previous_totals,
            "points": metrics.timeseries(partner, before, query.granularity, org_id),
        }
        out["change"] = change(SeriesChange, totals, previous_totals)
    return TimeseriesOut.model_validate(out)


@bp.get("/partner/analytics/organizations")
@doc(OrgBreakdownOut, query=OrgAnalyticsQuery, tags=TAGS, period=True)
def organization_breakdown() -> OrgBreakdownOut:
    """Per-organization figures for the period, sorted and paginated."""
    partner, query, period = period_request()
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
    out: dict[str, Any] = {
        "partner_id": partner.id,
        "start_date": period.start,
        "end_date": period.end,
        "sort": query.sort,
        "order": order,
        "organizations": items,
        "total": total,
        "page": query.page,
        "page_size": query.pageSize,
    }
    if query.compare == "previous":
        before = metrics.comparable(partner, period).previous
        earlier = metrics.organization_figures(partner, before, [i.organization_id for i in items])
        out["organizations"] = [
            pick(
                OrgBreakdownItem,
                item,
                previous=earlier[item.organization_id],
                change=change(OrgFiguresChange, item, earlier[item.organization_id]),
            )
            for item in items
        ]
        out["previous_start_date"] = before.start
        out["previous_end_date"] = before.end
    return OrgBreakdownOut.model_validate(out)


@bp.get("/partner/organizations/<id>/analytics")
@doc(OrgAnalyticsOut, query=PeriodQuery, errors=(404,), tags=TAGS, period=True)
def organization_analytics(id: str) -> OrgAnalyticsOut:  # noqa: A002
    """One organization's figures for a period (default: today - 30 days .. today)."""
    partner = current_partner()
    org = get_organization(partner, id)
    query = validated_query()
    period = period_from(query, partner)
    current = metrics.organization_summary(partner, org, period)
    out = dated(OrgAnalyticsOut, period, current, partner_id=partner.id)
    if query.compare == "previous":
        before = metrics.comparable(partner, period).previous
        earlier = metrics.organization_summary(partner, org, before)
        out["previous"] = dated(OrgAnalyticsPrevious, before, earlier)
        out["change"] = change(OrgAnalyticsChange, current, earlier)
    return OrgAnalyticsOut.model_validate(out)
