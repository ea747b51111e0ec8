"""Webhooks: signed deliveries to a local receiver, retries, the outbox, the URL guard, the
API, the page, the audit trail, and a worker killed with SIGKILL in mid-delivery.

The receiver listens on 127.0.0.1 only and checks every signature with its own
implementation of the Standard Webhooks scheme (written from the specification's text:
HMAC-SHA256 keyed by the base64-decoded part of whsec_..., over "{id}.{timestamp}.{body}",
sent as space-separated "v1,<base64>" entries), not with app code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app import delivery, outbox, webhooks
from app.extensions import db
from app.models import AuditEntry, WebhookAttempt, WebhookMessage
from app.timeutil import set_frozen_now
from tests.views_support import csrf_token, login

NOW = datetime(2025, 10, 20, 12)
PASSWORD = "correct horse battery"
ROOT = Path(__file__).resolve().parent.parent


# --- an independent verifier -----------------------------------------------------------


def expected_signature(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    assert secret.startswith("whsec_")
    key = base64.b64decode(secret[len("whsec_") :])
    content = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    return base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()


def signature_valid(secret: str, headers: dict[str, str], body: bytes) -> bool:
    want = expected_signature(secret, headers["webhook-id"], headers["webhook-timestamp"], body)
    for entry in headers["webhook-signature"].split(" "):
        version, _, sig = entry.partition(",")
        if version == "v1" and hmac.compare_digest(sig, want):
            return True
    return False


def test_the_verifier_matches_the_specifications_example():
    # The example of the Standard Webhooks reference libraries (secret, id, timestamp,
    # payload and signature as published there).
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    assert (
        expected_signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", body)
        == "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )
    # And the app signs the same way.
    assert (
        webhooks.sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body.decode())
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


# --- the receiver ----------------------------------------------------------------------


class Receiver:
    """An HTTP server on 127.0.0.1: answers from a script, records every request."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.script: list[Any] = []  # int status, ("sleep", s, status) or ("hold", Event)
        self.default = 200
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                receiver.requests.append(
                    {
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body,
                        "path": self.path,
                    }
                )
                receiver.arrived.set()
                step = receiver.script.pop(0) if receiver.script else receiver.default
                if isinstance(step, tuple) and step[0] == "sleep":
                    time.sleep(step[1])
                    step = step[2]
                if isinstance(step, tuple) and step[0] == "hold":
                    step[1].wait(30)
                    return
                answer = json.dumps({"received": True, "n": len(receiver.requests)}).encode()
                try:
                    self.send_response(step)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks?src=test"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def ids(self) -> list[str]:
        return [r["headers"]["webhook-id"] for r in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def world(app, freeze, make_partner, make_user, api_key):
    freeze(NOW)
    alpha = make_partner("alpha", pool=10_000, name="Alpha Agency")
    bravo = make_partner("bravo", pool=10_000, name="Bravo Agency")
    return {
        "alpha": alpha,
        "bravo": bravo,
        "key": api_key(alpha, ["admin"]),
        "read_key": api_key(alpha, ["read"]),
        "bravo_key": api_key(bravo, ["admin"]),
        "owner": make_user(alpha, "owner@alpha.test", PASSWORD),
    }


def put(client, key, body):
    return client.put(
        "/api/v1/partner/webhooks/billing", json=body, headers={"X-Partner-API-Key": key}
    )


def post(client, key, path):
    return client.post(f"/api/v1/partner/webhooks/{path}", headers={"X-Partner-API-Key": key})


def configured(client, world, receiver, **extra) -> str:
    answer = put(client, world["key"], {"url": receiver.url, **extra})
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["secret"]


def message_row(message_id: str) -> WebhookMessage:
    db.session.rollback()
    return db.session.get(WebhookMessage, message_id)


def attempts_of(message_id: str) -> list[WebhookAttempt]:
    db.session.rollback()
    return list(
        db.session.execute(
            select(WebhookAttempt)
            .where(WebhookAttempt.message_id == message_id)
            .order_by(WebhookAttempt.id)
        ).scalars()
    )


# --- the API and a signed delivery -----------------------------------------------------


def test_configure_test_send_and_log(client, world, receiver):
    assert client.get(
        "/api/v1/partner/webhooks", headers={"X-Partner-API-Key": world["key"]}
    ).get_json() == {
        "webhooks": [],
        "eventTypes": [
            "test",
            "billing.pool.threshold",
            "billing.pool.projected_exhaustion",
            "organization.allocation.threshold",
            "data.stale",
            "organization.inactive",
        ],
    }
    first = put(client, world["key"], {"url": receiver.url, "eventTypes": ["data.stale"]})
    assert first.status_code == 200
    secret = first.get_json()["secret"]
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{43}=", secret)  # 32 bytes in base64
    assert first.get_json()["webhook"]["eventTypes"] == ["data.stale"]
    assert first.get_json()["webhook"]["secretHint"] == "whsec_…" + secret[-4:]
    # A later PUT changes the endpoint but never answers the secret again.
    again = put(client, world["key"], {"url": receiver.url, "enabled": True})
    assert again.get_json()["secret"] is None
    assert again.get_json()["webhook"]["eventTypes"] == ["data.stale"]  # omitted: unchanged
    listed = client.get("/api/v1/partner/webhooks", headers={"X-Partner-API-Key": world["key"]})
    assert secret not in listed.get_data(as_text=True)

    sent = post(client, world["key"], "test")
    assert sent.status_code == 202
    msg_id = sent.get_json()["webhookId"]
    # Immediate mode: delivered within the request.
    assert len(receiver.requests) == 1
    got = receiver.requests[0]
    assert got["headers"]["webhook-id"] == msg_id
    assert got["path"] == "/hooks?src=test"
    assert got["headers"]["content-type"] == "application/json"
    assert signature_valid(secret, got["headers"], got["body"])
    assert abs(int(got["headers"]["webhook-timestamp"]) - time.time()) < 300
    payload = json.loads(got["body"])
    assert list(payload) == ["type", "timestamp", "data"]
    assert payload["type"] == "test"
    assert payload["timestamp"] == "2025-10-20T12:00:00Z"
    assert payload["data"]["partner"] == {"id": world["alpha"].id, "name": "Alpha Agency"}
    # A signature over another body, or with another secret, does not verify.
    assert not signature_valid(secret, got["headers"], got["body"] + b" ")
    assert not signature_valid(webhooks.new_secret(), got["headers"], got["body"])

    logs = client.get(
        "/api/v1/partner/webhooks/logs", headers={"X-Partner-API-Key": world["key"]}
    ).get_json()
    assert logs["total"] == 1
    entry = logs["logs"][0]
    assert entry["webhookId"] == msg_id
    assert entry["status"] == "succeeded"
    assert entry["responseCode"] == 200
    assert entry["error"] is None
    assert entry["willRetry"] is False
    assert entry["time"] == "2025-10-20T12:00:00Z"
    assert isinstance(entry["latency"], int) and entry["latency"] >= 0
    # Another partner sees none of it.
    other = client.get(
        "/api/v1/partner/webhooks/logs", headers={"X-Partner-API-Key": world["bravo_key"]}
    ).get_json()
    assert other["total"] == 0 and other["logs"] == []
    assert (
        client.get(
            "/api/v1/partner/webhooks", headers={"X-Partner-API-Key": world["bravo_key"]}
        ).get_json()["webhooks"]
        == []
    )


def test_the_api_needs_the_admin_scope(client, world, receiver):
    for method, path in (
        ("GET", "/api/v1/partner/webhooks"),
        ("GET", "/api/v1/partner/webhooks/logs"),
        ("PUT", "/api/v1/partner/webhooks/billing"),
        ("POST", "/api/v1/partner/webhooks/test"),
        ("POST", "/api/v1/partner/webhooks/secret/rotate"),
    ):
        answer = client.open(
            path,
            method=method,
            json={"url": receiver.url} if method == "PUT" else None,
            headers={"X-Partner-API-Key": world["read_key"]},
        )
        assert answer.status_code == 403, path
    assert receiver.requests == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "url"),
        ({"url": ""}, "url"),
        ({"url": "ftp://127.0.0.1/x"}, "url"),
        ({"url": "https://"}, "url"),
        ({"url": "https://user:pw@127.0.0.1/x"}, "url"),
        ({"url": "http://127.0.0.1:99999/x"}, "url"),
        ({"url": "http://127.0.0.1/a b"}, "url"),
        ({"url": "https://x.test/" + "a" * 2000}, "url"),
        ({"url": 5}, "url"),
        ({"url": "http://127.0.0.1/x", "enabled": "yes"}, "enabled"),
        ({"url": "http://127.0.0.1/x", "eventTypes": ["data.stale", "nope"]}, "eventTypes[1]"),
        ({"url": "http://127.0.0.1/x", "eventTypes": "data.stale"}, "eventTypes"),
    ],
)
def test_bad_configurations_answer_400_naming_the_field(client, world, body, field):
    answer = put(client, world["key"], body)
    assert answer.status_code == 400, answer.get_json()
    assert answer.get_json()["details"]["field"] == field
    assert webhooks.get_endpoint(world["alpha"]) is None


