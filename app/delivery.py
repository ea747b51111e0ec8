"""Delivering webhook messages: claim, send (to a vetted address), record, schedule a retry.

A delivery claims its message with one conditional UPDATE (due, undelivered, not given
up): it moves next_attempt_at to the end of its lease, so a second worker finds nothing
due and sends nothing. A worker killed mid-delivery leaves the message due again when the
lease ends; the sweep (every minute, and when a worker starts) hands it to the queue
again. Delivery is at least once, with the same webhook-id on every attempt.

Retries: on timeouts, connection errors, 5xx, 408 and 429; the first within 60 s (20-40 s),
then exponential backoff with jitter (x4 each time, capped at 6 h, +-20 %), until the
message is older than 24 hours (the attempt after that is the last). Other 4xx, and 3xx
(redirects are not followed), are not retried.

The send resolves the host itself, refuses any non-public address (unless
WEBHOOK_ALLOW_PRIVATE) and connects to that vetted address while keeping the host name
for the Host header and TLS (SNI and certificate check), so a DNS answer that changes
between the check and the connection cannot send it elsewhere.
"""

from __future__ import annotations

import http.client
import logging
import random
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select, update

from . import webhooks
from .database import write_transaction
from .extensions import db
from .models import WebhookAttempt, WebhookEndpoint, WebhookMessage
from .outbox import dispatch_after_commit, endpoint_of
from .timeutil import utcnow

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 429})
GIVE_UP_AFTER = timedelta(hours=24)
MAX_DELAY = timedelta(hours=6)
RESPONSE_READ_BYTES = 65536
RESPONSE_KEPT_CHARS = 1000
USER_AGENT = "PartnerAnalytics-Webhooks/1.0"
# The sweep hands the queue what is due within this horizon (it runs every minute).
SWEEP_HORIZON = timedelta(seconds=60)
SWEEP_BATCH = 1000


def timeout_s() -> float:
    """Return WEBHOOK_TIMEOUT_S (default 10)."""
    return float(current_app.config.get("WEBHOOK_TIMEOUT_S") or 10.0)


def lease() -> timedelta:
    """Return how long a claim holds a message: longer than a send can take."""
    return timedelta(seconds=2 * timeout_s() + 5)


def retry_delay(failures: int, rand: float | None = None) -> timedelta:
    """Return the wait before the next attempt after failures failed attempts (1, 2, ...)."""
    r = random.random() if rand is None else rand  # noqa: S311 (jitter, not a secret)
    if failures <= 1:
        return timedelta(seconds=20 + 20 * r)
    base = min(30.0 * 4 ** (failures - 1), MAX_DELAY.total_seconds())
    return timedelta(seconds=base * (0.8 + 0.4 * r))


@dataclass
class Outcome:
    """What one HTTP attempt gave."""

    succeeded: bool
    retryable: bool
    response_code: int | None
    latency_ms: int
    error: str | None
    response_body: str | None


class Refused(OSError):
    """The host resolves to, or the connection reached, an address webhooks may not use."""


def _check(address: str) -> None:
    if webhooks.allow_private():
        return
    problem = webhooks.address_problem(address)
    if problem:
        raise Refused(f"refused {address}: {problem}")


