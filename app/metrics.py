"""Every aggregate the product shows, computed in SQL over the daily rollups.

The API, the dashboard pages and the reports all call these functions, so a number
cannot differ between them. Results are frozen dataclasses with snake_case fields; the
API's pydantic models (app/api/schemas.py) turn them into camelCase JSON, once.

Its length is that of the product's figures, kept in one module on purpose. A partner's
billing periods live in app/periods.py (metrics and billing both need them, and billing
imports metrics), the report's organization states and late data in app/reports.py, and
the organization list's filters on the model (Organization.matching), which both this
module and accounts read.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Date, DateTime, bindparam, case, func, or_, select, union_all
from sqlalchemy.sql.elements import BindParameter, ColumnElement

from . import cache
from .cache import closed_period_cache, state_cache
from .database import bucket_start_sql
from .extensions import db
from .levels import WARN_AT, usage_level, usage_percent
from .models import (
    IDENTIFICATION,
    Organization,
    OrganizationStatusChange,
    OrgBucketUsage,
    OrgDailyUsage,
    Partner,
    PartnerActivity,
    PartnerBucketUsage,
    PartnerDailyUsage,
    PartnerDataVersion,
)
from .periods import (
    Comparison,
    Period,
    as_date,
    billing_period,
    buckets,
    comparison,
    counted_days,
    current_billing_period,
    day_end_utc,
    decompose,
    local_today,
    whole_buckets,
)
from .terms import terms_for

# Every sort of the organization breakdown (the API's `sort`, the page's "Sort by"), in the
# order the page offers them, with the page's label and the organization's own column to
# sort on (None: a figure of the period, computed per request).
ORG_SORTS: dict[str, tuple[str, Any]] = {
    "identifications": ("Identifications", None),
    "creditsUsed": ("Credits used", None),
    "events": ("Events", None),
    "quantity": ("Quantity", None),
    "name": ("Name", Organization.name),
    "status": ("Status", Organization.status),
    "credits": ("Allocation", Organization.credits_allocated),
    "creditsUsedThisBillingPeriod": ("Used this billing period", None),
    "creditsAvailable": ("Available this billing period", None),
    "createdAt": ("Created", Organization.created_at),
}


def _int(value: Any) -> int:
    # PostgreSQL's sum() is numeric (Decimal); SQLite's may be None for no rows.
    return int(value or 0)


# --- the result types ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TypeUsage:
    """Usage of one event type: the sum of quantity and the number of events."""

    quantity: int
    events: int


ByType = dict[str, TypeUsage]


@dataclass(frozen=True, slots=True)
class OrganizationCounts:
    """Organizations created by the end of a day, and how many were active then."""

    total_organizations: int
    active_organizations: int


@dataclass(frozen=True, slots=True)
class Summary:
    """Every metric of spec §2 for a period."""

    total_organizations: int
    active_organizations: int
    total_identifications: int
    credits_used: int
    credits_remaining: int
    organizations_with_activity: int
    total_quantity: int
    total_events: int


@dataclass(frozen=True, slots=True)
class SummaryComparison:
    """A period's summary, the comparable period's (periods.comparison decides which), and
    the relative change of each figure."""

    current: Summary
    previous: Summary
    compared: Comparison
    change: dict[str, float | None]

    @property
    def previous_period(self) -> Period:
        """Return the comparable period the previous figures are of."""
        return self.compared.previous


@dataclass(frozen=True, slots=True)
class Usage:
    """Usage totals, and the breakdown by event type (sorted by type)."""

    total_quantity: int
    total_events: int
    by_type: ByType


@dataclass(frozen=True, slots=True)
class OrgFigures:
    """One organization's figures for a period."""

    identifications: int
    credits_used: int
    events: int
    quantity: int


@dataclass(frozen=True, slots=True)
class SeriesTotals(OrgFigures):
    """The figures of a series over its whole period (organizations counted once)."""

    organizations_with_activity: int


@dataclass(frozen=True, slots=True)
class SeriesPoint(SeriesTotals):
    """The figures of one bucket of a series, dated by its start clipped to the period;
    days it counts (through today) and whether it is partial (periods.counted_days)."""

    date: date
    days: int
    partial: bool


@dataclass(frozen=True, slots=True)
class AllocationFigures:
    """An organization's allocation now and what it used of it this billing period."""

    credits: int
    credits_used: int
    credits_available: int


@dataclass(frozen=True, slots=True)
class OrgIdentity:
    """Who an organization is, as every per-organization row names it."""

    organization_id: str
    name: str
    external_id: str | None
    status: str
    tier: str


def _identity(org: Organization) -> dict[str, Any]:
    return {
        "organization_id": org.id,
        "name": org.name,
        "external_id": org.external_id,
        "status": org.status,
        "tier": org.tier,
    }


@dataclass(frozen=True, slots=True)
class OrgBreakdownItem(OrgIdentity):
    """One organization's figures for a period, with its allocation now."""

    identifications: int
    credits_used: int
    events: int
    quantity: int
    credits_allocated: int
    credits_used_this_billing_period: int
    credits_available: int


