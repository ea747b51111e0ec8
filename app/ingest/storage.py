"""Exactly-once storage of validated events, one transaction per batch under the partner's
shared lock, and the batching of a stream (the API's call, a file's batches)."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

from .. import audit, rollups
from ..database import (
    PartnerBusy,
    dialect_name,
    partner_transaction,
    raw_cursor,
    write_transaction,
)
from ..extensions import db
from ..models import Partner, UsageEvent
from ..periods import local_date_function
from ..rollups import RollupRows, Sums, add_count
from ..timeutil import utcnow
from .validation import IngestResult, OrgResolver, prepare_batch

EVENT_COLUMNS = (
    "partner_id",
    "organization_id",
    "event_id",
    "type",
    "quantity",
    "occurred_at",
    "local_date",
    "received_at",
)


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
    moment_text = _sqlite_text(
        table.c.occurred_at, sample_moment, lambda m: m.isoformat(" ", "microseconds")
    )
    day_text = _sqlite_text(table.c.local_date, sample_moment.date(), lambda d: d.isoformat())
    return moment_text, day_text


def sqlite_params(
    rows: list[dict[str, Any]], formatters: SqliteFormatters
) -> list[tuple[Any, ...]]:
    """Return the usage_event parameters of ordered rows, in EVENT_COLUMNS order."""
    moment_text, day_text = formatters
    received: dict[datetime, Any] = {}
    params = []
    for r in rows:
        at = r["received_at"]
        if at not in received:
            received[at] = moment_text(at)
        params.append(
            (
                r["partner_id"],
                r["organization_id"],
                r["event_id"],
                r["type"],
                r["quantity"],
                moment_text(r["occurred_at"]),
                day_text(r["local_date"]),
                received[at],
            )
        )
    return params


def _insert_sqlite(params: list[tuple[Any, ...]]) -> set[str]:
    with raw_cursor() as cursor:
        cursor.execute("SELECT max(id) FROM usage_event")
        before = cursor.fetchone()[0] or 0
        cursor.executemany(
            f"INSERT INTO usage_event ({', '.join(EVENT_COLUMNS)}) VALUES "  # noqa: S608
            f"({', '.join('?' for _ in EVENT_COLUMNS)}) "
            "ON CONFLICT (partner_id, event_id) DO NOTHING",
            params,
        )
        if cursor.rowcount == len(params):
            return {p[2] for p in params}
        cursor.execute("SELECT event_id FROM usage_event WHERE id > ?", (before,))
        return {r[0] for r in cursor.fetchall()}


def store_sqlite_params(
    partner_id: str,
    params: list[tuple[Any, ...]],
    sums: Sums,
    tz: str,
    rolled: RollupRows | None = None,
) -> int:
    """SQLite: store rows the file import's reader process already formatted.

    params come from sqlite_params of rows ordered by order_rows, and sums is sum_rows of
    the same rows; the rows the database already held are taken back out of the sums.
    rolled, when given, is rollups.rollup_rows of sums, used if every row is new.
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
        rolled = None
    rollups.add(partner_id, sums, tz, rolled)
    return len(inserted)


PG_EVENT_TYPES = [
    "varchar",
    "varchar",
    "varchar",
    "varchar",
    "int8",
    "timestamp",
    "date",
    "timestamp",
]


def _insert_postgresql(cursor: Any, rows: list[dict[str, Any]]) -> set[str]:
    columns = ", ".join(EVENT_COLUMNS)
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
        copy.set_types(PG_EVENT_TYPES)
        for r in rows:
            copy.write_row(
                (
                    r["partner_id"],
                    r["organization_id"],
                    r["event_id"],
                    r["type"],
                    r["quantity"],
                    r["occurred_at"],
                    r["local_date"],
                    r["received_at"],
                )
            )
    cursor.execute(
        f"INSERT INTO usage_event ({columns}) SELECT {columns} FROM ingest_stage "  # noqa: S608
        "ORDER BY event_id ON CONFLICT (partner_id, event_id) DO NOTHING RETURNING event_id"
    )
    return {r[0] for r in cursor.fetchall()}


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


def store_rows(
    partner_id: str,
    rows: list[dict[str, Any]],
    received_at: datetime,
    tz: str = "UTC",
    sums: Sums | None = None,
    rolled: RollupRows | None = None,
) -> int:
    """Insert validated rows (unique eventIds) and add the new ones to the rollups.

    Runs inside the caller's transaction. Rows whose eventId is already stored are skipped
    by the database itself (ON CONFLICT DO NOTHING), so concurrent writers cannot double
    count. Returns how many rows were new. tz is the partner's timezone, in which the day
    each event was received is counted (for the late-data figures of the reports).

    sums, when given, is sum_rows(rows) of rows already ordered by order_rows (the file
    import's reader process prepares both, and rolled, rollups.rollup_rows of sums); they
    are used only if every row turns out new.
    """
    if not rows:
        return 0
    if sums is None:
        order_rows(partner_id, rows, received_at)
    inserted = insert_new_events(rows)
    if not inserted:
        return 0
    if sums is None or len(inserted) != len(rows):
        sums = sum_rows(
            rows
            if len(inserted) == len(rows)
            else (row for row in rows if row["event_id"] in inserted)
        )
        rolled = None
    rollups.add(partner_id, sums, tz, rolled)
    return len(inserted)


