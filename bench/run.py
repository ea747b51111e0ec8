"""Run the benchmark suite on SQLite and PostgreSQL and write bench/results/latest.md.

    .venv/bin/python -m bench.run            # full: 1,000 organizations, 10M events
    .venv/bin/python -m bench.run --quick    # 100 organizations, 1M events

Measures, per back end: (1) CLI ingest throughput and peak RSS; (2) HTTP batch ingest
under gunicorn (2 workers); (3) the 365-day summary in-process against plain SQL, DuckDB
and chDB (embedded ClickHouse) over the raw events; (4) HTTP /partner/analytics with wrk
at 16 connections; (5) the dashboard overview's server time and time to first chart in
headless Chromium; (6) the analytics latency after 1M, 3M and 10M events. Servers listen
on 127.0.0.1 only (ports 5301-5309), every load is bounded in time, and the PostgreSQL
database is created for the run and dropped after it.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import gc
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

from pydantic.alias_generators import to_camel, to_snake

from . import dataset, shuffled
from .floor import storage_floor
from .generate import FULL, QUICK, Spec, generate

ROOT = dataset.ROOT
RESULTS = Path(__file__).resolve().parent / "results"
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
HOST = "127.0.0.1"
PORTS = range(5301, 5310)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
NA = "not available"


def log(message: str) -> None:
    """Print a progress line on stderr with the time."""
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    """Return the q-th percentile (0-100) of values, by linear interpolation."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def timed(
    fn: Callable[[], Any], repeat: int, warmup: int = 1, cpu: list[float] | None = None
) -> list[float]:
    """Return the wall times in milliseconds of repeat calls of fn (after warmup calls).

    With cpu, the mean CPU time per call of this process (ms) is appended to it: on a
    shared machine it tells the cost of the work apart from the time spent waiting.
    """
    for _ in range(warmup):
        fn()
    out = []
    # The harness's own heap (data sets, DuckDB results) is frozen out of the garbage
    # collector's reach, so a collection during the loop costs what the app made, as in
    # a server process, not what the benchmark holds.
    gc.collect()
    gc.freeze()
    try:
        cpu_start = time.process_time()
        for _ in range(repeat):
            start = time.perf_counter()
            fn()
            out.append((time.perf_counter() - start) * 1000)
        if cpu is not None:
            cpu.append((time.process_time() - cpu_start) * 1000 / repeat)
    finally:
        gc.unfreeze()
    return out


def load_average() -> str:
    """Return the 1, 5 and 15 minute load averages as text."""
    return " / ".join(f"{v:.2f}" for v in os.getloadavg())


def free_port() -> int:
    """Return the first port of 5301-5309 nothing listens on."""
    for port in PORTS:
        with socket.socket() as s:
            if s.connect_ex((HOST, port)) != 0:
                return port
    raise RuntimeError("ports 5301-5309 are all busy")


# --- (1) CLI ingest ----------------------------------------------------------------------


def _process_tree(pid: int) -> list[int]:
    """Return pid and its descendants (Linux /proc)."""
    tree, queue = [], [pid]
    while queue:
        current = queue.pop()
        tree.append(current)
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        queue.extend(int(child) for child in children)
    return tree


