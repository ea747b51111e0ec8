"""Event ingestion shared by the API and the CLI: validation, exactly-once storage, rollups."""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import pickle
import queue
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import IO, Any

from sqlalchemy import case, delete, func, insert, literal, or_, select, update

from . import cache
from .database import (
    PartnerBusy,
    add_counts,
    bucket_start_sql,
    dialect_name,
    partner_transaction,
    raw_cursor,
)
from .extensions import db
from .models import (
    IDENTIFICATION,
    Organization,
    OrgBucketUsage,
    OrgDailyUsage,
    Partner,
    PartnerDailyReceipt,
    PartnerDailyUsage,
    UsageEvent,
)
from .periods import (
    ROLLUP_GRAINS,
    TIMESTAMP_START_RE,
    as_date,
    bucket_start,
    day_end_utc,
    day_start_utc,
    zone,
)
from .timeutil import utcnow

MAX_BATCH = 1000
MAX_QUANTITY = 1_000_000_000
MAX_EVENT_ID_LENGTH = 255
# Patterns are applied with fullmatch: "$" would also match before a final newline.
# {0,63} keeps a type within usage_event.type (String(64)).
TYPE_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
# A quantity written as text: ASCII digits only (no sign, no spaces, no other numerals).
QUANTITY_TEXT_RE = re.compile(r"[0-9]{1,10}")
EARLIEST_EVENT = datetime(2000, 1, 1)
# Senders' clocks drift; an event up to this far ahead of ours is accepted.
FUTURE_TOLERANCE = timedelta(hours=1)
CSV_COLUMNS = ("eventId", "organizationId", "externalId", "type", "quantity", "occurredAt")
CSV_REQUIRED = ("eventId", "type", "occurredAt")


@dataclass
class Rejection:
    """Why one event was not stored: its position (API index or file line) and reason."""

    index: int
    event_id: str | None
    code: str
    message: str
    field: str | None = None

    def as_json(self) -> dict[str, Any]:
        """Return the rejection as the API answers it."""
        out: dict[str, Any] = {
            "index": self.index,
            "eventId": self.event_id,
            "code": self.code,
            "message": self.message,
        }
        if self.field:
            out["field"] = self.field
        return out


@dataclass
class IngestResult:
    """Counts of one ingestion: stored, repeated and rejected events."""

    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    # Rejections counted; equals len(rejected) unless a stream handed them out as it went.
    rejected_count: int = 0


class OrgResolver:
    """Look up a partner's organizations by id or externalId, loading them once."""

    def __init__(self, partner_id: str) -> None:
        rows = db.session.execute(
            select(Organization.id, Organization.external_id).where(
                Organization.partner_id == partner_id
            )
        ).all()
        self.ids = {row.id for row in rows}
        self.by_external = {row.external_id: row.id for row in rows if row.external_id}

    def resolve(self, organization_id: Any, external_id: Any) -> tuple[str | None, Rejection]:
        """Return (organization id, None) or (None, a rejection with index 0 to fill in)."""
        if organization_id in (None, "") and external_id in (None, ""):
            return None, Rejection(
                0, None, "missing_organization",
                "organizationId or externalId is required", "organizationId",
            )
        found: str | None = None
        if organization_id not in (None, ""):
            if not isinstance(organization_id, str) or organization_id not in self.ids:
                return None, Rejection(
                    0, None, "unknown_organization",
                    f"no organization with id {str(organization_id)[:100]!r}", "organizationId",
                )
            found = organization_id
        if external_id not in (None, ""):
            by_ext = self.by_external.get(external_id) if isinstance(external_id, str) else None
            if by_ext is None:
                return None, Rejection(
                    0, None, "unknown_organization",
                    f"no organization with externalId {str(external_id)[:100]!r}", "externalId",
                )
            if found is not None and found != by_ext:
                return None, Rejection(
                    0, None, "organization_mismatch",
                    "organizationId and externalId name different organizations",
                    "externalId",
                )
            found = by_ext
        return found, _NO_REJECTION



_NO_REJECTION = Rejection(0, None, "", "")


def local_date_function(tz: str) -> Callable[[datetime], date]:
    """Return f(naive UTC moment) -> its calendar day in tz, as validate_event computes it.

    The UTC offset is looked up once per hour of UTC time (not per event); an hour in
    which the offset changes (a DST switch) is computed event by event.
    """
    if tz == "UTC":
        return datetime.date
    target = zone(tz)
    offsets: dict[datetime, timedelta | None] = {}

    def local_date(moment: datetime) -> date:
        hour = moment.replace(minute=0, second=0, microsecond=0)
        try:
            offset = offsets[hour]
        except KeyError:
            first = hour.replace(tzinfo=UTC).astimezone(target).utcoffset()
            last = (hour + timedelta(hours=1, microseconds=-1)).replace(
                tzinfo=UTC).astimezone(target).utcoffset()
            offset = first if first == last else None
            if len(offsets) > 100_000:
                offsets.clear()
            offsets[hour] = offset
        if offset is None:
            return moment.replace(tzinfo=UTC).astimezone(target).date()
        return (moment + offset).date()

    return local_date