def commit_rows(
    partner_id: str,
    rows: list[dict[str, Any]],
    now: datetime,
    tz: str,
    result: IngestResult,
    sums: Sums | None = None,
    params: list[tuple[Any, ...]] | None = None,
    before_commit: Callable[[int], None] | None = None,
    rolled: RollupRows | None = None,
) -> str:
    """Store prepared rows in one transaction; count them as accepted or duplicates.

    With params (SQLite, from the file import's reader process), those are stored
    instead of rows, and sums is required; rolled (rollups.rollup_rows of sums, also from
    the reader) saves this process from deriving the rollup rows. The rows were prepared
    with timezone tz; under the partner's lock they are re-bucketed if it has changed
    since. Returns the timezone the rows were stored with. before_commit, when given, is
    called inside the transaction with how many rows were new (the API call's audit entry
    commits with its events).
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
            rolled = None
        if params is not None:
            assert sums is not None
            stored = store_sqlite_params(partner_id, params, sums, tz, rolled)
        else:
            stored = store_rows(partner_id, rows, now, tz, sums, rolled)
        if stored:
            # The usage alerts this batch may have crossed, in its transaction (app/alerts.py).
            from .. import alerts

            batch_orgs = (
                {p[1] for p in params}
                if params is not None
                else {r["organization_id"] for r in rows}
            )
            alerts.evaluate_ingest(partner_id, batch_orgs)
        if before_commit is not None:
            before_commit(stored)
    result.accepted += stored
    result.duplicates += count - stored
    return tz


def rebucket_prepared(
    rows: list[dict[str, Any]], params: list[tuple[Any, ...]] | None, tz: str
) -> tuple[list[dict[str, Any]], list[tuple[Any, ...]] | None, Sums | None]:
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
        add_count(sums, (p[1], day, p[3], at), p[4], 1)
    return rows, moved, sums


def ingest_batch(
    partner: Partner,
    events: Iterable[tuple[int, Any]],
    resolver: OrgResolver | None = None,
    audited: bool = False,
) -> IngestResult:
    """Validate (position, raw event) pairs and store the valid ones in one transaction.

    A repeated eventId (inside the batch or already stored) is a duplicate and changes
    nothing. Either every accepted event of the batch is committed or none is. audited
    (the API's calls) adds one audit entry with the call's counts to that transaction,
    or, when no event of the call was valid, alone.
    """
    resolver = resolver or OrgResolver(partner.id)
    now = utcnow()
    result = IngestResult()
    rows = prepare_batch(events, resolver, partner.timezone, now, result)
    if not audited:
        commit_rows(partner.id, rows, now, partner.timezone, result)
        return result
    partner_id = partner.id
    earlier = result.duplicates  # repeated inside the call, counted by prepare_batch

    def note(stored: int) -> None:
        audit.record_ingest(
            partner_id,
            "ingest",
            "API call",
            {
                "received": len(rows) + earlier + len(result.rejected),
                "accepted": stored,
                "duplicates": earlier + len(rows) - stored,
                "rejected": len(result.rejected),
            },
        )

    if rows:
        commit_rows(partner_id, rows, now, partner.timezone, result, before_commit=note)
    else:
        with write_transaction():
            note(0)
    return result


def add_batch_result(
    total: IngestResult,
    lines: int,
    result: IngestResult,
    on_batch: Callable[[int, IngestResult], None] | None,
) -> None:
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
    with frozen_heap():
        for lines, batch in batches(pairs, batch_size):
            now = utcnow()
            result = IngestResult()
            rows = prepare_batch(batch, resolver, tz, now, result)
            tz = commit_waiting(
                partner_id, rows, now, tz, result, None, None, wait, batch[0][0], total
            )
            add_batch_result(total, lines, result, on_batch)
    return total


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Keep the garbage collector's full passes off the objects made before an import.

    A file import allocates millions of short-lived rows; each of the collector's full
    passes also walked the application's whole heap (Flask, SQLAlchemy, the models),
    about a quarter of an import's CPU (measured on the benchmark's CSV). Frozen objects
    are still freed normally once unreachable; only the cycle search skips them.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


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


def commit_waiting(
    partner_id: str,
    rows: list[dict[str, Any]],
    now: datetime,
    tz: str,
    result: IngestResult,
    sums: Sums | None,
    params: list[tuple[Any, ...]] | None,
    wait: float,
    first_line: int,
    total: IngestResult,
    rolled: RollupRows | None = None,
) -> str:
    """commit_rows, tried again while the partner is busy for up to wait seconds; then
    raise IngestStopped naming first_line (the batch's first line). Returns the timezone
    in force (the next batches are prepared with it)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return commit_rows(partner_id, rows, now, tz, result, sums, params, rolled=rolled)
        except PartnerBusy as exc:
            if time.monotonic() >= deadline:
                raise IngestStopped(first_line, total, exc.message) from exc
            time.sleep(_RETRY_PAUSE_SECONDS)


def batches(
    pairs: Iterable[tuple[int, Any]], batch_size: int
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