@dataclass(frozen=True, slots=True)
class BreakdownTotals(OrgFigures):
    """The breakdown's figures summed over every organization it lists (all pages)."""

    organizations: int
    credits_allocated: int
    credits_used_this_billing_period: int
    credits_available: int


@dataclass(frozen=True, slots=True)
class OrgSummary:
    """The analytics fields of one organization over a period."""

    organization_id: str
    total_identifications: int
    credits_used: int
    total_quantity: int
    total_events: int
    by_type: ByType
    status_at_end: str | None
    credits_allocated: int
    credits_used_this_billing_period: int
    credits_available: int


@dataclass(frozen=True, slots=True)
class OverAllocation(OrgIdentity):
    """A live organization that used more than a share of its allocation."""

    credits_allocated: int
    credits_used: int
    credits_available: int
    percent_used: float | None


@dataclass(frozen=True, slots=True)
class PoolStatus:
    """The credit pool now: its billing period, total, used, available and allocated."""

    billing_period_start: date
    billing_period_end: date
    credit_pool_total: int
    credit_pool_used: int
    credit_pool_available: int
    credit_pool_allocated: int


@dataclass(frozen=True, slots=True)
class CreditPoint:
    """One day of the credits used so far in its billing period."""

    date: date
    credits_used: int
    cumulative_credits_used: int
    billing_period_start: dt.date  # (date is the field above here)
    credit_pool_total: int
    credits_remaining: int


def _by_type(rows: Any) -> ByType:
    """Return {type: TypeUsage} from (type, sum(quantity), sum(events)) rows, sorted by type."""
    return {r[0]: TypeUsage(_int(r[1]), _int(r[2])) for r in sorted(rows, key=lambda r: r[0])}


# --- credits consumed -----------------------------------------------------------------


def credits_expr(type_col: Any, quantity_col: Any) -> ColumnElement[Any]:
    """Return the SQL for credits consumed by a rollup row: identifications consume quantity."""
    return case((type_col == IDENTIFICATION, quantity_col), else_=0)


def identifications_of(by_type: ByType) -> int:
    """Return the identifications in a {type: TypeUsage} breakdown."""
    found = by_type.get(IDENTIFICATION)
    return found.quantity if found is not None else 0


def total_quantity(by_type: ByType) -> int:
    """Return the quantity of every type of a breakdown."""
    return sum(v.quantity for v in by_type.values())


def total_events(by_type: ByType) -> int:
    """Return the events of every type of a breakdown."""
    return sum(v.events for v in by_type.values())


# The most ranges of each grain periods.decompose covers a period with: whole months in
# the middle, a run of whole weeks on either side of them, days on either side of each run.
_RANGE_SLOTS = {"day": 4, "week": 2, "month": 1}


def _range_params(partner_id: str, period: Period) -> dict[str, Any]:
    """Return the parameters of a statement built by _over_ranges for a period: the
    partner and the first and last bucket start of each slot (unused slots empty)."""
    params: dict[str, Any] = {"partner_id": partner_id}
    used = dict.fromkeys(_RANGE_SLOTS, 0)
    for grain, starts in decompose(period):
        slot = f"{grain}{used[grain]}"
        used[grain] += 1
        params[f"{slot}_from"], params[f"{slot}_to"] = starts.start, starts.end
    for grain, count in _RANGE_SLOTS.items():
        if used[grain] > count:
            raise AssertionError(f"decompose gave {used[grain]} ranges of {grain}s")
        for i in range(used[grain], count):
            params[f"{grain}{i}_from"], params[f"{grain}{i}_to"] = date.max, date.min
    return params


def _over_ranges(columns: tuple[str, ...], grain_of: Any, start_of: Any, day_of: Any = None) -> Any:
    """Return a UNION ALL of columns, one branch per slot of _RANGE_SLOTS, each a range of
    its table's key: the rows of start_of's table (keyed by partner, grain_of and
    start_of), or for days those of day_of's (keyed by partner and day) when given.
    Parameters from _range_params."""
    branches = []
    for grain, count in _RANGE_SLOTS.items():
        for i in range(count):
            first = bindparam(f"{grain}{i}_from", type_=Date)
            last = bindparam(f"{grain}{i}_to", type_=Date)
            if grain == "day" and day_of is not None:
                table, start, extra = day_of.class_, day_of, []
            else:
                table, start, extra = start_of.class_, start_of, [grain_of == grain]
            branches.append(
                select(*(getattr(table, c) for c in columns)).where(
                    table.partner_id == bindparam("partner_id"),
                    *extra,
                    start >= first,
                    start <= last,
                )
            )
    return union_all(*branches)