class FastPath:
    """Accept a well-formed event with a handful of cheap checks, or answer None.

    None means "not sure": the caller then runs validate_event, which gives the verdict
    and the exact rejection. Every event accepted here is one validate_event accepts,
    with the same stored row; the checks are the same rules, reordered and memoized
    (known types and quantity texts, the UTC offset per hour).
    """

    def __init__(self, resolver: OrgResolver, tz: str, now: datetime) -> None:
        self.ids = resolver.ids
        self.by_external = resolver.by_external
        self.types: set[str] = set()
        self.quantities: dict[str | int, int] = {}
        self.upper = now + FUTURE_TOLERANCE
        self.local_date = local_date_function(tz)

    def row(self, raw: dict[str, Any]) -> dict[str, Any] | None:
        """Return the row to store for raw, or None to ask validate_event."""
        event_id = raw.get("eventId")
        if type(event_id) is not str or not event_id or len(event_id) > MAX_EVENT_ID_LENGTH \
                or event_id.isspace() or not event_id.isascii() or "\x00" in event_id:
            return None
        org_id = raw.get("organizationId")
        external_id = raw.get("externalId")
        if org_id is None or org_id == "":
            if type(external_id) is not str or external_id == "":
                return None
            org_id = self.by_external.get(external_id)
            if org_id is None:
                return None
        elif type(org_id) is not str or org_id not in self.ids:
            return None
        elif external_id is not None and external_id != "" and (
                type(external_id) is not str or self.by_external.get(external_id) != org_id):
            return None
        etype = raw.get("type")
        if type(etype) is not str:
            return None
        if etype not in self.types:
            if not TYPE_RE.fullmatch(etype):
                return None
            self.types.add(etype)
        quantity = raw.get("quantity", 1)
        # Memoized per value of parse_quantity's rule; type() is exact, so True (equal
        # to 1 as a key) and int subclasses always go through the rule.
        memo = type(quantity) is str or type(quantity) is int
        known = self.quantities.get(quantity) if memo else None
        if known is None:
            try:
                known = parse_quantity(quantity)
            except QuantityError:
                return None
            if memo and len(self.quantities) < 10_000:
                self.quantities[quantity] = known
        quantity = known
        stamp = raw.get("occurredAt")
        if type(stamp) is not str or not TIMESTAMP_START_RE.match(stamp) \
                or stamp[-1].isspace():
            return None
        try:
            if stamp[-1] == "Z":
                # The common case: UTC written with Z, parsed straight to naive UTC.
                occurred = datetime.fromisoformat(stamp[:-1])
                if occurred.tzinfo is not None:  # "...+01:00Z" is for validate_event
                    return None
            else:
                occurred = datetime.fromisoformat(stamp)
                if occurred.tzinfo is not None:
                    occurred = occurred.astimezone(UTC).replace(tzinfo=None)
        except (ValueError, OverflowError):
            return None
        if occurred < EARLIEST_EVENT or occurred > self.upper:
            return None
        return {
            "organization_id": org_id,
            "event_id": event_id,
            "type": etype,
            "quantity": quantity,
            "occurred_at": occurred,
            "local_date": self.local_date(occurred),
        }


def storable_text(value: str) -> bool:
    """Tell whether both databases can store value (no NUL, no lone surrogate)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class QuantityError(ValueError):
    """A quantity that is not a whole number from 0 to MAX_QUANTITY."""


def parse_quantity(value: Any) -> int:
    """Return an event's quantity (absent or null means 1); raise QuantityError.

    The one quantity rule of the API, the file import and the fast path: a JSON integer
    from 0 to MAX_QUANTITY (not a boolean, not a float), or text (a CSV cell) of one to
    ten ASCII digits in the same range: no sign, no spaces, no other scripts' digits.
    """
    if value is None:
        return 1
    if isinstance(value, str):
        if not QUANTITY_TEXT_RE.fullmatch(value):
            if value.isascii() and value.isdigit():
                raise QuantityError(f"quantity must be at most {MAX_QUANTITY:,}")
            if value[:1] == "-" and value[1:].isascii() and value[1:].isdigit():
                raise QuantityError("quantity must not be negative")
            raise QuantityError("quantity must be a whole number written with the digits 0-9 "
                                "only (no sign, spaces or other numerals)")
        number = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise QuantityError("quantity must be a whole number")
    if number < 0:
        raise QuantityError("quantity must not be negative")
    if number > MAX_QUANTITY:
        raise QuantityError(f"quantity must be at most {MAX_QUANTITY:,}")
    return number


def _reject(code: str, message: str, fld: str) -> Rejection:
    return Rejection(0, None, code, message, fld)


def parse_occurred_at(value: Any) -> datetime:
    """Parse an ISO 8601 timestamp to naive UTC (no offset means UTC); raise ValueError."""
    if not isinstance(value, str) or not TIMESTAMP_START_RE.match(value.strip()):
        raise ValueError("occurredAt must be an ISO 8601 timestamp such as 2025-10-01T12:00:00Z")
    moment = datetime.fromisoformat(value.strip())
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def validate_event(
    raw: Any, resolver: OrgResolver, tz: str, now: datetime
) -> tuple[dict[str, Any] | None, Rejection | None]:
    """Check one event against spec §1; return the row to store or the rejection."""
    if not isinstance(raw, dict):
        return None, _reject("invalid_event", "each event must be a JSON object", "event")
    event_id = raw.get("eventId")
    if isinstance(event_id, int) and not isinstance(event_id, bool):
        event_id = str(event_id)
    if not isinstance(event_id, str) or not event_id.strip():
        return None, _reject("invalid_event_id", "eventId is required (a non-empty string)",
                             "eventId")
    if len(event_id) > MAX_EVENT_ID_LENGTH:
        return None, _reject("invalid_event_id",
                             f"eventId is longer than {MAX_EVENT_ID_LENGTH} characters", "eventId")
    if not storable_text(event_id):
        # A file read by the CLI can carry these; the databases cannot store them.
        return None, _reject("invalid_event_id",
                             "eventId contains a NUL character or invalid Unicode", "eventId")

    def fail(rej: Rejection) -> tuple[None, Rejection]:
        rej.event_id = event_id
        return None, rej

    org_id, rej = resolver.resolve(raw.get("organizationId"), raw.get("externalId"))
    if org_id is None:
        return fail(rej)

    etype = raw.get("type")
    if not isinstance(etype, str) or not TYPE_RE.fullmatch(etype):
        return fail(_reject(
            "invalid_type",
            "type must be [a-z][a-z0-9_]{0,63}, nothing before or after (for example "
            "identification, page_view)",
            "type",
        ))

    try:
        quantity = parse_quantity(raw.get("quantity"))
    except QuantityError as exc:
        return fail(_reject("invalid_quantity", str(exc), "quantity"))

    try:
        occurred = parse_occurred_at(raw.get("occurredAt"))
    except (ValueError, OverflowError) as exc:
        message = str(exc) if "occurredAt" in str(exc) else "occurredAt is not a valid timestamp"
        return fail(_reject("invalid_occurred_at", message, "occurredAt"))
    if occurred < EARLIEST_EVENT:
        return fail(_reject("invalid_occurred_at", "occurredAt is before 2000-01-01",
                            "occurredAt"))
    if occurred > now + FUTURE_TOLERANCE:
        return fail(_reject("invalid_occurred_at", "occurredAt is in the future", "occurredAt"))

    local_date = occurred.replace(tzinfo=UTC).astimezone(zone(tz)).date()
    return {
        "organization_id": org_id,
        "event_id": event_id,
        "type": etype,
        "quantity": quantity,
        "occurred_at": occurred,
        "local_date": local_date,
    }, None


_EVENT_COLUMNS = ("partner_id", "organization_id", "event_id", "type", "quantity",
                  "occurred_at", "local_date", "received_at")


def _sqlite_text(column: Any, sample: Any, fast: Callable[[Any], str]) -> Callable[[Any], Any]:
    """Return fast if it formats a value exactly as SQLAlchemy stores it in SQLite, else
    SQLAlchemy's own bind processor (raw-cursor rows must read back like ORM rows)."""
    dialect = db.session.get_bind().dialect
    processor = column.type.dialect_impl(dialect).bind_processor(dialect)
    if processor is None or processor(sample) == fast(sample):
        return fast
    return processor  # type: ignore[no-any-return]


