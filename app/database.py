"""Engine setup for SQLite and PostgreSQL, write transactions and portable upserts."""

from __future__ import annotations

import contextvars
import hashlib
import math
import select as io_select
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from flask import Flask, current_app
from sqlalchemy import (
    BigInteger,
    Date,
    Integer,
    String,
    cast,
    event,
    func,
    literal,
    text,
)
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session

from .errors import ServiceUnavailable
from .extensions import db

_immediate = contextvars.ContextVar("immediate_begin", default=False)
# A wait for SQLite's write lock shorter than the connection's busy timeout, for the
# next BEGIN (partner_transaction sets it to LOCK_TIMEOUT).
_begin_wait_ms: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "sqlite_begin_wait_ms", default=None
)
SQLITE_CACHE_KB = 65536
SQLITE_BUSY_TIMEOUT_MS = 30000


def _configure_sqlite(dbapi_conn: Any, _record: Any) -> None:
    """Give SQLite connections WAL, a busy timeout, foreign keys and explicit BEGINs."""
    if not isinstance(dbapi_conn, sqlite3.Connection):
        return
    # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own is unreliable).
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    # The 2 MB default page cache thrashes once the rollups and the event indexes
    # outgrow it (bulk ingest ran 3x slower; with 32 MB an uncached 365-day summary grew
    # from 4.7 ms at 1M events to 8.4 ms at 10M). 64 MB is an upper bound, filled only by
    # pages really read; a file import uses less (SQLITE_IMPORT_CACHE_KB in app/cli.py).
    cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KB}")
    cursor.close()
    # SQLite's lower() folds ASCII letters only, so ILIKE searches missed "ZOË" in "Zoë";
    # Python's str.lower folds like PostgreSQL's lower() in a UTF-8 database.
    dbapi_conn.create_function("lower", 1, _unicode_lower, deterministic=True)