def test_test_and_rotation_need_a_webhook_and_test_needs_it_enabled(client, world, receiver):
    assert post(client, world["key"], "test").status_code == 404
    assert post(client, world["key"], "secret/rotate").status_code == 404
    configured(client, world, receiver, enabled=False)
    refused = post(client, world["key"], "test")
    assert refused.status_code == 422
    assert refused.get_json()["details"]["field"] == "enabled"
    assert receiver.requests == []


def test_rotation_answers_a_new_secret_and_both_sign_for_a_day(client, world, receiver):
    old = configured(client, world, receiver)
    rotated = post(client, world["key"], "secret/rotate")
    assert rotated.status_code == 200
    new = rotated.get_json()["secret"]
    assert new != old and new.startswith("whsec_")
    assert rotated.get_json()["webhook"]["secretRotatedAt"] == "2025-10-20T12:00:00Z"
    post(client, world["key"], "test")
    got = receiver.requests[-1]
    assert len(got["headers"]["webhook-signature"].split(" ")) == 2
    assert signature_valid(new, got["headers"], got["body"])
    assert signature_valid(old, got["headers"], got["body"])
    # A day later only the new secret signs.
    set_frozen_now(NOW + timedelta(hours=24, seconds=1))
    post(client, world["key"], "test")
    got = receiver.requests[-1]
    assert len(got["headers"]["webhook-signature"].split(" ")) == 1
    assert signature_valid(new, got["headers"], got["body"])
    assert not signature_valid(old, got["headers"], got["body"])