def insert_new_events(rows: list[dict[str, Any]]) -> set[str]:
    """Insert rows into usage_event, skipping stored eventIds; return the eventIds inserted.

    Runs in the caller's transaction through the raw DBAPI cursor, which is several times
    faster than an ORM or Core executemany for large batches. On SQLite the transaction
    holds the write lock (BEGIN IMMEDIATE), so the rows with an id above the largest id
    before the insert are exactly this call's rows. On PostgreSQL the rows are copied
    (COPY) into a temporary table and moved with INSERT ... ON CONFLICT DO NOTHING
    RETURNING, which tells which eventIds were new even under concurrent writers.
    """
    if dialect_name() == "postgresql":
        with raw_cursor() as cursor:
            return _insert_postgresql(cursor, rows)
    return _insert_sqlite(sqlite_params(rows, sqlite_formatters()))


SqliteFormatters = tuple[Callable[[Any], Any], Callable[[Any], Any]]


def sqlite_formatters() -> SqliteFormatters:
    """Return (moment as text, day as text) exactly as SQLAlchemy stores them in SQLite."""
    table = UsageEvent.__table__
    sample_moment = datetime(2001, 2, 3, 4, 5, 6)
    moment_text = _sqlite_text(table.c.occurred_at, sample_moment,
                               lambda m: m.isoformat(" ", "microseconds"))
    day_text = _sqlite_text(table.c.local_date, sample_moment.date(),
                            lambda d: d.isoformat())
    return moment_text, day_text


def sqlite_params(rows: list[dict[str, Any]], formatters: SqliteFormatters
                  ) -> list[tuple[Any, ...]]:
    """Return the usage_event parameters of ordered rows, in _EVENT_COLUMNS order."""
    moment_text, day_text = formatters
    received: dict[datetime, Any] = {}
    params = []
    for r in rows:
        at = r["received_at"]
        if at not in received:
            received[at] = moment_text(at)
        params.append((r["partner_id"], r["organization_id"], r["event_id"], r["type"],
                       r["quantity"], moment_text(r["occurred_at"]), day_text(r["local_date"]),
                       received[at]))
    return params


def _insert_sqlite(params: list[tuple[Any, ...]]) -> set[str]:
    with raw_cursor() as cursor:
        cursor.execute("SELECT max(id) FROM usage_event")
        before = cursor.fetchone()[0] or 0
        cursor.executemany(
            f"INSERT INTO usage_event ({', '.join(_EVENT_COLUMNS)}) VALUES "  # noqa: S608
            f"({', '.join('?' for _ in _EVENT_COLUMNS)}) "
            "ON CONFLICT (partner_id, event_id) DO NOTHING",
            params,
        )
        if cursor.rowcount == len(params):
            return {p[2] for p in params}
        cursor.execute("SELECT event_id FROM usage_event WHERE id > ?", (before,))
        return {r[0] for r in cursor.fetchall()}


def store_sqlite_params(partner_id: str, params: list[tuple[Any, ...]], sums: Sums,
                        tz: str) -> int:
    """SQLite: store rows the file import's reader process already formatted.

    params come from sqlite_params of rows ordered by order_rows, and sums is sum_rows of
    the same rows; the rows the database already held are taken back out of the sums.
    Runs inside the caller's transaction; returns how many rows were new.
    """
    if not params:
        return 0
    inserted = _insert_sqlite(params)
    if not inserted:
        return 0
    if len(inserted) != len(params):
        sums = {key: list(value) for key, value in sums.items()}
        for p in params:
            if p[2] not in inserted:
                key = (p[1], date.fromisoformat(p[6]), p[3], datetime.fromisoformat(p[7]))
                sums[key][0] -= p[4]
                sums[key][1] -= 1
        sums = {key: value for key, value in sums.items() if value[1]}
    add_to_rollups(partner_id, sums, tz)
    return len(inserted)


_PG_EVENT_TYPES = ["varchar", "varchar", "varchar", "varchar", "int8", "timestamp", "date",
                   "timestamp"]


