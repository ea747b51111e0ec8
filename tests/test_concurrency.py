"""Concurrency: two `flask ingest` processes and direct writers on one partner at once.

Two processes ingest overlapping files (the shared events in a different order in each),
while threads of this process store batches of their own plus shared events through
`ingest.ingest_batch` and through the JSON API, change allocations (directly and through
the API), create and revoke API keys, and read figures.
Afterwards every distinct event is stored exactly once, the accepted counts of all writers
add up to the number of distinct events (nothing lost, nothing doubled), the rollups agree
with a recount, and no writer ever saw "database is locked" or a deadlock.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from reliability_support import (
    BACKEND,
    Databases,
    app_for,
    expected_totals,
    figures,
    flask,
    make_events,
    setup_partner,
    start_flask,
    write_jsonl,
)
from sqlalchemy import select

SLUG = "acme"
ORGS = 4


@pytest.fixture
def dbs(tmp_path: Path) -> Iterator[Databases]:
    databases = Databases(BACKEND, tmp_path)
    yield databases
    databases.drop_all()


def parse_counts(stdout: str) -> dict[str, int]:
    out = {}
    for line in stdout.splitlines():
        name, _, value = line.partition(": ")
        if name in ("accepted", "duplicates", "rejected"):
            out[name] = int(value)
    return out


def no_dups(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep the first event of each eventId (concurrent writers must agree on payloads)."""
    seen: set[str] = set()
    out = []
    for ev in events:
        if ev["eventId"] not in seen:
            seen.add(ev["eventId"])
            out.append(ev)
    return out


class Threads:
    """Run functions in threads, each inside its own app context; collect their errors."""

    def __init__(self, application: Any) -> None:
        self.app = application
        self.errors: list[str] = []
        self.threads: list[threading.Thread] = []

    def start(self, name: str, fn: Callable[[], None]) -> None:
        def run() -> None:
            from app.extensions import db

            with self.app.app_context():
                try:
                    fn()
                except Exception as exc:  # noqa: BLE001 - reported by the test
                    self.errors.append(f"{name}: {type(exc).__name__}: {exc}")
                finally:
                    db.session.remove()

        thread = threading.Thread(target=run, name=name)
        self.threads.append(thread)
        thread.start()

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=300)
            assert not thread.is_alive(), f"{thread.name} did not finish"


