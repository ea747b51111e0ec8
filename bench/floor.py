"""The storage engine's own insert rate for usage_event's row shape: the ceiling of ingest.

Rows already formatted, no CSV parsing, no validation, no rollups: only the statement the
importer uses to store events, into a scratch copy of usage_event (same columns, primary
key and unique (partner_id, event_id) index; the events in eventId order within a batch,
5,000 rows a transaction). Run in the benchmark's own database and dropped afterwards,
it tells how far the ingest figure is from what the database itself allows here.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import create_engine

from app.ingest.storage import EVENT_COLUMNS, PG_EVENT_TYPES

# The app's own row shape: the floor measures exactly what ingestion stores.
COLUMNS = EVENT_COLUMNS
TYPES = PG_EVENT_TYPES


def _rows(count: int, integer_keys: bool = False) -> list[tuple[Any, ...]]:
    partner: Any = str(uuid.UUID(int=1))
    orgs: list[Any] = [str(uuid.UUID(int=1000 + i)) for i in range(1000)]
    if integer_keys:  # what surrogate keys for partner and organization would store
        partner, orgs = 1, list(range(1000, 2000))
    start, received = datetime(2025, 1, 1), datetime(2026, 1, 1, 12)
    kinds = ("identification", "page_view", "session")
    out = []
    for i in range(count):
        moment = start + timedelta(seconds=(i * 3163) % (365 * 86400))
        out.append(
            (
                partner,
                orgs[i % 1000],
                f"floor_{i:09d}",
                kinds[i % 3],
                1 + i % 3,
                moment,
                moment.date(),
                received,
            )
        )
    return out


def _sqlite(url: str, rows: list[tuple[Any, ...]], batch: int, key_type: str) -> float:
    import sqlite3

    path = url.removeprefix("sqlite:///")
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA cache_size=-32768")
        conn.execute("DROP TABLE IF EXISTS floor_event")
        conn.execute(
            f"CREATE TABLE floor_event (id INTEGER PRIMARY KEY, partner_id {key_type}, "  # noqa: S608
            f"organization_id {key_type}, event_id VARCHAR(255), type VARCHAR(64), "
            "quantity BIGINT, occurred_at DATETIME, local_date DATE, received_at DATETIME, "
            "UNIQUE (partner_id, event_id))"
        )
        text_rows = [
            (
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                r[5].isoformat(" ", "microseconds"),
                r[6].isoformat(),
                r[7].isoformat(" ", "microseconds"),
            )
            for r in rows
        ]
        sql = (
            f"INSERT INTO floor_event ({', '.join(COLUMNS)}) VALUES "  # noqa: S608
            f"({', '.join('?' for _ in COLUMNS)}) "
            "ON CONFLICT (partner_id, event_id) DO NOTHING"
        )
        start = time.perf_counter()
        for i in range(0, len(text_rows), batch):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(sql, text_rows[i : i + batch])
            conn.execute("COMMIT")
        seconds = time.perf_counter() - start
        conn.execute("DROP TABLE floor_event")
        return seconds
    finally:
        conn.close()


def _postgresql(url: str, rows: list[tuple[Any, ...]], batch: int, key_type: str) -> float:
    engine = create_engine(url)
    try:
        conn = engine.raw_connection()
        try:
            cur = conn.cursor()
            cur.execute("DROP TABLE IF EXISTS floor_event")
            cur.execute(
                f"CREATE TABLE floor_event (id BIGSERIAL PRIMARY KEY, partner_id {key_type}, "  # noqa: S608
                f"organization_id {key_type}, event_id VARCHAR(255), type VARCHAR(64), "
                "quantity BIGINT, occurred_at TIMESTAMP, local_date DATE, "
                "received_at TIMESTAMP, UNIQUE (partner_id, event_id))"
            )
            cur.execute(
                f"CREATE TEMP TABLE floor_stage ON COMMIT DELETE ROWS AS SELECT "  # noqa: S608
                f"{', '.join(COLUMNS)} FROM floor_event WITH NO DATA"
            )
            conn.commit()
            cols = ", ".join(COLUMNS)
            types = TYPES if key_type.startswith("VARCHAR") else ["int8", "int8", *TYPES[2:]]
            start = time.perf_counter()
            for i in range(0, len(rows), batch):
                with cur.copy(f"COPY floor_stage ({cols}) FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(types)
                    for row in rows[i : i + batch]:
                        copy.write_row(row)
                cur.execute(
                    f"INSERT INTO floor_event ({cols}) SELECT {cols} FROM floor_stage "  # noqa: S608
                    "ORDER BY event_id ON CONFLICT (partner_id, event_id) DO NOTHING "
                    "RETURNING event_id"
                )
                cur.fetchall()
                conn.commit()
            seconds = time.perf_counter() - start
            cur.execute("DROP TABLE floor_event")
            conn.commit()
            return seconds
        finally:
            conn.close()
    finally:
        engine.dispose()


def storage_floor(
    url: str, count: int = 300_000, batch: int = 5000, integer_keys: bool = False
) -> dict[str, Any]:
    """Insert count rows the way the importer stores them; return rows per second.

    integer_keys: partner and organization as integers (BIGINT) instead of 36-character
    ids, what surrogate keys would store: the potential of that schema change.
    """
    rows = _rows(count, integer_keys)
    rows.sort(key=lambda r: r[2])
    key_type = "BIGINT" if integer_keys else "VARCHAR(36)"
    start_cpu = time.process_time()
    store = _sqlite if url.startswith("sqlite") else _postgresql
    seconds = store(url, rows, batch, key_type)
    return {
        "rows": count,
        "seconds": seconds,
        "rows_per_s": count / seconds,
        "client_cpu_s": time.process_time() - start_cpu,
    }