def _drop_closed_postgresql_connections(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    """Refuse a pooled PostgreSQL connection the server has closed, without a round trip.

    An idle connection has nothing to read: if its socket is readable, the server sent
    its goodbye (a restart, pg_terminate_backend, an idle timeout) or is gone, and the
    pool replaces it with a new one (DisconnectionError). This replaces pool_pre_ping,
    which cost every request three more round trips (BEGIN, SELECT 1, ROLLBACK).
    """
    pgconn = getattr(dbapi_conn, "pgconn", None)
    if pgconn is None:
        return
    if dbapi_conn.closed or pgconn.status != 0:  # 0 is CONNECTION_OK
        raise DisconnectionError("the PostgreSQL connection is closed")
    try:
        readable, _, _ = io_select.select([pgconn.socket], [], [], 0)
    except (OSError, ValueError) as exc:
        raise DisconnectionError(f"the PostgreSQL connection is unusable: {exc}") from exc
    if readable:
        raise DisconnectionError("the PostgreSQL server closed this idle connection")


def _unicode_lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _begin_sqlite(conn: Any) -> None:
    """Open SQLite transactions, taking the write lock up front inside write_transaction()."""
    if conn.dialect.name == "sqlite":
        immediate = _immediate.get()
        wait_ms = _begin_wait_ms.get() if immediate else None
        if wait_ms is not None:
            conn.exec_driver_sql(f"PRAGMA busy_timeout={int(wait_ms)}")
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
        finally:
            if wait_ms is not None:
                conn.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        conn.info["sqlite_write_lock"] = immediate
        conn.info["sqlite_wrote"] = False


_READ_ONLY = ("SELECT", "PRAGMA", "BEGIN", "WITH", "EXPLAIN")


def _note_sqlite_write(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
    """Remember that a deferred SQLite transaction has written (it holds the write lock)."""
    if (
        conn.dialect.name == "sqlite"
        and not conn.info.get("sqlite_write_lock")
        and not statement.lstrip().upper().startswith(_READ_ONLY)
    ):
        conn.info["sqlite_wrote"] = True


def _take_sqlite_write_lock(session: Session, _context: Any, _instances: Any) -> None:
    """Before an ORM flush in a read transaction, trade it for one holding the write lock.

    A deferred SQLite transaction that read and then writes fails at once with "database
    is locked" when another connection committed in between (WAL cannot upgrade a stale
    snapshot; the busy timeout does not apply). A transaction that has only read can end
    and restart with BEGIN IMMEDIATE, which queues behind the busy timeout instead. Reads
    made before this point are not repeatable afterwards, as under PostgreSQL's default
    READ COMMITTED; rules that need a stable read take the lock first (write_transaction).
    """
    if session.get_bind().dialect.name != "sqlite":
        return
    conn = session.connection()
    if conn.info.get("sqlite_write_lock") or conn.info.get("sqlite_wrote"):
        return
    conn.exec_driver_sql("COMMIT")
    conn.exec_driver_sql("BEGIN IMMEDIATE")
    conn.info["sqlite_write_lock"] = True


def init_app(app: Flask) -> None:
    """Bind the listeners to the app's engine (and, once, to the ORM Session class).

    SQLite connections get their settings and explicit BEGINs; PostgreSQL connections the
    server closed are dropped at checkout.
    """
    with app.app_context():
        engine = db.engine
    for name, listener in (
        ("connect", _configure_sqlite),
        ("checkout", _drop_closed_postgresql_connections),
        ("begin", _begin_sqlite),
        ("before_cursor_execute", _note_sqlite_write),
    ):
        if not event.contains(engine, name, listener):
            event.listen(engine, name, listener)
    if not event.contains(Session, "before_flush", _take_sqlite_write_lock):
        event.listen(Session, "before_flush", _take_sqlite_write_lock)


@contextmanager
def write_transaction() -> Iterator[None]:
    """Run the block in one transaction that commits at the end or rolls back on error.

    On SQLite the transaction takes the write lock when it begins, so two writers queue
    behind the busy timeout instead of failing with "database is locked" mid-way.
    """
    session = db.session()
    if session.in_transaction():
        session.commit()
    token = _immediate.set(True)
    try:
        yield
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        _immediate.reset(token)


class PartnerBusy(ServiceUnavailable):
    """The partner's lock was not had within LOCK_TIMEOUT: nothing was changed."""

    def __init__(self, timeout: float) -> None:
        super().__init__(
            f"this partner's data stayed locked for more than {timeout:g} s (a timezone "
            "change or a rollup rebuild re-buckets it, or other writes queue before this "
            "one); nothing was changed: retry in a moment",
            retry_after=max(1, math.ceil(timeout)),
        )


def partner_lock_key(partner_id: str) -> int:
    """Return the PostgreSQL advisory lock key (a signed 64-bit int) of a partner."""
    digest = hashlib.sha256(f"partner-analytics:partner:{partner_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def lock_wait_expired(exc: BaseException) -> bool:
    """Tell whether exc is a lock wait that ran out of time (SQLite busy, PostgreSQL 55P03)."""
    orig = getattr(exc, "orig", None) or exc
    if isinstance(orig, sqlite3.OperationalError):
        return "database is locked" in str(orig)
    return getattr(orig, "sqlstate", None) == "55P03"


@contextmanager
def partner_transaction(
    partner_id: str, *, exclusive: bool = False, timeout: float | None = None
) -> Iterator[str]:
    """Run the block in a write_transaction holding the partner's lock; yield its timezone.

    Ingestion takes the lock shared, so parallel ingests run in parallel; a timezone
    change and a rollup rebuild take it exclusive, so they see no event arrive while they
    re-bucket and recount, and no ingest stores a day computed with a timezone they are
    replacing. PostgreSQL: a transaction-scoped advisory lock on the partner. SQLite: the
    database's write lock (BEGIN IMMEDIATE), which every writer holds alone anyway. The
    timezone is read after the lock is had, so it is the one in force until the commit.

    A wait longer than timeout (default LOCK_TIMEOUT) raises PartnerBusy, a 503 with
    Retry-After, and nothing is changed.
    """
    if timeout is None:
        timeout = float(current_app.config.get("LOCK_TIMEOUT", 5.0))
    wait_ms = max(1, int(timeout * 1000))
    with write_transaction():
        token = _begin_wait_ms.set(wait_ms)
        try:
            tz = _lock_partner(partner_id, exclusive, wait_ms)
        except Exception as exc:
            if lock_wait_expired(exc):
                raise PartnerBusy(timeout) from exc
            raise
        finally:
            _begin_wait_ms.reset(token)
        yield tz


def _lock_partner(partner_id: str, exclusive: bool, wait_ms: int) -> str:
    """Take the partner's lock in the current transaction; return its timezone."""
    if dialect_name() != "postgresql":
        # The BEGIN IMMEDIATE of this write transaction is the lock.
        found = db.session.execute(
            text("SELECT timezone FROM partner WHERE id = :p"), {"p": partner_id}
        ).scalar()
    else:
        from psycopg import sql

        function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        # One round trip: each statement of a simple query takes its own snapshot, so the
        # timezone is read after the lock is had (a change committed meanwhile is seen).
        statement = sql.SQL(
            "SET LOCAL lock_timeout = {wait}; SELECT {function}({key}); "
            "SET LOCAL lock_timeout TO DEFAULT; SELECT timezone FROM partner WHERE id = {p}"
        ).format(
            wait=sql.Literal(f"{wait_ms}ms"),
            function=sql.Identifier(function),
            key=sql.Literal(partner_lock_key(partner_id)),
            p=sql.Literal(partner_id),
        )
        with raw_cursor() as cursor:
            cursor.execute(statement)
            while cursor.nextset():
                pass
            row = cursor.fetchone()
            found = row[0] if row else None
    if found is None:
        raise LookupError(f"no partner with id {partner_id}")
    return str(found)


def dialect_name() -> str:
    """Return the name of the dialect the session talks to (sqlite or postgresql)."""
    return db.session.get_bind().dialect.name


def bucket_start_sql(day_col: Any, granularity: str) -> Any:
    """Return SQL giving the (unclipped) bucket start of a day column."""
    if granularity == "day":
        return day_col
    if dialect_name() == "postgresql":
        return cast(func.date_trunc(granularity, day_col), Date)
    if granularity == "week":
        # Monday-based: step back (weekday + 6) % 7 days; %w is 0 for Sunday.
        offset = (cast(func.strftime("%w", day_col), db.Integer) + 6) % 7
        return func.date(day_col, literal("-") + cast(offset, db.String) + literal(" days"))
    return func.strftime("%Y-%m-01", day_col)


@contextmanager
def raw_cursor() -> Iterator[Any]:
    """Yield a DBAPI cursor on the session's connection (the caller's transaction)."""
    cursor = db.session.connection().connection.cursor()
    try:
        yield cursor
    finally:
        cursor.close()


_PG_ARRAY_TYPES = {String: "text[]", Integer: "bigint[]", BigInteger: "bigint[]", Date: "date[]"}


def add_counts(
    table: Any,
    columns: Sequence[str],
    key_length: int,
    rows: list[tuple[Any, ...]],
    added: Sequence[str] = ("quantity", "events"),
    combine: str = "+",
) -> None:
    """Upsert rows, adding their counts (the added columns) to any existing row with the
    same key (or OR-ing them, with combine "|": bitmaps).

    rows are tuples in columns order, in key order; their first key_length values are the
    key, unique among rows. Dates are ISO text, as SQLAlchemy stores them on SQLite
    (PostgreSQL casts them). One statement on the raw DBAPI cursor: SQLAlchemy's per-row
    parameter processing cost more than the upsert itself for bulk ingestion. Rows in
    key order make concurrent writers lock rollup rows in the same order (no deadlock).
    """
    if not rows:
        return
    name = table.name
    names = ", ".join(columns)
    upsert = f"ON CONFLICT ({', '.join(columns[:key_length])}) DO UPDATE SET " + ", ".join(
        f'{c} = "{name}".{c} {combine} excluded.{c}' for c in added
    )
    if combine == "|":
        # Bits already set change nothing: leave such rows unwritten (no new row version).
        upsert += " WHERE " + " OR ".join(
            f'("{name}".{c} | excluded.{c}) <> "{name}".{c}' for c in added
        )
    with raw_cursor() as cursor:
        if dialect_name() == "postgresql":
            # One array per column, unnested: one statement instead of one per row (a
            # pipelined executemany) made the rollup upkeep about ten times cheaper. The
            # arrays go in binary (%b): 10-15 % more events/s than as text.
            arrays = ", ".join(f"%b::{_PG_ARRAY_TYPES[type(table.c[c].type)]}" for c in columns)
            cursor.execute(
                f'INSERT INTO "{name}" ({names}) SELECT {names} '  # noqa: S608
                f"FROM unnest({arrays}) AS u({names}) "
                f"ORDER BY {', '.join(columns[:key_length])} {upsert}",
                [list(values) for values in zip(*rows, strict=True)],
            )
        else:
            cursor.executemany(
                f'INSERT INTO "{name}" ({names}) '  # noqa: S608
                f"VALUES ({', '.join('?' for _ in columns)}) {upsert}",
                rows,
            )
