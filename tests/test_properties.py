"""Properties: parts add up to the whole, and rollups always agree with a raw recount."""

import itertools
from collections import defaultdict
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import accounts, ingest, metrics, rollups
from app.metrics import TypeUsage
from app.models import IDENTIFICATION
from app.periods import Period
from app.timeutil import set_frozen_now

NOW = datetime(2026, 2, 1, 12)  # after every generated event
YEAR_START = date(2025, 1, 1)
TIMEZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kathmandu"]
TYPES = [IDENTIFICATION, "page_view", "session"]
# How an instant is written: the same moment with one of these UTC offsets (minutes).
OFFSETS = [0, 345, -210, 840, -600]
ADDITIVE = ("total_identifications", "credits_used", "total_quantity", "total_events")
_slugs = itertools.count()

PROFILE = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

event_st = st.fixed_dictionaries(
    {
        "id": st.integers(0, 12),  # a small pool: repeats are common
        "org": st.integers(0, 2),
        "type": st.sampled_from(TYPES),
        "quantity": st.one_of(st.integers(0, 1000), st.just(-1)),  # -1 is rejected
        # Minutes into 2025 (plus a little of the neighbouring years in local time).
        "minute": st.integers(-24 * 60, 366 * 24 * 60),
        "offset": st.sampled_from(OFFSETS),
    }
)


def moment(ev):
    """Return the event's instant as naive UTC."""
    return datetime(2025, 1, 1) + timedelta(minutes=ev["minute"])


def occurred_text(ev):
    """Write the instant with the event's UTC offset, e.g. 2025-03-01T05:45:00+05:45."""
    off = timedelta(minutes=ev["offset"])
    local = moment(ev).replace(tzinfo=UTC).astimezone(timezone(off))
    return local.isoformat()


def raw(ev, orgs):
    return {
        "eventId": f"ev-{ev['id']}",
        "organizationId": orgs[ev["org"]].id,
        "type": ev["type"],
        "quantity": ev["quantity"],
        "occurredAt": occurred_text(ev),
    }


def new_partner(tz):
    set_frozen_now(NOW)
    partner = accounts.create_partner("P", f"prop-{next(_slugs)}", 10**9, 1, "monthly", tz)
    orgs = [
        accounts.create_organization(partner, f"O{i}", created_at=datetime(2024, 1, 1))
        for i in range(3)
    ]
    return partner, orgs


def recount(batches, tz):
    """Count by local day the way the spec defines it, in plain Python.

    The first valid occurrence of an eventId is the one stored; any later one with the
    same id is a duplicate and changes nothing.
    """
    stored = {}
    for batch in batches:
        for ev in batch:
            if ev["quantity"] < 0:
                continue  # rejected
            stored.setdefault(ev["id"], ev)
    days = defaultdict(lambda: {t: [0, 0] for t in TYPES})
    orgs_by_day = defaultdict(set)
    for ev in stored.values():
        day = moment(ev).replace(tzinfo=UTC).astimezone(ZoneInfo(tz)).date()
        days[day][ev["type"]][0] += ev["quantity"]
        days[day][ev["type"]][1] += 1
        orgs_by_day[day].add(ev["org"])
    return stored, days, orgs_by_day


def expected(days, orgs_by_day, period):
    inside = [d for d in days if period.start <= d <= period.end]
    ident = sum(days[d][IDENTIFICATION][0] for d in inside)
    return {
        "total_identifications": ident,
        "credits_used": ident,
        "total_quantity": sum(days[d][t][0] for d in inside for t in TYPES),
        "total_events": sum(days[d][t][1] for d in inside for t in TYPES),
        "organizations_with_activity": len(set().union(*(orgs_by_day[d] for d in inside))),
    }