_TOTALS_ROWS = _over_ranges(
    ("type", "quantity", "events"),
    PartnerBucketUsage.grain,
    PartnerBucketUsage.bucket_start,
    PartnerDailyUsage.day,
).subquery()
_PARTNER_TOTALS = select(
    _TOTALS_ROWS.c.type, func.sum(_TOTALS_ROWS.c.quantity), func.sum(_TOTALS_ROWS.c.events)
).group_by(_TOTALS_ROWS.c.type)
_ACTIVITY_ROWS = _over_ranges(
    ("chunk", "organizations"), PartnerActivity.grain, PartnerActivity.start
)


def _partner_totals(partner_id: str, period: Period) -> ByType:
    """Return {type: TypeUsage} for a partner over a period.

    Whole months and weeks come from partner_bucket_usage and the days at the ends from
    partner_daily_usage (periods.decompose): a year aligned on months reads 12 rows per
    type instead of 365. One statement built once (its ranges are parameters).
    """
    return _by_type(db.session.execute(_PARTNER_TOTALS, _range_params(partner_id, period)))


_CREDITS_USED = select(func.sum(PartnerDailyUsage.quantity)).where(
    PartnerDailyUsage.partner_id == bindparam("partner_id"),
    PartnerDailyUsage.type == IDENTIFICATION,
    PartnerDailyUsage.day >= bindparam("first", type_=Date),
    PartnerDailyUsage.day <= bindparam("last", type_=Date),
)


def credits_used(partner: Partner, period: Period) -> int:
    """Return the credits the partner's organizations consumed in a period (a statement
    built once: a billing period is a month or a year of daily rows)."""
    value = db.session.execute(
        _CREDITS_USED, {"partner_id": partner.id, "first": period.start, "last": period.end}
    ).scalar()
    return _int(value)


def credits_remaining(partner: Partner, end: date) -> int:
    """Return the pool total of the billing period holding end minus what it used to end."""
    bp = billing_period(partner, end)
    pool = terms_for(partner, bp.start).credit_pool_total
    return pool - credits_used(partner, Period(bp.start, end))


# --- organizations as of a date -------------------------------------------------------


def latest_before(
    value: Any, moment: Any, organization_id: Any, boundary: datetime | BindParameter[datetime]
) -> Any:
    """Return SELECT value of an audit trail's newest row for organization_id before boundary
    (ties by id): what the trail says held just before boundary."""
    trail = value.class_
    return (
        select(value)
        .where(trail.organization_id == organization_id, moment < boundary)
        .order_by(moment.desc(), trail.id.desc())
        .limit(1)
    )


def status_before(boundary: datetime | BindParameter[datetime]) -> Any:
    """Return a correlated subquery: an organization's status just before boundary."""
    sc = OrganizationStatusChange
    return (
        latest_before(sc.status, sc.changed_at, Organization.id, boundary)
        .correlate(Organization)
        .scalar_subquery()
    )


def _organization_counts_statement() -> Any:
    """Return organization_counts' statement, with the partner and the boundary bound by
    name (:partner_id, :boundary): built once, so a call does not rebuild its SQL.

    Every organization's history starts at its createdAt, so one whose newest status
    entry came before the boundary was created by then, and had that status then; only
    those with an entry after the boundary (a past end) ask their history. Three counts
    of index ranges, none reading an organization's row for each organization.
    """
    org = Organization
    mine = org.partner_id == bindparam("partner_id")
    boundary = bindparam("boundary", type_=DateTime)
    created = select(func.count()).where(mine, org.created_at < boundary)
    settled = select(func.count()).where(
        mine, org.latest_status_at < boundary, org.latest_status == "active"
    )
    changed_since = select(func.count()).where(
        mine, org.latest_status_at >= boundary, status_before(boundary) == "active"
    )
    return select(
        created.scalar_subquery(),
        settled.scalar_subquery() + changed_since.scalar_subquery(),
    )


_ORGANIZATION_COUNTS = _organization_counts_statement()


@state_cache
def organization_counts(partner: Partner, end: date) -> OrganizationCounts:
    """Return organizations created by the end of end, and how many were active then."""
    boundary = day_end_utc(end, partner.timezone)
    row = db.session.execute(
        _ORGANIZATION_COUNTS, {"partner_id": partner.id, "boundary": boundary}
    ).one()
    return OrganizationCounts(_int(row[0]), _int(row[1]))


def status_at(organization: Organization, moment: datetime) -> str | None:
    """Return an organization's status just before moment (None if it did not exist)."""
    sc = OrganizationStatusChange
    return db.session.execute(
        latest_before(sc.status, sc.changed_at, organization.id, moment)
    ).scalar()


# --- the headline figures ---------------------------------------------------------------


def _has_usage_in(period: Period) -> Any:
    """Return EXISTS(a rollup row of the outer organization in the period): a primary-key seek."""
    odu = OrgDailyUsage
    return (
        select(odu.organization_id)
        .where(
            odu.organization_id == Organization.id, odu.day >= period.start, odu.day <= period.end
        )
        .correlate(Organization)
        .exists()
    )