class _PinnedHTTP(http.client.HTTPConnection):
    """HTTP to one vetted address; Host stays the URL's host."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        _check(self.sock.getpeername()[0])


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to one vetted address; SNI and the certificate check use the URL's host."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        try:
            _check(raw.getpeername()[0])
            self.sock = self._context.wrap_socket(raw, server_hostname=self.host)  # type: ignore[attr-defined]
        except BaseException:
            raw.close()
            raise


def _excerpt(raw: bytes) -> str:
    text = raw.decode("utf-8", errors="replace").replace("\x00", "")
    return text[:RESPONSE_KEPT_CHARS]


def send(url: str, headers: dict[str, str], body: bytes, timeout: float) -> Outcome:
    """POST body to url once; never raises for network trouble (it is the outcome)."""
    started = time.monotonic()

    def took() -> int:
        return int(round((time.monotonic() - started) * 1000))

    try:
        scheme, host, port, path = webhooks.split_url(url)
    except Exception as exc:  # an AppError: the stored URL is no longer acceptable
        return Outcome(False, False, None, 0, str(exc)[:500], None)
    try:
        addresses = webhooks.resolve(host, port)
        if not webhooks.allow_private():
            for address in addresses:
                _check(address)
    except Refused as exc:
        return Outcome(False, False, None, took(), f"{exc} (host {host})", None)
    except (OSError, UnicodeError) as exc:
        return Outcome(False, True, None, took(), f"could not resolve {host}: {exc}"[:500], None)
    last_error = "no address to connect to"
    for address in addresses:
        conn_class = _PinnedHTTPS if scheme == "https" else _PinnedHTTP
        conn = conn_class(host, port, address, timeout)
        try:
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            raw = response.read(RESPONSE_READ_BYTES)
            code = response.status
        except Refused as exc:
            return Outcome(False, False, None, took(), str(exc), None)
        except TimeoutError:
            return Outcome(False, True, None, took(), f"timed out after {timeout:g} s", None)
        except ConnectionRefusedError as exc:
            last_error = f"connection refused by {address}:{port} ({exc.strerror or exc})"
            continue
        except (OSError, http.client.HTTPException) as exc:
            last_error = f"{type(exc).__name__}: {exc}"[:500]
            continue
        finally:
            conn.close()
        ok = 200 <= code < 300
        retry = code >= 500 or code in RETRY_STATUSES
        error = None if ok else f"HTTP {code}" + ("" if retry else " (not retried)")
        return Outcome(ok, retry and not ok, code, took(), error, _excerpt(raw))
    return Outcome(False, True, None, took(), last_error, None)


def headers_for(endpoint: WebhookEndpoint, message: WebhookMessage, now: datetime) -> dict:
    """Return the Standard Webhooks headers of one attempt (a fresh timestamp each time)."""
    stamp = int(time.time())
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": message.id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": webhooks.signature_header(
            endpoint, message.id, stamp, message.body, now
        ),
    }


def claim(message_id: str) -> bool:
    """Take message_id for one attempt if it is due and nobody holds it; tell whether taken."""
    now = utcnow()
    with write_transaction():
        result = db.session.execute(
            update(WebhookMessage)
            .where(
                WebhookMessage.id == message_id,
                WebhookMessage.delivered_at.is_(None),
                WebhookMessage.failed_at.is_(None),
                WebhookMessage.next_attempt_at <= now,
            )
            .values(next_attempt_at=now + lease())
            .execution_options(synchronize_session=False)
        )
    return bool(getattr(result, "rowcount", 0) == 1)


def deliver(message_id: str) -> str:
    """Make one attempt at message_id if it is due; return what happened (for the log)."""
    if not claim(message_id):
        return "not due"
    message = db.session.get(WebhookMessage, message_id)
    if message is None:  # pragma: no cover (claimed rows are never deleted)
        return "gone"
    endpoint = endpoint_of(message.partner_id)
    now = utcnow()
    if endpoint is None or not endpoint.enabled:
        outcome = Outcome(False, False, None, 0, "the webhook is disabled or removed", None)
        url = endpoint.url if endpoint is not None else "-"
    else:
        url = endpoint.url
        headers = headers_for(endpoint, message, now)
        body = message.body.encode("utf-8")
        db.session.rollback()  # no transaction held open while the receiver thinks
        outcome = send(url, headers, body, timeout_s())
    return record(message_id, url, outcome)


def record(message_id: str, url: str, outcome: Outcome) -> str:
    """Write the attempt and what follows it: delivered, a retry, or given up."""
    with write_transaction():
        message = db.session.execute(
            select(WebhookMessage).where(WebhookMessage.id == message_id)
        ).scalar_one()
        now = utcnow()
        message.attempts += 1
        retry_at = None
        if outcome.succeeded:
            message.delivered_at = now
            message.next_attempt_at = None
            result = "delivered"
        elif outcome.retryable and now - message.created_at < GIVE_UP_AFTER:
            retry_at = now + retry_delay(message.attempts)
            message.next_attempt_at = retry_at
            result = f"retry at {retry_at.isoformat(timespec='seconds')}Z"
        else:
            message.failed_at = now
            message.next_attempt_at = None
            result = "given up"
        db.session.add(
            WebhookAttempt(
                message_id=message.id,
                partner_id=message.partner_id,
                attempted_at=now,
                url=url[:2000],
                status="succeeded" if outcome.succeeded else "failed",
                response_code=outcome.response_code,
                latency_ms=outcome.latency_ms,
                error=outcome.error[:500] if outcome.error else None,
                response_body=outcome.response_body,
                will_retry=retry_at is not None,
            )
        )
        if retry_at is not None:
            dispatch_after_commit(message.id, retry_at)
    log.info("webhook %s: %s (%s)", message_id, result, outcome.error or outcome.response_code)
    return result


def sweep() -> int:
    """Hand the queue every message due within the next minute (undelivered, not given
    up); return how many. A message whose job was lost, or whose worker died, comes back."""
    from . import worker

    horizon = utcnow() + SWEEP_HORIZON
    rows = db.session.execute(
        select(WebhookMessage.id, WebhookMessage.next_attempt_at)
        .where(WebhookMessage.next_attempt_at <= horizon)
        .order_by(WebhookMessage.next_attempt_at)
        .limit(SWEEP_BATCH)
    ).all()
    db.session.rollback()
    for message_id, due in rows:
        worker.schedule_delivery(message_id, due)
    return len(rows)