@PROFILE
@given(
    tz=st.sampled_from(TIMEZONES),
    events=st.lists(event_st, max_size=60),
    span=st.tuples(st.integers(-2, 367), st.integers(-2, 367)),
    cuts=st.lists(st.integers(1, 370), max_size=6),
)
def test_parts_add_up_to_the_whole(app_ctx, tz, events, span, cuts):
    partner, orgs = new_partner(tz)
    ingest.ingest_batch(partner, list(enumerate(raw(e, orgs) for e in events)))
    lo, hi = sorted(span)
    whole = Period(YEAR_START + timedelta(days=lo), YEAR_START + timedelta(days=hi))
    # Split the whole at random days into consecutive, non-empty parts.
    inner = sorted(
        {
            whole.start + timedelta(days=c)
            for c in cuts
            if whole.start + timedelta(days=c) <= whole.end
        }
    )
    starts = [whole.start] + [d for d in inner if d > whole.start]
    parts = [
        Period(s, (starts[i + 1] - timedelta(days=1)) if i + 1 < len(starts) else whole.end)
        for i, s in enumerate(starts)
    ]
    assert parts[0].start == whole.start and parts[-1].end == whole.end
    assert sum(p.days for p in parts) == whole.days

    total = metrics.summary(partner, whole)
    pieces = [metrics.summary(partner, p) for p in parts]
    for name in ADDITIVE:
        assert sum(getattr(piece, name) for piece in pieces) == getattr(total, name), name
    # ...and the whole (and everything) equals the independent recount.
    _stored, days, orgs_by_day = recount([events], tz)
    for some in (whole, Period(date(2024, 12, 1), date(2026, 1, 31))):
        want = expected(days, orgs_by_day, some)
        got = metrics.summary(partner, some)
        assert {k: getattr(got, k) for k in want} == want
    # The time series splits the whole into buckets that add up too.
    for granularity in ("day", "week", "month"):
        points = metrics.timeseries(partner, whole, granularity)
        assert sum(p.identifications for p in points) == total.total_identifications
        assert sum(p.quantity for p in points) == total.total_quantity
        assert sum(p.events for p in points) == total.total_events


@PROFILE
@given(
    tz=st.sampled_from(TIMEZONES),
    pool=st.lists(event_st, min_size=1, max_size=40),
    plan=st.lists(
        st.tuples(st.integers(0, 39), st.integers(0, 39), st.booleans()), min_size=1, max_size=6
    ),
    check=st.tuples(st.integers(-2, 367), st.integers(-2, 367)),
)
def test_rollups_agree_with_a_raw_recount_after_any_ingests(app_ctx, tz, pool, plan, check):
    partner, orgs = new_partner(tz)
    # Each batch is a slice of the pool: slices overlap and repeat each other. An altered
    # batch resends the same eventIds with other content (quantity + 7, the next org, a
    # day later): whatever arrived first stays.
    batches = []
    for a, b, altered in plan:
        batch = pool[min(a, b) : max(a, b) + 1]
        if altered:
            batch = [
                dict(
                    e,
                    quantity=e["quantity"] + 7 if e["quantity"] >= 0 else -1,
                    org=(e["org"] + 1) % 3,
                    minute=e["minute"] + 24 * 60,
                )
                for e in batch
            ]
        batches.append(batch)
    accepted = duplicates = rejected = 0
    for batch in batches:
        result = ingest.ingest_batch(partner, list(enumerate(raw(e, orgs) for e in batch)))
        accepted += result.accepted
        duplicates += result.duplicates
        rejected += len(result.rejected)
        assert rollups.verify(partner.id) == []
    stored, days, orgs_by_day = recount(batches, tz)
    assert accepted == len(stored)
    assert rejected == sum(1 for b in batches for e in b if e["quantity"] < 0)
    assert accepted + duplicates + rejected == sum(len(b) for b in batches)

    everything = Period(date(2024, 12, 1), date(2026, 1, 31))
    lo, hi = sorted(check)
    period = Period(YEAR_START + timedelta(days=lo), YEAR_START + timedelta(days=hi))
    for some in (everything, period):
        got = metrics.summary(partner, some)
        assert {
            k: getattr(got, k) for k in ADDITIVE + ("organizations_with_activity",)
        } == expected(days, orgs_by_day, some)
    by_type = metrics.usage(partner, period).by_type
    for etype in TYPES:
        q = sum(days[d][etype][0] for d in days if d in period)
        n = sum(days[d][etype][1] for d in days if d in period)
        assert by_type.get(etype, TypeUsage(0, 0)) == (TypeUsage(q, n) if n else TypeUsage(0, 0))
    # Rebuilding from the raw events changes no figure.
    rollups.rebuild(partner.id)
    assert metrics.summary(partner, period) == got
    assert rollups.verify(partner.id) == []


# Events packed into the first 100 days of 2025, so that every whole month, whole week
# and leftover day range of a period there is likely to hold some.
dense_event_st = event_st.filter(lambda e: e["quantity"] >= 0).map(
    lambda e: dict(e, minute=e["minute"] % (104 * 24 * 60) - 2 * 24 * 60)
)


