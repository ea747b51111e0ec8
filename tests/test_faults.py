"""Exactly once under faults: `flask ingest` killed with SIGKILL at random points, then re-run.

One large JSON Lines file (60,000 lines on SQLite, 30,000 on PostgreSQL, over five
organizations, about 5 % repeated eventIds, half of those repeats with a different
quantity: the first one sent wins) is ingested once cleanly into a reference database.
Each trial then copies the same empty database, starts `flask ingest` in a subprocess,
kills it with SIGKILL after a random delay (one to three times, each kill landing on
whatever the previous one left), re-runs it to completion, and compares every stored row
and figure with the reference, then runs `flask rollups verify`.

Each run does at least 2 and at most FAULT_TRIALS trials (default 4), stopping after
FAULT_BUDGET seconds (default 25) so that a loaded machine does not stretch the suite.
The kill delays come from FAULT_SEED (random unless set; printed on failure). Every trial
is appended to tests/artifacts/fault_trials.jsonl, a running record across runs.

The same promise over HTTP: batches posted through a proxy that cuts requests, drops or
cuts answers and stalls past the client's timeout, by a client that resends until it gets
a whole answer (tests/artifacts/http_retry_trials.jsonl records each run).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from reliability_support import (
    BACKEND,
    Databases,
    EventFile,
    expected_totals,
    figures,
    flask,
    log_artifact,
    make_events,
    setup_partner,
    start_flask,
    write_jsonl,
)
from sqlalchemy import create_engine, text

pytestmark = pytest.mark.slow

SLUG = "acme"
ORGS = 5
# PostgreSQL stores about half as fast here: half the file keeps the run under a minute.
LINES = 60_000 if BACKEND == "sqlite" else 30_000
TRIALS = int(os.environ.get("FAULT_TRIALS", "4"))
BUDGET = float(os.environ.get("FAULT_BUDGET", "25"))


def stored_events(url: str) -> int:
    """Count the raw events in a database (a fresh connection, as after a crash)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM usage_event")).scalar() or 0)
    finally:
        engine.dispose()


def parse_counts(stdout: str) -> dict[str, int]:
    """Read the accepted / duplicates / rejected lines `flask ingest` ends with."""
    out = {}
    for line in stdout.splitlines():
        name, _, value = line.partition(": ")
        if name in ("accepted", "duplicates", "rejected"):
            out[name] = int(value)
    return out


class World:
    """The event file, an empty template database and the clean reference figures."""

    def __init__(
        self,
        dbs: Databases,
        events: EventFile,
        template: str,
        reference: Any,
        startup: float,
        duration: float,
        clean_stdout: str,
    ) -> None:
        self.dbs = dbs
        self.events = events
        self.template = template
        self.reference = reference
        self.startup = startup
        self.duration = duration
        self.clean_stdout = clean_stdout


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("faults")
    dbs = Databases(BACKEND, tmp)
    try:
        events = write_jsonl(tmp / "events.jsonl", make_events(LINES, ORGS, seed=7))
        (tmp / "empty.jsonl").write_text("")
        template = dbs.new()
        setup_partner(template, SLUG, ORGS)
        # How long the command takes to start and stop with nothing to do...
        began = time.monotonic()
        flask(dbs.new(template), "ingest", str(tmp / "empty.jsonl"), "--partner", SLUG)
        startup = time.monotonic() - began
        # ...and how long a clean run of the whole file takes.
        reference_url = dbs.new(template)
        began = time.monotonic()
        clean = flask(
            reference_url, "ingest", str(events.path), "--partner", SLUG, "--batch-size", "1000"
        )
        duration = time.monotonic() - began
        reference = figures(reference_url, SLUG)
        yield World(
            dbs, events, template, reference, startup, max(duration - startup, 0.5), clean.stdout
        )
    finally:
        dbs.drop_all()