@pytest.mark.slow
def test_two_ingest_processes_and_direct_writers_store_each_event_once(
    dbs: Databases, tmp_path: Path
) -> None:
    from app import accounts, auth, ingest, metrics
    from app.extensions import db
    from app.models import Organization, Partner
    from app.periods import Period

    url = dbs.new()
    setup_partner(url, SLUG, ORGS, pool=100_000)
    shared = no_dups(make_events(8000, ORGS, seed=1, prefix="s", dup_rate=0))
    own_a = make_events(12_000, ORGS, seed=2, prefix="a", dup_rate=0.05)
    own_b = make_events(12_000, ORGS, seed=3, prefix="b", dup_rate=0.05)
    own_t = [
        no_dups(make_events(3000, ORGS, seed=10 + i, prefix=f"t{i}-", dup_rate=0)) for i in range(3)
    ]
    # Conflicting repeats inside one writer's own events are settled by file order; across
    # writers every shared event has one payload.
    own_a = no_dups(own_a)
    own_b = no_dups(own_b)
    rng = random.Random(4)
    file_a = shared + own_a
    shuffled = shared[:]
    rng.shuffle(shuffled)
    file_b = shuffled + own_b
    path_a = write_jsonl(tmp_path / "a.jsonl", file_a).path
    path_b = write_jsonl(tmp_path / "b.jsonl", file_b).path
    everything = write_jsonl(
        tmp_path / "all.jsonl", shared + own_a + own_b + own_t[0] + own_t[1] + own_t[2]
    )
    distinct = len(everything.unique)
    assert distinct == len(shared) + len(own_a) + len(own_b) + 9000

    application = app_for(url)
    with application.app_context():
        partner_id = db.session.execute(select(Partner.id).where(Partner.slug == SLUG)).scalar_one()
        org_ids = list(db.session.execute(select(Organization.id)).scalars())
    accepted: list[int] = []
    lock = threading.Lock()

    def writer(index: int) -> Callable[[], None]:
        def run() -> None:
            partner = db.session.get(Partner, partner_id)
            mine = own_t[index] + random.Random(index).sample(shared, 3000)
            random.Random(100 + index).shuffle(mine)
            got = 0
            for start in range(0, len(mine), 250):
                chunk = mine[start : start + 250]
                # Each batch goes twice: a client retrying after a lost answer.
                for _ in range(2):
                    result = ingest.ingest_batch(partner, list(enumerate(chunk)))
                    assert not result.rejected, result.rejected[:3]
                    got += result.accepted
            with lock:
                accepted.append(got)

        return run

    def api_writer() -> None:
        # The third writer goes through the JSON API, by externalId, as a partner's
        # client would, and also moves allocations through it.
        client = application.test_client()
        partner = db.session.get(Partner, partner_id)
        _key, plain = auth.create_api_key(partner, "api-writer", ["write"])
        headers = {"X-Partner-API-Key": plain}
        db.session.remove()
        mine = own_t[2] + random.Random(2).sample(shared, 3000)
        random.Random(102).shuffle(mine)
        got = 0
        for n, start in enumerate(range(0, len(mine), 500)):
            chunk = mine[start : start + 500]
            for _ in range(2):
                response = client.post(
                    "/api/v1/partner/events", json={"events": chunk}, headers=headers
                )
                assert response.status_code == 200, response.get_data()[:300]
                assert response.get_json()["rejected"] == []
                got += response.get_json()["accepted"]
            response = client.put(
                f"/api/v1/partner/organizations/{org_ids[n % ORGS]}/credits",
                json={"credits": 1000 * n},
                headers=headers,
            )
            assert response.status_code in (200, 422), response.get_data()[:300]
        with lock:
            accepted.append(got)

    def allocator() -> None:
        partner = db.session.get(Partner, partner_id)
        rnd = random.Random(7)
        for _ in range(60):
            org = db.session.get(Organization, rnd.choice(org_ids))
            try:
                accounts.set_allocation(partner, org, rnd.randrange(0, 40_000), notes="race")
            except Exception as exc:
                if getattr(exc, "code", "") != "InsufficientCredits":
                    raise

    def key_maker() -> None:
        partner = db.session.get(Partner, partner_id)
        for i in range(20):
            db.session.get(Partner, partner_id)  # a read first, as a request would do
            key, _plain = auth.create_api_key(partner, f"race-{i}", ["read"])
            auth.revoke_api_key(key)

    def reader() -> None:
        partner = db.session.get(Partner, partner_id)
        for _ in range(40):
            metrics.summary(partner, Period(date(2025, 1, 1), date(2025, 12, 31)))
            db.session.rollback()

    procs = [
        start_flask(url, "ingest", str(p), "--partner", SLUG, "--batch-size", "500")
        for p in (path_a, path_b)
    ]
    threads = Threads(application)
    threads.start("writer-0", writer(0))
    threads.start("writer-1", writer(1))
    threads.start("api", api_writer)
    threads.start("allocator", allocator)
    threads.start("keys", key_maker)
    threads.start("reader", reader)
    outputs = [proc.communicate(timeout=300) for proc in procs]
    threads.join()

    for proc, (stdout, stderr) in zip(procs, outputs, strict=True):
        assert "database is locked" not in stderr + stdout
        assert "deadlock" not in (stderr + stdout).lower()
        assert proc.returncode == 0, stderr[-3000:]
    assert threads.errors == []
    counts = [parse_counts(stdout) for stdout, _ in outputs]
    # Each distinct event was accepted by exactly one writer.
    assert sum(c["accepted"] for c in counts) + sum(accepted) == distinct
    assert counts[0]["accepted"] + counts[0]["duplicates"] == len(file_a)
    assert counts[1]["accepted"] + counts[1]["duplicates"] == len(file_b)

    got = figures(url, SLUG)
    want = expected_totals(everything.unique)
    assert len(got["raw"]) == distinct
    assert {r[0]: (r[1], r[2], r[3]) for r in got["raw"]} == {
        k: v[:3] for k, v in everything.unique.items()
    }
    assert {t: v.quantity for t, v in got["usage"].by_type.items()} == want["quantity"]
    assert got["verify"] == []
    verify = flask(url, "rollups", "verify", check=False)
    assert verify.returncode == 0, verify.stdout
    with application.app_context():
        partner = db.session.get(Partner, partner_id)
        allocated = sum(
            o.credits_allocated
            for o in db.session.execute(
                select(Organization).where(Organization.partner_id == partner_id)
            ).scalars()
        )
        # The allocator raced with ingestion, yet the pool was never over-allocated.
        assert allocated <= partner.credit_pool_total
        db.session.remove()
        db.engine.dispose()


# --- two requests racing on one organization ------------------------------------------------
# Each request has its own session (its own app context). The first loaded the organization
# before the second changed it; the first's decision must rest on the committed state, not
# on its stale copy.