def organizations_with_activity(
    partner: Partner, period: Period, organization_id: str | None = None
) -> int:
    """Return how many organizations have any usage in the period.

    For the partner: the bitmaps of partner_activity over the fewest whole months, weeks
    and days that cover the period (periods.decompose), OR-ed per chunk and counted, so
    a year aligned on months reads 12 rows per 63 organizations. For one organization:
    an EXISTS probe on the org_daily_usage primary key (organization, day, ...).
    """
    if organization_id is None:
        return _active_in(partner.id, period)
    scope = [
        Organization.partner_id == partner.id,
        Organization.id == organization_id,
        _has_usage_in(period),
    ]
    return _int(
        db.session.execute(select(func.count()).select_from(Organization).where(*scope)).scalar()
    )


def _active_in(partner_id: str, period: Period) -> int:
    """Return how many of a partner's organizations have a bit set in partner_activity
    in any bucket covering the period (each bucket lies wholly inside it)."""
    rows = db.session.execute(_ACTIVITY_ROWS, _range_params(partner_id, period))
    merged: dict[int, int] = {}
    for chunk, bits in rows:
        merged[chunk] = merged.get(chunk, 0) | bits
    return sum(bits.bit_count() for bits in merged.values())


@closed_period_cache
def summary(partner: Partner, period: Period) -> Summary:
    """Return every metric of spec §2 for a partner and an inclusive period."""
    today = local_today(partner.timezone)
    if cache.enabled() and period.start < today <= period.end:
        return _summary_to_today(partner, period, today)
    by_type = _partner_totals(partner.id, period)
    identifications = identifications_of(by_type)
    counts = organization_counts(partner, period.end)
    return Summary(
        total_organizations=counts.total_organizations,
        active_organizations=counts.active_organizations,
        total_identifications=identifications,
        credits_used=identifications,
        credits_remaining=credits_remaining(partner, period.end),
        organizations_with_activity=organizations_with_activity(partner, period),
        total_quantity=total_quantity(by_type),
        total_events=total_events(by_type),
    )


def _summary_to_today(partner: Partner, period: Period, today: date) -> Summary:
    """Return summary() of a period that includes today: the closed days before today
    from the closed-period cache, today (and any later day) computed live."""
    closed = Period(period.start, today - timedelta(days=1))
    live = Period(today, period.end)
    before = summary(partner, closed)
    live_by_type = _partner_totals(partner.id, live)
    odu = OrgDailyUsage
    live_active = {
        r[0]
        for r in db.session.execute(
            select(odu.organization_id)
            .distinct()
            .where(odu.partner_id == partner.id, odu.day >= live.start, odu.day <= live.end)
        )
    }
    active = len(active_organization_ids(partner, closed) | live_active)
    live_identifications = identifications_of(live_by_type)
    bp = billing_period(partner, period.end)
    if bp.start <= today:
        # The billing period's days from today on are the live part: already summed.
        used = live_identifications
        if bp.start < today:
            used += closed_credits_used(partner, Period(bp.start, today - timedelta(days=1)))
    else:
        used = credits_used(partner, Period(bp.start, period.end))
    identifications = before.total_identifications + live_identifications
    counts = organization_counts(partner, period.end)
    return Summary(
        total_organizations=counts.total_organizations,
        active_organizations=counts.active_organizations,
        total_identifications=identifications,
        credits_used=identifications,
        credits_remaining=terms_for(partner, bp.start).credit_pool_total - used,
        organizations_with_activity=active,
        total_quantity=before.total_quantity + total_quantity(live_by_type),
        total_events=before.total_events + total_events(live_by_type),
    )


@closed_period_cache
def active_organization_ids(partner: Partner, period: Period) -> frozenset[str]:
    """Return the ids of the organizations with any usage in the period."""
    return frozenset(
        db.session.execute(
            select(Organization.id).where(
                Organization.partner_id == partner.id, _has_usage_in(period)
            )
        ).scalars()
    )


@closed_period_cache
def closed_credits_used(partner: Partner, period: Period) -> int:
    """Return credits_used() for a period, cached when it is closed."""
    return credits_used(partner, period)


@closed_period_cache
def usage(
    partner: Partner,
    period: Period,
    event_type: str | None = None,
    organization_id: str | None = None,
) -> Usage:
    """Return the usage totals and by type, optionally for one type or organization."""
    if organization_id is None:
        by_type = _partner_totals(partner.id, period)
    else:
        odu = OrgDailyUsage
        rows = db.session.execute(
            select(odu.type, func.sum(odu.quantity), func.sum(odu.events))
            .where(
                odu.partner_id == partner.id,
                odu.organization_id == organization_id,
                odu.day >= period.start,
                odu.day <= period.end,
            )
            .group_by(odu.type)
        )
        by_type = _by_type(rows)
    if event_type is not None:
        by_type = {k: v for k, v in by_type.items() if k == event_type}
    return Usage(total_quantity(by_type), total_events(by_type), by_type)


def relative_change(current: Any, previous: Any) -> float | None:
    """Return (current - previous) / previous rounded to 4 places; None when previous is 0."""
    if not isinstance(current, int | float) or not isinstance(previous, int | float):
        return None
    if previous == 0:
        return None
    return round((current - previous) / previous, 4)