def test_every_change_is_audited_without_the_secret(client, world, receiver):
    secret = configured(client, world, receiver)
    put(client, world["key"], {"url": receiver.url, "enabled": False})
    put(client, world["key"], {"url": receiver.url, "enabled": False})  # no change: no entry
    put(client, world["key"], {"url": receiver.url, "enabled": True})
    rotated = post(client, world["key"], "secret/rotate").get_json()["secret"]
    msg_id = post(client, world["key"], "test").get_json()["webhookId"]
    db.session.rollback()
    entries = (
        db.session.execute(
            select(AuditEntry).where(AuditEntry.object_type == "webhook").order_by(AuditEntry.id)
        )
        .scalars()
        .all()
    )
    assert [(e.object_type, e.action) for e in entries] == [
        ("webhook", "create"),
        ("webhook", "update"),
        ("webhook", "update"),
        ("webhook", "rotate_secret"),
        ("webhook", "test"),
    ]
    assert entries[0].after == {
        "url": receiver.url,
        "enabled": True,
        "eventTypes": list(webhooks.DEFAULT_EVENT_TYPES),
    }
    assert entries[1].before == {"enabled": True} and entries[1].after == {"enabled": False}
    assert entries[4].after == {"webhookId": msg_id}
    assert all(e.actor_kind == "api_key" for e in entries)
    text = json.dumps([[e.before, e.after, e.object_label] for e in entries])
    assert secret not in text and rotated not in text


# --- retries -----------------------------------------------------------------------------


