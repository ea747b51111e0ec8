"""Month-end reports: one calendar month's figures as typed results.

Every figure comes from app/metrics.py, so the report page, its CSV and JSON downloads
(app/exports.py), the API and `flask report` cannot disagree; what only a report tells
(each organization's state at both ends of the month, the data that arrived after it
closed) is read here. A month is a calendar month in the partner's timezone; it closes at
the first instant of the next month there.

It is one module of about 600 lines because a report is one document: its result types,
the two reads only it makes (organization states, late receipts) and the list of months
(month_index, each month's headline from the same figures) belong beside the function that
assembles them; none of them is used without the others. The aggregation itself is
metrics.py's, so nothing here would move to a second module but the types of one report.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from . import billing, metrics
from .display import fmt_day
from .errors import AppError
from .extensions import db
from .metrics import ByType, SeriesPoint, Summary, TypeUsage
from .models import (
    CreditAllocation,
    Organization,
    OrganizationStatusChange,
    Partner,
    PartnerDailyReceipt,
)
from .periods import (
    Period,
    add_months,
    as_date,
    billing_period,
    billing_periods,
    day_end_utc,
    day_start_utc,
    local_today,
    month_period,
)
from .timeutil import utcnow

MONTH_RE = re.compile(r"([0-9]{4})-([0-9]{2})")  # fullmatch: the whole text


# --- months ------------------------------------------------------------------------------


def month_key(day: date) -> str:
    """Return the YYYY-MM key of the month holding day."""
    return f"{day.year:04d}-{day.month:02d}"


def month_label(year: int, month: int) -> str:
    """Return a month's name, such as October 2025."""
    return f"{calendar.month_name[month]} {year}"


def available_months(partner: Partner) -> list[str]:
    """Return every month from the first with data through the current one, newest first.

    Months are calendar months in the partner's timezone; a partner without any usage
    has no reports yet.
    """
    first = metrics.first_activity_day(partner)
    if first is None:
        return []
    today = local_today(partner.timezone)
    months = []
    cursor = min(first, today).replace(day=1)
    while cursor <= today:
        months.append(month_key(cursor))
        cursor = add_months(cursor, 1)
    return list(reversed(months))


def _not_found(text: str, message: str) -> AppError:
    return AppError("NotFound", message, {"field": "month", "value": str(text)[:20]})


def parse_month(partner: Partner, text: str, *, in_words: bool = False) -> tuple[int, int]:
    """Return (year, month) for a YYYY-MM that has a report, or raise NotFound saying why.

    The API's messages write today and the first month with data as the API does
    ('2025-11-20', '2025-09'); in_words writes them as the pages do ('20 Nov 2025',
    'September 2025'). The reasons are the same.
    """
    match = MONTH_RE.fullmatch(text or "")
    if match is None:
        raise _not_found(text, "a report month is written YYYY-MM, for example 2025-10")
    year, month = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12 or year < 1970:
        raise _not_found(text, f"{text} is not a calendar month")
    today = local_today(partner.timezone)
    if (year, month) > (today.year, today.month):
        today_text = fmt_day(today) if in_words else today.isoformat()
        raise _not_found(
            text,
            f"{month_label(year, month)} has not started yet "
            f"(today is {today_text} in {partner.timezone})",
        )
    months = available_months(partner)
    if f"{year:04d}-{month:02d}" not in months:
        if not months:
            raise _not_found(text, "there is no usage data yet, so there are no reports")
        first = months[-1]
        first_text = month_label(*map(int, first.split("-"))) if in_words else first
        raise _not_found(
            text,
            f"there is no data for {month_label(year, month)}: "
            f"the first month with data is {first_text}",
        )
    return year, month


# --- organization states and late data -------------------------------------------------


@dataclass(slots=True)
class OrgState:
    """An organization's status at both ends of a period and its moves during it.

    status_at_start is None if it was created later, status_at_end None if created after
    the period; credits_allocated_at_end comes from the allocation audit trail; new: created
    during the period; churned: entered canceled during it; reactivated: went from
    suspended or canceled back to active during it.
    """

    created_at: datetime
    status_at_start: str | None
    status_at_end: str | None
    credits_allocated_at_end: int
    new: bool
    churned: bool = False
    reactivated: bool = False