def compare(
    current: Any, previous: Any, names: tuple[str, ...] | None = None
) -> dict[str, float | None]:
    """Return {field: relative change} of every number two results share (or of names)."""
    chosen = names or tuple(f.name for f in fields(current))
    return {
        name: relative_change(getattr(current, name), getattr(previous, name, None))
        for name in chosen
        if isinstance(getattr(current, name), int | float)
        and not isinstance(getattr(current, name), bool)
    }


def comparable(partner: Partner, period: Period) -> Comparison:
    """Return the period as compared and the comparable period before it (spec §4), as
    the API, every page and every report compare: periods.comparison on the partner's today.
    """
    return comparison(period, local_today(partner.timezone))


def summary_with_comparison(partner: Partner, period: Period) -> SummaryComparison:
    """Return summary() for the period plus previous and change for the comparable period."""
    compared = comparable(partner, period)
    current = summary(partner, period)
    previous = summary(partner, compared.previous)
    return SummaryComparison(current, previous, compared, compare(current, previous))


# --- series -----------------------------------------------------------------------------


@closed_period_cache
def timeseries(
    partner: Partner,
    period: Period,
    granularity: str,
    organization_id: str | None = None,
) -> list[SeriesPoint]:
    """Return one point per bucket (zeros included), each dated by its clipped start."""
    spans = buckets(period, granularity)
    sums: dict[date, tuple[int, int, int]] = {b.start: (0, 0, 0) for b in spans}
    today = local_today(partner.timezone)

    def clip(raw: Any) -> date:
        return max(as_date(raw), period.start)

    if organization_id is None:
        table: Any = PartnerDailyUsage
        scope = [table.partner_id == partner.id]
    else:
        table = OrgDailyUsage
        scope = [table.partner_id == partner.id, table.organization_id == organization_id]
    bucket = bucket_start_sql(table.day, granularity).label("bucket")
    ident = func.sum(case((table.type == IDENTIFICATION, table.quantity), else_=0))
    rows = db.session.execute(
        select(bucket, ident, func.sum(table.events), func.sum(table.quantity))
        .where(*scope, table.day >= period.start, table.day <= period.end)
        .group_by(bucket)
    )
    for raw, identifications, events, quantity in rows:
        sums[clip(raw)] = (_int(identifications), _int(events), _int(quantity))
    active = _active_by_bucket(partner.id, period, granularity, organization_id)
    points = []
    for span in spans:
        identifications, events, quantity = sums[span.start]
        days, partial = counted_days(span, granularity, today)
        points.append(
            SeriesPoint(
                date=span.start,
                identifications=identifications,
                credits_used=identifications,
                events=events,
                quantity=quantity,
                organizations_with_activity=active.get(span.start, 0),
                days=days,
                partial=partial,
            )
        )
    return points


def _active_by_bucket(
    partner_id: str, period: Period, granularity: str, organization_id: str | None
) -> dict[date, int]:
    """Return {clipped bucket start: organizations with any usage in the bucket}.

    Whole weeks and months are counted on org_bucket_usage (one row per organization and
    bucket), the clipped first and last buckets and day buckets on org_daily_usage.
    """
    odu, obu = OrgDailyUsage, OrgBucketUsage
    daily_scope = [odu.partner_id == partner_id]
    bucket_scope = [obu.partner_id == partner_id]
    if organization_id is not None:
        daily_scope.append(odu.organization_id == organization_id)
        bucket_scope.append(obu.organization_id == organization_id)
    active = func.count(func.distinct(odu.organization_id))
    if granularity == "day":
        return {
            as_date(day): _int(n)
            for day, n in db.session.execute(
                select(odu.day, active)
                .where(*daily_scope, odu.day >= period.start, odu.day <= period.end)
                .group_by(odu.day)
            )
        }
    counts: dict[date, int] = {}
    whole = whole_buckets(period, granularity)
    if whole is not None:
        counts.update(
            {
                as_date(start): _int(n)
                for start, n in db.session.execute(
                    select(obu.bucket_start, func.count())
                    .where(
                        *bucket_scope,
                        obu.grain == granularity,
                        obu.bucket_start >= whole.start,
                        obu.bucket_start <= whole.end,
                    )
                    .group_by(obu.bucket_start)
                )
            }
        )
    for part in buckets(period, granularity):
        if whole is None or not whole.start <= part.start <= whole.end:
            counts[part.start] = _int(
                db.session.execute(
                    select(active).where(*daily_scope, odu.day >= part.start, odu.day <= part.end)
                ).scalar()
            )
    return counts


# --- per organization ----------------------------------------------------------------


def org_credits_used(partner: Partner, period: Period, org_ids: list[str]) -> dict[str, int]:
    """Return credits consumed in a period by each of the given organizations."""
    if not org_ids:
        return {}
    odu = OrgDailyUsage
    rows = db.session.execute(
        select(odu.organization_id, func.sum(odu.quantity))
        .where(
            odu.partner_id == partner.id,
            odu.type == IDENTIFICATION,
            odu.organization_id.in_(org_ids),
            odu.day >= period.start,
            odu.day <= period.end,
        )
        .group_by(odu.organization_id)
    )
    return {r[0]: _int(r[1]) for r in rows}