@settings(PROFILE, max_examples=80)
@given(
    tz=st.sampled_from(TIMEZONES),
    events=st.lists(dense_event_st, min_size=5, max_size=80),
    span=st.tuples(st.integers(-2, 100), st.integers(-2, 100)),
    granularity=st.sampled_from(["day", "week", "month"]),
)
def test_per_organization_and_per_bucket_figures_agree_with_a_raw_recount(
    app_ctx, tz, events, span, granularity
):
    """Whole weeks and months come from org_bucket_usage, the rest from the daily rollup:
    per organization and per bucket, the figures still equal a recount of the events."""
    partner, orgs = new_partner(tz)
    ingest.ingest_batch(partner, list(enumerate(raw(e, orgs) for e in events)))
    lo, hi = sorted(span)
    period = Period(YEAR_START + timedelta(days=lo), YEAR_START + timedelta(days=hi))
    stored, _days, _orgs_by_day = recount([events], tz)

    def local_day(ev):
        return moment(ev).replace(tzinfo=UTC).astimezone(ZoneInfo(tz)).date()

    def clipped_bucket(day):
        if granularity == "week":
            day -= timedelta(days=day.weekday())
        elif granularity == "month":
            day = day.replace(day=1)
        return max(day, period.start)

    want = {
        o.id: {"identifications": 0, "credits_used": 0, "events": 0, "quantity": 0} for o in orgs
    }
    active = defaultdict(set)
    for ev in stored.values():
        day = local_day(ev)
        if not period.start <= day <= period.end:
            continue
        figures = want[orgs[ev["org"]].id]
        figures["events"] += 1
        figures["quantity"] += ev["quantity"]
        if ev["type"] == IDENTIFICATION:
            figures["identifications"] += ev["quantity"]
            figures["credits_used"] += ev["quantity"]
        active[clipped_bucket(day)].add(ev["org"])

    items, total = metrics.organization_breakdown(partner, period, page_size=10)
    assert total == len(orgs)
    assert {i.organization_id: {k: getattr(i, k) for k in want[orgs[0].id]} for i in items} == want
    assert {
        org_id: asdict(figures)
        for org_id, figures in metrics.organization_figures(
            partner, period, [o.id for o in orgs]
        ).items()
    } == want
    points = metrics.timeseries(partner, period, granularity)
    assert {
        p.date: p.organizations_with_activity for p in points if p.organizations_with_activity
    } == {day: len(orgs_there) for day, orgs_there in active.items()}
    one = orgs[0]
    assert {
        p.date: p.organizations_with_activity
        for p in metrics.timeseries(partner, period, granularity, organization_id=one.id)
        if p.organizations_with_activity
    } == {day: 1 for day, orgs_there in active.items() if 0 in orgs_there}


def test_clipped_first_and_last_buckets_count_organizations_on_their_end_days(app_ctx):
    """Organizations active only on a period's first or last day count in the clipped
    buckets there (read from the daily rollup, whole buckets from org_bucket_usage)."""
    partner, orgs = new_partner("UTC")
    a, b, c = orgs
    ingest.ingest_batch(
        partner,
        list(
            enumerate(
                [
                    {
                        "eventId": "a",
                        "organizationId": a.id,
                        "type": "session",
                        "quantity": 1,
                        "occurredAt": "2025-01-03T10:00:00Z",
                    },  # Friday, the period's first day
                    {
                        "eventId": "b",
                        "organizationId": b.id,
                        "type": "session",
                        "quantity": 1,
                        "occurredAt": "2025-01-31T10:00:00Z",
                    },
                    {
                        "eventId": "c",
                        "organizationId": c.id,
                        "type": "session",
                        "quantity": 1,
                        "occurredAt": "2025-02-27T10:00:00Z",
                    },  # Thursday, the period's last day
                    {
                        "eventId": "d",
                        "organizationId": a.id,
                        "type": "session",
                        "quantity": 1,
                        "occurredAt": "2025-01-14T10:00:00Z",
                    },  # inside the whole week of 13 January
                ]
            )
        ),
    )
    period = Period(date(2025, 1, 3), date(2025, 2, 27))

    def active(granularity):
        return {
            p.date.isoformat(): p.organizations_with_activity
            for p in metrics.timeseries(partner, period, granularity)
            if p.organizations_with_activity
        }

    assert active("week") == {"2025-01-03": 1, "2025-01-13": 1, "2025-01-27": 1, "2025-02-24": 1}
    assert active("month") == {"2025-01-03": 2, "2025-02-01": 1}