def _insert_postgresql(cursor: Any, rows: list[dict[str, Any]]) -> set[str]:
    columns = ", ".join(_EVENT_COLUMNS)
    # Created once per connection (a rolled-back transaction takes it away again);
    # asking is much cheaper than CREATE ... IF NOT EXISTS.
    cursor.execute("SELECT to_regclass('pg_temp.ingest_stage')")
    if cursor.fetchone()[0] is None:
        cursor.execute(
            "CREATE TEMP TABLE ingest_stage ON COMMIT DELETE ROWS AS "  # noqa: S608
            f"SELECT {columns} FROM usage_event WITH NO DATA"
        )
    else:
        cursor.execute("TRUNCATE ingest_stage")
    # Binary COPY: psycopg packs each value without formatting it as text first (about a
    # quarter of the client CPU of text COPY for these rows).
    with cursor.copy(f"COPY ingest_stage ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(_PG_EVENT_TYPES)
        for r in rows:
            copy.write_row((r["partner_id"], r["organization_id"], r["event_id"], r["type"],
                            r["quantity"], r["occurred_at"], r["local_date"],
                            r["received_at"]))
    cursor.execute(
        f"INSERT INTO usage_event ({columns}) SELECT {columns} FROM ingest_stage "  # noqa: S608
        "ORDER BY event_id ON CONFLICT (partner_id, event_id) DO NOTHING RETURNING event_id"
    )
    return {r[0] for r in cursor.fetchall()}


Sums = dict[tuple[str, Any, str, datetime], list[int]]


def order_rows(partner_id: str, rows: list[dict[str, Any]], received_at: datetime) -> None:
    """Complete rows with the partner and receipt time, and put them in eventId order.

    One order for every writer: two batches sharing eventIds in different orders would
    otherwise wait on each other's uncommitted rows (a deadlock on PostgreSQL).
    """
    for row in rows:
        row["partner_id"] = partner_id
        row.setdefault("received_at", received_at)
    rows.sort(key=lambda row: row["event_id"])


def sum_rows(rows: Iterable[dict[str, Any]]) -> Sums:
    """Sum rows by (organization, day, type, received_at): the three rollups derive from
    these few sums instead of row by row."""
    sums: Sums = {}
    for row in rows:
        key = (row["organization_id"], row["local_date"], row["type"], row["received_at"])
        found = sums.get(key)
        if found is None:
            sums[key] = [row["quantity"], 1]
        else:
            found[0] += row["quantity"]
            found[1] += 1
    return sums


def store_rows(partner_id: str, rows: list[dict[str, Any]], received_at: datetime,
               tz: str = "UTC", sums: Sums | None = None) -> int:
    """Insert validated rows (unique eventIds) and add the new ones to the rollups.

    Runs inside the caller's transaction. Rows whose eventId is already stored are skipped
    by the database itself (ON CONFLICT DO NOTHING), so concurrent writers cannot double
    count. Returns how many rows were new. tz is the partner's timezone, in which the day
    each event was received is counted (for the late-data figures of the reports).

    sums, when given, is sum_rows(rows) of rows already ordered by order_rows (the file
    import's reader process prepares both); it is used only if every row turns out new.
    """
    if not rows:
        return 0
    if sums is None:
        order_rows(partner_id, rows, received_at)
    inserted = insert_new_events(rows)
    if not inserted:
        return 0
    if sums is None or len(inserted) != len(rows):
        sums = sum_rows(rows if len(inserted) == len(rows)
                        else (row for row in rows if row["event_id"] in inserted))
    add_to_rollups(partner_id, sums, tz)
    return len(inserted)


def bucket_sums(daily: Mapping[tuple[str, Any, str], Sequence[int]]
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


def _add(counts: dict[Any, list[int]], key: Any, quantity: int, events: int) -> None:
    found = counts.get(key)
    if found is None:
        counts[key] = [quantity, events]
    else:
        found[0] += quantity
        found[1] += events


def add_to_rollups(partner_id: str, sums: Sums, tz: str) -> None:
    """Add newly stored events, summed by sum_rows, to the four rollups; bump the data
    version (caller's transaction)."""
    org_counts: dict[tuple[str, Any, str], list[int]] = {}
    partner_counts: dict[tuple[Any, str], list[int]] = {}
    receipt_counts: dict[tuple[Any, Any, str], list[int]] = {}
    received_days: dict[datetime, date] = {}
    tzinfo = zone(tz)
    for (org_id, day, etype, moment), (quantity, events) in sums.items():
        received = received_days.get(moment)  # rows of one call share their received_at
        if received is None:
            received = received_days[moment] = moment.replace(tzinfo=UTC).astimezone(
                tzinfo).date()
        _add(org_counts, (org_id, day, etype), quantity, events)
        _add(partner_counts, (day, etype), quantity, events)
        _add(receipt_counts, (day, received, etype), quantity, events)
    iso: dict[Any, str] = {}

    def text(day: Any) -> str:  # dates go to the raw cursors as ISO text
        found = iso.get(day)
        if found is None:
            found = iso[day] = as_date(day).isoformat()
        return found

    add_counts(OrgDailyUsage.__table__,
               ("organization_id", "day", "type", "partner_id", "quantity", "events"), 3,
               [(o, text(d), t, partner_id, q, n)
                for (o, d, t), (q, n) in sorted(org_counts.items())])
    add_counts(OrgBucketUsage.__table__,
               ("partner_id", "grain", "bucket_start", "organization_id", "identifications",
                "quantity", "events"), 4,
               [(partner_id, g, text(b), o, i, q, n)
                for (g, b, o), (i, q, n) in sorted(bucket_sums(org_counts).items())],
               added=("identifications", "quantity", "events"))
    add_counts(PartnerDailyUsage.__table__,
               ("partner_id", "day", "type", "quantity", "events"), 3,
               [(partner_id, text(d), t, q, n)
                for (d, t), (q, n) in sorted(partner_counts.items())])
    add_counts(PartnerDailyReceipt.__table__,
               ("partner_id", "day", "received_day", "type", "quantity", "events"), 4,
               [(partner_id, text(d), text(r), t, q, n)
                for (d, r, t), (q, n) in sorted(receipt_counts.items())])
    # Late events change closed days: invalidate the partner's cached closed periods, and
    # move the partner's newest receipt time forward (the dashboard's "data as of").
    cache.bump(partner_id, received_at=max(key[3] for key in sums))


def prepare_batch(
    events: Iterable[tuple[int, Any]],
    resolver: OrgResolver,
    tz: str,
    now: datetime,
    result: IngestResult,
) -> list[dict[str, Any]]:
    """Validate (position, raw event) pairs; return the rows to store.

    Rejections and repeats inside the batch are counted in result. Needs no database, so
    the pipelined file import runs it in its reader process.
    """
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    fast = FastPath(resolver, tz, now).row
    for position, raw in events:
        rejection: Rejection | None = None
        row = fast(raw) if type(raw) is dict else None
        if row is not None:
            pass
        elif isinstance(raw, Rejection):
            rejection = raw
        else:
            row, rejection = validate_event(raw, resolver, tz, now)
        if rejection is not None:
            rejection.index = position
            result.rejected.append(rejection)
            result.rejected_count += 1
            continue
        assert row is not None
        if row["event_id"] in seen:
            result.duplicates += 1
            continue
        seen.add(row["event_id"])
        rows.append(row)
    return rows


def commit_rows(partner_id: str, rows: list[dict[str, Any]], now: datetime, tz: str,
                result: IngestResult, sums: Sums | None = None,
                params: list[tuple[Any, ...]] | None = None) -> str:
    """Store prepared rows in one transaction; count them as accepted or duplicates.

    With params (SQLite, from the file import's reader process), those are stored
    instead of rows, and sums is required. The rows were prepared with timezone tz; under
    the partner's lock they are re-bucketed if it has changed since. Returns the timezone
    the rows were stored with.
    """
    count = len(params) if params is not None else len(rows)
    if not count:
        return tz
    with partner_transaction(partner_id) as current_tz:
        if current_tz != tz:
            # The timezone changed after these rows were prepared (their local days were
            # computed with the old one): recompute them with the one now in force.
            rows, params, sums = rebucket_prepared(rows, params, current_tz)
            tz = current_tz
        if params is not None:
            assert sums is not None
            stored = store_sqlite_params(partner_id, params, sums, tz)
        else:
            stored = store_rows(partner_id, rows, now, tz, sums)
    result.accepted += stored
    result.duplicates += count - stored
    return tz


def rebucket_prepared(rows: list[dict[str, Any]], params: list[tuple[Any, ...]] | None,
                      tz: str) -> tuple[list[dict[str, Any]], list[tuple[Any, ...]] | None,
                                        Sums | None]:
    """Return prepared rows (or SQLite params) with their local days computed in tz.

    The sums of params are recomputed too; rows get none (store_rows sums them).
    """
    local_date = local_date_function(tz)
    if params is None:
        for row in rows:
            row["local_date"] = local_date(row["occurred_at"])
        return rows, None, None
    _moment_text, day_text = sqlite_formatters()
    moved: list[tuple[Any, ...]] = []
    sums: Sums = {}
    received: dict[str, datetime] = {}
    for p in params:
        day = local_date(datetime.fromisoformat(p[5]))
        moved.append((*p[:6], day_text(day), p[7]))
        at = received.get(p[7])
        if at is None:
            at = received[p[7]] = datetime.fromisoformat(p[7])
        _add(sums, (p[1], day, p[3], at), p[4], 1)
    return rows, moved, sums


def ingest_batch(
    partner: Partner,
    events: Iterable[tuple[int, Any]],
    resolver: OrgResolver | None = None,
) -> IngestResult:
    """Validate (position, raw event) pairs and store the valid ones in one transaction.

    A repeated eventId (inside the batch or already stored) is a duplicate and changes
    nothing. Either every accepted event of the batch is committed or none is.
    """
    resolver = resolver or OrgResolver(partner.id)
    now = utcnow()
    result = IngestResult()
    rows = prepare_batch(events, resolver, partner.timezone, now, result)
    commit_rows(partner.id, rows, now, partner.timezone, result)
    return result


# --- files -----------------------------------------------------------------------------


def iter_jsonl(stream: IO[str]) -> Iterator[tuple[int, Any]]:
    """Yield (line number, event or Rejection) for each non-blank line of a JSON Lines file."""
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line, parse_constant=_refuse_constant)
        except ValueError as exc:
            yield number, Rejection(number, None, "invalid_json", f"invalid JSON: {exc}", None)
        except RecursionError:
            # json.loads recurses per nesting level; "[[[[..." must not crash the import.
            yield number, Rejection(number, None, "invalid_json",
                                    "invalid JSON: nested too deeply", None)


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed")


class FileFormatError(ValueError):
    """A file whose structure (not one line) is wrong, such as a CSV without its header."""


def iter_csv(stream: IO[str]) -> Iterator[tuple[int, Any]]:
    """Yield (line number, event or Rejection) for each record of a CSV file with a header."""
    reader = csv.reader(stream)
    try:
        header = next(reader)
    except StopIteration:
        return
    header = [h.strip().lstrip("\ufeff") for h in header]
    missing = [c for c in CSV_REQUIRED if c not in header]
    if "organizationId" not in header and "externalId" not in header:
        missing.append("organizationId or externalId")
    if missing:
        raise FileFormatError(
            f"line 1: the CSV header lacks {', '.join(missing)} "
            f"(expected {','.join(CSV_COLUMNS)})"
        )
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if unknown:
        raise FileFormatError(
            f"line 1: unknown CSV column(s) {', '.join(unknown)} "
            f"(expected {','.join(CSV_COLUMNS)})"
        )
    width = len(header)
    last_line = reader.line_num
    while True:
        # A for loop is the fast way through csv.reader; a csv.Error ends it, so it is
        # resumed after yielding the rejection. Empty cells become None.
        try:
            for record in reader:
                start_line = last_line + 1
                last_line = reader.line_num
                if len(record) == width and record[0].strip():
                    if "" in record:
                        yield start_line, {k: (v if v != "" else None)
                                           for k, v in zip(header, record, strict=True)}
                    else:
                        yield start_line, dict(zip(header, record, strict=True))
                elif not record or all(not cell.strip() for cell in record):
                    continue
                elif len(record) != width:
                    yield start_line, Rejection(
                        start_line, None, "invalid_csv",
                        f"expected {width} fields, found {len(record)}",
                    )
                else:
                    yield start_line, {k: (v if v != "" else None)
                                       for k, v in zip(header, record, strict=True)}
            return
        except csv.Error as exc:
            start_line = last_line + 1
            last_line = reader.line_num
            yield start_line, Rejection(start_line, None, "invalid_csv", f"invalid CSV: {exc}")


def iter_file(stream: IO[str], fmt: str) -> Iterator[tuple[int, Any]]:
    """Yield (line number, event) pairs from a jsonl or csv stream."""
    if fmt == "csv":
        return iter_csv(stream)
    return iter_jsonl(stream)


def _add_batch(total: IngestResult, lines: int, result: IngestResult,
               on_batch: Callable[[int, IngestResult], None] | None) -> None:
    """Add one batch's counts to the running total, handing its rejections to on_batch."""
    total.accepted += result.accepted
    total.duplicates += result.duplicates
    total.rejected_count += len(result.rejected)
    if on_batch is not None:
        on_batch(lines, result)
    else:
        total.rejected.extend(result.rejected)


def ingest_stream(
    partner: Partner,
    pairs: Iterable[tuple[int, Any]],
    batch_size: int = 5000,
    on_batch: Callable[[int, IngestResult], None] | None = None,
    wait: float = 0.0,
) -> IngestResult:
    """Ingest an iterable of (line, event) in batches; each batch commits on its own.

    Memory stays flat however long the input is: with on_batch, each batch's result
    (rejections included) is handed over and only the counts are kept. Re-running after
    an interruption is safe: the events already committed come back as duplicates.
    A batch whose partner is busy (a timezone change or a rebuild holds its lock) is
    tried again for up to wait seconds; then IngestStopped names the line it stopped at.
    """
    resolver = OrgResolver(partner.id)
    partner_id, tz = partner.id, partner.timezone
    total = IngestResult()
    for lines, batch in batches(pairs, batch_size):
        now = utcnow()
        result = IngestResult()
        rows = prepare_batch(batch, resolver, tz, now, result)
        tz = _commit_waiting(partner_id, rows, now, tz, result, None, None, wait,
                             batch[0][0], total)
        _add_batch(total, lines, result, on_batch)
    return total


class IngestStopped(Exception):
    """A file import stopped before a batch it could not store (its partner stayed busy).

    line is the first line of that batch: every line before it is stored (or rejected,
    as reported); total holds the counts up to there.
    """

    def __init__(self, line: int, total: IngestResult, reason: str) -> None:
        super().__init__(f"stopped at line {line}: {reason}")
        self.line = line
        self.total = total
        self.reason = reason


# Pause between two tries of a batch whose partner was busy (each try already waited
# LOCK_TIMEOUT for the lock).
_RETRY_PAUSE_SECONDS = 0.5


def _commit_waiting(partner_id: str, rows: list[dict[str, Any]], now: datetime, tz: str,
                    result: IngestResult, sums: Sums | None,
                    params: list[tuple[Any, ...]] | None, wait: float, first_line: int,
                    total: IngestResult) -> str:
    """commit_rows, tried again while the partner is busy for up to wait seconds; then
    raise IngestStopped naming first_line (the batch's first line). Returns the timezone
    in force (the next batches are prepared with it)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return commit_rows(partner_id, rows, now, tz, result, sums, params)
        except PartnerBusy as exc:
            if time.monotonic() >= deadline:
                raise IngestStopped(first_line, total, exc.message) from exc
            time.sleep(_RETRY_PAUSE_SECONDS)


def batches(pairs: Iterable[tuple[int, Any]], batch_size: int
            ) -> Iterator[tuple[int, list[tuple[int, Any]]]]:
    """Yield (lines read so far, the next batch of at most batch_size pairs)."""
    batch: list[tuple[int, Any]] = []
    lines = 0
    for pair in pairs:
        batch.append(pair)
        lines += 1
        if len(batch) >= batch_size:
            yield lines, batch
            batch = []
    if batch:
        yield lines, batch


# How long the reader waits on a full queue before checking that its parent still lives.
_READER_POLL_SECONDS = 1.0


def pipeline_available() -> bool:
    """Tell whether a reader process can be forked here (Linux and macOS with fork)."""
    return "fork" in multiprocessing.get_all_start_methods()


def _read_batches(pairs: Iterable[tuple[int, Any]], resolver: OrgResolver, partner_id: str,
                  tz: str, batch_size: int, out: Any, parent: int,
                  formatters: SqliteFormatters | None) -> None:
    """The reader process: parse and validate batches, hand them to the parent in order."""

    def send(message: tuple[Any, ...]) -> None:
        while True:
            try:
                out.put(message, timeout=_READER_POLL_SECONDS)
                return
            except queue.Full:
                if os.getppid() != parent:  # the importer is gone (killed): stop too
                    os._exit(1)

    def prepared(batch: list[tuple[int, Any]], lines: int) -> tuple[Any, ...]:
        now = utcnow()
        result = IngestResult()
        rows = prepare_batch(batch, resolver, tz, now, result)
        order_rows(partner_id, rows, now)
        sums = sum_rows(rows)
        first_line = batch[0][0]
        if formatters is None:
            return ("batch", lines, first_line, now, rows, None, sums, result)
        # SQLite: the text parameters are made here, and the rows need not travel.
        return ("batch", lines, first_line, now, [], sqlite_params(rows, formatters), sums,
                result)

    try:
        for lines, batch in batches(pairs, batch_size):
            send(prepared(batch, lines))
        send(("done",))
    except Exception as exc:  # noqa: BLE001 - handed to the parent, which raises it
        try:
            pickle.dumps(exc)
        except Exception:  # noqa: BLE001
            exc = RuntimeError(f"{type(exc).__name__}: {exc}")
        send(("error", exc))


def ingest_stream_pipelined(
    partner: Partner,
    pairs: Iterable[tuple[int, Any]],
    batch_size: int = 5000,
    on_batch: Callable[[int, IngestResult], None] | None = None,
    wait: float = 0.0,
) -> IngestResult:
    """ingest_stream with reading and validation in a second process.

    A forked reader process parses and validates batch N+1 while this process stores
    batch N, so a file import uses two cores. The reader never touches the database;
    this process stores every batch in its own transaction, in file order, exactly as
    ingest_stream does, so the results, the rejections (with their line numbers) and
    the crash behaviour are the same. pairs must not be read by the caller afterwards.
    """
    if not pipeline_available():
        return ingest_stream(partner, pairs, batch_size, on_batch, wait)
    resolver = OrgResolver(partner.id)
    partner_id, tz = partner.id, partner.timezone
    formatters = sqlite_formatters() if dialect_name() == "sqlite" else None
    context = multiprocessing.get_context("fork")
    # Two batches in flight bound the memory: one being stored, one waiting.
    channel = context.Queue(maxsize=2)
    reader = context.Process(target=_read_batches, daemon=True, name="ingest-reader",
                             args=(pairs, resolver, partner_id, tz, batch_size, channel,
                                   os.getpid(), formatters))
    reader.start()
    total = IngestResult()
    try:
        while True:
            try:
                message = channel.get(timeout=_READER_POLL_SECONDS)
            except queue.Empty:
                if reader.is_alive():
                    continue
                try:
                    message = channel.get(timeout=_READER_POLL_SECONDS)
                except queue.Empty:
                    raise RuntimeError(f"the file reader process stopped unexpectedly "
                                       f"(exit code {reader.exitcode})") from None
            if message[0] == "done":
                break
            if message[0] == "error":
                raise message[1]
            _kind, lines, first_line, now, rows, params, sums, result = message
            _commit_waiting(partner_id, rows, now, tz, result, sums, params, wait,
                            first_line, total)
            _add_batch(total, lines, result, on_batch)
    finally:
        if reader.is_alive():
            reader.terminate()
        reader.join()
        channel.close()
        channel.cancel_join_thread()
    return total


def open_text(path: str, stdin: IO[str]) -> IO[str]:
    """Open path as UTF-8 text, or return stdin for '-'."""
    if path == "-":
        return stdin
    return open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115


def detect_format(path: str, explicit: str | None) -> str:
    """Return jsonl or csv from an explicit choice or the file's extension."""
    if explicit:
        return explicit
    return "csv" if path.lower().endswith(".csv") else "jsonl"


# --- rollups ------------------------------------------------------------------------------


def rebuild_rollups(partner_id: str) -> int:
    """Recompute one partner's rollups from its raw events; return how many events had a
    stale local day (re-bucketed first, with the partner's timezone).

    One transaction under the partner's exclusive lock: ingestion waits (or answers 503
    after LOCK_TIMEOUT), so no event is lost or counted twice, and a failure changes
    nothing.
    """
    with partner_transaction(partner_id, exclusive=True) as tz:
        moved = rebucket_events(partner_id, tz)
        _rebuild_tables(partner_id, tz)
    return moved


def set_partner_timezone(partner: Partner, tz: str) -> int:
    """Change a partner's reporting timezone, re-bucketing its events and rollups; return
    how many events changed day.

    The new timezone, the re-bucketed events and the rebuilt rollups commit together
    under the partner's exclusive lock, or nothing changes.
    """
    zone(tz)  # raises ValueError for an unknown name
    with partner_transaction(partner.id, exclusive=True):
        db.session.execute(
            update(Partner).where(Partner.id == partner.id).values(timezone=tz)
            .execution_options(partner_scoped=True, synchronize_session=False)
        )
        moved = rebucket_events(partner.id, tz)
        _rebuild_tables(partner.id, tz)
    db.session.expire(partner)
    return moved


# Events read and re-bucketed per round trip.
_REBUCKET_CHUNK = 50_000


def rebucket_events(partner_id: str, tz: str) -> int:
    """Set every event's local_date to its occurredAt's day in tz; return how many moved.

    Caller's transaction (which holds the partner's exclusive lock). Reads the events in
    id order, a chunk at a time, and writes only those whose day changes.
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
                    (partner_id, last_id, _REBUCKET_CHUNK))
            else:
                cursor.execute(
                    "SELECT id, occurred_at, local_date FROM usage_event "
                    "WHERE partner_id = ? AND id > ? ORDER BY id LIMIT ?",
                    (partner_id, last_id, _REBUCKET_CHUNK))
            chunk = cursor.fetchall()
            if not chunk:
                return moved
            last_id = chunk[-1][0]
            if postgres:
                changes = [(event_id, day) for event_id, at, stored in chunk
                           if (day := local_date(at)) != stored]
                if changes:
                    cursor.execute(
                        "UPDATE usage_event SET local_date = v.day FROM "
                        "unnest(%s::bigint[], %s::date[]) AS v(id, day) "
                        "WHERE usage_event.id = v.id",
                        ([c[0] for c in changes], [c[1] for c in changes]))
            else:
                # SQLite hands back the stored text; the app writes ISO dates.
                changes = [(text, event_id) for event_id, at, stored in chunk
                           if (text := local_date(_sqlite_moment(at)).isoformat()) != stored]
                if changes:
                    cursor.executemany("UPDATE usage_event SET local_date = ? WHERE id = ?",
                                       changes)
            moved += len(changes)


def _sqlite_moment(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _rebuild_tables(partner_id: str, tz: str) -> None:
    """Refill the four rollups of a partner whose timezone is tz from its raw events
    (caller's transaction, under the partner's exclusive lock); bump its data version."""
    scoped = {"partner_scoped": True}
    db.session.execute(delete(OrgDailyUsage).where(OrgDailyUsage.partner_id == partner_id)
                       .execution_options(**scoped))
    db.session.execute(delete(PartnerDailyUsage)
                       .where(PartnerDailyUsage.partner_id == partner_id)
                       .execution_options(**scoped))
    ev = UsageEvent
    org_rows = select(
        ev.organization_id, ev.local_date, ev.type, ev.partner_id,
        func.sum(ev.quantity), func.count(),
    ).where(ev.partner_id == partner_id).group_by(
        ev.organization_id, ev.local_date, ev.type, ev.partner_id
    )
    db.session.execute(
        insert(OrgDailyUsage).from_select(
            ["organization_id", "day", "type", "partner_id", "quantity", "events"], org_rows
        ).execution_options(**scoped)
    )
    odu = OrgDailyUsage
    partner_rows = select(
        odu.partner_id, odu.day, odu.type, func.sum(odu.quantity), func.sum(odu.events)
    ).where(odu.partner_id == partner_id).group_by(odu.partner_id, odu.day, odu.type)
    db.session.execute(
        insert(PartnerDailyUsage).from_select(
            ["partner_id", "day", "type", "quantity", "events"], partner_rows
        ).execution_options(**scoped)
    )
    _rebuild_buckets(partner_id)
    _rebuild_receipts(partner_id, tz)
    # Last, so the partner's version row is locked only for the end of the transaction.
    cache.bump(partner_id)


def _rebuild_buckets(partner_id: str) -> None:
    """Refill a partner's org_bucket_usage from its org_daily_usage (caller's transaction)."""
    db.session.execute(delete(OrgBucketUsage).where(OrgBucketUsage.partner_id == partner_id)
                       .execution_options(partner_scoped=True))
    odu = OrgDailyUsage
    identifications = func.sum(case((odu.type == IDENTIFICATION, odu.quantity), else_=0))
    for grain in ROLLUP_GRAINS:
        start = bucket_start_sql(odu.day, grain)
        db.session.execute(insert(OrgBucketUsage).from_select(
            ["partner_id", "grain", "bucket_start", "organization_id", "identifications",
             "quantity", "events"],
            select(odu.partner_id, literal(grain), start, odu.organization_id,
                   identifications, func.sum(odu.quantity), func.sum(odu.events))
            .where(odu.partner_id == partner_id)
            .group_by(odu.partner_id, start, odu.organization_id)
        ).execution_options(partner_scoped=True))


def verify_rollups(partner_id: str) -> list[str]:
    """Compare one partner's rollups with a recount of its raw events; return mismatches."""
    ev = UsageEvent
    raw = {
        (r[0], r[1], r[2]): (int(r[3]), int(r[4]))
        for r in db.session.execute(
            select(ev.organization_id, ev.local_date, ev.type, func.sum(ev.quantity),
                   func.count())
            .where(ev.partner_id == partner_id)
            .group_by(ev.organization_id, ev.local_date, ev.type)
        )
    }
    odu = OrgDailyUsage
    stored = {
        (r[0], r[1], r[2]): (int(r[3]), int(r[4]))
        for r in db.session.execute(
            select(odu.organization_id, odu.day, odu.type, odu.quantity, odu.events)
            .where(odu.partner_id == partner_id)
        )
    }
    problems = []
    for key in sorted(set(raw) | set(stored), key=str):
        if raw.get(key, (0, 0)) != stored.get(key, (0, 0)):
            org, day, etype = key
            problems.append(
                f"organization {org} {day} {etype}: raw events give "
                f"quantity/events {raw.get(key, (0, 0))}, rollup holds {stored.get(key, (0, 0))}"
            )
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
    for day_key in sorted(set(by_day) | set(pstored), key=str):
        want = tuple(by_day.get(day_key, [0, 0]))
        if want != pstored.get(day_key, (0, 0)):
            problems.append(
                f"partner total {day_key[0]} {day_key[1]}: raw events give quantity/events "
                f"{want}, rollup holds {pstored.get(day_key, (0, 0))}"
            )
    tz = db.session.execute(select(Partner.timezone).where(Partner.id == partner_id)
                            ).scalar_one()
    problems.extend(_verify_local_dates(partner_id, tz))
    problems.extend(_verify_buckets(partner_id, raw))
    problems.extend(_verify_receipts(partner_id, tz))
    problems.extend(_verify_event_organizations(partner_id))
    return problems