def allocation_figures(partner: Partner, orgs: list[Organization]) -> dict[str, AllocationFigures]:
    """Return {org id: its allocation and what it used of it} for the current billing period."""
    used = org_credits_used(partner, current_billing_period(partner), [o.id for o in orgs])
    return {
        o.id: AllocationFigures(
            o.credits_allocated, used.get(o.id, 0), o.credits_allocated - used.get(o.id, 0)
        )
        for o in orgs
    }


def org_usage_rows(partner_id: str, period: Period, org_ids: list[str] | None = None) -> Any:
    """Return a subquery of (organization_id, identifications, quantity, events) rollup
    rows that together count every event of the partner in period once.

    Whole months and weeks of the period come from org_bucket_usage, the days left over
    at its ends from org_daily_usage (periods.decompose): a year aligned on months reads
    12 rows per organization, not 365 per organization and type.
    """
    odu, obu = OrgDailyUsage, OrgBucketUsage
    parts = []
    for grain, starts in decompose(period):
        if grain == "day":
            part = select(
                odu.organization_id,
                credits_expr(odu.type, odu.quantity).label("identifications"),
                odu.quantity,
                odu.events,
            ).where(odu.partner_id == partner_id, odu.day >= starts.start, odu.day <= starts.end)
            if org_ids is not None:
                part = part.where(odu.organization_id.in_(org_ids))
        else:
            part = select(obu.organization_id, obu.identifications, obu.quantity, obu.events).where(
                obu.partner_id == partner_id,
                obu.grain == grain,
                obu.bucket_start >= starts.start,
                obu.bucket_start <= starts.end,
            )
            if org_ids is not None:
                part = part.where(obu.organization_id.in_(org_ids))
        parts.append(part)
    return (union_all(*parts) if len(parts) > 1 else parts[0]).subquery()


def _billing_used(partner: Partner) -> Any:
    """Return a subquery of (org_id, used): credits each organization used in the current
    billing period (what allocation_figures counts)."""
    odu = OrgDailyUsage
    bp = current_billing_period(partner)
    return (
        select(odu.organization_id.label("org_id"), func.sum(odu.quantity).label("used"))
        .where(
            odu.partner_id == partner.id,
            odu.type == IDENTIFICATION,
            odu.day >= bp.start,
            odu.day <= bp.end,
        )
        .group_by(odu.organization_id)
        .subquery()
    )


def _breakdown_listing(
    partner: Partner,
    period: Period,
    status: str | None,
    search: str | None,
    external_id: str | None,
) -> tuple[Any, list[Any]]:
    """Return the period's per-organization sums (a subquery keyed by org_id) and the
    clauses that pick the organizations the breakdown lists.

    Listed: organizations that existed by the period's end, and any that had events in it
    (an event may be dated before its organization's createdAt).
    """
    usage_rows = org_usage_rows(partner.id, period)
    agg = (
        select(
            usage_rows.c.organization_id.label("org_id"),
            func.sum(usage_rows.c.identifications).label("ident"),
            func.sum(usage_rows.c.events).label("events"),
            func.sum(usage_rows.c.quantity).label("quantity"),
        )
        .group_by(usage_rows.c.organization_id)
        .subquery()
    )
    boundary = day_end_utc(period.end, partner.timezone)
    filters = Organization.matching(partner.id, status, search, external_id)
    clauses = [*filters, or_(Organization.created_at < boundary, agg.c.org_id.is_not(None))]
    return agg, clauses


