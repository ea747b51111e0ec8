"""The partner lock: timezone changes and rollup rebuilds are atomic with respect to ingestion.

Ingestion holds the partner's lock shared, `set-timezone` and `rollups rebuild` hold it
exclusive (PostgreSQL: an advisory lock; SQLite: the write lock). A write that cannot have
it within LOCK_TIMEOUT answers 503 with Retry-After and changes nothing; `flask ingest`
retries, then stops naming the line. Expected days are worked out by hand in comments.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from conftest import BACKEND
from sqlalchemy import select, text

from app import ingest, rollups
from app.database import PartnerBusy, partner_transaction
from app.extensions import db
from app.ingest import storage
from app.models import OrgDailyUsage, Partner, UsageEvent

NOW = datetime(2025, 10, 20, 12, 0)


@contextmanager
def held(app: Any, partner_id: str, exclusive: bool) -> Iterator[None]:
    """Hold the partner's lock in another thread (its own app context and connection)
    until the block ends, as a running timezone change (exclusive) or ingest (shared)."""
    taken, release = threading.Event(), threading.Event()
    failure: list[BaseException] = []

    def hold() -> None:
        with app.app_context():
            try:
                with partner_transaction(partner_id, exclusive=exclusive, timeout=10):
                    taken.set()
                    release.wait(30)
            except BaseException as exc:  # noqa: BLE001 - reported by the test below
                failure.append(exc)
                taken.set()
            finally:
                db.session.remove()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert taken.wait(15), "the holder never got the lock"
    assert not failure, failure
    try:
        yield
    finally:
        release.set()
        thread.join(30)


def stored_days(partner_id: str) -> dict[str, date]:
    db.session.remove()
    return {
        r.event_id: r.local_date
        for r in db.session.execute(
            select(UsageEvent.event_id, UsageEvent.local_date).where(
                UsageEvent.partner_id == partner_id
            )
        )
    }


def event(event_id: str, org_id: str, at: str, quantity: int = 1) -> dict[str, Any]:
    return {
        "eventId": event_id,
        "organizationId": org_id,
        "type": "identification",
        "quantity": quantity,
        "occurredAt": at,
    }


# --- rows prepared with a timezone that changed before they were stored ----------------------


def prepared_in_utc(partner, events):
    """Validate events as ingestion does before it takes the lock, with the UTC timezone;
    return the rows and the result counting them."""
    result = ingest.IngestResult()
    rows = ingest.prepare_batch(
        list(enumerate(events, start=1)), ingest.OrgResolver(partner.id), "UTC", NOW, result
    )
    return rows, result


def test_rows_prepared_before_a_timezone_change_are_stored_with_the_new_day(
    app, freeze, make_partner, make_org
):
    freeze(NOW)
    partner = make_partner(tz="UTC")
    org = make_org(partner, "Alpha")
    # 2025-10-18 20:00 UTC is 2025-10-18 in UTC and 2025-10-19 01:45 in Kathmandu (+05:45).
    rows, result = prepared_in_utc(partner, [event("late", org.id, "2025-10-18T20:00:00Z", 3)])
    assert rows[0]["local_date"] == date(2025, 10, 18)
    rollups.set_timezone(partner, "Asia/Kathmandu")
    stored_tz = ingest.commit_rows(partner.id, rows, NOW, "UTC", result)
    assert stored_tz == "Asia/Kathmandu"
    assert result.accepted == 1
    assert stored_days(partner.id) == {"late": date(2025, 10, 19)}
    daily = db.session.execute(select(OrgDailyUsage.day, OrgDailyUsage.quantity)).all()
    assert [(d, q) for d, q in daily] == [(date(2025, 10, 19), 3)]
    assert rollups.verify(partner.id) == []


def test_chunks_prepared_before_a_timezone_change_are_re_bucketed(
    app, freeze, make_partner, make_org
):
    freeze(NOW)
    partner = make_partner(tz="UTC")
    org = make_org(partner, "Alpha")
    # As the file import's reader process prepares a batch: rows (on SQLite, then their
    # text parameters), and the batch's sums and rollup rows.
    # 2025-10-18 02:00 UTC is 2025-10-17 22:00 in New York (UTC-4 in October); 12:00 UTC
    # stays on the 18th (08:00).
    rows, result = prepared_in_utc(
        partner,
        [
            event("a", org.id, "2025-10-18T02:00:00Z", 2),
            event("b", org.id, "2025-10-18T12:00:00Z", 5),
        ],
    )
    ingest.order_rows(partner.id, rows, NOW)
    sums = ingest.sum_rows(rows)
    if BACKEND == "sqlite":
        chunk = (2, 1, [], storage.sqlite_params(rows, storage.sqlite_formatters()), result)
    else:
        chunk = (2, 1, rows, None, result)
    end = ("end", rollups.rollup_rows(partner.id, sums, "UTC"))
    rollups.set_timezone(partner, "America/New_York")
    stored_tz, results = storage.store_chunked_batch(
        partner.id, "UTC", chunk, iter([end]), 0.0, ingest.IngestResult()
    )
    assert stored_tz == "America/New_York" and results == [(2, result)]
    assert result.accepted == 2
    assert stored_days(partner.id) == {"a": date(2025, 10, 17), "b": date(2025, 10, 18)}
    daily = sorted(db.session.execute(select(OrgDailyUsage.day, OrgDailyUsage.quantity)))
    assert [tuple(r) for r in daily] == [(date(2025, 10, 17), 2), (date(2025, 10, 18), 5)]
    assert rollups.verify(partner.id) == []


# --- verify sees stale local days, rebuild fixes them ----------------------------------------


def test_verify_reports_stale_local_days_and_rebuild_re_buckets_them(
    app, runner, freeze, make_partner, make_org, add_events
):
    freeze(NOW)
    partner = make_partner(tz="Europe/Paris")
    org = make_org(partner, "Alpha")
    # 2025-10-18 22:30 UTC is 2025-10-19 00:30 in Paris (UTC+2 until 26 October).
    add_events(
        partner,
        [
            event("e1", org.id, "2025-10-18T22:30:00Z", 4),
            event("e2", org.id, "2025-10-18T12:00:00Z", 1),
        ],
    )
    assert stored_days(partner.id) == {"e1": date(2025, 10, 19), "e2": date(2025, 10, 18)}
    # What a timezone change that lost a race left behind: e1 stored on its UTC day, with
    # rollups that agree with that stale day (so the old verify said OK).
    db.session.execute(
        text("UPDATE usage_event SET local_date = :d WHERE event_id = 'e1'"),
        {"d": date(2025, 10, 18)},
    )
    db.session.commit()
    db.session.execute(text("DELETE FROM org_daily_usage"))
    db.session.commit()
    result = runner.invoke(args=["rollups", "verify", "--partner", partner.slug])
    assert result.exit_code == 1
    assert (
        "1 event(s) stored on 2025-10-18 did not happen on that day in Europe/Paris"
        in result.output
    )
    result = runner.invoke(args=["rollups", "rebuild", "--partner", partner.slug])
    assert result.exit_code == 0, result.output
    assert "1 event(s) re-bucketed" in result.output
    assert stored_days(partner.id) == {"e1": date(2025, 10, 19), "e2": date(2025, 10, 18)}
    daily = sorted(db.session.execute(select(OrgDailyUsage.day, OrgDailyUsage.quantity)))
    assert [tuple(r) for r in daily] == [(date(2025, 10, 18), 1), (date(2025, 10, 19), 4)]
    result = runner.invoke(args=["rollups", "verify", "--partner", partner.slug])
    assert result.exit_code == 0, result.output


# --- waiting: 503 with Retry-After, nothing changed ------------------------------------------


def test_an_ingest_that_waits_past_lock_timeout_answers_503_and_stores_nothing(
    app, client, freeze, make_partner, make_org, api_key
):
    freeze(NOW)
    partner = make_partner()
    org = make_org(partner, "Alpha")
    key = api_key(partner)
    partner_id, org_id = partner.id, org.id
    app.config["LOCK_TIMEOUT"] = 0.3
    body = {"events": [event("e1", org_id, "2025-10-19T10:00:00Z")]}
    with held(app, partner_id, exclusive=True):
        response = client.post(
            "/api/v1/partner/events", json=body, headers={"X-Partner-API-Key": key}
        )
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "1"  # 0.3 s, rounded up to whole seconds
        assert response.mimetype == "application/json"
        payload = response.get_json()
        assert payload["code"] == "ServiceUnavailable"
        assert payload["details"]["retryable"] is True
        # Reads are not blocked by the lock.
        read = client.get("/api/v1/partner/usage", headers={"X-Partner-API-Key": key})
        assert read.status_code == 200
    assert stored_days(partner_id) == {}
    response = client.post("/api/v1/partner/events", json=body, headers={"X-Partner-API-Key": key})
    assert response.status_code == 200 and response.get_json()["accepted"] == 1


def test_a_timezone_change_waits_for_a_running_ingest_then_fails_with_nothing_changed(
    app, runner, freeze, make_partner, make_org, add_events
):
    freeze(NOW)
    partner = make_partner(tz="UTC")
    org = make_org(partner, "Alpha")
    add_events(partner, [event("e1", org.id, "2025-10-18T23:00:00Z")])
    partner_id, slug = partner.id, partner.slug
    app.config["LOCK_TIMEOUT"] = 0.3
    with held(app, partner_id, exclusive=False):
        result = runner.invoke(args=["set-timezone", "--partner", slug, "--timezone", "Asia/Tokyo"])
        assert result.exit_code == 1
        assert "timezone not changed" in result.output
        assert "Traceback" not in result.output
    db.session.remove()
    assert (
        db.session.execute(select(Partner.timezone).where(Partner.id == partner_id)).scalar_one()
        == "UTC"
    )
    assert stored_days(partner_id) == {"e1": date(2025, 10, 18)}
    # 23:00 UTC on the 18th is 08:00 on the 19th in Tokyo (UTC+9).
    result = runner.invoke(args=["set-timezone", "--partner", slug, "--timezone", "Asia/Tokyo"])
    assert result.exit_code == 0, result.output
    assert "1 event(s) changed day" in result.output
    assert stored_days(partner_id) == {"e1": date(2025, 10, 19)}


@pytest.mark.skipif(BACKEND != "postgresql", reason="SQLite has one writer at a time")
def test_ingests_share_the_lock_and_run_in_parallel(app, make_partner):
    partner = make_partner()
    with held(app, partner.id, exclusive=False), partner_transaction(partner.id, timeout=0.5) as tz:
        assert tz == "UTC"  # had at once although another ingest holds it
    with held(app, partner.id, exclusive=True), pytest.raises(PartnerBusy):
        with partner_transaction(partner.id, timeout=0.3):
            pass


@pytest.mark.skipif(BACKEND != "postgresql", reason="per-partner locks: PostgreSQL")
def test_one_partners_rebuild_does_not_hold_up_another_partners_ingest(
    app, freeze, make_partner, make_org, add_events
):
    freeze(NOW)
    first, second = make_partner("first"), make_partner("second")
    make_org(first, "A")
    org = make_org(second, "B")
    app.config["LOCK_TIMEOUT"] = 0.5
    with held(app, first.id, exclusive=True):
        result = add_events(second, [event("e1", org.id, "2025-10-19T10:00:00Z")])
    assert result.accepted == 1


# --- flask ingest: retries, then names the line ----------------------------------------------


def _events_file(tmp_path: Any, org_id: str, count: int) -> Any:
    path = tmp_path / "events.jsonl"
    path.write_text(
        "".join(
            json.dumps(event(f"e{i}", org_id, f"2025-10-19T{i:02d}:00:00Z")) + "\n"
            for i in range(1, count + 1)
        )
    )
    return path


@pytest.mark.parametrize("pipeline", ["--pipeline", "--no-pipeline"])
def test_flask_ingest_stops_naming_the_line_when_the_partner_stays_busy(
    app, runner, freeze, make_partner, make_org, tmp_path, monkeypatch, pipeline
):
    freeze(NOW)
    partner = make_partner()
    org = make_org(partner, "Alpha")
    partner_id, slug = partner.id, partner.slug
    path = _events_file(tmp_path, org.id, 6)
    app.config["LOCK_TIMEOUT"] = 0.2
    # The first batch (lines 1-2) is stored; then a timezone change takes the lock (both
    # modes open each batch's transaction with storage.partner_transaction).
    real_transaction = storage.partner_transaction
    calls: list[int] = []
    stack: list[Any] = []

    def lock_before_the_second(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            holder = held(app, partner_id, exclusive=True)
            holder.__enter__()
            stack.append(holder)
        return real_transaction(*args, **kwargs)

    monkeypatch.setattr(storage, "partner_transaction", lock_before_the_second)
    try:
        result = runner.invoke(
            args=[
                "ingest",
                str(path),
                "--partner",
                slug,
                "--batch-size",
                "2",
                "--wait",
                "0.5",
                pipeline,
            ]
        )
    finally:
        for holder in stack:
            holder.__exit__(None, None, None)
    assert result.exit_code == 1
    assert "accepted: 2" in result.output
    assert "stopped at line 3" in result.output
    assert "Every line before 3 is stored" in result.output
    assert "Traceback" not in result.output
    assert sorted(stored_days(partner_id)) == ["e1", "e2"]
    # Run again once the lock is free: the rest goes in, the first two are duplicates.
    monkeypatch.setattr(storage, "partner_transaction", real_transaction)
    result = runner.invoke(
        args=["ingest", str(path), "--partner", slug, "--batch-size", "2", pipeline]
    )
    assert result.exit_code == 0, result.output
    assert "accepted: 4" in result.output and "duplicates: 2" in result.output


def test_flask_ingest_waits_for_a_short_lock_and_finishes(
    app, runner, freeze, make_partner, make_org, tmp_path
):
    freeze(NOW)
    partner = make_partner()
    org = make_org(partner, "Alpha")
    partner_id, slug = partner.id, partner.slug
    path = _events_file(tmp_path, org.id, 3)
    app.config["LOCK_TIMEOUT"] = 0.2
    holder = held(app, partner_id, exclusive=True)
    holder.__enter__()
    timer = threading.Timer(1.0, holder.__exit__, (None, None, None))
    timer.start()
    try:
        result = runner.invoke(
            args=["ingest", str(path), "--partner", slug, "--wait", "20", "--no-pipeline"]
        )
    finally:
        timer.join()
    assert result.exit_code == 0, result.output
    assert "accepted: 3" in result.output
    assert len(stored_days(partner_id)) == 3


# --- under real concurrency -------------------------------------------------------------------


def test_timezone_changes_during_concurrent_ingestion_leave_every_day_right(
    app, freeze, make_partner, make_org
):
    """Threads ingest through ingest_batch while the timezone changes three times; every
    stored day is then the occurredAt's day in the final timezone (zoneinfo, row by row),
    nothing is lost or doubled, and the rollups agree with the raw events."""
    freeze(NOW)
    partner = make_partner(tz="UTC")
    orgs = [make_org(partner, f"Org {i}").id for i in range(3)]
    partner_id = partner.id
    app.config["LOCK_TIMEOUT"] = 30
    sent: dict[str, datetime] = {}
    errors: list[BaseException] = []

    def writer(number: int) -> None:
        with app.app_context():
            try:
                for batch in range(12):
                    events = []
                    for i in range(40):
                        # Spread over 10 days and every quarter hour: many events sit near
                        # a local midnight in one zone or another.
                        minute = (number * 977 + batch * 131 + i * 53) % (10 * 24 * 4) * 15
                        at = datetime(2025, 10, 8, 0, 0) + timedelta(minutes=minute)
                        event_id = f"w{number}-{batch}-{i}"
                        sent[event_id] = at
                        events.append(event(event_id, orgs[i % 3], at.isoformat() + "Z"))
                    fresh = db.session.get(Partner, partner_id)
                    ingest.ingest_batch(fresh, list(enumerate(events)))
                    db.session.remove()
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
            finally:
                db.session.remove()

    def changer() -> None:
        with app.app_context():
            try:
                for tz in ("Asia/Kathmandu", "America/New_York", "Pacific/Chatham"):
                    rollups.set_timezone(db.session.get(Partner, partner_id), tz)
                    db.session.remove()
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    threads.append(threading.Thread(target=changer))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not errors, errors
    final = ZoneInfo("Pacific/Chatham")
    days = stored_days(partner_id)
    assert len(days) == len(sent) == 3 * 12 * 40
    wrong = {
        event_id: (days[event_id], at)
        for event_id, at in sent.items()
        if days[event_id] != at.replace(tzinfo=UTC).astimezone(final).date()
    }
    assert wrong == {}
    assert rollups.verify(partner_id) == []