def test_clean_run_stores_each_event_once(world: World) -> None:
    unique = world.events.unique
    want = expected_totals(unique)
    counts = parse_counts(world.clean_stdout)
    # Every distinct eventId is accepted once; every other line is a duplicate.
    assert counts == {"accepted": len(unique), "duplicates": LINES - len(unique), "rejected": 0}
    ref = world.reference
    assert len(ref["raw"]) == len(unique)
    # The stored copy of each event is the first one in the file, not a later repeat.
    assert {r[0]: (r[1], r[2], r[3]) for r in ref["raw"]} == {k: v[:3] for k, v in unique.items()}
    assert ref["usage"].total_events == want["events"]
    assert {t: v.quantity for t, v in ref["usage"].by_type.items()} == want["quantity"]
    assert {o: u.total_events for o, u in ref["usageByOrg"].items()} == want["eventsByOrg"]
    assert ref["verify"] == []


def test_sigkill_at_random_points_then_rerun_gives_the_clean_figures(world: World) -> None:
    seed = int(os.environ.get("FAULT_SEED", random.randrange(2**31)))
    rng = random.Random(seed)
    total = len(world.events.unique)
    path = str(world.events.path)
    began = time.monotonic()
    for trial in range(TRIALS):
        if trial >= 2 and time.monotonic() - began > BUDGET:
            break
        url = world.dbs.new(world.template)
        batch = rng.choice([500, 1000, 2000] if BACKEND == "sqlite" else [250, 500, 1000])
        planned = rng.randint(1, 3)
        # Kill somewhere between "started" and "would have finished"; narrow the window
        # when a kill lands before the first commit or after the last one.
        low, high = world.startup * 0.9, world.startup + world.duration * 0.95
        kills: list[dict[str, Any]] = []
        partial = killed = attempts = 0
        while (killed < planned or partial == 0) and attempts < planned + 8:
            attempts += 1
            before = stored_events(url)
            if before >= total:
                # A run got to the end before its kill: start over from an empty copy.
                url = world.dbs.new(world.template)
                before = 0
            delay = rng.uniform(low, high)
            proc = start_flask(
                url,
                "ingest",
                path,
                "--partner",
                SLUG,
                "--batch-size",
                str(batch),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(delay)
            finished = proc.poll() is not None
            if not finished:
                proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            stored = stored_events(url)
            kills.append(
                {"delay": round(delay, 3), "finished": finished, "before": before, "stored": stored}
            )
            assert before <= stored <= total, f"seed {seed}: impossible count after a kill"
            if finished or stored >= total:
                high = delay
                continue
            killed += 1
            if stored == before:
                low = delay
            else:
                partial += 1
        before = stored_events(url)
        final = flask(url, "ingest", path, "--partner", SLUG, "--batch-size", "1000")
        counts = parse_counts(final.stdout)
        context = f"seed {seed}, trial {trial}, batch {batch}, kills {kills}"
        record = {
            "backend": BACKEND,
            "seed": seed,
            "trial": trial,
            "batch": batch,
            "kills": kills,
            "partialKills": partial,
            "final": counts,
            "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        log_artifact("fault_trials.jsonl", record)
        assert partial >= 1, f"no kill interrupted the run part-way ({context})"
        # The re-run adds exactly what the killed runs had not committed.
        assert counts == {
            "accepted": total - before,
            "duplicates": LINES - (total - before),
            "rejected": 0,
        }, context
        got = figures(url, SLUG)
        for name, want in world.reference.items():
            assert got[name] == want, f"{name} differs from the clean run ({context})"
        verify = flask(url, "rollups", "verify", check=False)
        assert verify.returncode == 0, f"rollups verify failed ({context}): {verify.stdout}"
        assert f"{SLUG}: OK" in verify.stdout


# --- HTTP: a client that retries after dropped connections ------------------------------------


def test_http_batches_retried_after_dropped_connections_count_once(tmp_path) -> None:
    """Batches of events go through a proxy that cuts requests, drops and cuts answers and
    stalls past the client's timeout; the client resends each batch until it gets a whole
    answer. Every event ends up stored exactly once and the rollups agree."""
    from reliability_support import (
        DroppingProxy,
        app_for,
        post_with_retries,
        serve,
    )

    from app import auth
    from app.extensions import db
    from app.models import Partner

    seed = int(os.environ.get("FAULT_SEED", random.randrange(2**31)))
    rng = random.Random(seed)
    dbs = Databases(BACKEND, tmp_path)
    try:
        url = dbs.new()
        ids = setup_partner(url, SLUG, ORGS)
        events = make_events(6000, ORGS, seed=11, prefix="h", dup_rate=0.1)
        for ev in events:  # the API takes organizationId or externalId: use both kinds
            if rng.random() < 0.5:
                ev["organizationId"] = ids[ev.pop("externalId")]
        unique: dict[str, dict[str, Any]] = {}
        for ev in events:
            unique.setdefault(ev["eventId"], ev)
        application = app_for(url)
        application.config["API_RATE_LIMIT"] = "100000 per minute"
        with application.app_context():
            partner = db.session.execute(db.select(Partner).filter_by(slug=SLUG)).scalar_one()
            _key, plain = auth.create_api_key(partner, "retry", ["write"])
            db.session.remove()
        httpd, port = serve(application)
        # The first connections show each fault once; after that, two in five misbehave.
        forced = ["drop_response", "cut_response", "cut_request", "stall", "drop_response"]
        faults = ["cut_request", "drop_response", "cut_response", "stall"]

        def plan(n: int) -> str:
            if n < len(forced):
                return forced[n]
            if rng.random() < 0.4:
                # Stalls cost the client its whole timeout: fewer of them.
                return rng.choice(faults[:3]) if rng.random() < 0.9 else "stall"
            return "pass"

        proxy = DroppingProxy(port, plan, stall=1.4)
        answers = []
        try:
            for start in range(0, len(events), 250):
                batch = events[start : start + 250]
                answer, attempts = post_with_retries(
                    proxy.port,
                    "/api/v1/partner/events",
                    {"events": batch},
                    {"X-Partner-API-Key": plain},
                    timeout=1.0,
                )
                assert answer["rejected"] == [], answer["rejected"][:3]
                assert answer["accepted"] + answer["duplicates"] == len(batch)
                answers.append((answer, attempts))
        finally:
            proxy.close()
            httpd.shutdown()
        context = f"seed {seed}, proxy {dict(proxy.counts)}"
        log_artifact(
            "http_retry_trials.jsonl",
            {
                "backend": BACKEND,
                "seed": seed,
                "proxy": dict(proxy.counts),
                "calls": len(answers),
                "attempts": sum(a for _x, a in answers),
                "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            },
        )
        # Every fault happened, and some batches needed more than one attempt.
        assert all(proxy.counts[m] >= 1 for m in faults), context
        assert sum(a for _x, a in answers) > len(answers), context
        # An answer that was lost means its events come back as duplicates on the retry,
        # so the answers seen count at most every event once...
        assert sum(a["accepted"] for a, _n in answers) <= len(unique), context
        # ...and the database holds each event exactly once, the first copy sent.
        got = figures(url, SLUG)
        assert len(got["raw"]) == len(unique), context
        ext_of = {v: k for k, v in ids.items()}
        assert {r[0]: (r[1], r[2], r[3]) for r in got["raw"]} == {
            k: (v.get("externalId") or ext_of[v["organizationId"]], v["type"], v["quantity"])
            for k, v in unique.items()
        }, context
        want = expected_totals(
            {
                k: (
                    v.get("externalId") or ext_of[v["organizationId"]],
                    v["type"],
                    v["quantity"],
                    v["occurredAt"],
                )
                for k, v in unique.items()
            }
        )
        assert {t: v.quantity for t, v in got["usage"].by_type.items()} == want["quantity"], context
        assert got["verify"] == [], context
        verify = flask(url, "rollups", "verify", check=False)
        assert verify.returncode == 0, verify.stdout
    finally:
        dbs.drop_all()