def organization_states(partner: Partner, period: Period) -> dict[str, OrgState]:
    """Return {organization id: OrgState} for a period."""
    start = day_start_utc(period.start, partner.timezone)
    end = day_end_utc(period.end, partner.timezone)
    ca = CreditAllocation
    allocation = (
        metrics.latest_before(ca.credits_allocated, ca.allocated_at, Organization.id, end)
        .correlate(Organization)
        .scalar_subquery()
    )
    states: dict[str, OrgState] = {}
    for org_id, created, at_start, at_end, allocated in db.session.execute(
        select(
            Organization.id,
            Organization.created_at,
            metrics.status_before(start),
            metrics.status_before(end),
            allocation,
        ).where(Organization.partner_id == partner.id)
    ):
        states[org_id] = OrgState(
            created_at=created,
            status_at_start=at_start,
            status_at_end=at_end,
            credits_allocated_at_end=int(allocated or 0),
            new=start <= created < end,
        )
    sc = OrganizationStatusChange
    previous = func.lag(sc.status).over(
        partition_by=sc.organization_id, order_by=(sc.changed_at, sc.id)
    )
    history = (
        select(
            sc.organization_id.label("org_id"),
            sc.status.label("status"),
            sc.changed_at.label("changed_at"),
            previous.label("previous"),
        )
        .where(sc.partner_id == partner.id, sc.changed_at < end)
        .subquery()
    )
    for org_id, status, before in db.session.execute(
        select(history.c.org_id, history.c.status, history.c.previous).where(
            history.c.changed_at >= start
        )
    ):
        state = states.get(org_id)
        if state is None:
            continue
        if status == "canceled" and before != "canceled":
            state.churned = True
        if status == "active" and before in ("suspended", "canceled"):
            state.reactivated = True
    return states


@dataclass(frozen=True, slots=True)
class LateReceipts:
    """Usage of a period received late, by type, and the first and last day it arrived."""

    by_type: ByType
    first_received_day: date | None
    last_received_day: date | None


def late_receipts(partner: Partner, period: Period, closed_day: date) -> LateReceipts:
    """Return the usage of the period's days that was received on or after closed_day.

    Days are local: closed_day is the first day after the period, so this is what arrived
    once the period had closed (the days are None when nothing arrived late).
    """
    pdr = PartnerDailyReceipt
    rows = db.session.execute(
        select(
            pdr.type,
            func.sum(pdr.quantity),
            func.sum(pdr.events),
            func.min(pdr.received_day),
            func.max(pdr.received_day),
        )
        .where(
            pdr.partner_id == partner.id,
            pdr.day >= period.start,
            pdr.day <= period.end,
            pdr.received_day >= closed_day,
        )
        .group_by(pdr.type)
    ).all()
    firsts = [as_date(r[3]) for r in rows if r[3] is not None]
    lasts = [as_date(r[4]) for r in rows if r[4] is not None]
    by_type = {
        r[0]: TypeUsage(int(r[1] or 0), int(r[2] or 0)) for r in sorted(rows, key=lambda r: r[0])
    }
    return LateReceipts(by_type, min(firsts) if firsts else None, max(lasts) if lasts else None)


# --- the report --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReportOrganization:
    """One organization's line of the report."""

    organization_id: str
    name: str
    external_id: str | None
    identifications: int
    credits_used: int
    events: int
    quantity: int
    share: float | None
    share_percent: float | None
    credits_allocated: int
    status_at_end: str | None
    new: bool
    churned: bool
    reactivated: bool


@dataclass(frozen=True, slots=True)
class ReportTotals:
    """The totals row of the organization table (equal to the month's figures)."""

    organizations: int
    identifications: int
    credits_used: int
    events: int
    quantity: int
    share: float | None
    share_percent: float | None
    credits_allocated: int
    new: int
    churned: int
    reactivated: int


@dataclass(frozen=True, slots=True)
class IdleOrganization:
    """An organization active at the month's end without identifications in it."""

    organization_id: str
    name: str
    external_id: str | None
    events: int


@dataclass(frozen=True, slots=True)
class BillingOverlap:
    """The part of the month inside one billing period, and its usage there."""

    billing_period_start: date
    billing_period_end: date
    start_date: date
    end_date: date
    days: int
    identifications: int
    credits_used: int
    credit_pool_total: int  # the billing period's pool (its terms)


@dataclass(frozen=True, slots=True)
class LateData:
    """Events of the month received after it closed, and how much they changed it."""

    closed: bool
    closed_at: datetime
    late_events: int
    late_quantity: int
    identifications_added: int
    credits_added: int
    identifications_at_close: int
    credits_used_at_close: int
    identifications_change: float | None
    first_received_date: date | None
    last_received_date: date | None
    by_type: ByType