def test_retries_after_500s_with_the_same_id_until_delivered(client, world, receiver):
    secret = configured(client, world, receiver)
    receiver.script = [500, 503, 200]
    msg_id = post(client, world["key"], "test").get_json()["webhookId"]
    with client.application.app_context():
        first = message_row(msg_id)
        first_due = first.next_attempt_at
        # First retry within 60 s.
        assert NOW < first_due <= NOW + timedelta(seconds=60)
        assert first.attempts == 1 and first.delivered_at is None
        # Not due yet: nothing is sent.
        assert delivery.deliver(msg_id) == "not due"
        set_frozen_now(first_due)
        assert delivery.deliver(msg_id).startswith("retry at")
        second_due = message_row(msg_id).next_attempt_at
        assert second_due - first_due > timedelta(seconds=60)
        set_frozen_now(second_due)
        assert delivery.deliver(msg_id) == "delivered"
        # Once delivered, a stray job sends nothing more.
        set_frozen_now(second_due + timedelta(days=1))
        assert delivery.deliver(msg_id) == "not due"
        codes = [(a.status, a.response_code, a.will_retry) for a in attempts_of(msg_id)]
    assert codes == [("failed", 500, True), ("failed", 503, True), ("succeeded", 200, False)]
    assert receiver.ids() == [msg_id] * 3
    assert len(set(receiver.ids())) == 1  # one logical delivery
    assert all(signature_valid(secret, r["headers"], r["body"]) for r in receiver.requests)
    assert len({r["body"] for r in receiver.requests}) == 1  # the same body every time


def test_a_timeout_is_retried(client, world, receiver):
    client.application.config["WEBHOOK_TIMEOUT_S"] = 0.3
    secret = configured(client, world, receiver)
    receiver.script = [("sleep", 1.5, 200), 200]
    msg_id = post(client, world["key"], "test").get_json()["webhookId"]
    with client.application.app_context():
        [attempt] = attempts_of(msg_id)
        assert attempt.status == "failed" and attempt.response_code is None
        assert attempt.error == "timed out after 0.3 s"
        assert attempt.will_retry
        set_frozen_now(message_row(msg_id).next_attempt_at)
        assert delivery.deliver(msg_id) == "delivered"
    assert receiver.ids() == [msg_id, msg_id]
    assert all(signature_valid(secret, r["headers"], r["body"]) for r in receiver.requests)


@pytest.mark.parametrize(
    ("code", "retried"),
    [(400, False), (404, False), (410, False), (408, True), (429, True), (302, False)],
)
def test_which_answers_are_retried(client, world, receiver, code, retried):
    configured(client, world, receiver)
    receiver.script = [code]
    msg_id = post(client, world["key"], "test").get_json()["webhookId"]
    with client.application.app_context():
        row = message_row(msg_id)
        [attempt] = attempts_of(msg_id)
        assert attempt.response_code == code and attempt.will_retry is retried
        if retried:
            assert row.next_attempt_at is not None and row.failed_at is None
        else:
            assert row.next_attempt_at is None and row.failed_at == NOW
            set_frozen_now(NOW + timedelta(days=2))
            assert delivery.deliver(msg_id) == "not due"
    assert len(receiver.requests) == 1


def test_a_refused_connection_is_retried(client, world):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nobody listens there
    answer = put(client, world["key"], {"url": f"http://127.0.0.1:{port}/x"})
    assert answer.status_code == 200
    msg_id = post(client, world["key"], "test").get_json()["webhookId"]
    with client.application.app_context():
        [attempt] = attempts_of(msg_id)
        assert attempt.status == "failed" and attempt.will_retry
        assert "connection refused" in attempt.error


def test_the_retry_schedule_lasts_at_least_a_day(app_ctx, make_partner, freeze):
    freeze(NOW)
    partner = make_partner("gamma")
    db.session.add(
        webhooks.WebhookEndpoint(
            partner_id=partner.id,
            name="billing",
            url="http://127.0.0.1:9/x",
            enabled=True,
            event_types=["data.stale"],
            secret=webhooks.new_secret(),
        )
    )
    db.session.commit()
    message = outbox.enqueue(partner.id, "data.stale", {"hours": 3})
    msg_id = message.id
    db.session.info.pop(outbox._PENDING)  # no queue: the attempts are made below
    db.session.commit()
    failing = delivery.Outcome(False, True, 503, 5, "HTTP 503", None)
    times = [NOW]
    while True:
        delivery.record(msg_id, "http://127.0.0.1:9/x", failing)
        row = message_row(msg_id)
        if row.next_attempt_at is None:
            break
        times.append(row.next_attempt_at)
        set_frozen_now(row.next_attempt_at)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert gaps[0] <= timedelta(seconds=60)
    assert all(b > a for a, b in zip(gaps, gaps[1:4], strict=False))  # growing at first
    assert max(gaps) <= timedelta(hours=6, minutes=72)  # capped at 6 h + 20 % jitter
    assert times[-1] - NOW >= timedelta(hours=24)  # still trying a day later
    assert row.failed_at is not None and row.delivered_at is None
    assert row.attempts == len(times)


