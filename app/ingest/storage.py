"""Exactly-once storage of validated events, one transaction per batch under the partner's
shared lock, and the batching of a stream (the API's call, a file's batches).

It is one module of about 600 lines on purpose: the API's call (commit_rows), the
single-process import (ingest_stream) and the pipelined import's chunked batch
(store_chunked_batch) are three ways into the same few steps (the insert that skips stored
eventIds on each back end, the rows it held taken out of the rollups, the re-bucketing
after a timezone change, the alerts, the retry while the partner is busy), and all three
open their transaction through this module's partner_transaction. Split by caller, each
part would import the others' private insert and staging code.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import date, datetime
from functools import partial
from typing import Any, TypeVar

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
from ..rollups import RollupRows, Sums, add_count, rollup_rows, subtract_rows
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


_STAGE_COLUMNS = ", ".join(EVENT_COLUMNS)
# Staged rows into usage_event, in eventId order (every writer locks them in that order).
_MOVE_STAGED = (
    f"INSERT INTO usage_event ({_STAGE_COLUMNS}) SELECT {_STAGE_COLUMNS} "  # noqa: S608
    "FROM ingest_stage ORDER BY event_id ON CONFLICT (partner_id, event_id) DO NOTHING"
)


def _insert_postgresql(cursor: Any, rows: list[dict[str, Any]]) -> set[str]:
    _stage_postgresql(cursor, rows, fresh=True)
    cursor.execute(f"{_MOVE_STAGED} RETURNING event_id")
    return {r[0] for r in cursor.fetchall()}


def _stage_postgresql(cursor: Any, rows: list[dict[str, Any]], fresh: bool) -> None:
    """Copy rows into the connection's ingest_stage table (emptied first when fresh)."""
    # Created once per connection (a rolled-back transaction takes it away again);
    # asking is much cheaper than CREATE ... IF NOT EXISTS.
    cursor.execute("SELECT to_regclass('pg_temp.ingest_stage')")
    if cursor.fetchone()[0] is None:
        cursor.execute(
            "CREATE TEMP TABLE ingest_stage ON COMMIT DELETE ROWS AS "  # noqa: S608
            f"SELECT {_STAGE_COLUMNS} FROM usage_event WITH NO DATA"
        )
    elif fresh:
        cursor.execute("TRUNCATE ingest_stage")
    # Binary COPY: psycopg packs each value without formatting it as text first (about a
    # quarter of the client CPU of text COPY for these rows).
    with cursor.copy(
        f"COPY ingest_stage ({_STAGE_COLUMNS}) FROM STDIN (FORMAT BINARY)"  # noqa: S608
    ) as copy:
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


def _move_staged_postgresql(cursor: Any) -> list[tuple[Any, ...]]:
    """Insert the staged rows; return (eventId, organization, local day, type, received at,
    quantity) of each staged row whose eventId was already stored."""
    cursor.execute(
        f"WITH new AS ({_MOVE_STAGED} RETURNING event_id) "  # noqa: S608
        "SELECT event_id, organization_id, local_date, type, received_at, quantity "
        "FROM ingest_stage WHERE event_id NOT IN (SELECT event_id FROM new)"
    )
    return cursor.fetchall()


def order_rows(partner_id: str, rows: list[dict[str, Any]], received_at: datetime) -> None:
    """Complete rows with the partner and receipt time, and put them in eventId order.

    One order for every writer: two batches sharing eventIds in different orders would
    otherwise wait on each other's uncommitted rows (a deadlock on PostgreSQL).
    """
    for row in rows:
        row["partner_id"] = partner_id
        row.setdefault("received_at", received_at)
    rows.sort(key=lambda row: row["event_id"])


def sum_rows(rows: Iterable[dict[str, Any]], into: Sums | None = None) -> Sums:
    """Sum rows by (organization, day, type, received_at): the rollups derive from these
    few sums instead of row by row. With into, the rows are added to those sums."""
    sums: Sums = {} if into is None else into
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
) -> int:
    """Insert validated rows (unique eventIds) and add the new ones to the rollups.

    Runs inside the caller's transaction. Rows whose eventId is already stored are skipped
    by the database itself (ON CONFLICT DO NOTHING), so concurrent writers cannot double
    count. Returns how many rows were new. tz is the partner's timezone, in which the day
    each event was received is counted (for the late-data figures of the reports).
    """
    if not rows:
        return 0
    order_rows(partner_id, rows, received_at)
    inserted = insert_new_events(rows)
    if not inserted:
        return 0
    sums = sum_rows(
        rows if len(inserted) == len(rows) else (r for r in rows if r["event_id"] in inserted)
    )
    rollups.add(partner_id, sums, tz)
    return len(inserted)


