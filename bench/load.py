"""`make load`: gunicorn under a bounded mixed load, then a recount of everything it stored.

    .venv/bin/python -m bench.load [--backend sqlite|postgresql] [--duration 60]
                                   [--connections 16] [--workers N]

A fresh database (a SQLite file, or a PostgreSQL database created for the run and dropped
after it) gets one partner with 20 organizations and a year of history (50,000 events).
gunicorn serves it on 127.0.0.1 (a free port of 5501-5509). For --duration seconds,
--connections client threads each loop over a weighted mix: 70 % reads (analytics with and
without comparison, usage, time series, the organization breakdown and list with search,
one organization's analytics, billing, billing usage) and 30 % batched writes (POST
/partner/events with 200 events, 10 % of them re-sends of events this thread already had
acknowledged). Every answer is checked: a read must be 200, a write must be 200 with
accepted = new events and duplicates = re-sends.

With --operator, an operator works on the live partner meanwhile: `flask set-timezone`
(cycling through Asia/Kathmandu, America/New_York, Pacific/Chatham, Europe/Paris) and
`flask rollups rebuild`, one every --operator-pause seconds. A write that meets one of them
may wait (LOCK_TIMEOUT) and then answer 503 with Retry-After: the client waits that long
and sends the same batch again, as a partner's client would; every command must exit 0.

Then the server stops and the run checks: no error of any kind, every acknowledged event
stored exactly once (a raw count), the per-type totals equal the client's own sums, and
`flask rollups verify` (every rollup row against a recount of the raw events, and every
event's local day against the partner's final timezone) exits 0. Exit status 0 only when
all of that holds. Figures are printed (docs/reliability.md).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
PORTS = range(5501, 5510)
# gunicorn refuses a SECRET_KEY under 32 bytes.
LOAD_SECRET_KEY = "load-test-" + "0" * 32
TYPES = ("identification", "page_view", "session")
BATCH = 200
DUPLICATE_SHARE = 0.10
WRITE_SHARE = 0.30


def free_port() -> int:
    for port in PORTS:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise SystemExit("no free port in 5501-5509")


class Database:
    """A throwaway database for the run (PostgreSQL: tests.support.scratch_postgres_database)."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.tmp = Path(tempfile.mkdtemp(prefix="pa_load_"))
        self._scratch = contextlib.ExitStack()
        if backend == "sqlite":
            self.url = f"sqlite:///{self.tmp / 'load.sqlite3'}"
            return
        from tests.support import scratch_postgres_database

        server = (
            os.environ.get("TEST_DATABASE_URL")
            or "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        )
        self.url = self._scratch.enter_context(scratch_postgres_database(server, "pa_load"))

    def drop(self) -> None:
        self._scratch.close()
        for path in self.tmp.iterdir():
            path.unlink()
        self.tmp.rmdir()


def env_for(url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("TEST_DATABASE_URL", None)
    env.update(
        {
            "DATABASE_URL": url,
            "FLASK_APP": "app:create_app",
            # The load is one partner: the per-partner API limit would turn it into 429s.
            "API_RATE_LIMIT": "100000000 per minute",
            "SECRET_KEY": LOAD_SECRET_KEY,
        }
    )
    return env


def seed(url: str, history: int) -> dict[str, Any]:
    """Create the schema, a partner, 20 organizations, a key and a year of history."""
    subprocess.run(
        [str(BIN / "flask"), "init-db"],
        cwd=ROOT,
        env=env_for(url),
        check=True,  # noqa: S603
        capture_output=True,
    )
    from app import accounts, auth, create_app, ingest
    from app.extensions import db

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": LOAD_SECRET_KEY})
    rng = random.Random(1)
    now = datetime.now(UTC).replace(tzinfo=None)
    with app.app_context():
        partner = accounts.create_partner(
            "Load Agency", "load", 10_000_000, timezone="Europe/Paris"
        )
        orgs = [
            accounts.create_organization(
                partner,
                f"Client {i:02d}",
                external_id=f"c{i}",
                tier="paid",
                initial_credits=10_000,
                created_at=now - timedelta(days=400),
            ).id
            for i in range(20)
        ]
        _key, plain = auth.create_api_key(partner, "load", None)
        for start in range(0, history, 5000):
            batch = [
                (
                    i,
                    {
                        "eventId": f"hist-{i}",
                        "organizationId": rng.choice(orgs),
                        "type": rng.choice(TYPES),
                        "quantity": rng.randrange(1, 5),
                        "occurredAt": (
                            now - timedelta(seconds=rng.randrange(3600, 365 * 86400))
                        ).isoformat()
                        + "Z",
                    },
                )
                for i in range(start, min(start + 5000, history))
            ]
            result = ingest.ingest_batch(partner, batch)
            assert not result.rejected, result.rejected[:2]
        db.session.remove()
        db.engine.dispose()
    return {"key": plain, "orgs": orgs}


class Busy:
    """A 503 ServiceUnavailable answer: retry after this many seconds."""

    def __init__(self, seconds: int) -> None:
        self.seconds = seconds


ZONES = ("Asia/Kathmandu", "America/New_York", "Pacific/Chatham", "Europe/Paris")


class Operator(threading.Thread):
    """Change the partner's timezone and rebuild its rollups while the load runs."""

    def __init__(self, url: str, deadline: float, pause: float) -> None:
        super().__init__(name="operator", daemon=True)
        self.url = url
        self.deadline = deadline
        self.pause = pause
        self.runs: list[tuple[str, float]] = []
        self.errors: list[str] = []
        self.timezone = "Europe/Paris"

    def run(self) -> None:
        step = 0
        while time.monotonic() + self.pause < self.deadline:
            time.sleep(self.pause)
            if step % 2 == 0:
                zone = ZONES[(step // 2) % len(ZONES)]
                args = ["set-timezone", "--partner", "load", "--timezone", zone]
            else:
                zone = None
                args = ["rollups", "rebuild", "--partner", "load"]
            began = time.perf_counter()
            done = subprocess.run(
                [str(BIN / "flask"), *args],
                cwd=ROOT,  # noqa: S603
                env=env_for(self.url),
                capture_output=True,
                text=True,
                check=False,
            )
            self.runs.append((" ".join(args[:2]), time.perf_counter() - began))
            if done.returncode != 0:
                self.errors.append(
                    f"flask {' '.join(args)} exited {done.returncode}: "
                    f"{(done.stdout + done.stderr)[-300:]}"
                )
            elif zone is not None:
                self.timezone = zone
            step += 1


class Client(threading.Thread):
    """One connection's loop of weighted reads and batched writes, checking every answer."""

    def __init__(self, n: int, port: int, key: str, orgs: list[str], deadline: float) -> None:
        super().__init__(name=f"client-{n}", daemon=True)
        self.n = n
        self.port = port
        self.headers = {"X-Partner-API-Key": key, "Content-Type": "application/json"}
        self.orgs = orgs
        self.deadline = deadline
        self.rng = random.Random(100 + n)
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: list[str] = []
        self.acked: list[dict[str, Any]] = []
        self.sent_new = 0
        self.sent_dup = 0
        self.retried = 0
        self.counter = 0
        self.conn: http.client.HTTPConnection | None = None

    def request(self, kind: str, method: str, path: str, body: Any = None) -> Any:
        """Send one request; a 503 with Retry-After is waited out and sent again."""
        while True:
            answer = self._request(kind, method, path, body)
            if not isinstance(answer, Busy):
                return answer
            self.retried += 1
            if time.monotonic() > self.deadline + 60:
                self.errors.append(f"{kind}: still 503 a minute after the run's end")
                return None
            time.sleep(answer.seconds)

    def _request(self, kind: str, method: str, path: str, body: Any = None) -> Any:
        payload = json.dumps(body).encode() if body is not None else None
        began = time.perf_counter()
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            self.conn.request(method, path, payload, self.headers)
            response = self.conn.getresponse()
            data = response.read()
            if response.getheader("Connection", "").lower() == "close":
                self.conn.close()
                self.conn = None
        except (OSError, http.client.HTTPException) as exc:
            self.errors.append(f"{kind}: {type(exc).__name__}: {exc}")
            if self.conn is not None:
                self.conn.close()
            self.conn = None
            return None
        self.latency[kind].append(time.perf_counter() - began)
        if (
            response.status == 503
            and response.getheader("Retry-After", "").isdigit()
            and json.loads(data).get("code") == "ServiceUnavailable"
        ):
            return Busy(int(response.getheader("Retry-After")))
        if response.status != 200:
            self.errors.append(f"{kind}: HTTP {response.status}: {data[:200]!r}")
            return None
        return json.loads(data)

    def read(self) -> None:
        rng = self.rng
        today = datetime.now(UTC).date()
        start = today - timedelta(days=rng.choice((7, 30, 90, 365)))
        span = f"startDate={start.isoformat()}&endDate={today.isoformat()}"
        org = rng.choice(self.orgs)
        kind, path = rng.choice(
            [
                ("analytics", f"/api/v1/partner/analytics?{span}"),
                ("analytics+compare", f"/api/v1/partner/analytics?{span}&compare=previous"),
                ("usage", f"/api/v1/partner/usage?{span}"),
                (
                    "timeseries",
                    f"/api/v1/partner/analytics/timeseries?{span}&granularity="
                    + rng.choice(("day", "week", "month")),
                ),
                ("breakdown", f"/api/v1/partner/analytics/organizations?{span}&pageSize=20"),
                ("organizations", "/api/v1/partner/organizations?search=client+1&pageSize=50"),
                ("org analytics", f"/api/v1/partner/organizations/{org}/analytics?{span}"),
                ("billing", "/api/v1/partner/billing"),
                ("billing usage", "/api/v1/partner/billing/usage"),
            ]
        )
        self.request(kind, "GET", path)

    def write(self) -> None:
        rng = self.rng
        now = datetime.now(UTC).replace(tzinfo=None)
        dups = min(int(BATCH * DUPLICATE_SHARE), len(self.acked))
        fresh = []
        for _ in range(BATCH - dups):
            self.counter += 1
            fresh.append(
                {
                    "eventId": f"load-{self.n}-{self.counter}",
                    "organizationId": rng.choice(self.orgs),
                    "type": rng.choice(TYPES),
                    "quantity": rng.randrange(0, 10),
                    "occurredAt": (
                        now - timedelta(seconds=rng.randrange(0, 40 * 86400))
                    ).isoformat()
                    + "Z",
                }
            )
        resent = rng.sample(self.acked, dups)
        batch = fresh + resent
        rng.shuffle(batch)
        answer = self.request(
            "events (200/batch)", "POST", "/api/v1/partner/events", {"events": batch}
        )
        if answer is None:
            return
        if (answer["accepted"], answer["duplicates"], answer["rejected"]) != (len(fresh), dups, []):
            self.errors.append(
                f"events: sent {len(fresh)} new + {dups} re-sent, answer "
                f"{answer['accepted']} accepted / {answer['duplicates']} "
                f"duplicates / {len(answer['rejected'])} rejected"
            )
            return
        self.acked.extend(fresh)
        self.sent_new += len(fresh)
        self.sent_dup += dups

    def run(self) -> None:
        while time.monotonic() < self.deadline:
            if self.rng.random() < WRITE_SHARE:
                self.write()
            else:
                self.read()
        if self.conn is not None:
            self.conn.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def wait_until_up(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit("gunicorn exited before answering")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/v1/openapi.json")
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not answer in time")


def start_gunicorn(url: str, workers: int) -> tuple[subprocess.Popen[bytes], int]:
    """Start gunicorn on the database at url in a session of its own; return it and its
    port once it answers (it is stopped again if it never does)."""
    port = free_port()
    server = subprocess.Popen(  # noqa: S603
        [
            str(BIN / "gunicorn"),
            "--workers",
            str(workers),
            "--bind",
            f"127.0.0.1:{port}",
            "--timeout",
            "120",
            "--log-level",
            "warning",
            "app:create_app()",
        ],
        cwd=ROOT,
        env=env_for(url),
        start_new_session=True,
    )
    try:
        wait_until_up(port, server)
    except BaseException:
        stop_gunicorn(server)
        raise
    return server, port


def stop_gunicorn(server: subprocess.Popen[bytes]) -> None:
    """Stop gunicorn and its workers (SIGTERM to its session); wait up to 30 s."""
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=30)


def check(url: str, clients: list[Client], history: int) -> list[str]:
    """Recount what the run stored; return every discrepancy."""
    from sqlalchemy import func, select

    from app import create_app, metrics, rollups
    from app.extensions import db
    from app.models import Partner, UsageEvent
    from app.periods import Period

    problems = []
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": LOAD_SECRET_KEY})
    want_events = history + sum(c.sent_new for c in clients)
    by_type: Counter[str] = Counter()
    for client in clients:
        for ev in client.acked:
            by_type[ev["type"]] += ev["quantity"]
    with app.app_context():
        partner = db.session.execute(select(Partner).filter_by(slug="load")).scalar_one()
        stored = db.session.execute(select(func.count()).select_from(UsageEvent)).scalar()
        if stored != want_events:
            problems.append(f"raw events: {stored:,} stored, {want_events:,} acknowledged")
        loaded = db.session.execute(
            select(UsageEvent.type, func.sum(UsageEvent.quantity))
            .where(UsageEvent.event_id.like("load-%"))
            .group_by(UsageEvent.type)
        ).all()
        if {t: int(q) for t, q in loaded} != {t: q for t, q in by_type.items() if q}:
            problems.append(f"quantities by type: stored {dict(loaded)}, sent {dict(by_type)}")
        everything = Period(
            datetime(2000, 1, 1).date(), datetime.now(UTC).date() + timedelta(days=1)
        )
        total = metrics.usage(partner, everything).total_events
        if total != want_events:
            problems.append(f"rollup total: {total:,} events, raw {want_events:,}")
        problems += rollups.verify(partner.id)
        db.session.remove()
        db.engine.dispose()
    verify = subprocess.run(
        [str(BIN / "flask"), "rollups", "verify"],
        cwd=ROOT,  # noqa: S603
        env=env_for(url),
        capture_output=True,
        text=True,
        check=False,
    )
    if verify.returncode != 0:
        problems.append(f"flask rollups verify exited {verify.returncode}: {verify.stdout[-500:]}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=(os.cpu_count() or 1) * 2 + 1)
    parser.add_argument("--history", type=int, default=50_000)
    parser.add_argument(
        "--operator",
        action="store_true",
        help="run set-timezone and rollups rebuild during the load",
    )
    parser.add_argument("--operator-pause", type=float, default=4.0)
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    database = Database(args.backend)
    server = None
    try:
        print(f"seeding {args.backend}: 20 organizations, {args.history:,} events ...", flush=True)
        seeded = seed(database.url, args.history)
        server, port = start_gunicorn(database.url, args.workers)
        print(
            f"gunicorn ({args.workers} sync workers) on 127.0.0.1:{port}; "
            f"{args.connections} connections for {args.duration:.0f} s ...",
            flush=True,
        )
        began = time.monotonic()
        deadline = began + args.duration
        clients = [
            Client(n, port, seeded["key"], seeded["orgs"], deadline)
            for n in range(args.connections)
        ]
        operator = Operator(database.url, deadline, args.operator_pause) if args.operator else None
        for client in clients:
            client.start()
        if operator is not None:
            operator.start()
        for client in clients:
            client.join(timeout=args.duration + 120)
        if operator is not None:
            operator.join(timeout=args.duration + 120)
        elapsed = time.monotonic() - began
        stop_gunicorn(server)
        server = None

        latency: dict[str, list[float]] = defaultdict(list)
        for client in clients:
            for kind, values in client.latency.items():
                latency[kind].extend(values)
        errors = [e for c in clients for e in c.errors]
        if operator is not None:
            errors += operator.errors
        requests = sum(len(v) for v in latency.values())
        new = sum(c.sent_new for c in clients)
        dup = sum(c.sent_dup for c in clients)
        everything = [x for v in latency.values() for x in v]
        print(
            f"\n{args.backend}: {requests:,} requests in {elapsed:.1f} s = "
            f"{requests / elapsed:,.0f} req/s; errors: {len(errors)}"
        )
        print(
            f"events: {new:,} new + {dup:,} re-sent ({dup / max(new + dup, 1):.1%}) = "
            f"{(new + dup) / elapsed:,.0f} events/s sent, {new / elapsed:,.0f} stored/s"
        )
        print(
            f"latency (all): p50 {percentile(everything, 0.5) * 1000:.0f} ms, "
            f"p95 {percentile(everything, 0.95) * 1000:.0f} ms, "
            f"p99 {percentile(everything, 0.99) * 1000:.0f} ms"
        )
        print(f"{'request':<22}{'count':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'mean ms':>9}")
        for kind in sorted(latency):
            values = latency[kind]
            print(
                f"{kind:<22}{len(values):>8,}{percentile(values, 0.5) * 1000:>9.1f}"
                f"{percentile(values, 0.95) * 1000:>9.1f}"
                f"{percentile(values, 0.99) * 1000:>9.1f}"
                f"{statistics.fmean(values) * 1000:>9.1f}"
            )
        if operator is not None:
            for name in sorted({name for name, _ in operator.runs}):
                took = [t for n, t in operator.runs if n == name]
                print(f"operator: flask {name} x{len(took)}, {min(took):.1f}-{max(took):.1f} s")
            retried = sum(c.retried for c in clients)
            print(
                f"503 answers waited out and re-sent: {retried}; final timezone {operator.timezone}"
            )
        for line in errors[:20]:
            print(f"  error: {line}")
        problems = check(database.url, clients, args.history)
        for line in problems[:20]:
            print(f"  check: {line}")
        ok = not errors and not problems and requests > 0
        print(
            f"\nrecount: {args.history + new:,} events stored exactly once, rollups verified"
            if not problems
            else "\nrecount FAILED"
        )
        print("load: OK" if ok else "load: FAILED")
        return 0 if ok else 1
    finally:
        if server is not None:
            stop_gunicorn(server)
        database.drop()


if __name__ == "__main__":
    sys.exit(main())
