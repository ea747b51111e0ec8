"""How long a timezone change, a rollup rebuild and a verify take, per million events.

    .venv/bin/python -m bench.rebucket                 # 1,000,000 events, both back ends
    .venv/bin/python -m bench.rebucket --events 200000 --backend sqlite

Loads the events into a fresh database (SQLite in bench/data/, PostgreSQL in a throwaway
database on BENCH_PG_URL's server, dropped afterwards), then times `set-timezone`
(UTC -> Asia/Kathmandu, +05:45: about a quarter of the events change day), `rollups
rebuild` and `rollups verify` through the same functions the commands call. The partner's
ingestion waits for the first two (they hold its lock): the figures say for how long.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from . import dataset

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DATA = Path(__file__).resolve().parent / "data"


def _events(orgs: list[str], count: int, seed: int) -> Any:
    rng = random.Random(seed)
    start = datetime(2025, 1, 1)
    for i in range(count):
        at = start + timedelta(seconds=rng.randrange(365 * 86400))
        yield (
            i + 1,
            {
                "eventId": f"r{i}",
                "organizationId": orgs[i % len(orgs)],
                "type": "identification" if i % 3 else "page_view",
                "quantity": 1 + i % 4,
                "occurredAt": at.isoformat() + "Z",
            },
        )


def measure(backend: str, url: str, events: int) -> dict[str, float]:
    """Load events, then time set-timezone, rebuild and verify; return seconds each."""
    from app import accounts, ingest, rollups
    from app.extensions import db
    from app.timeutil import set_frozen_now

    dataset.init_schema(url)
    app = dataset.make_app(url, LOCK_TIMEOUT=60)
    with app.app_context():
        set_frozen_now(datetime(2026, 1, 1))
        partner = accounts.create_partner("Rebucket", "rebucket", 10**9, 1, "monthly", "UTC")
        orgs = [accounts.create_organization(partner, f"Org {i}").id for i in range(100)]
        started = time.perf_counter()
        result = ingest.ingest_stream(partner, _events(orgs, events, 7), 20000)
        load = time.perf_counter() - started
        assert result.accepted == events, result
        figures = {"load_s": load}
        started = time.perf_counter()
        moved = rollups.set_timezone(db.session.get(type(partner), partner.id), "Asia/Kathmandu")
        figures["set_timezone_s"] = time.perf_counter() - started
        figures["moved"] = moved
        started = time.perf_counter()
        rollups.rebuild(partner.id)
        figures["rebuild_s"] = time.perf_counter() - started
        started = time.perf_counter()
        problems = rollups.verify(partner.id)
        figures["verify_s"] = time.perf_counter() - started
        assert problems == [], problems[:5]
        set_frozen_now(None)
        db.session.remove()
        db.engine.dispose()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args(argv)
    pg_server = os.environ.get("BENCH_PG_URL", PG_DEFAULT)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    DATA.mkdir(parents=True, exist_ok=True)
    print(f"events: {args.events:,} (100 organizations, one year)")
    print(
        "| back end | load | set-timezone (events moved) | rollups rebuild | rollups verify |"
        " set-timezone per 1M |"
    )
    print("|---|---|---|---|---|---|")
    for backend in backends:
        with dataset.database(backend, pg_server, DATA) as url:
            f = measure(backend, url, args.events)
        per_million = f["set_timezone_s"] * 1_000_000 / args.events
        print(
            f"| {backend} | {f['load_s']:.1f} s | {f['set_timezone_s']:.1f} s "
            f"({int(f['moved']):,}) | {f['rebuild_s']:.1f} s | {f['verify_s']:.1f} s | "
            f"{per_million:.1f} s |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