def test_retry_delays_have_jitter_within_bounds():
    assert delivery.retry_delay(1, 0.0) == timedelta(seconds=20)
    assert delivery.retry_delay(1, 1.0) == timedelta(seconds=40)
    assert delivery.retry_delay(2, 0.5) == timedelta(seconds=120)  # 30 * 4
    assert delivery.retry_delay(3, 0.0) == timedelta(seconds=480 * 0.8)
    assert delivery.retry_delay(20, 1.0) == timedelta(hours=6) * 1.2


# --- the outbox --------------------------------------------------------------------------


def test_enqueue_writes_in_the_callers_transaction(app_ctx, make_partner, freeze, receiver):
    freeze(NOW)
    partner = make_partner("delta")
    assert outbox.enqueue(partner.id, "data.stale", {"x": 1}) is None  # no endpoint
    webhooks.configure(partner, receiver.url, True, ["data.stale"])
    assert outbox.enqueue(partner.id, "organization.inactive", {"x": 1}) is None  # unsubscribed
    db.session.rollback()
    with pytest.raises(ValueError):
        outbox.enqueue(partner.id, "no.such.type", {})
    # Rolled back with its cause: no row, nothing sent.
    outbox.enqueue(partner.id, "data.stale", {"x": 2})
    db.session.rollback()
    assert db.session.execute(select(WebhookMessage)).scalars().all() == []
    assert receiver.requests == []
    # Committed: delivered (immediate mode), once.
    message = outbox.enqueue(partner.id, "data.stale", {"x": 3})
    msg_id = message.id
    db.session.commit()
    assert receiver.ids() == [msg_id]
    assert json.loads(receiver.requests[0]["body"]) == {
        "type": "data.stale",
        "timestamp": "2025-10-20T12:00:00Z",
        "data": {"x": 3},
    }


def test_the_sweep_delivers_what_the_queue_lost(app_ctx, make_partner, freeze, receiver):
    freeze(NOW)
    partner = make_partner("epsilon")
    webhooks.configure(partner, receiver.url, True, ["data.stale"])
    # A message the queue never heard of (as if the job was lost).
    db.session.add(
        WebhookMessage(
            id="msg_lost",
            partner_id=partner.id,
            event_type="data.stale",
            body='{"type":"data.stale","timestamp":"2025-10-20T12:00:00Z","data":{}}',
            created_at=NOW,
            next_attempt_at=NOW,
            attempts=0,
        )
    )
    db.session.commit()
    assert receiver.requests == []
    assert delivery.sweep() == 1
    assert receiver.ids() == ["msg_lost"]
    assert message_row("msg_lost").delivered_at == NOW
    assert delivery.sweep() == 0  # delivered: not handed over again


def test_a_claimed_message_is_not_claimed_twice(app_ctx, make_partner, freeze, receiver):
    freeze(NOW)
    partner = make_partner("zeta")
    endpoint, _secret = webhooks.configure(partner, receiver.url, True, ["data.stale"])
    endpoint.enabled = True
    db.session.add(
        WebhookMessage(
            id="msg_claim",
            partner_id=partner.id,
            event_type="data.stale",
            body="{}",
            created_at=NOW,
            next_attempt_at=NOW,
            attempts=0,
        )
    )
    db.session.commit()
    assert delivery.claim("msg_claim") is True
    assert delivery.claim("msg_claim") is False
    # The claim lasts the lease; a worker that died holding it is replaced after that.
    set_frozen_now(NOW + delivery.lease())
    assert delivery.claim("msg_claim") is True