@dataclass(frozen=True, slots=True)
class MonthReport:
    """The month-end report of one calendar month (the current month to date)."""

    partner_id: str
    partner_name: str
    partner_slug: str
    timezone: str
    month: str
    month_label: str
    start_date: date
    end_date: date
    through_date: date
    complete: bool
    closed_at: datetime
    generated_at: datetime
    data_received_through: datetime | None
    summary: Summary
    previous_month: str
    previous_month_label: str
    previous_start_date: date
    previous_end_date: date
    previous: Summary
    change: dict[str, float | None]
    daily: list[SeriesPoint]
    organizations: list[ReportOrganization]
    totals: ReportTotals
    active_without_identifications: list[IdleOrganization]
    billing_periods: list[BillingOverlap]
    late_data: LateData
    estimated_cost: Decimal | None
    currency: str


def _share(part: int, total: int) -> float | None:
    return round(part / total, 4) if total else None


def month_report(partner: Partner, year: int, month: int) -> MonthReport:
    """Return the month-end report of one calendar month.

    The current month is reported to date (through today). Figures include every event
    stored so far; late_data tells how much of it arrived after the month closed. The
    comparison is the one rule of metrics.comparable: a closed month against the month
    before, an open month's days so far against the same days a month earlier.
    """
    tz = partner.timezone
    full = month_period(year, month)
    today = local_today(tz)
    complete = today > full.end
    period = full if complete else Period(full.start, today)
    before = metrics.comparable(partner, period).previous
    next_first = full.end + timedelta(days=1)

    current = metrics.summary(partner, period)
    previous = metrics.summary(partner, before)
    organizations, totals, idle = _organization_table(partner, period, current)
    return MonthReport(
        partner_id=partner.id,
        partner_name=partner.name,
        partner_slug=partner.slug,
        timezone=tz,
        month=month_key(full.start),
        month_label=month_label(year, month),
        start_date=full.start,
        end_date=full.end,
        through_date=period.end,
        complete=complete,
        closed_at=day_start_utc(next_first, tz),
        generated_at=utcnow(),
        data_received_through=metrics.data_freshness(partner),
        summary=current,
        previous_month=month_key(before.start),
        previous_month_label=month_label(before.start.year, before.start.month),
        previous_start_date=before.start,
        previous_end_date=before.end,
        previous=previous,
        change=metrics.compare(current, previous),
        daily=metrics.timeseries(partner, period, "day"),
        organizations=organizations,
        totals=totals,
        active_without_identifications=idle,
        billing_periods=_billing_overlap(partner, full, period),
        late_data=_late_data(partner, period, next_first, complete, current),
        # The month's cost only when the month is a billing period: priced alone, a part
        # of a billing period would be priced at the wrong tiers. Priced with that
        # period's terms (billing.period_usage reads them).
        estimated_cost=billing.period_usage(partner, full, today).estimated_cost
        if billing_period(partner, full.start) == full
        else None,
        currency=partner.currency,
    )


def _organization_table(
    partner: Partner, period: Period, current: Summary
) -> tuple[list[ReportOrganization], ReportTotals, list[IdleOrganization]]:
    """Return the per-organization rows, their totals, and the active ones without usage.

    An organization is listed when it had events in the month, or existed at its end and
    was not canceled for the whole of it.
    """
    items, _count = metrics.organization_breakdown(
        partner, period, sort="identifications", order="desc", page=1, page_size=10**9
    )
    states = organization_states(partner, period)
    total_identifications = current.total_identifications
    rows: list[ReportOrganization] = []
    idle: list[IdleOrganization] = []
    for item in items:
        state = states[item.organization_id]
        dormant = (
            state.status_at_start == "canceled"
            and state.status_at_end == "canceled"
            and not state.reactivated
        )
        if item.events == 0 and (state.status_at_end is None or dormant):
            continue
        share = _share(item.identifications, total_identifications)
        rows.append(
            ReportOrganization(
                organization_id=item.organization_id,
                name=item.name,
                external_id=item.external_id,
                identifications=item.identifications,
                credits_used=item.credits_used,
                events=item.events,
                quantity=item.quantity,
                share=share,
                share_percent=round(share * 100, 2) if share is not None else None,
                credits_allocated=state.credits_allocated_at_end,
                status_at_end=state.status_at_end,
                new=state.new,
                churned=state.churned,
                reactivated=state.reactivated,
            )
        )
        if state.status_at_end == "active" and item.identifications == 0:
            idle.append(
                IdleOrganization(item.organization_id, item.name, item.external_id, item.events)
            )
    totals = ReportTotals(
        organizations=len(rows),
        identifications=sum(r.identifications for r in rows),
        credits_used=sum(r.credits_used for r in rows),
        events=sum(r.events for r in rows),
        quantity=sum(r.quantity for r in rows),
        share=1.0 if total_identifications else None,
        share_percent=100.0 if total_identifications else None,
        credits_allocated=sum(r.credits_allocated for r in rows),
        new=sum(1 for r in rows if r.new),
        churned=sum(1 for r in rows if r.churned),
        reactivated=sum(1 for r in rows if r.reactivated),
    )
    idle.sort(key=lambda i: (i.name.lower(), i.organization_id))
    return rows, totals, idle