@closed_period_cache
def organization_breakdown(
    partner: Partner,
    period: Period,
    *,
    sort: str = "identifications",
    order: str = "desc",
    page: int = 1,
    page_size: int = 20,
    status: str | None = None,
    search: str | None = None,
    external_id: str | None = None,
) -> tuple[list[OrgBreakdownItem], int]:
    """Return one page of per-organization figures for the period, and the total count."""
    agg, clauses = _breakdown_listing(partner, period, status, search, external_id)
    # The count needs no sums: one existence probe per organization.
    boundary = day_end_utc(period.end, partner.timezone)
    filters = Organization.matching(partner.id, status, search, external_id)
    total = _int(
        db.session.execute(
            select(func.count())
            .select_from(Organization)
            .where(*filters, or_(Organization.created_at < boundary, _has_usage_in(period)))
        ).scalar()
    )
    ident = func.coalesce(agg.c.ident, 0)
    columns: dict[str, Any] = {
        "identifications": ident,
        "creditsUsed": ident,
        "events": func.coalesce(agg.c.events, 0),
        "quantity": func.coalesce(agg.c.quantity, 0),
    }
    query = select(Organization, ident, columns["events"], columns["quantity"]).outerjoin(
        agg, agg.c.org_id == Organization.id
    )
    if sort in ("creditsUsedThisBillingPeriod", "creditsAvailable"):
        # The billing period's figures are joined only to sort on them; the page's values
        # come from allocation_figures, as on every other sort.
        billed = _billing_used(partner)
        used_now = func.coalesce(billed.c.used, 0)
        columns["creditsUsedThisBillingPeriod"] = used_now
        columns["creditsAvailable"] = Organization.credits_allocated - used_now
        query = query.outerjoin(billed, billed.c.org_id == Organization.id)
    own_column = ORG_SORTS.get(sort, ("", None))[1]
    sort_col = columns.get(sort, ident if own_column is None else own_column)
    primary = sort_col.asc() if order == "asc" else sort_col.desc()
    rows = db.session.execute(
        query.where(*clauses)
        .order_by(primary, Organization.name.asc(), Organization.id.asc())
        .limit(page_size)
        .offset((page - 1) * page_size)
    ).all()
    orgs = [r[0] for r in rows]
    alloc = allocation_figures(partner, orgs)
    items = []
    for org, identifications, events, quantity in rows:
        items.append(
            OrgBreakdownItem(
                **_identity(org),
                identifications=_int(identifications),
                credits_used=_int(identifications),
                events=_int(events),
                quantity=_int(quantity),
                credits_allocated=alloc[org.id].credits,
                credits_used_this_billing_period=alloc[org.id].credits_used,
                credits_available=alloc[org.id].credits_available,
            )
        )
    return items, total


@closed_period_cache
def organization_breakdown_totals(
    partner: Partner,
    period: Period,
    *,
    status: str | None = None,
    search: str | None = None,
    external_id: str | None = None,
) -> BreakdownTotals:
    """Return the sums of the breakdown's figures over every organization it lists (all
    pages), with the same filters: unfiltered, the period's figures are the partner's."""
    agg, clauses = _breakdown_listing(partner, period, status, search, external_id)
    billed = _billing_used(partner)
    row = db.session.execute(
        select(
            func.count(),
            func.sum(func.coalesce(agg.c.ident, 0)),
            func.sum(func.coalesce(agg.c.events, 0)),
            func.sum(func.coalesce(agg.c.quantity, 0)),
            func.sum(Organization.credits_allocated),
            func.sum(func.coalesce(billed.c.used, 0)),
        )
        .select_from(Organization)
        .outerjoin(agg, agg.c.org_id == Organization.id)
        .outerjoin(billed, billed.c.org_id == Organization.id)
        .where(*clauses)
    ).one()
    count, identifications, events, quantity, allocated, used = (_int(v) for v in row)
    return BreakdownTotals(
        identifications=identifications,
        credits_used=identifications,
        events=events,
        quantity=quantity,
        organizations=count,
        credits_allocated=allocated,
        credits_used_this_billing_period=used,
        credits_available=allocated - used,
    )


def organization_summary(
    partner: Partner, organization: Organization, period: Period
) -> OrgSummary:
    """Return the analytics fields for one organization over a period."""
    figures = usage(partner, period, organization_id=organization.id)
    identifications = identifications_of(figures.by_type)
    boundary = day_end_utc(period.end, partner.timezone)
    existed = organization.created_at < boundary
    alloc = allocation_figures(partner, [organization])[organization.id]
    return OrgSummary(
        organization_id=organization.id,
        total_identifications=identifications,
        credits_used=identifications,
        total_quantity=figures.total_quantity,
        total_events=figures.total_events,
        by_type=figures.by_type,
        status_at_end=status_at(organization, boundary) if existed else None,
        credits_allocated=alloc.credits,
        credits_used_this_billing_period=alloc.credits_used,
        credits_available=alloc.credits_available,
    )


@closed_period_cache
def organization_figures(
    partner: Partner, period: Period, org_ids: list[str]
) -> dict[str, OrgFigures]:
    """Return identifications, credits used, events and quantity per organization (zeros too)."""
    figures = {i: OrgFigures(0, 0, 0, 0) for i in org_ids}
    if not org_ids:
        return figures
    usage_rows = org_usage_rows(partner.id, period, org_ids)
    rows = db.session.execute(
        select(
            usage_rows.c.organization_id,
            func.sum(usage_rows.c.identifications),
            func.sum(usage_rows.c.events),
            func.sum(usage_rows.c.quantity),
        ).group_by(usage_rows.c.organization_id)
    )
    for org_id, identifications, events, quantity in rows:
        figures[org_id] = OrgFigures(
            _int(identifications), _int(identifications), _int(events), _int(quantity)
        )
    return figures


@closed_period_cache
def series_totals(
    partner: Partner, period: Period, organization_id: str | None = None
) -> SeriesTotals:
    """Return the totals of timeseries() over its whole period (organizations counted once)."""
    figures = usage(partner, period, organization_id=organization_id)
    identifications = identifications_of(figures.by_type)
    return SeriesTotals(
        identifications=identifications,
        credits_used=identifications,
        events=figures.total_events,
        quantity=figures.total_quantity,
        organizations_with_activity=organizations_with_activity(partner, period, organization_id),
    )