def _verify_buckets(partner_id: str,
                    raw: Mapping[tuple[str, Any, str], Sequence[int]]) -> list[str]:
    """Compare org_bucket_usage with the raw events' recount summed by week and month."""
    want = {key: tuple(value) for key, value in bucket_sums(raw).items()}
    obu = OrgBucketUsage
    stored = {
        (r[0], as_date(r[1]), r[2]): (int(r[3]), int(r[4]), int(r[5]))
        for r in db.session.execute(
            select(obu.grain, obu.bucket_start, obu.organization_id, obu.identifications,
                   obu.quantity, obu.events).where(obu.partner_id == partner_id)
        )
    }
    none = (0, 0, 0)
    return [
        f"organization {key[2]} {key[0]} of {key[1]}: raw events give "
        f"identifications/quantity/events {want.get(key, none)}, rollup holds "
        f"{stored.get(key, none)}"
        for key in sorted(set(want) | set(stored), key=str)
        if want.get(key, none) != stored.get(key, none)
    ]


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
        .where(ev.partner_id == partner_id).group_by(ev.local_date).order_by(ev.local_date)
    ).all()
    problems = []
    for stored, first, last in days:
        day = as_date(stored)
        start, end = day_start_utc(day, tz), day_end_utc(day, tz)
        if first >= start and last < end:
            continue
        stale = db.session.execute(
            select(func.count()).select_from(ev).where(
                ev.partner_id == partner_id, ev.local_date == day,
                or_(ev.occurred_at < start, ev.occurred_at >= end))
        ).scalar_one()
        problems.append(f"{stale} event(s) stored on {day} did not happen on that day in "
                        f"{tz} (a stale local day: `flask rollups rebuild` re-buckets them)")
    return problems


