"""Rollup upkeep: add stored events to the six rollups, rebuild them from the raw events,
verify them against a recount, and re-bucket a partner's history on a timezone change.

Every figure the product shows is read from these rollups (app/metrics.py); this module
is the only one that writes them, which is why adding, rebuilding and verifying stay
together.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import case, delete, func, insert, literal, or_, select, update

from . import audit, cache
from .database import add_counts, bucket_start_sql, dialect_name, partner_transaction, raw_cursor
from .extensions import db
from .models import (
    ACTIVITY_BITS,
    IDENTIFICATION,
    Organization,
    OrganizationStatusChange,
    OrgBucketUsage,
    OrgDailyUsage,
    Partner,
    PartnerActivity,
    PartnerBucketUsage,
    PartnerDailyReceipt,
    PartnerDailyUsage,
    UsageEvent,
)
from .periods import (
    ACTIVITY_GRAINS,
    ROLLUP_GRAINS,
    as_date,
    bucket_start,
    day_end_utc,
    day_start_utc,
    local_date_function,
    zone,
)

# org_bucket_usage's columns: its key (partner, grain, bucket start, organization), then
# the counts added up.
_BUCKET_COLUMNS = (
    "partner_id",
    "grain",
    "bucket_start",
    "organization_id",
    "identifications",
    "quantity",
    "events",
)
# (organization, local day, type, received at) -> [quantity, events] of stored events.
Sums = dict[tuple[str, Any, str, datetime], list[int]]


def bucket_sums(
    daily: Mapping[tuple[str, Any, str], Sequence[int]],
) -> dict[tuple[str, date, str], list[int]]:
    """Sum {(organization, day, type): [quantity, events]} into the week and month buckets
    of org_bucket_usage: {(grain, bucket start, organization): [identifications,
    quantity, events]} (its key order, so that sorted keys are the order of its B-tree)."""
    out: dict[tuple[str, date, str], list[int]] = {}
    starts: dict[Any, tuple[date, ...]] = {}
    for (org_id, day, etype), (quantity, events) in daily.items():
        found = starts.get(day)
        if found is None:
            found = starts[day] = tuple(bucket_start(as_date(day), g) for g in ROLLUP_GRAINS)
        identifications = quantity if etype == IDENTIFICATION else 0
        for grain, start in zip(ROLLUP_GRAINS, found, strict=True):
            key = (grain, start, org_id)
            counts = out.get(key)
            if counts is None:
                out[key] = [identifications, quantity, events]
            else:
                counts[0] += identifications
                counts[1] += quantity
                counts[2] += events
    return out


# partner_bucket_usage's columns: its key (partner, grain, bucket start, type), then counts.
_PARTNER_BUCKET_COLUMNS = ("partner_id", "grain", "bucket_start", "type", "quantity", "events")


def partner_bucket_sums(
    daily: Mapping[tuple[Any, str], Sequence[int]],
) -> dict[tuple[str, date, str], list[int]]:
    """Sum {(day, type): [quantity, events]} into the week and month buckets of
    partner_bucket_usage: {(grain, bucket start, type): [quantity, events]}."""
    out: dict[tuple[str, date, str], list[int]] = {}
    for (day, etype), (quantity, events) in daily.items():
        for grain in ROLLUP_GRAINS:
            add_count(out, (grain, bucket_start(as_date(day), grain), etype), quantity, events)
    return out


def add_count(counts: dict[Any, list[int]], key: Any, quantity: int, events: int) -> None:
    """Add quantity and events to counts[key], starting it at zero."""
    found = counts.get(key)
    if found is None:
        counts[key] = [quantity, events]
    else:
        found[0] += quantity
        found[1] += events


# The five summed rollups' rows for one batch (rollup_rows), each list in its table's key
# order, and the newest receipt time among them. (partner_activity's bits need each
# organization's number from the database: add() sets them from the first list.)
Rows = list[tuple[Any, ...]]
RollupRows = tuple[Rows, Rows, Rows, Rows, Rows, datetime]


def rollup_rows(partner_id: str, sums: Sums, tz: str) -> RollupRows:
    """Return what add writes for sums (by sum_rows): the rows of org_daily_usage,
    org_bucket_usage, partner_daily_usage, partner_bucket_usage and partner_daily_receipt,
    and the newest receipt time. Needs no database, so the file import's reader process
    prepares them."""
    org_counts: dict[tuple[str, Any, str], list[int]] = {}
    partner_counts: dict[tuple[Any, str], list[int]] = {}
    receipt_counts: dict[tuple[Any, Any, str], list[int]] = {}
    received_days: dict[datetime, date] = {}
    tzinfo = zone(tz)
    # add_count inlined: this loop runs once per distinct key of every stored batch.
    for (org_id, day, etype, moment), (quantity, events) in sums.items():
        received = received_days.get(moment)  # rows of one call share their received_at
        if received is None:
            received = received_days[moment] = moment.replace(tzinfo=UTC).astimezone(tzinfo).date()
        key = (org_id, day, etype)
        found = org_counts.get(key)
        if found is None:
            org_counts[key] = [quantity, events]
        else:
            found[0] += quantity
            found[1] += events
        found = partner_counts.get((day, etype))
        if found is None:
            partner_counts[(day, etype)] = [quantity, events]
        else:
            found[0] += quantity
            found[1] += events
        found = receipt_counts.get((day, received, etype))
        if found is None:
            receipt_counts[(day, received, etype)] = [quantity, events]
        else:
            found[0] += quantity
            found[1] += events
    iso: dict[Any, str] = {}
    for day in {key[1] for key in org_counts}.union(received_days.values()):
        iso[day] = as_date(day).isoformat()  # dates go to the raw cursors as ISO text
    buckets = bucket_sums(org_counts)
    starts = {start: start.isoformat() for _grain, start, _org in buckets}
    return (
        [(o, iso[d], t, partner_id, q, n) for (o, d, t), (q, n) in sorted(org_counts.items())],
        [
            (partner_id, g, starts[b], o, i, q, n)
            for (g, b, o), (i, q, n) in sorted(buckets.items())
        ],
        [(partner_id, iso[d], t, q, n) for (d, t), (q, n) in sorted(partner_counts.items())],
        [
            (partner_id, g, b.isoformat(), t, q, n)
            for (g, b, t), (q, n) in sorted(partner_bucket_sums(partner_counts).items())
        ],
        [
            (partner_id, iso[d], iso[r], t, q, n)
            for (d, r, t), (q, n) in sorted(receipt_counts.items())
        ],
        max(received_days),
    )


# How many counts end each list of RollupRows (org_bucket_usage's rows carry three).
_COUNT_WIDTHS = (2, 3, 2, 2, 2)


def subtract_rows(rows: RollupRows, less: RollupRows) -> RollupRows:
    """Return rows (by rollup_rows) with the counts of less (rollup_rows of some of the
    same sums) taken out, leaving out the rows left with no events: the rows of a batch
    without those of its events the database already held. The newest receipt stays."""
    out: list[Rows] = []
    for table, minus, width in zip(rows[:5], less[:5], _COUNT_WIDTHS, strict=True):
        take = {row[:-width]: row[-width:] for row in minus}
        if not take:
            out.append(table)
            continue
        kept: Rows = []
        for row in table:
            found = take.get(row[:-width])
            if found is None:
                kept.append(row)
                continue
            counts = tuple(a - b for a, b in zip(row[-width:], found, strict=True))
            if counts[-1]:
                kept.append(row[:-width] + counts)
        out.append(kept)
    return (out[0], out[1], out[2], out[3], out[4], rows[5])


def add(partner_id: str, sums: Sums, tz: str, rows: RollupRows | None = None) -> None:
    """Add newly stored events, summed by sum_rows, to the six rollups; bump the data
    version (caller's transaction). rows, when given, is rollup_rows of the same sums."""
    org_rows, bucket_rows, partner_rows, partner_bucket_rows, receipt_rows, newest = (
        rows or rollup_rows(partner_id, sums, tz)
    )
    add_counts(
        OrgDailyUsage.__table__,
        ("organization_id", "day", "type", "partner_id", "quantity", "events"),
        3,
        org_rows,
    )
    add_counts(
        OrgBucketUsage.__table__,
        _BUCKET_COLUMNS,
        4,
        bucket_rows,
        added=("identifications", "quantity", "events"),
    )
    add_counts(
        PartnerDailyUsage.__table__,
        ("partner_id", "day", "type", "quantity", "events"),
        3,
        partner_rows,
    )
    add_counts(PartnerBucketUsage.__table__, _PARTNER_BUCKET_COLUMNS, 4, partner_bucket_rows)
    add_counts(
        PartnerDailyReceipt.__table__,
        ("partner_id", "day", "received_day", "type", "quantity", "events"),
        4,
        receipt_rows,
    )
    add_activity(partner_id, (row[:3] for row in org_rows))
    # Late events change closed days: invalidate the partner's cached closed periods, and
    # move the partner's newest receipt time forward (the dashboard's "data as of").
    cache.bump(partner_id, received_at=newest)


# partner_activity's columns: its key (partner, grain, start, chunk), then the bitmap.
_ACTIVITY_COLUMNS = ("partner_id", "grain", "start", "chunk", "organizations")


def activity_bits(
    pairs: Iterable[tuple[int, Any]],
) -> dict[tuple[str, date, int], int]:
    """Return partner_activity's bitmaps {(grain, start, chunk): bits} of (organization
    seq, local day) pairs: the bit of every organization active on a day is set in the
    row of that day and in those of its week and month."""
    out: dict[tuple[str, date, int], int] = {}
    starts: dict[Any, tuple[date, ...]] = {}
    for seq, day in pairs:
        found = starts.get(day)
        if found is None:
            found = starts[day] = tuple(bucket_start(as_date(day), g) for g in ACTIVITY_GRAINS)
        chunk, bit = divmod(seq, ACTIVITY_BITS)
        for grain, start in zip(ACTIVITY_GRAINS, found, strict=True):
            key = (grain, start, chunk)
            out[key] = out.get(key, 0) | (1 << bit)
    return out


def add_activity(partner_id: str, org_days: Iterable[tuple[str, Any, str]]) -> None:
    """Set the bits of partner_activity for newly stored events (caller's transaction).

    org_days are org_daily_usage keys (organization, local day, type) of the new events.
    One upsert that ORs the bits into any existing row: concurrent ingests need no read.
    """
    days_of: dict[str, set[Any]] = defaultdict(set)
    for org_id, day, _etype in org_days:
        days_of[org_id].add(day)
    if not days_of:
        return
    seqs = dict(
        db.session.execute(
            select(Organization.id, Organization.seq).where(
                Organization.partner_id == partner_id, Organization.id.in_(list(days_of))
            )
        ).all()
    )
    bits = activity_bits(
        (seqs[org_id], day) for org_id, days in days_of.items() for day in days if org_id in seqs
    )
    add_counts(
        PartnerActivity.__table__,
        _ACTIVITY_COLUMNS,
        4,
        [(partner_id, g, s.isoformat(), c, b) for (g, s, c), b in sorted(bits.items())],
        added=("organizations",),
        combine="|",
    )


def rebuild(partner_id: str) -> int:
    """Recompute one partner's rollups from its raw events; return how many events had a
    stale local day (re-bucketed first, with the partner's timezone).

    One transaction under the partner's exclusive lock: ingestion waits (or answers 503
    after LOCK_TIMEOUT), so no event is lost or counted twice, and a failure changes
    nothing.
    """
    with partner_transaction(partner_id, exclusive=True) as tz:
        moved = rebucket_events(partner_id, tz)
        _rebuild_tables(partner_id, tz)
        audit.record(
            partner_id, "rollups", "rebuild", object_id=partner_id, after={"eventsMoved": moved}
        )
    return moved


def set_timezone(partner: Partner, tz: str) -> int:
    """Change a partner's reporting timezone, re-bucketing its events and rollups; return
    how many events changed day.

    The new timezone, the re-bucketed events and the rebuilt rollups commit together
    under the partner's exclusive lock, or nothing changes.
    """
    zone(tz)  # raises ValueError for an unknown name
    with partner_transaction(partner.id, exclusive=True) as before:
        db.session.execute(
            update(Partner)
            .where(Partner.id == partner.id)
            .values(timezone=tz)
            .execution_options(partner_scoped=True, synchronize_session=False)
        )
        moved = rebucket_events(partner.id, tz)
        _rebuild_tables(partner.id, tz)
        audit.record(
            partner.id,
            "partner",
            "set_timezone",
            object_id=partner.id,
            label=partner.name,
            before={"timezone": before},
            after={"timezone": tz, "eventsMoved": moved},
        )
    db.session.expire(partner)
    return moved


def timezone_change_preview(partner_id: str, tz: str) -> int:
    """Return how many of a partner's events a change to timezone tz would move to another
    day (set_timezone's count, read without changing anything or taking the lock)."""
    zone(tz)
    return rebucket_events(partner_id, tz, write=False)


def stored_events(partner_id: str) -> int:
    """Return how many events a partner has stored (from its daily rollup: no event scan)."""
    value = db.session.execute(
        select(func.sum(PartnerDailyUsage.events)).where(PartnerDailyUsage.partner_id == partner_id)
    ).scalar()
    return int(value or 0)


# Events read and re-bucketed per round trip.
_REBUCKET_CHUNK = 50_000


def rebucket_events(partner_id: str, tz: str, *, write: bool = True) -> int:
    """Set every event's local_date to its occurredAt's day in tz; return how many moved.

    Caller's transaction (which holds the partner's exclusive lock). Reads the events in
    id order, a chunk at a time, and writes only those whose day changes; with write=False
    it only counts them.
    """
    local_date = local_date_function(tz)
    postgres = dialect_name() == "postgresql"
    moved = 0
    last_id = 0
    with raw_cursor() as cursor:
        while True:
            if postgres:
                cursor.execute(
                    "SELECT id, occurred_at, local_date FROM usage_event "
                    "WHERE partner_id = %s AND id > %s ORDER BY id LIMIT %s",
                    (partner_id, last_id, _REBUCKET_CHUNK),
                )
            else:
                cursor.execute(
                    "SELECT id, occurred_at, local_date FROM usage_event "
                    "WHERE partner_id = ? AND id > ? ORDER BY id LIMIT ?",
                    (partner_id, last_id, _REBUCKET_CHUNK),
                )
            chunk = cursor.fetchall()
            if not chunk:
                return moved
            last_id = chunk[-1][0]
            if postgres:
                changes = [
                    (event_id, day)
                    for event_id, at, stored in chunk
                    if (day := local_date(at)) != stored
                ]
                if changes and write:
                    cursor.execute(
                        "UPDATE usage_event SET local_date = v.day FROM "
                        "unnest(%s::bigint[], %s::date[]) AS v(id, day) "
                        "WHERE usage_event.id = v.id",
                        ([c[0] for c in changes], [c[1] for c in changes]),
                    )
            else:
                # SQLite hands back the stored text; the app writes ISO dates.
                changes = [
                    (text, event_id)
                    for event_id, at, stored in chunk
                    if (text := local_date(_sqlite_moment(at)).isoformat()) != stored
                ]
                if changes and write:
                    cursor.executemany(
                        "UPDATE usage_event SET local_date = ? WHERE id = ?", changes
                    )
            moved += len(changes)


def _sqlite_moment(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _rebuild_tables(partner_id: str, tz: str) -> None:
    """Refill the six rollups of a partner whose timezone is tz from its raw events, and
    its organizations' latest status from their history (caller's transaction, under the
    partner's exclusive lock); bump its data version."""
    scoped = {"partner_scoped": True}
    db.session.execute(
        delete(OrgDailyUsage)
        .where(OrgDailyUsage.partner_id == partner_id)
        .execution_options(**scoped)
    )
    db.session.execute(
        delete(PartnerDailyUsage)
        .where(PartnerDailyUsage.partner_id == partner_id)
        .execution_options(**scoped)
    )
    ev = UsageEvent
    org_rows = (
        select(
            ev.organization_id,
            ev.local_date,
            ev.type,
            ev.partner_id,
            func.sum(ev.quantity),
            func.count(),
        )
        .where(ev.partner_id == partner_id)
        .group_by(ev.organization_id, ev.local_date, ev.type, ev.partner_id)
    )
    db.session.execute(
        insert(OrgDailyUsage)
        .from_select(
            ["organization_id", "day", "type", "partner_id", "quantity", "events"], org_rows
        )
        .execution_options(**scoped)
    )
    odu = OrgDailyUsage
    partner_rows = (
        select(odu.partner_id, odu.day, odu.type, func.sum(odu.quantity), func.sum(odu.events))
        .where(odu.partner_id == partner_id)
        .group_by(odu.partner_id, odu.day, odu.type)
    )
    db.session.execute(
        insert(PartnerDailyUsage)
        .from_select(["partner_id", "day", "type", "quantity", "events"], partner_rows)
        .execution_options(**scoped)
    )
    _rebuild_buckets(partner_id)
    _rebuild_partner_buckets(partner_id)
    _rebuild_activity(partner_id)
    _rebuild_latest_status(partner_id)
    _rebuild_receipts(partner_id, tz)
    # Last, so the partner's version row is locked only for the end of the transaction.
    cache.bump(partner_id)


def _rebuild_buckets(partner_id: str) -> None:
    """Refill a partner's org_bucket_usage from its org_daily_usage (caller's transaction)."""
    db.session.execute(
        delete(OrgBucketUsage)
        .where(OrgBucketUsage.partner_id == partner_id)
        .execution_options(partner_scoped=True)
    )
    odu = OrgDailyUsage
    identifications = func.sum(case((odu.type == IDENTIFICATION, odu.quantity), else_=0))
    for grain in ROLLUP_GRAINS:
        start = bucket_start_sql(odu.day, grain)
        db.session.execute(
            insert(OrgBucketUsage)
            .from_select(
                list(_BUCKET_COLUMNS),
                select(
                    odu.partner_id,
                    literal(grain),
                    start,
                    odu.organization_id,
                    identifications,
                    func.sum(odu.quantity),
                    func.sum(odu.events),
                )
                .where(odu.partner_id == partner_id)
                .group_by(odu.partner_id, start, odu.organization_id),
            )
            .execution_options(partner_scoped=True)
        )


def _activity_pairs(partner_id: str) -> list[tuple[int, Any]]:
    """Return the (organization seq, local day) pairs with any stored usage, from
    org_daily_usage."""
    odu = OrgDailyUsage
    return [
        (int(seq), as_date(day))
        for seq, day in db.session.execute(
            select(Organization.seq, odu.day)
            .distinct()
            .join(Organization, Organization.id == odu.organization_id)
            .where(odu.partner_id == partner_id)
        )
    ]


def _rebuild_partner_buckets(partner_id: str) -> None:
    """Refill a partner's partner_bucket_usage from its partner_daily_usage."""
    db.session.execute(
        delete(PartnerBucketUsage)
        .where(PartnerBucketUsage.partner_id == partner_id)
        .execution_options(partner_scoped=True)
    )
    pdu = PartnerDailyUsage
    for grain in ROLLUP_GRAINS:
        start = bucket_start_sql(pdu.day, grain)
        db.session.execute(
            insert(PartnerBucketUsage)
            .from_select(
                list(_PARTNER_BUCKET_COLUMNS),
                select(
                    pdu.partner_id,
                    literal(grain),
                    start,
                    pdu.type,
                    func.sum(pdu.quantity),
                    func.sum(pdu.events),
                )
                .where(pdu.partner_id == partner_id)
                .group_by(pdu.partner_id, start, pdu.type),
            )
            .execution_options(partner_scoped=True)
        )


def _verify_partner_buckets(
    partner_id: str, by_day: Mapping[tuple[Any, str], Sequence[int]]
) -> list[str]:
    """Compare partner_bucket_usage with the raw events' recount by week and month."""
    want = {key: tuple(value) for key, value in partner_bucket_sums(by_day).items()}
    pbu = PartnerBucketUsage
    stored = {
        (r[0], as_date(r[1]), r[2]): (int(r[3]), int(r[4]))
        for r in db.session.execute(
            select(pbu.grain, pbu.bucket_start, pbu.type, pbu.quantity, pbu.events).where(
                pbu.partner_id == partner_id
            )
        )
    }
    return _mismatches(want, stored, lambda key: f"partner total {key[0]} of {key[1]} {key[2]}")


def _rebuild_activity(partner_id: str) -> None:
    """Refill a partner's partner_activity from its org_daily_usage (caller's transaction)."""
    db.session.execute(
        delete(PartnerActivity)
        .where(PartnerActivity.partner_id == partner_id)
        .execution_options(partner_scoped=True)
    )
    rows = [
        {"partner_id": partner_id, "grain": g, "start": s, "chunk": c, "organizations": b}
        for (g, s, c), b in sorted(activity_bits(_activity_pairs(partner_id)).items())
    ]
    if rows:
        db.session.execute(insert(PartnerActivity).execution_options(partner_scoped=True), rows)


def _latest_statuses(partner_id: str) -> dict[str, tuple[str, datetime]]:
    """Return {organization: (status, changed_at)} of the newest entry (by changed_at,
    then id) of each of a partner's organizations' status history."""
    sc = OrganizationStatusChange
    latest: dict[str, tuple[str, datetime]] = {}
    for org_id, status, changed_at in db.session.execute(
        select(sc.organization_id, sc.status, sc.changed_at)
        .where(sc.partner_id == partner_id)
        .order_by(sc.organization_id, sc.changed_at, sc.id)
    ):
        latest[org_id] = (status, changed_at)
    return latest


def _rebuild_latest_status(partner_id: str) -> None:
    """Set the latest_status columns of every organization where they differ from its
    status history (its updatedAt kept: nothing a partner changed)."""
    want = _latest_statuses(partner_id)
    org = Organization
    for org_id, status, changed_at in db.session.execute(
        select(org.id, org.latest_status, org.latest_status_at).where(org.partner_id == partner_id)
    ).all():
        if org_id in want and want[org_id] != (status, changed_at):
            db.session.execute(
                update(org)
                .where(org.id == org_id)
                .values(
                    latest_status=want[org_id][0],
                    latest_status_at=want[org_id][1],
                    updated_at=org.updated_at,
                )
                .execution_options(partner_scoped=True, synchronize_session=False)
            )


def _verify_latest_status(partner_id: str) -> list[str]:
    """Compare each organization's latest_status columns with its status history."""
    want = _latest_statuses(partner_id)
    org = Organization
    problems = []
    for org_id, status, changed_at in db.session.execute(
        select(org.id, org.latest_status, org.latest_status_at)
        .where(org.partner_id == partner_id)
        .order_by(org.id)
    ):
        if want.get(org_id) != (status, changed_at):
            problems.append(
                f"organization {org_id}: its status history ends with {want.get(org_id)}, "
                f"latest_status holds {(status, changed_at)}"
            )
    return problems


def _verify_activity(
    partner_id: str, raw: Mapping[tuple[str, Any, str], Sequence[int]]
) -> list[str]:
    """Compare partner_activity with the raw events' recount of active organizations."""
    seqs = dict(
        db.session.execute(
            select(Organization.id, Organization.seq).where(Organization.partner_id == partner_id)
        ).all()
    )
    want = activity_bits(
        {(seqs[org_id], as_date(day)) for org_id, day, _etype in raw if org_id in seqs}
    )
    pa = PartnerActivity
    stored = {
        (r[0], as_date(r[1]), int(r[2])): int(r[3])
        for r in db.session.execute(
            select(pa.grain, pa.start, pa.chunk, pa.organizations).where(
                pa.partner_id == partner_id
            )
        )
    }
    return _mismatches(
        want,
        stored,
        lambda key: f"active organizations {key[0]} of {key[1]} (chunk {key[2]})",
        empty=0,
        what="bits",
        show=lambda bits: f"{bits:#x}",
    )


def _mismatches(
    want: Mapping[Any, Any],
    stored: Mapping[Any, Any],
    describe: Callable[[Any], str],
    *,
    empty: Any = (0, 0),
    what: str = "quantity/events",
    show: Callable[[Any], str] = str,
) -> list[str]:
    """Return one line per key whose recount (want) differs from the rollup (stored), a
    missing key counting as empty: "<describe(key)>: raw events give <what> ..., rollup
    holds ..."."""
    return [
        f"{describe(key)}: raw events give {what} {show(want.get(key, empty))}, "
        f"rollup holds {show(stored.get(key, empty))}"
        for key in sorted(set(want) | set(stored), key=str)
        if want.get(key, empty) != stored.get(key, empty)
    ]


def _counts_by_key(statement: Any) -> dict[tuple[Any, Any, Any], tuple[int, int]]:
    """Return {(a, b, c): (quantity, events)} of a statement selecting those five columns."""
    return {(r[0], r[1], r[2]): (int(r[3]), int(r[4])) for r in db.session.execute(statement)}


def verify(partner_id: str) -> list[str]:
    """Compare one partner's rollups with a recount of its raw events; return mismatches."""
    ev = UsageEvent
    raw = _counts_by_key(
        select(ev.organization_id, ev.local_date, ev.type, func.sum(ev.quantity), func.count())
        .where(ev.partner_id == partner_id)
        .group_by(ev.organization_id, ev.local_date, ev.type)
    )
    odu = OrgDailyUsage
    stored = _counts_by_key(
        select(odu.organization_id, odu.day, odu.type, odu.quantity, odu.events).where(
            odu.partner_id == partner_id
        )
    )
    problems = _mismatches(raw, stored, lambda key: f"organization {key[0]} {key[1]} {key[2]}")
    by_day: dict[tuple[Any, str], list[int]] = defaultdict(lambda: [0, 0])
    for (_org, day, etype), (q, n) in raw.items():
        by_day[(day, etype)][0] += q
        by_day[(day, etype)][1] += n
    pdu = PartnerDailyUsage
    pstored = {
        (r[0], r[1]): (int(r[2]), int(r[3]))
        for r in db.session.execute(
            select(pdu.day, pdu.type, pdu.quantity, pdu.events).where(pdu.partner_id == partner_id)
        )
    }
    problems += _mismatches(
        {key: tuple(value) for key, value in by_day.items()},
        pstored,
        lambda key: f"partner total {key[0]} {key[1]}",
    )
    problems.extend(_verify_partner_buckets(partner_id, by_day))
    tz = db.session.execute(select(Partner.timezone).where(Partner.id == partner_id)).scalar_one()
    problems.extend(_verify_local_dates(partner_id, tz))
    problems.extend(_verify_buckets(partner_id, raw))
    problems.extend(_verify_activity(partner_id, raw))
    problems.extend(_verify_latest_status(partner_id))
    problems.extend(_verify_receipts(partner_id, tz))
    problems.extend(_verify_event_organizations(partner_id))
    return problems


def _verify_buckets(
    partner_id: str, raw: Mapping[tuple[str, Any, str], Sequence[int]]
) -> list[str]:
    """Compare org_bucket_usage with the raw events' recount summed by week and month."""
    want = {key: tuple(value) for key, value in bucket_sums(raw).items()}
    obu = OrgBucketUsage
    stored = {
        (r[0], as_date(r[1]), r[2]): (int(r[3]), int(r[4]), int(r[5]))
        for r in db.session.execute(
            select(
                obu.grain,
                obu.bucket_start,
                obu.organization_id,
                obu.identifications,
                obu.quantity,
                obu.events,
            ).where(obu.partner_id == partner_id)
        )
    }
    return _mismatches(
        want,
        stored,
        lambda key: f"organization {key[2]} {key[0]} of {key[1]}",
        empty=(0, 0, 0),
        what="identifications/quantity/events",
    )


def _verify_local_dates(partner_id: str, tz: str) -> list[str]:
    """Report events whose stored local day is not the day of their occurredAt in the
    partner's timezone (stale: stored with a timezone since replaced).

    An event belongs to local day D exactly when day_start_utc(D) <= occurredAt <
    day_end_utc(D), so the earliest and latest occurredAt stored under each day settle
    every event of that day at once; the stale ones of a failing day are then counted.
    """
    ev = UsageEvent
    days = db.session.execute(
        select(ev.local_date, func.min(ev.occurred_at), func.max(ev.occurred_at))
        .where(ev.partner_id == partner_id)
        .group_by(ev.local_date)
        .order_by(ev.local_date)
    ).all()
    problems = []
    for stored, first, last in days:
        day = as_date(stored)
        start, end = day_start_utc(day, tz), day_end_utc(day, tz)
        if first >= start and last < end:
            continue
        stale = db.session.execute(
            select(func.count())
            .select_from(ev)
            .where(
                ev.partner_id == partner_id,
                ev.local_date == day,
                or_(ev.occurred_at < start, ev.occurred_at >= end),
            )
        ).scalar_one()
        problems.append(
            f"{stale} event(s) stored on {day} did not happen on that day in "
            f"{tz} (a stale local day: `flask rollups rebuild` re-buckets them)"
        )
    return problems


def _verify_event_organizations(partner_id: str) -> list[str]:
    """Report events whose organization is not one of the partner's (usage_event has no
    foreign keys: ingestion checks this before every insert)."""
    ev, org = UsageEvent, Organization
    rows = db.session.execute(
        select(ev.organization_id, func.count())
        .outerjoin(org, (org.id == ev.organization_id) & (org.partner_id == ev.partner_id))
        .where(ev.partner_id == partner_id, org.id.is_(None))
        .group_by(ev.organization_id)
        .order_by(ev.organization_id)
    ).all()
    return [
        f"{count} event(s) name organization {org_id}, which is not this partner's"
        for org_id, count in rows
    ]


def _count_receipts(partner_id: str, tz: str) -> dict[tuple[Any, Any, str], tuple[int, int]]:
    """Recount a partner's raw events by (local day, local day received in tz, type)."""
    tzinfo = zone(tz)
    ev = UsageEvent
    counts: dict[tuple[Any, Any, str], list[int]] = defaultdict(lambda: [0, 0])
    # The received day depends on the timezone, which SQLite cannot apply: group by the
    # exact received_at (one value per ingested batch) and convert each group here.
    rows = db.session.execute(
        select(ev.local_date, ev.received_at, ev.type, func.sum(ev.quantity), func.count())
        .where(ev.partner_id == partner_id)
        .group_by(ev.local_date, ev.received_at, ev.type)
        .execution_options(yield_per=20000)
    )
    for day, received_at, etype, quantity, events in rows:
        key = (day, received_at.replace(tzinfo=UTC).astimezone(tzinfo).date(), etype)
        counts[key][0] += int(quantity or 0)
        counts[key][1] += int(events or 0)
    return {key: (q, n) for key, (q, n) in counts.items()}


def _rebuild_receipts(partner_id: str, tz: str) -> None:
    """Replace a partner's partner_daily_receipt rows with a recount (caller's transaction)."""
    db.session.execute(
        delete(PartnerDailyReceipt)
        .where(PartnerDailyReceipt.partner_id == partner_id)
        .execution_options(partner_scoped=True)
    )
    rows = [
        {
            "partner_id": partner_id,
            "day": d,
            "received_day": r,
            "type": t,
            "quantity": q,
            "events": n,
        }
        for (d, r, t), (q, n) in sorted(_count_receipts(partner_id, tz).items())
    ]
    if rows:
        db.session.execute(insert(PartnerDailyReceipt).execution_options(partner_scoped=True), rows)


def _verify_receipts(partner_id: str, tz: str) -> list[str]:
    """Compare partner_daily_receipt with a recount of the raw events; return mismatches."""
    want = _count_receipts(partner_id, tz)
    pdr = PartnerDailyReceipt
    stored = _counts_by_key(
        select(pdr.day, pdr.received_day, pdr.type, pdr.quantity, pdr.events).where(
            pdr.partner_id == partner_id
        )
    )
    return _mismatches(want, stored, lambda key: f"received {key[1]} for {key[0]} {key[2]}")