def _memory_kb(pid: int) -> tuple[int, int]:
    """Return (RSS, PSS) of one process in kB, or zeros once it is gone."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0, 0
    fields = dict(re.findall(r"^(Rss|Pss):\s+(\d+) kB", text, re.M))
    return int(fields.get("Rss", 0)), int(fields.get("Pss", 0))


class TreeMemory(threading.Thread):
    """Sample the memory of a process and its children every 50 ms; keep the peaks.

    The importer forks a reader process (`flask ingest --pipeline`): the peak of the
    whole tree is what the import costs. PSS shares each page among the processes that
    map it (fork shares the interpreter's pages), RSS counts a shared page in each.
    """

    def __init__(self, pid: int, skip_root: bool = False) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.skip_root = skip_root  # the /usr/bin/time wrapper is not the import
        self.peak_rss_kb = self.peak_pss_kb = self.processes = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            tree = _process_tree(self.pid)[1 if self.skip_root else 0 :]
            sizes = [_memory_kb(p) for p in tree]
            self.processes = max(self.processes, len(tree))
            self.peak_rss_kb = max(self.peak_rss_kb, sum(r for r, _ in sizes))
            self.peak_pss_kb = max(self.peak_pss_kb, sum(p for _, p in sizes))
            self.done.wait(0.05)


def cli_ingest(url: str, path: Path, batch_size: int) -> dict[str, Any]:
    """Run `flask ingest` on a file in a child process; return counts, times and memory."""
    cmd = [
        str(dataset.VENV_BIN / "flask"),
        "ingest",
        str(path),
        "--partner",
        dataset.PARTNER_SLUG,
        "--batch-size",
        str(batch_size),
    ]
    # /usr/bin/time reports the CPU of the flask process and of its reader process
    # (waited for); the memory is sampled from /proc over the whole process tree.
    # One file per run: two imports measured at once must not read each other's times.
    report = ROOT / "bench" / "data" / f"time-{os.getpid()}-{time.monotonic_ns()}.txt"
    wrapper = (
        ["/usr/bin/time", "-f", "%M %U %S", "-o", str(report)]
        if Path("/usr/bin/time").exists()
        else []
    )
    start = time.perf_counter()
    proc = subprocess.Popen(
        wrapper + cmd,
        cwd=ROOT,
        env=dataset.child_env(url),  # noqa: S603
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    memory = TreeMemory(proc.pid, skip_root=bool(wrapper))
    memory.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    memory.done.set()
    memory.join()
    counts = {
        k: int(v) for k, v in re.findall(r"^(accepted|duplicates|rejected): (\d+)$", out, re.M)
    }
    if proc.returncode != 0 or "accepted" not in counts:
        raise RuntimeError(f"flask ingest failed: {out[-2000:]} {err[-2000:]}")
    if wrapper:
        _rss_kb, user, system = report.read_text().split()[-3:]
        report.unlink()
        cpu = float(user) + float(system)
    else:
        cpu = float("nan")
    lines = counts["accepted"] + counts["duplicates"] + counts["rejected"]
    return {
        "lines": lines,
        **counts,
        "wall_s": wall,
        "cpu_s": cpu,
        "events_per_s": lines / wall,
        "events_per_cpu_s": lines / cpu,
        "peak_rss_mb": memory.peak_rss_kb / 1024,
        "peak_pss_mb": memory.peak_pss_kb / 1024,
        "processes": memory.processes,
        "load": load_average(),
    }


def rollup_digest(app: Any, partner_id: str) -> str:
    """Return a hash of a partner's org_daily_usage rows named by externalId: equal in two
    databases that hold the same counts (their organizations' ids differ)."""
    import hashlib

    from sqlalchemy import select

    from app.extensions import db
    from app.models import Organization, OrgDailyUsage

    odu, org = OrgDailyUsage, Organization
    with app.app_context():
        rows = db.session.execute(
            select(org.external_id, odu.day, odu.type, odu.quantity, odu.events)
            .join(org, org.id == odu.organization_id)
            .where(odu.partner_id == partner_id)
        ).all()
        db.session.remove()
        db.engine.dispose()
    text = "\n".join(sorted(f"{e},{d},{t},{q},{n}" for e, d, t, q, n in rows))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def order_comparison(
    backend: str, spec: Spec, folder: Path, pg_server: str, batch_size: int
) -> dict[str, Any]:
    """Import one pass in time order and shuffled, as CSV and as JSON Lines, each into a
    fresh database; return the figures per file and the shuffled/ordered time ratios."""
    files = shuffled.write_shuffled(spec, folder)
    runs: dict[str, Any] = {}
    for key, path in files.items():
        with dataset.database(backend, pg_server, dataset.ROOT / "bench" / "data") as url:
            dataset.init_schema(url)
            app = dataset.make_app(url)
            main = dataset.load_partner(app, folder)
            with app.app_context():
                from app.extensions import db

                db.session.remove()
                db.engine.dispose()
            log(f"{backend}: flask ingest {path.name} (fresh database)")
            figures = cli_ingest(url, path, batch_size)
            figures["file"] = path.name
            figures["rollups"] = rollup_digest(app, main["partner_id"])
            runs[key] = figures
            log(f"{backend}:   {figures['events_per_s']:,.0f} events/s")
    ratios = {
        fmt: runs[f"{fmt}-shuffled"]["wall_s"] / runs[f"{fmt}-ordered"]["wall_s"]
        for fmt in ("csv", "jsonl")
    }
    cpu_ratios = {
        fmt: runs[f"{fmt}-shuffled"]["cpu_s"] / runs[f"{fmt}-ordered"]["cpu_s"]
        for fmt in ("csv", "jsonl")
    }
    same = len({r["rollups"] for r in runs.values()}) == 1
    return {
        "pass": shuffled.PASS,
        "runs": runs,
        "ratios": ratios,
        "cpu_ratios": cpu_ratios,
        "same_rollups": same,
    }


# --- (3), (6) in-process analytics ----------------------------------------------------


def summary_latency(app: Any, partner_id: str, period: Any, repeat: int) -> dict[str, Any]:
    """Time metrics.summary in-process: uncached (SQL over rollups) and cached."""
    from app import metrics
    from app.extensions import db
    from app.models import Partner

    out: dict[str, Any] = {}
    with app.app_context():
        partner = db.session.get(Partner, partner_id)
        for label, cached in (("uncached", False), ("cached", True)):
            app.config["CACHE_CLOSED_PERIODS"] = cached

            def call() -> None:
                # One read transaction, as in a request that already loaded its partner.
                metrics.summary(partner, period)

            cpu: list[float] = []
            times = timed(call, repeat, warmup=2, cpu=cpu)
            db.session.rollback()
            out[label] = {
                "p50_ms": percentile(times, 50),
                "p95_ms": percentile(times, 95),
                "n": len(times),
                "cpu_ms": cpu[0],
            }
        app.config["CACHE_CLOSED_PERIODS"] = True
        # The figures as the API names them.
        out["figures"] = {
            to_camel(k): v for k, v in dataclasses.asdict(metrics.summary(partner, period)).items()
        }
        db.session.rollback()
    return out


def settle_postgresql(app: Any) -> None:
    """Do what autovacuum does after a bulk load: fresh statistics, a visibility map.

    usage_event too: left to autovacuum, its first vacuum after 10M inserts (a pass over
    the whole table) could start during the HTTP measurements that follow and take a
    core from them."""
    from sqlalchemy import text

    from app.extensions import db

    with app.app_context():
        engine = db.engine.execution_options(isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(
                text(
                    "VACUUM (ANALYZE) org_daily_usage, org_bucket_usage, "
                    "partner_daily_usage, partner_bucket_usage, partner_activity, "
                    "partner_daily_receipt, organization, organization_status_change, "
                    "usage_event"
                )
            )


def baselines(
    app: Any,
    partner_id: str,
    period: Any,
    engines: dict[str, Any],
    raw_repeat: int,
    column_repeat: int,
) -> dict[str, Any]:
    """Time the same summary by plain SQL over usage_event and by the column engines
    (DuckDB, chDB: None when not installed); check each one's numbers."""
    from app import metrics, periods
    from app.extensions import db
    from app.models import Partner

    from .baselines import matches_product, raw_sql_summary

    out: dict[str, Any] = {}
    with app.app_context():
        partner = db.session.get(Partner, partner_id)
        raw_figures = raw_sql_summary(partner, period)
        product = metrics.summary(partner, period)
        db.session.rollback()
        out["raw_matches_product"] = all(
            raw_figures[k] == getattr(product, to_snake(k)) for k in raw_figures
        )
        times = timed(lambda: raw_sql_summary(partner, period), raw_repeat, warmup=0)
        out["raw_sql"] = {
            "p50_ms": percentile(times, 50),
            "p95_ms": percentile(times, 95),
            "n": len(times),
        }
        bp = periods.billing_period(partner, period.end)
        pool = partner.credit_pool_total
        db.session.rollback()
    for name, engine in engines.items():
        if engine is None:
            out[name] = None
            continue
        figures = engine.summary(period, bp.start)
        out[MATCH_KEYS[name]] = matches_product(figures, product, pool)
        times = timed(functools.partial(engine.summary, period, bp.start), column_repeat)
        out[name] = {
            "p50_ms": percentile(times, 50),
            "p95_ms": percentile(times, 95),
            "n": len(times),
            "rows": engine.rows,
            "version": engine.version,
            "load_s": engine.load_s,
            "figures": figures,
        }
    return out


# Where baselines() files each column engine's "numbers equal" (the DuckDB key predates
# chDB; bench/report.py reads both, also from an older latest.json).
MATCH_KEYS = {"duckdb": "duck_matches_product", "chdb": "chdb_matches_product"}


def column_engines(folder: Path, spec: Spec) -> dict[str, Any]:
    """Load the raw events into DuckDB and chDB (each None when not installed)."""
    from .baselines import ChBaseline, DuckBaseline

    files = [folder / f"pass-{i + 1}.csv" for i in range(len(spec.passes))]
    engines: dict[str, Any] = {}
    for name, label, cls in (("duckdb", "DuckDB", DuckBaseline), ("chdb", "chDB", ChBaseline)):
        try:
            log(f"{label}: loading the raw events (load {load_average()})")
            engines[name] = cls(files)
            log(f"{label}: {engines[name].rows:,} rows in {engines[name].load_s:.1f} s")
        except ImportError:
            log(f"{label} is not installed (pip install -e '.[bench]'): its row is skipped")
            engines[name] = None
    return engines


# --- servers ---------------------------------------------------------------------------


class Gunicorn:
    """gunicorn serving the app on a free port of 5301-5309, stopped on exit."""

    def __init__(
        self, url: str, workers: int = 2, threads: int = 1, root: Path = ROOT, **env: str
    ) -> None:
        """Start it on the app of the source tree root (this one unless told)."""
        self.port = free_port()
        self.workers = workers
        cmd = [
            str(dataset.VENV_BIN / "gunicorn"),
            "--workers",
            str(workers),
            "--bind",
            f"{HOST}:{self.port}",
            "--log-level",
            "warning",
        ]
        if threads > 1:
            cmd += ["--threads", str(threads)]
        cmd.append("app:create_app()")
        settings = {
            "API_RATE_LIMIT": "100000000 per minute",
            "LOGIN_RATE_LIMIT": "100000 per minute",
            **env,
        }
        self.proc = subprocess.Popen(
            cmd,
            cwd=root,
            env=dataset.child_env(url, **settings),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.base = f"http://{HOST}:{self.port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.base + "/api/v1/openapi.json", timeout=2)  # noqa: S310
                return
            except OSError:
                if self.proc.poll() is not None:
                    err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                    raise RuntimeError(f"gunicorn exited: {err[-2000:]}") from None
                time.sleep(0.3)
        self.stop()
        raise RuntimeError("gunicorn did not answer within 60 s")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Gunicorn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def has_route(app: Any, rule: str, method: str = "GET") -> bool:
    """Tell whether the app routes method rule."""
    return any(r.rule == rule and method in (r.methods or ()) for r in app.url_map.iter_rules())


# --- (2) HTTP batch ingest -----------------------------------------------------------


def http_batches(orgs: list[str], calls: int, per_call: int, seed: str) -> list[bytes]:
    """Return calls JSON bodies of per_call fresh events each (deterministic)."""
    bodies = []
    base = datetime(2025, 12, 1, tzinfo=UTC)
    kinds = ("identification", "page_view", "session", "page_view", "identification")
    for c in range(calls):
        events = []
        for i in range(per_call):
            n = c * per_call + i
            moment = base + timedelta(seconds=(n * 37) % (30 * 86400))
            events.append(
                {
                    "eventId": f"http-{seed}-{n}",
                    "externalId": orgs[n % len(orgs)],
                    "type": kinds[n % len(kinds)],
                    "quantity": 1 + n % 3,
                    "occurredAt": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                }
            )
        bodies.append(json.dumps({"events": events}).encode())
    return bodies


def http_ingest(
    server: Gunicorn, key: str, bodies: list[bytes], clients: int, per_call: int
) -> dict[str, Any]:
    """POST the bodies over clients keep-alive connections; return events/s."""
    errors: list[str] = []
    accepted = [0]
    lock = threading.Lock()
    chunks = [bodies[i::clients] for i in range(clients)]

    def send(chunk: list[bytes]) -> None:
        conn = HTTPConnection(HOST, server.port, timeout=120)
        for body in chunk:
            conn.request(
                "POST",
                "/api/v1/partner/events",
                body=body,
                headers={"X-Partner-API-Key": key, "Content-Type": "application/json"},
            )
            resp = conn.getresponse()
            data = resp.read()
            if resp.status != 200:
                errors.append(f"{resp.status} {data[:200]!r}")
                continue
            with lock:
                accepted[0] += json.loads(data)["accepted"]
        conn.close()

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(send, chunks))
    wall = time.perf_counter() - start
    events = len(bodies) * per_call
    return {
        "calls": len(bodies),
        "events": events,
        "accepted": accepted[0],
        "wall_s": wall,
        "events_per_s": events / wall,
        "errors": errors[:3],
        "clients": clients,
        "load": load_average(),
    }


# --- (4) wrk ----------------------------------------------------------------------------


def wrk(server: Gunicorn, path: str, key: str, seconds: int) -> dict[str, Any]:
    """Run wrk at 16 connections for a bounded time; return req/s and latency percentiles."""
    if not shutil.which("wrk"):
        return {"error": "wrk is not installed (apt-get install -y wrk)"}
    cmd = [
        "wrk",
        "-t2",
        "-c16",
        f"-d{seconds}s",
        "--timeout",
        "5s",
        "--latency",
        "-H",
        f"X-Partner-API-Key: {key}",
        server.base + path,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60).stdout

    def ms(text: str) -> float:
        value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    result: dict[str, Any] = {"seconds": seconds, "load": load_average()}
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    result["req_per_s"] = float(found.group(1)) if found else None
    for pct in ("50", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        result[f"p{pct}_ms"] = ms(m.group(1)) if m else None
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["non_2xx"] = int(non2xx.group(1)) if non2xx else 0
    total = re.search(r"(\d+) requests in", out)
    result["requests"] = int(total.group(1)) if total else None
    return result


# --- (5) dashboard -----------------------------------------------------------------------


def overview_server_time(app: Any, query: str, repeat: int) -> dict[str, Any]:
    """Time GET /?query with the test client, logged in; return p50/p95 in ms."""
    client = app.test_client()
    app.config["WTF_CSRF_ENABLED"] = False
    resp = client.post(
        "/login", data={"email": dataset.USER_EMAIL, "password": dataset.USER_PASSWORD, "next": ""}
    )
    if resp.status_code not in (302, 303):
        return {"error": f"login answered {resp.status_code}"}
    first = client.get("/?" + query)
    if first.status_code != 200 or b"js-figure" not in first.data:
        return {"error": f"overview answered {first.status_code} without charts"}
    cpu: list[float] = []
    times = timed(lambda: client.get("/?" + query), repeat, warmup=1, cpu=cpu)
    # Cold: the first view of the period after a write (or in a new worker), when none of
    # the page's figures is cached yet.
    from app import cache as figure_cache

    cold = []
    for _ in range(5):
        with app.app_context():  # the cache lives on the app (cache.init_app)
            figure_cache.clear()
        start = time.perf_counter()
        client.get("/?" + query)
        cold.append((time.perf_counter() - start) * 1000)
    return {
        "p50_ms": percentile(times, 50),
        "p95_ms": percentile(times, 95),
        "n": len(times),
        "cpu_ms": cpu[0],
        "load": load_average(),
        "cold_p50_ms": percentile(cold, 50),
        "cold_max_ms": max(cold),
    }


def api_in_process(app: Any, path: str, key: str, repeat: int) -> dict[str, Any]:
    """Time an API call through the test client: the full Flask stack without a socket.

    Its CPU per request bounds what the two gunicorn workers can serve on an idle
    machine (cores x 1000 / CPU ms), whatever else is running during the run.
    """
    client = app.test_client()
    headers = {"X-Partner-API-Key": key}

    def call() -> None:
        resp = client.get(path, headers=headers)
        if resp.status_code != 200:
            raise RuntimeError(f"{path} answered {resp.status_code}")

    cpu: list[float] = []
    times = timed(call, repeat, warmup=5, cpu=cpu)
    cores = os.cpu_count() or 1
    return {
        "p50_ms": percentile(times, 50),
        "p99_ms": percentile(times, 99),
        "n": repeat,
        "cpu_ms": cpu[0],
        "capacity_req_per_s": cores * 1000 / cpu[0],
        "load": load_average(),
    }


def ingest_in_process(app: Any, key: str, bodies: list[bytes]) -> dict[str, Any]:
    """POST event batches through the test client; return the CPU per 1,000 events."""
    client = app.test_client()
    headers = {"X-Partner-API-Key": key, "Content-Type": "application/json"}
    cpu_start, start = time.process_time(), time.perf_counter()
    accepted = 0
    for body in bodies:
        resp = client.post("/api/v1/partner/events", data=body, headers=headers)
        if resp.status_code != 200:
            raise RuntimeError(f"POST /partner/events answered {resp.status_code}")
        accepted += resp.get_json()["accepted"]
    cpu = (time.process_time() - cpu_start) * 1000 / len(bodies)
    cores = os.cpu_count() or 1
    return {
        "calls": len(bodies),
        "accepted": accepted,
        "wall_ms_per_call": (time.perf_counter() - start) * 1000 / len(bodies),
        "cpu_ms_per_call": cpu,
        "capacity_events_per_s": cores * 1000 * 1000 / cpu,
        "load": load_average(),
    }


def first_chart(server: Gunicorn, query: str, loads: int) -> dict[str, Any]:
    """Log in with headless Chromium and time each overview load until a chart is drawn."""
    if not Path(CHROMIUM).exists():
        return {"error": f"{CHROMIUM} is missing (apt-get install -y chromium)"}
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return {"error": "playwright is not installed"}
    times = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(server.base + "/login")
            page.fill("input[name=email]", dataset.USER_EMAIL)
            page.fill("input[name=password]", dataset.USER_PASSWORD)
            page.click("button[type=submit], input[type=submit]")
            page.wait_for_load_state("load")
            for _ in range(loads + server.workers):
                start = time.perf_counter()
                page.goto(server.base + "/?" + query, wait_until="commit")
                page.wait_for_selector(".js-plotly-plot .main-svg", timeout=30000)
                times.append((time.perf_counter() - start) * 1000)
        finally:
            browser.close()
    # The first loads fill the browser cache (plotly.js) and let each gunicorn worker
    # render the page once: a worker's first render computes the period's figures
    # (measured apart, as the overview's cold server time).
    warmup, times = times[: server.workers], times[server.workers :]
    return {
        "p50_ms": percentile(times, 50),
        "max_ms": max(times),
        "n": len(times),
        "times_ms": [round(t) for t in times],
        "warmup_ms": [round(t) for t in warmup],
    }


# --- the run -------------------------------------------------------------------------------


def run_backend(
    backend: str,
    spec: Spec,
    folder: Path,
    pg_server: str,
    engines: dict[str, Any],
    quick: bool,
) -> dict[str, Any]:
    """Run every measurement on one back end; return the figures."""
    from app.periods import Period

    result: dict[str, Any] = {"backend": backend, "load_start": load_average()}
    period = Period(spec.start_date, spec.end_date)
    query = f"startDate={period.start}&endDate={period.end}"
    files = [folder / f"pass-{i + 1}.csv" for i in range(len(spec.passes))]
    from app.cli import INGEST_BATCH_LINES

    batch_size = INGEST_BATCH_LINES  # the CLI's default
    log(f"{backend}: one pass in time order and shuffled, CSV and JSON Lines")
    result["order"] = order_comparison(backend, spec, folder, pg_server, batch_size)
    with dataset.database(backend, pg_server, dataset.ROOT / "bench" / "data") as url:
        log(f"{backend}: schema (flask init-db)")
        dataset.init_schema(url)
        app = dataset.make_app(url)
        main = dataset.load_partner(app, folder)
        http_partner = dataset.load_partner(app, folder, dataset.HTTP_PARTNER_SLUG, limit=100)
        result["organizations"] = main["organizations"]
        ingests = []
        scaling = []
        total = 0
        for path in files:
            log(f"{backend}: flask ingest {path.name}")
            figures = cli_ingest(url, path, batch_size)
            figures["file"] = path.name
            ingests.append(figures)
            total += figures["accepted"]
            log(
                f"{backend}:   {figures['events_per_s']:,.0f} events/s, "
                f"PSS {figures['peak_pss_mb']:.0f} MB (RSS sum {figures['peak_rss_mb']:.0f} MB)"
            )
            if backend == "postgresql":
                settle_postgresql(app)
            lat = summary_latency(app, main["partner_id"], period, 30 if quick else 50)
            scaling.append({"events": total, **lat})
        result["ingest"] = ingests
        result["ingest_total"] = {
            "lines": sum(i["lines"] for i in ingests),
            "wall_s": sum(i["wall_s"] for i in ingests),
            "cpu_s": sum(i["cpu_s"] for i in ingests),
            "peak_rss_mb": max(i["peak_rss_mb"] for i in ingests),
            "peak_pss_mb": max(i["peak_pss_mb"] for i in ingests),
        }
        t = result["ingest_total"]
        t["events_per_s"] = t["lines"] / t["wall_s"]
        t["events_per_cpu_s"] = t["lines"] / t["cpu_s"]
        result["scaling"] = scaling
        log(f"{backend}: the storage engine's own insert rate (bench/floor.py)")
        result["floor"] = storage_floor(url)
        log(f"{backend}:   {result['floor']['rows_per_s']:,.0f} rows/s")
        result["floor_integer_keys"] = storage_floor(url, integer_keys=True)
        log(f"{backend}:   {result['floor_integer_keys']['rows_per_s']:,.0f} rows/s, integer keys")
        log(f"{backend}: summary vs raw SQL vs DuckDB vs chDB")
        result["summary"] = scaling[-1]
        result["baselines"] = baselines(
            app,
            main["partner_id"],
            period,
            engines,
            raw_repeat=3,
            column_repeat=10 if quick else 20,
        )

        log(f"{backend}: dashboard overview (test client)")
        if has_route(app, "/") and has_route(app, "/login", "POST"):
            result["overview"] = overview_server_time(app, query, 20 if quick else 40)
        else:
            result["overview"] = {"error": NA}

        if has_route(app, "/api/v1/partner/analytics"):
            log(f"{backend}: /partner/analytics through the test client (CPU per request)")
            result["api_in_process"] = api_in_process(
                app, f"/api/v1/partner/analytics?{query}", main["api_key"], 100 if quick else 300
            )

        if has_route(app, "/api/v1/partner/events", "POST"):
            log(f"{backend}: POST /partner/events through the test client (CPU per event)")
            orgs = [f"org-{i + 1:04d}" for i in range(http_partner["organizations"])]
            result["ingest_in_process"] = ingest_in_process(
                app, http_partner["api_key"], http_batches(orgs, 20, 1000, "inproc")
            )

        with app.app_context():
            from app.extensions import db

            db.session.remove()
            db.engine.dispose()

        need_server = has_route(app, "/api/v1/partner/events", "POST") or has_route(
            app, "/api/v1/partner/analytics"
        )
        if not need_server:
            result["http_ingest"] = result["http_analytics"] = {"error": NA}
            result["first_chart"] = {"error": NA}
            return result
        with Gunicorn(url, workers=2) as server:
            if has_route(app, "/api/v1/partner/events", "POST"):
                log(f"{backend}: HTTP batch ingest (gunicorn, 2 workers)")
                orgs = [f"org-{i + 1:04d}" for i in range(http_partner["organizations"])]
                calls = 40 if quick else 150
                bodies = http_batches(orgs, calls, 1000, backend)
                result["http_ingest"] = http_ingest(
                    server, http_partner["api_key"], bodies, clients=4, per_call=1000
                )
            else:
                result["http_ingest"] = {"error": NA}
            if has_route(app, "/api/v1/partner/analytics"):
                log(f"{backend}: wrk /api/v1/partner/analytics (16 connections)")
                path = f"/api/v1/partner/analytics?{query}"
                probe = urllib.request.Request(
                    server.base + path, headers={"X-Partner-API-Key": main["api_key"]}
                )
                with urllib.request.urlopen(probe, timeout=30) as resp:  # noqa: S310
                    body = json.loads(resp.read())
                result["http_analytics_body"] = body
                result["http_analytics"] = wrk(server, path, main["api_key"], 5 if quick else 15)
                live = f"/api/v1/partner/analytics?startDate={date.today() - timedelta(days=364)}"
                result["http_analytics_open"] = wrk(
                    server, live, main["api_key"], 5 if quick else 10
                )
            else:
                result["http_analytics"] = {"error": NA}
            if has_route(app, "/"):
                log(f"{backend}: first chart in headless Chromium")
                try:
                    result["first_chart"] = first_chart(server, query, 5)
                except Exception as exc:  # noqa: BLE001 - report, do not abort the run
                    result["first_chart"] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
            else:
                result["first_chart"] = {"error": NA}
    result["load_end"] = load_average()
    return result


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the back ends, print and write the results."""
    parser = argparse.ArgumentParser(description="Partner Analytics benchmark suite")
    parser.add_argument("--quick", action="store_true", help="100 organizations, 1M events")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("BENCH_PG_URL", PG_DEFAULT),
        help="a PostgreSQL server URL; the run creates and drops its database",
    )
    parser.add_argument("--out", default=str(RESULTS / "latest.md"))
    args = parser.parse_args(argv)
    spec = QUICK if args.quick else FULL
    started = time.perf_counter()
    log(f"data: {spec.name} ({spec.organizations} organizations, {spec.total_events:,} events)")
    folder = generate(spec)
    engines = column_engines(folder, spec)
    runs = []
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        if backend == "postgresql" and not _pg_answers(args.pg_url):
            runs.append({"backend": backend, "error": f"no PostgreSQL at {args.pg_url}"})
            continue
        runs.append(run_backend(backend, spec, folder, args.pg_url, engines, args.quick))
    meta = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "spec": spec,
        "elapsed_s": time.perf_counter() - started,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.platform(),
        "load_end": load_average(),
    }
    from .report import render

    text = render(meta, runs)
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    out.with_suffix(".json").write_text(
        json.dumps({"meta": {**meta, "spec": spec.__dict__}, "runs": runs}, indent=1, default=str)
    )
    log(f"written {out} in {meta['elapsed_s']:.0f} s")
    return 0


def _pg_answers(url: str) -> bool:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    try:
        engine = create_engine(make_url(url).set(drivername="postgresql+psycopg"))
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:  # noqa: BLE001 - any failure means "not there"
        return False


if __name__ == "__main__":
    sys.exit(main())