def _verify_event_organizations(partner_id: str) -> list[str]:
    """Report events whose organization is not one of the partner's (usage_event has no
    foreign keys: ingestion checks this before every insert)."""
    ev, org = UsageEvent, Organization
    rows = db.session.execute(
        select(ev.organization_id, func.count())
        .outerjoin(org, (org.id == ev.organization_id) & (org.partner_id == ev.partner_id))
        .where(ev.partner_id == partner_id, org.id.is_(None))
        .group_by(ev.organization_id).order_by(ev.organization_id)
    ).all()
    return [f"{count} event(s) name organization {org_id}, which is not this partner's"
            for org_id, count in rows]


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
        delete(PartnerDailyReceipt).where(PartnerDailyReceipt.partner_id == partner_id)
        .execution_options(partner_scoped=True)
    )
    rows = [
        {"partner_id": partner_id, "day": d, "received_day": r, "type": t,
         "quantity": q, "events": n}
        for (d, r, t), (q, n) in sorted(_count_receipts(partner_id, tz).items())
    ]
    if rows:
        db.session.execute(insert(PartnerDailyReceipt).execution_options(partner_scoped=True),
                           rows)


def _verify_receipts(partner_id: str, tz: str) -> list[str]:
    """Compare partner_daily_receipt with a recount of the raw events; return mismatches."""
    want = _count_receipts(partner_id, tz)
    pdr = PartnerDailyReceipt
    stored = {
        (r[0], r[1], r[2]): (int(r[3]), int(r[4]))
        for r in db.session.execute(
            select(pdr.day, pdr.received_day, pdr.type, pdr.quantity, pdr.events)
            .where(pdr.partner_id == partner_id)
        )
    }
    return [
        f"received {key[1]} for {key[0]} {key[2]}: raw events give quantity/events "
        f"{want.get(key, (0, 0))}, rollup holds {stored.get(key, (0, 0))}"
        for key in sorted(set(want) | set(stored), key=str)
        if want.get(key, (0, 0)) != stored.get(key, (0, 0))
    ]
