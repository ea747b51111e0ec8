"""Bulk ingestion over HTTP: gzip NDJSON batches of 1,000 events through gunicorn.

    .venv/bin/python -m bench.bulk [--backend sqlite|postgresql] [--workers 2]
                                   [--batches 200] [--connections 4]

A fresh database (as bench/load.py makes it) gets one partner with 20 organizations and no
history. The batches are built and gzip-compressed before the clock starts (each 1,000
new events, a year of random times, across the 20 organizations), so the figure is the
server's: --connections client threads post them, each `POST /api/v1/partner/events` with
`Content-Type: application/x-ndjson` and `Content-Encoding: gzip`, to gunicorn with
--workers sync workers (started as bench/load.py does: in-memory rate limits, set out of
reach). Every answer must be 200 with accepted = 1,000; the stored events are counted
after. Prints events/s, the request latency and the load average (the client runs on the
same machine: on two cores it takes part of them).
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import random
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.load import ROOT, Database, percentile, seed, start_gunicorn, stop_gunicorn

BATCH = 1000
TYPES = ("identification", "page_view", "session")


def build_batches(count: int, orgs: list[str]) -> list[bytes]:
    """Return count gzip NDJSON bodies of BATCH new events each."""
    rng = random.Random(7)
    now = datetime.now(UTC).replace(tzinfo=None)
    bodies = []
    for b in range(count):
        lines = []
        for i in range(BATCH):
            occurred = now - timedelta(seconds=rng.randrange(3600, 365 * 86400))
            event = {
                "eventId": f"bulk-{b}-{i}",
                "organizationId": rng.choice(orgs),
                "type": rng.choice(TYPES),
                "quantity": rng.randrange(1, 5),
                "occurredAt": occurred.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            lines.append(json.dumps(event, separators=(",", ":")))
        bodies.append(gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=6))
    return bodies


class Sender(threading.Thread):
    """Posts the batches it takes from the shared list; records latency and errors."""

    def __init__(self, port: int, key: str, batches: list[bytes], lock: threading.Lock) -> None:
        super().__init__(daemon=True)
        self.port, self.key, self.batches, self.lock = port, key, batches, lock
        self.latency: list[float] = []
        self.errors: list[str] = []
        self.accepted = 0

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        while True:
            with self.lock:
                if not self.batches:
                    break
                body = self.batches.pop()
            headers = {
                "X-Partner-API-Key": self.key,
                "Content-Type": "application/x-ndjson",
                "Content-Encoding": "gzip",
            }
            began = time.monotonic()
            try:
                conn.request("POST", "/api/v1/partner/events", body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException):
                # gunicorn's sync workers close the connection after each answer.
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
                conn.request("POST", "/api/v1/partner/events", body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
            self.latency.append(time.monotonic() - began)
            if response.status != 200:
                self.errors.append(f"{response.status}: {data[:200]!r}")
                continue
            answer: dict[str, Any] = json.loads(data)
            self.accepted += answer["accepted"]
            if answer["accepted"] != BATCH:
                self.errors.append(f"accepted {answer['accepted']}: {answer['rejected'][:2]}")
        conn.close()


def stored_events(url: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM usage_event")).scalar_one()
    engine.dispose()
    return int(count)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=4, help="batches sent before timing")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    database = Database(args.backend)
    server = None
    try:
        seeded = seed(database.url, 0)
        bodies = build_batches(args.batches + args.warmup, seeded["orgs"])
        size = sum(len(b) for b in bodies) / len(bodies)
        print(
            f"{args.backend}: {args.batches} gzip NDJSON batches of {BATCH:,} events "
            f"({size / 1024:.0f} KiB each compressed), {args.connections} connections, "
            f"{args.workers} gunicorn workers",
            flush=True,
        )
        server, port = start_gunicorn(database.url, args.workers)
        lock = threading.Lock()
        # Warm-up: each worker imports and connects before the clock starts.
        warm = Sender(port, seeded["key"], bodies[args.batches :], lock)
        warm.run()
        timed = bodies[: args.batches]
        senders = [Sender(port, seeded["key"], timed, lock) for _ in range(args.connections)]
        load_before = os.getloadavg()
        began = time.monotonic()
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        elapsed = time.monotonic() - began
        load_after = os.getloadavg()
        stop_gunicorn(server)
        server = None

        errors = warm.errors + [e for s in senders for e in s.errors]
        accepted = sum(s.accepted for s in senders)
        latency = [x for s in senders for x in s.latency]
        stored = stored_events(database.url)
        expected = (args.batches + args.warmup) * BATCH
        print(
            f"{accepted:,} events in {elapsed:.2f} s = {accepted / elapsed:,.0f} events/s "
            f"({len(latency) / elapsed:.1f} requests/s)"
        )
        print(
            f"latency p50 {percentile(latency, 0.5) * 1000:.0f} ms, "
            f"p95 {percentile(latency, 0.95) * 1000:.0f} ms; "
            f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after "
            f"({os.cpu_count()} cores)"
        )
        print(f"stored {stored:,} of {expected:,}; errors: {len(errors)}")
        for error in errors[:5]:
            print("  ", error)
        return 0 if not errors and stored == expected else 1
    finally:
        if server is not None:
            stop_gunicorn(server)
        database.drop()


if __name__ == "__main__":
    raise SystemExit(main())