def test_concurrent_claims_take_a_message_once(app, make_partner, freeze, receiver):
    freeze(NOW)
    with app.app_context():
        partner = make_partner("eta")
        webhooks.configure(partner, receiver.url, True, ["data.stale"])
        for i in range(10):
            db.session.add(
                WebhookMessage(
                    id=f"msg_c{i}",
                    partner_id=partner.id,
                    event_type="data.stale",
                    body="{}",
                    created_at=NOW,
                    next_attempt_at=NOW,
                    attempts=0,
                )
            )
        db.session.commit()
    won: list[str] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        with app.app_context():
            barrier.wait()
            for i in range(10):
                if delivery.claim(f"msg_c{i}"):
                    won.append(f"msg_c{i}")

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(won) == sorted(f"msg_c{i}" for i in range(10))


# --- the URL guard -----------------------------------------------------------------------


@pytest.fixture
def no_connections(monkeypatch):
    """Fail the test if anything opens a connection."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"a connection was attempted: {args}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


@pytest.mark.parametrize(
    ("url", "address", "kind"),
    [
        ("http://127.0.0.1/hook", "127.0.0.1", "loopback"),
        ("https://10.0.0.1/hook", "10.0.0.1", "private"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254", "link-local"),
        ("http://[::1]:8080/hook", "::1", "loopback"),
        ("http://0.0.0.0/hook", "0.0.0.0", "unspecified"),  # noqa: S104
        ("http://[::ffff:192.168.1.5]/hook", "::ffff:192.168.1.5", "private"),
        ("http://localhost:5000/hook", "127.0.0.1", "loopback"),
    ],
)
def test_private_addresses_are_refused_before_any_connection(
    client, world, no_connections, url, address, kind
):
    client.application.config["WEBHOOK_ALLOW_PRIVATE"] = False
    answer = put(client, world["key"], {"url": url})
    assert answer.status_code == 400
    body = answer.get_json()
    assert body["details"]["field"] == "url"
    if url.startswith("http://localhost"):
        assert "127.0.0.1" in body["message"] or "::1" in body["message"]
    else:
        assert f"resolves to {address}, a {kind} address" in body["message"]
    assert webhooks.get_endpoint(world["alpha"]) is None


def test_address_rules():
    assert webhooks.address_problem("8.8.8.8") is None
    assert webhooks.address_problem("2606:4700:4700::1111") is None
    assert webhooks.address_problem("100.64.0.1") is not None  # shared (carrier-grade NAT)
    assert webhooks.address_problem("224.0.0.1") == "a multicast address"
    assert webhooks.address_problem("fe80::1%eth0") == "a link-local address"
    assert webhooks.address_problem("fd00::1") == "a private address"
    assert webhooks.address_problem("240.0.0.1") is not None  # reserved


def test_the_send_checks_the_address_again(client, world, receiver):
    # Configured while allowed; by send time the rule applies: refused, nothing sent,
    # not retried.
    configured(client, world, receiver)
    client.application.config["WEBHOOK_ALLOW_PRIVATE"] = False
    msg_id = post(client, world["key"], "test").get_json()["webhookId"]
    with client.application.app_context():
        [attempt] = attempts_of(msg_id)
        assert attempt.status == "failed" and not attempt.will_retry
        assert attempt.error.startswith("refused 127.0.0.1: a loopback address")
    assert receiver.requests == []


def test_the_connection_goes_to_the_vetted_address(app_ctx, monkeypatch, receiver):
    # The name resolves once (to the receiver); the connection uses that address, and the
    # Host header keeps the name.
    looked_up: list[str] = []

    def fake_resolve(host: str, port: int) -> list[str]:
        looked_up.append(host)
        return ["127.0.0.1"]

    monkeypatch.setattr(webhooks, "resolve", fake_resolve)
    port = receiver.server.server_address[1]
    outcome = delivery.send(f"http://hooks.example.test:{port}/in", {"X-A": "1"}, b"{}", 2.0)
    assert outcome.succeeded and outcome.response_code == 200
    assert looked_up == ["hooks.example.test"]
    assert receiver.requests[0]["headers"]["host"] == f"hooks.example.test:{port}"


# --- the page ----------------------------------------------------------------------------


def page_form(client, path: str = "/webhooks") -> str:
    return csrf_token(client.get(path).get_data(as_text=True))


def test_the_page_configures_shows_the_secret_once_rotates_and_tests(client, world, receiver):
    login(client, "owner@alpha.test")
    page = client.get("/webhooks")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-tab="webhooks"' in html and "No webhook yet" in html
    token = csrf_token(html)
    # A bad URL: the message beside the field, nothing saved.
    bad = client.post("/webhooks", data={"csrf_token": token, "url": "ftp://x", "enabled": "y"})
    assert bad.status_code == 400
    assert 'data-error-for="url"' in bad.get_data(as_text=True)
    assert "url must start with https:// or http://" in bad.get_data(as_text=True)
    # Saved: the secret is in this answer.
    saved = client.post(
        "/webhooks",
        data={
            "csrf_token": token,
            "url": receiver.url,
            "enabled": "y",
            "event_types": ["data.stale", "test"],
        },
    )
    assert saved.status_code == 200
    secret = re.search(r"data-secret>(whsec_[^<]+)<", saved.get_data(as_text=True)).group(1)
    assert "copy it now" in saved.get_data(as_text=True)
    # ... and never again.
    later = client.get("/webhooks").get_data(as_text=True)
    assert secret not in later and "whsec_…" + secret[-4:] in later
    endpoint = webhooks.get_endpoint(world["alpha"])
    assert endpoint.event_types == ["test", "data.stale"]
    # A change: flash and back to the form.
    changed = client.post(
        "/webhooks",
        data={"csrf_token": token, "url": receiver.url, "event_types": ["data.stale"]},
    )
    assert changed.status_code == 302 and changed.location.endswith("/webhooks#endpoint")
    followed = client.get("/webhooks").get_data(as_text=True)
    assert "Webhook saved." in followed and 'data-field="enabled">disabled' in followed
    client.post(
        "/webhooks",
        data={
            "csrf_token": token,
            "url": receiver.url,
            "enabled": "y",
            "event_types": ["data.stale"],
        },
    )
    # Rotation needs its confirmation box.
    unconfirmed = client.post("/webhooks/secret/rotate", data={"csrf_token": token})
    assert unconfirmed.status_code == 400
    assert 'data-error-for="confirm"' in unconfirmed.get_data(as_text=True)
    assert webhooks.get_endpoint(world["alpha"]).secret == secret
    rotated = client.post("/webhooks/secret/rotate", data={"csrf_token": token, "confirm": "y"})
    assert rotated.status_code == 200
    new = re.search(r"data-secret>(whsec_[^<]+)<", rotated.get_data(as_text=True)).group(1)
    assert new != secret
    # Send test: flash, back to the log, which shows the attempt with its payload.
    sent = client.post("/webhooks/test", data={"csrf_token": token})
    assert sent.status_code == 302 and sent.location.endswith("/webhooks#log")
    log = client.get("/webhooks").get_data(as_text=True)
    assert "queued; its attempts show in the log below" in log
    assert receiver.ids()[0] in log
    assert 'data-status="succeeded"' in log and "&#34;type&#34;: &#34;test&#34;" in log
    assert "received" in log  # the response body
    assert signature_valid(new, receiver.requests[0]["headers"], receiver.requests[0]["body"])


def test_the_page_refuses_a_post_without_csrf_and_analysts(client, world, make_user):
    login(client, "owner@alpha.test")
    assert client.post("/webhooks", data={"url": "http://127.0.0.1/x"}).status_code == 400
    assert webhooks.get_endpoint(world["alpha"]) is None
    analyst = make_user(world["alpha"], "analyst@alpha.test", PASSWORD)
    analyst.role = "analyst"
    db.session.commit()
    other = client.application.test_client()
    login(other, "analyst@alpha.test")
    assert other.get("/webhooks").status_code == 403
    html = other.get("/").get_data(as_text=True)
    assert 'href="/webhooks"' not in html


def test_the_page_says_why_a_private_url_is_refused(client, world, no_connections):
    client.application.config["WEBHOOK_ALLOW_PRIVATE"] = False
    login(client, "owner@alpha.test")
    token = page_form(client)
    answer = client.post(
        "/webhooks", data={"csrf_token": token, "url": "http://169.254.169.254/", "enabled": "y"}
    )
    assert answer.status_code == 400
    assert "a link-local address" in answer.get_data(as_text=True)


# --- a real worker, killed in mid-delivery -------------------------------------------------


def test_a_worker_killed_mid_delivery_delivers_after_restart(app, world, receiver, tmp_path):
    set_frozen_now(None)  # the worker runs on the real clock; so does this test now
    db.session.rollback()  # (world's app context is held for the whole test)
    endpoint, secret = webhooks.configure(world["alpha"], receiver.url, True, ["data.stale"])
    # Written without telling any queue: the worker's start-up sweep finds it.
    message = outbox.enqueue(world["alpha"].id, "data.stale", {"hours": 7})
    msg_id = message.id
    db.session.info.pop(outbox._PENDING, None)
    db.session.commit()
    release = threading.Event()
    receiver.script = [("hold", release)]
    env = {
        **os.environ,
        "DATABASE_URL": app.config["DATABASE_URL"],
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "WEBHOOK_ALLOW_PRIVATE": "1",
        "WEBHOOK_TIMEOUT_S": "1",
        "SECRET_KEY": "k" * 40,
        "PYTHONPATH": str(ROOT),
    }
    env.pop("REDIS_URL", None)
    command = [sys.executable, "-m", "flask", "--app", "app", "worker", "--workers", "1"]

    def start() -> subprocess.Popen:
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )

    first = start()
    try:
        assert receiver.arrived.wait(60), "the worker never sent the message"
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
    finally:
        release.set()
    assert first.returncode == -signal.SIGKILL
    assert receiver.ids() == [msg_id]
    assert message_row(msg_id).delivered_at is None  # nothing recorded: it died
    second = start()
    try:
        deadline = time.monotonic() + 90
        delivered = None
        while time.monotonic() < deadline:
            delivered = message_row(msg_id).delivered_at
            if delivered is not None:
                break
            time.sleep(0.5)
    finally:
        second.send_signal(signal.SIGINT)
        try:
            second.wait(15)
        except subprocess.TimeoutExpired:
            second.kill()
    output = second.stdout.read().decode(errors="replace") if second.stdout else ""
    assert delivered is not None, output[-3000:]
    assert receiver.ids() == [msg_id, msg_id]  # the same webhook-id again, one delivery
    assert all(signature_valid(secret, r["headers"], r["body"]) for r in receiver.requests)
    assert [a.status for a in attempts_of(msg_id)] == ["succeeded"]


def redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


# A database of the local Redis of its own (the queue's keys are flushed before and after).
REDIS_QUEUE_URL = "redis://127.0.0.1:6379/13"


def test_with_redis_url_the_queue_is_redis_and_its_job_delivers(app, world, receiver):
    # REDIS_URL moves the queue onto Redis: the hand-over after the commit lands there, and
    # a worker taking it from there delivers (a real queue, not immediate mode).
    if not redis_answers(REDIS_QUEUE_URL):
        pytest.skip("no Redis answers on 127.0.0.1:6379")
    from huey import RedisHuey

    from app import worker

    set_frozen_now(None)  # the queue's delays are on the real clock
    db.session.rollback()
    endpoint, secret = webhooks.configure(world["alpha"], receiver.url, True, ["data.stale"])
    app.config.update(REDIS_URL=REDIS_QUEUE_URL, WORKER_IMMEDIATE=False)
    app.extensions.pop("worker_jobs", None)
    queue = worker.jobs(app).huey
    assert isinstance(queue, RedisHuey)
    queue.flush()
    try:
        message = outbox.enqueue(world["alpha"].id, "data.stale", {"hours": 7})
        msg_id = message.id
        db.session.commit()  # the hand-over to the queue happens after the commit
        assert queue.pending_count() == 1
        assert receiver.requests == []  # queued, not sent
        queue.execute(queue.dequeue())
        assert message_row(msg_id).delivered_at is not None
        [got] = receiver.requests
        assert got["headers"]["webhook-id"] == msg_id
        assert signature_valid(secret, got["headers"], got["body"])
        assert queue.pending_count() == 0
    finally:
        queue.flush()
        app.extensions.pop("worker_jobs", None)