def _billing_overlap(partner: Partner, full: Period, period: Period) -> list[BillingOverlap]:
    """Return the billing periods the month touches, with its days and usage in each."""
    segments = []
    for bp in billing_periods(partner, full.start, full.end):
        overlap = Period(max(bp.start, full.start), min(bp.end, full.end))
        counted = Period(overlap.start, min(overlap.end, period.end))
        used = metrics.credits_used(partner, counted) if counted.start <= counted.end else 0
        pool = billing.terms_for(partner, bp.start).credit_pool_total
        segments.append(
            BillingOverlap(
                bp.start, bp.end, overlap.start, overlap.end, overlap.days, used, used, pool
            )
        )
    return segments


def _late_data(
    partner: Partner, period: Period, next_first: date, complete: bool, current: Summary
) -> LateData:
    """Return what arrived after the month closed and how much it changed the month."""
    late = late_receipts(partner, period, next_first) if complete else LateReceipts({}, None, None)
    added = metrics.identifications_of(late.by_type)
    at_close = current.total_identifications - added
    return LateData(
        closed=complete,
        closed_at=day_start_utc(next_first, partner.timezone),
        late_events=metrics.total_events(late.by_type),
        late_quantity=metrics.total_quantity(late.by_type),
        identifications_added=added,
        credits_added=added,
        identifications_at_close=at_close,
        credits_used_at_close=at_close,
        identifications_change=metrics.relative_change(current.total_identifications, at_close),
        first_received_date=late.first_received_day,
        last_received_date=late.last_received_day,
        by_type=late.by_type,
    )


def report_for(partner: Partner, month_text: str, *, in_words: bool = False) -> MonthReport:
    """Return the report of a YYYY-MM month, or raise NotFound (in_words: its message
    written for a page, see parse_month)."""
    year, month = parse_month(partner, month_text, in_words=in_words)
    return month_report(partner, year, month)


# --- the list of months --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MonthHeadline:
    """One month of the list: its headline figures and their change against the month
    before (change is keyed by the figures' field names)."""

    month: str
    month_label: str
    start_date: date
    end_date: date
    through_date: date
    complete: bool
    total_identifications: int
    credits_used: int
    total_events: int
    total_quantity: int
    organizations_with_activity: int
    active_organizations: int
    previous_start_date: date
    previous_end_date: date
    change: dict[str, float | None]


HEADLINE_FIELDS = (
    "total_identifications",
    "credits_used",
    "total_events",
    "total_quantity",
    "organizations_with_activity",
    "active_organizations",
)


def month_index(partner: Partner) -> list[MonthHeadline]:
    """Return every month with a report, newest first, with its headline figures.

    Each row has the figures of summary() for the month (the current month to date) and
    their relative change against the month before.
    """
    months = available_months(partner)
    if not months:
        return []
    tz = partner.timezone
    today = local_today(tz)
    oldest = date.fromisoformat(months[-1] + "-01")
    # One series from the month before the oldest, so the oldest has a change too.
    series = metrics.timeseries(partner, Period(add_months(oldest, -1), today), "month")
    figures: dict[str, dict[str, int]] = {}
    for point in series:
        end = min(month_period(point.date.year, point.date.month).end, today)
        counts = metrics.organization_counts(partner, end)
        figures[month_key(point.date)] = {
            "total_identifications": point.identifications,
            "credits_used": point.credits_used,
            "total_events": point.events,
            "total_quantity": point.quantity,
            "organizations_with_activity": point.organizations_with_activity,
            "active_organizations": counts.active_organizations,
        }
    rows = []
    for key in months:
        start = date.fromisoformat(key + "-01")
        full = month_period(start.year, start.month)
        current = figures[key]
        before = metrics.comparable(partner, Period(start, min(full.end, today))).previous
        if before == month_period(before.start.year, before.start.month):
            prev = figures[month_key(before.start)]
        else:  # the open month: its days so far against the same days a month earlier
            earlier = metrics.summary(partner, before)
            prev = {name: getattr(earlier, name) for name in HEADLINE_FIELDS}
        rows.append(
            MonthHeadline(
                month=key,
                month_label=month_label(start.year, start.month),
                start_date=full.start,
                end_date=full.end,
                through_date=min(full.end, today),
                complete=today > full.end,
                previous_start_date=before.start,
                previous_end_date=before.end,
                **current,
                change={k: metrics.relative_change(current[k], prev[k]) for k in HEADLINE_FIELDS},
            )
        )
    return rows