def test_allocation_on_an_organization_canceled_meanwhile_is_refused(app, make_partner, make_org):
    from app import accounts
    from app.errors import AppError
    from app.extensions import db
    from app.models import Organization, Partner

    partner = make_partner(pool=1000)
    org_id = make_org(partner, "Alpha", tier="paid", initial_credits=100).id
    with app.app_context():
        first = db.session.get(Organization, org_id)
        assert first.status == "active"
        with app.app_context():
            accounts.set_status(
                db.session.get(Partner, partner.id),
                db.session.get(Organization, org_id),
                "canceled",
            )
        with pytest.raises(AppError) as caught:
            accounts.set_allocation(db.session.get(Partner, partner.id), first, 300)
        assert caught.value.status == 422
        db.session.remove()
    db.session.rollback()  # end the read snapshot taken before the other requests
    org = db.session.get(Organization, org_id)
    # Canceling released the 100 credits; the late allocation did not bring 300 back.
    assert (org.status, org.credits_allocated) == ("canceled", 0)


def test_trial_tier_after_a_raise_above_the_trial_cap_meanwhile_is_refused(
    app, make_partner, make_org
):
    from app import accounts
    from app.errors import AppError
    from app.extensions import db
    from app.models import TRIAL_CREDIT_CAP, Organization, Partner

    partner = make_partner(pool=5000)
    org_id = make_org(partner, "Alpha", tier="paid", initial_credits=400).id
    with app.app_context():
        first = db.session.get(Organization, org_id)
        assert first.credits_allocated == 400
        with app.app_context():
            accounts.set_allocation(
                db.session.get(Partner, partner.id), db.session.get(Organization, org_id), 900
            )
        with pytest.raises(AppError) as caught:
            accounts.set_tier(db.session.get(Partner, partner.id), first, "trial")
        assert caught.value.status == 422
        db.session.remove()
    db.session.rollback()  # end the read snapshot taken before the other requests
    org = db.session.get(Organization, org_id)
    assert (org.tier, org.credits_allocated) == ("paid", 900)
    assert TRIAL_CREDIT_CAP == 500


# --- when the wait is too long: a clear answer, nothing half-done -----------------------------


@pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite's busy timeout; PostgreSQL waits")
def test_a_write_that_waits_past_the_busy_timeout_says_so_and_changes_nothing(
    app, client, runner, make_partner, make_org, api_key, freeze, tmp_path
):
    import sqlite3
    from datetime import datetime

    from sqlalchemy import event as sa_event

    from app.extensions import db
    from app.models import UsageEvent

    freeze(datetime(2025, 10, 20, 12))
    partner = make_partner()
    org = make_org(partner, "Alpha")
    key = api_key(partner)
    org_id, slug = org.id, partner.slug
    app.config["LOCK_TIMEOUT"] = 0.2
    # The app's connections give up after 0.2 s instead of 30 s...
    sa_event.listen(
        db.engine, "connect", lambda conn, _rec: conn.execute("PRAGMA busy_timeout=200")
    )
    db.session.remove()
    db.engine.dispose()
    # ...while another process (here: a raw connection) holds the write lock.
    holder = sqlite3.connect(db.engine.url.database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    event = {
        "eventId": "e1",
        "organizationId": org_id,
        "type": "identification",
        "occurredAt": "2025-10-19T10:00:00Z",
    }
    try:
        response = client.post(
            "/api/v1/partner/events", json={"events": [event]}, headers={"X-Partner-API-Key": key}
        )
        # The retryable 503 of spec §3 (the ingest's lock wait is LOCK_TIMEOUT, here
        # 0.2 s), with the Retry-After the error asked for, not the rate limiter's.
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "1"
        body = response.get_json()
        assert body["code"] == "ServiceUnavailable"
        assert body["details"] == {"retryable": True, "retryAfter": 1}
        assert "nothing was changed" in body["message"]
        path = tmp_path / "events.jsonl"
        path.write_text(json.dumps(event) + "\n")
        result = runner.invoke(args=["ingest", str(path), "--partner", slug, "--wait", "0"])
        assert result.exit_code == 1
        assert "stopped at line 1" in result.output
        assert "run the same command again" in result.output
        assert "Traceback" not in result.output
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    db.session.remove()
    assert db.session.execute(select(UsageEvent)).first() is None
    # Once the other writer is done, the same call goes through.
    response = client.post(
        "/api/v1/partner/events", json={"events": [event]}, headers={"X-Partner-API-Key": key}
    )
    assert response.get_json()["accepted"] == 1