def top_organizations(partner: Partner, period: Period, limit: int = 10) -> list[OrgBreakdownItem]:
    """Return the organizations with the most identifications in the period."""
    items, _total = organization_breakdown(
        partner, period, sort="identifications", order="desc", page=1, page_size=limit
    )
    return [i for i in items if i.identifications > 0]


def organizations_over_allocation(partner: Partner) -> list[OverAllocation]:
    """Return live organizations at the warn or over level of their allocation this period
    (levels.usage_level: 80 % or more of it, as shown to 0.1 %).

    Credits used are counted over the current billing period, as in allocation_figures;
    an organization with no allocation that used credits is over it (percentUsed None).
    Canceled organizations are left out: they hold no allocation any more.
    """
    used = _billing_used(partner)
    rows = db.session.execute(
        select(Organization, used.c.used)
        .join(used, used.c.org_id == Organization.id)
        .where(
            Organization.partner_id == partner.id,
            Organization.status != "canceled",
            used.c.used > 0,
            # Candidates from a point under the threshold: the level decides on the
            # percent as shown (79.96 % shows as 80.0 %).
            used.c.used * 100 >= Organization.credits_allocated * (WARN_AT - 1),
        )
    ).all()
    items = []
    for org, raw_used in rows:
        spent = _int(raw_used)
        allocated = org.credits_allocated
        percent = usage_percent(spent, allocated)
        if percent is not None and usage_level(percent) == "ok":
            continue
        items.append(
            OverAllocation(
                **_identity(org),
                credits_allocated=allocated,
                credits_used=spent,
                credits_available=allocated - spent,
                percent_used=percent,
            )
        )
    # No allocation at all first, then the most overdrawn.
    items.sort(key=lambda i: (i.percent_used is not None, -(i.percent_used or 0), i.name))
    return items


# --- pool and freshness ----------------------------------------------------------------


def pool_status(partner: Partner) -> PoolStatus:
    """Return the credit pool now: total, used this billing period, available, allocated."""
    bp = current_billing_period(partner)
    today = local_today(partner.timezone)
    used = credits_used(partner, Period(bp.start, today))
    allocated = _int(
        db.session.execute(
            select(func.sum(Organization.credits_allocated)).where(
                Organization.partner_id == partner.id, Organization.status != "canceled"
            )
        ).scalar()
    )
    pool = terms_for(partner, bp.start).credit_pool_total
    return PoolStatus(
        billing_period_start=bp.start,
        billing_period_end=bp.end,
        credit_pool_total=pool,
        credit_pool_used=used,
        credit_pool_available=pool - used,
        credit_pool_allocated=allocated,
    )


def data_freshness(partner: Partner) -> datetime | None:
    """Return when the newest event was received (naive UTC), or None.

    Kept in partner_data_version by every write that stores events (app/rollups.py).
    """
    return db.session.execute(
        select(PartnerDataVersion.last_received_at).where(
            PartnerDataVersion.partner_id == partner.id
        )
    ).scalar()


def first_activity_day(partner: Partner) -> date | None:
    """Return the first local day with any usage, or None."""
    value = db.session.execute(
        select(func.min(PartnerDailyUsage.day)).where(PartnerDailyUsage.partner_id == partner.id)
    ).scalar()
    return as_date(value) if value is not None else None


def daily_credits(partner: Partner, period: Period) -> list[tuple[date, int]]:
    """Return (day, credits used) for every day of the period, zeros included."""
    pdu = PartnerDailyUsage
    used = {
        as_date(day): _int(quantity)
        for day, quantity in db.session.execute(
            select(pdu.day, func.sum(pdu.quantity))
            .where(
                pdu.partner_id == partner.id,
                pdu.type == IDENTIFICATION,
                pdu.day >= period.start,
                pdu.day <= period.end,
            )
            .group_by(pdu.day)
        )
    }
    return [(b.start, used.get(b.start, 0)) for b in buckets(period, "day")]


def cumulative_credits(partner: Partner, period: Period) -> list[CreditPoint]:
    """Return, for every day of the period, the credits used so far in its billing period.

    The count restarts on each billing period's first day (the pool does not roll over);
    a period that starts inside a billing period begins with what that billing period had
    already used, so the last point's credits_remaining equals summary()'s.
    """
    billing = billing_period(partner, period.start)
    pool = terms_for(partner, billing.start).credit_pool_total
    total = 0
    if billing.start < period.start:
        total = credits_used(partner, Period(billing.start, period.start - timedelta(days=1)))
    points = []
    for day, used in daily_credits(partner, period):
        if day > billing.end:
            billing = billing_period(partner, day)
            pool = terms_for(partner, billing.start).credit_pool_total
            total = 0
        total += used
        points.append(
            CreditPoint(
                date=day,
                credits_used=used,
                cumulative_credits_used=total,
                billing_period_start=billing.start,
                credit_pool_total=pool,
                credits_remaining=pool - total,
            )
        )
    return points