def commit_rows(
    partner_id: str,
    rows: list[dict[str, Any]],
    now: datetime,
    tz: str,
    result: IngestResult,
    before_commit: Callable[[int], None] | None = None,
) -> str:
    """Store prepared rows in one transaction; count them as accepted or duplicates.

    The rows were prepared with timezone tz; under the partner's lock they are re-bucketed
    if it has changed since. Returns the timezone the rows were stored with. before_commit,
    when given, is called inside the transaction with how many rows were new (the API
    call's audit entry commits with its events).
    """
    if not rows:
        return tz
    with partner_transaction(partner_id) as current_tz:
        if current_tz != tz:
            # The timezone changed after these rows were prepared (their local days were
            # computed with the old one): recompute them with the one now in force.
            rows, _params, _sums = rebucket_prepared(rows, None, current_tz)
            tz = current_tz
        stored = store_rows(partner_id, rows, now, tz)
        if stored:
            # The usage alerts this batch may have crossed, in its transaction (app/alerts.py).
            from .. import alerts

            alerts.evaluate_ingest(partner_id, {r["organization_id"] for r in rows})
        if before_commit is not None:
            before_commit(stored)
    result.accepted += stored
    result.duplicates += len(rows) - stored
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
            tz = retry_while_busy(
                partial(commit_rows, partner_id, rows, now, tz, result),
                wait,
                batch[0][0],
                total,
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


T = TypeVar("T")


def retry_while_busy(
    attempt: Callable[[], T], wait: float, first_line: int, total: IngestResult
) -> T:
    """Call attempt, again while the partner is busy (PartnerBusy) for up to wait seconds;
    then raise IngestStopped naming first_line, the first line of the batch it stores."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return attempt()
        except PartnerBusy as exc:
            if time.monotonic() >= deadline:
                raise IngestStopped(first_line, total, exc.message) from exc
            time.sleep(_RETRY_PAUSE_SECONDS)


def batches(
    pairs: Iterable[tuple[int, Any]], batch_size: int
) -> Iterator[tuple[int, list[tuple[int, Any]]]]:
    """Yield (lines read so far, the next batch of at most batch_size pairs)."""
    for lines, batch, _ends in chunks(pairs, batch_size, batch_size):
        yield lines, batch


def chunks(
    pairs: Iterable[tuple[int, Any]], batch_size: int, chunk_size: int
) -> Iterator[tuple[int, list[tuple[int, Any]], bool]]:
    """Yield (lines read so far, the next chunk of at most chunk_size pairs, whether it
    ends a batch): batches of exactly batch_size pairs (the last one shorter), each cut
    into chunks."""
    chunk: list[tuple[int, Any]] = []
    lines = 0
    in_batch = 0
    # A full chunk waits for the next pair: if none comes, it ends the last batch.
    waiting: tuple[int, list[tuple[int, Any]]] | None = None
    for pair in pairs:
        if waiting is not None:
            yield waiting[0], waiting[1], False
            waiting = None
        chunk.append(pair)
        lines += 1
        in_batch += 1
        if in_batch == batch_size:
            yield lines, chunk, True
            chunk = []
            in_batch = 0
        elif len(chunk) >= chunk_size:
            waiting = (lines, chunk)
            chunk = []
    if waiting is not None:
        yield waiting[0], waiting[1], True
    elif chunk:
        yield lines, chunk, True


# The parts of a pipelined file import's batch, as its reader process sends them:
# ("chunk", Chunk) for each chunk of prepared rows (lines read so far, the chunk's first
# line, its rows or, on SQLite, their parameters instead, its result), then ("end",
# the rollup rows of the whole batch, None if it has no rows).
Chunk = tuple[int, int, list[dict[str, Any]], list[tuple[Any, ...]] | None, IngestResult]
Part = tuple[str, Any]


def store_chunked_batch(
    partner_id: str,
    tz: str,
    first: Chunk,
    rest: Iterator[Part],
    wait: float,
    total: IngestResult,
) -> tuple[str, list[tuple[int, IngestResult]]]:
    """Store one batch of a pipelined file import in one transaction, from its first
    chunk and the parts that follow in rest, up to the batch's end.

    The transaction begins (waiting while the partner is busy, as retry_while_busy)
    before the first chunk is stored, and each chunk is stored as it arrives, while the
    reader prepares the next one; the rollups are added once, from the rollup rows of the
    whole batch (made by the reader), less the rows the database already held. An error
    (the reader's too) rolls the whole batch back. Returns the timezone the rows were
    stored with and each chunk's (lines read, result), for the caller to report once
    the batch is committed.
    """
    with ExitStack() as stack:
        stored_tz = retry_while_busy(
            lambda: stack.enter_context(partner_transaction(partner_id)), wait, first[1], total
        )
        batch = _ChunkedBatch(partner_id, tz, stored_tz)
        batch.add(*first)
        for kind, payload in rest:
            if kind == "end":
                batch.finish(payload)
                break
            batch.add(*payload)
        else:
            raise RuntimeError("the file reader process ended a batch without its end")
    return stored_tz, batch.results


class _ChunkedBatch:
    """What store_chunked_batch keeps while a batch's chunks arrive."""

    def __init__(self, partner_id: str, tz: str, stored_tz: str) -> None:
        self.partner_id = partner_id
        self.tz = stored_tz
        # The timezone changed after the reader prepared the rows (with tz): their local
        # days are recomputed here, and so are the sums.
        self.own_sums: Sums | None = None if stored_tz == tz else {}
        self.held: Sums = {}  # the sums of the rows the database already held
        self.organizations: set[str] = set()
        self.results: list[tuple[int, IngestResult]] = []
        # PostgreSQL: the batch's eventIds, each with its chunk, staged for one INSERT.
        self.staged: dict[str, int] | None = None if dialect_name() == "sqlite" else {}

    def add(
        self,
        lines: int,
        _first_line: int,
        rows: list[dict[str, Any]],
        params: list[tuple[Any, ...]] | None,
        result: IngestResult,
    ) -> None:
        if self.own_sums is not None:
            rows, params, sums = rebucket_prepared(rows, params, self.tz)
            for key, (quantity, events) in (sums or sum_rows(rows)).items():
                add_count(self.own_sums, key, quantity, events)
        index = len(self.results)
        self.results.append((lines, result))
        if params is not None:  # SQLite: the rows are stored now
            self.organizations.update(p[1] for p in params)
            inserted = _insert_sqlite(params) if params else set()
            result.accepted += len(inserted)
            result.duplicates += len(params) - len(inserted)
            if len(inserted) != len(params):
                for p in params:
                    if p[2] not in inserted:
                        key = (p[1], date.fromisoformat(p[6]), p[3], datetime.fromisoformat(p[7]))
                        add_count(self.held, key, p[4], 1)
            return
        # PostgreSQL: staged now, stored in eventId order at the end (one order for every
        # writer); an eventId of an earlier chunk of the batch is a duplicate already.
        assert self.staged is not None
        fresh = []
        for row in rows:
            if row["event_id"] in self.staged:
                result.duplicates += 1
                key = (row["organization_id"], row["local_date"], row["type"], row["received_at"])
                add_count(self.held, key, row["quantity"], 1)
            else:
                self.staged[row["event_id"]] = index
                fresh.append(row)
        self.organizations.update(r["organization_id"] for r in fresh)
        result.accepted += len(fresh)
        with raw_cursor() as cursor:
            _stage_postgresql(cursor, fresh, fresh=index == 0)

    def finish(self, rolled: RollupRows | None) -> None:
        if self.staged:
            with raw_cursor() as cursor:
                held_rows = _move_staged_postgresql(cursor)
            for event_id, org_id, day, etype, received_at, quantity in held_rows:
                _lines, result = self.results[self.staged[event_id]]
                result.accepted -= 1
                result.duplicates += 1
                add_count(self.held, (org_id, day, etype, received_at), quantity, 1)
        if not any(result.accepted for _lines, result in self.results):
            return
        if self.own_sums is not None:  # re-bucketed: the reader's rows do not apply
            sums = self.own_sums
            for key, (quantity, events) in self.held.items():
                add_count(sums, key, -quantity, -events)
            rollups.add(self.partner_id, {k: v for k, v in sums.items() if v[1]}, self.tz)
        else:
            assert rolled is not None, "a batch with stored rows has rollup rows"
            if self.held:
                rolled = subtract_rows(rolled, rollup_rows(self.partner_id, self.held, self.tz))
            rollups.add(self.partner_id, {}, self.tz, rolled)
        # The usage alerts this batch may have crossed, in its transaction (app/alerts.py).
        from .. import alerts

        alerts.evaluate_ingest(self.partner_id, self.organizations)
