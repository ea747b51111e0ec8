"""Webhooks: the partner's endpoint, its secret, Standard Webhooks signatures, the URL guard.

One implementation behind the API (app/api/webhooks.py), the page (app/views/webhooks.py)
and the worker (app/delivery.py). Every change is audited in its own transaction.

Signatures follow the Standard Webhooks specification: the secret is whsec_<base64>, the
key is the base64-decoded part after the prefix, and webhook-signature carries
v1,<base64 of HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}")>. For a day
after a rotation the previous secret signs too (a second, space-separated signature).

URL guard: a URL whose host resolves to a private, loopback, link-local, unspecified,
multicast or reserved address (any of its addresses) is refused when it is configured,
before any connection; the worker checks again against the address it connects to
(app/delivery.py), unless WEBHOOK_ALLOW_PRIVATE is set. Any port is allowed: the address
rule is what keeps the worker off internal hosts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
import socket
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import func, select

from . import audit, outbox
from .database import write_transaction
from .errors import AppError
from .extensions import db
from .models import (
    WEBHOOK_EVENT_TYPES,
    Partner,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookMessage,
)
from .timeutil import utcnow

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)
SECRET_BYTES = 32
MAX_URL_LENGTH = 2000
# How long the previous secret keeps signing after a rotation.
PREVIOUS_SECRET_GRACE = timedelta(hours=24)
# What an endpoint subscribes to when the configuration does not say (all but "test",
# which the test send delivers whatever the subscription).
DEFAULT_EVENT_TYPES = [t for t in WEBHOOK_EVENT_TYPES if t != "test"]
EVENT_TYPE_LABELS = {
    "test": "Test event (the Send test button)",
    "billing.pool.threshold": "The pool's use reaches a threshold",
    "billing.pool.projected_exhaustion": "The projection exceeds the pool before it resets",
    "organization.allocation.threshold": "An organization reaches a share of its allocation",
    "data.stale": "No event received for a while",
    "organization.inactive": "An organization without events for days",
}


# --- signatures ------------------------------------------------------------------------


def new_secret() -> str:
    """Return a new signing secret: whsec_ and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def sign(secret: str, message_id: str, timestamp: int, body: str) -> str:
    """Return one Standard Webhooks signature: v1,<base64 HMAC-SHA256>."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.{body}".encode()
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signature_header(
    endpoint: WebhookEndpoint, message_id: str, timestamp: int, body: str, now: datetime
) -> str:
    """Return webhook-signature: the current secret's signature, and the previous secret's
    while it is still within its grace period."""
    found = [sign(endpoint.secret, message_id, timestamp, body)]
    until = endpoint.previous_secret_until
    if endpoint.previous_secret and until is not None and until > now:
        found.append(sign(endpoint.previous_secret, message_id, timestamp, body))
    return " ".join(found)


def secret_hint(secret: str) -> str:
    """Return how the page and the API name a secret without showing it."""
    return f"{SECRET_PREFIX}…{secret[-4:]}"


# --- the URL guard ---------------------------------------------------------------------


def address_problem(address: str) -> str | None:
    """Return why a webhook may not be sent to this IP address, or None if it is public."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    checks = (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("unspecified", ip.is_unspecified),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        ("non-public", not ip.is_global),
    )
    for name, hit in checks:
        if hit:
            return f"a {name} address"
    return None


def resolve(host: str, port: int) -> list[str]:
    """Return every address host resolves to (getaddrinfo: IP literals need no lookup)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[str] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in found:
            found.append(address)
    return found


def allow_private() -> bool:
    """Tell whether private addresses are allowed (WEBHOOK_ALLOW_PRIVATE)."""
    return bool(current_app.config.get("WEBHOOK_ALLOW_PRIVATE"))


def _refuse(url: str, message: str) -> AppError:
    return AppError("BadRequest", message, {"field": "url", "value": url[:200]})


def split_url(url: str) -> tuple[str, str, int, str]:
    """Return (scheme, host, port, path with query) of an acceptable URL, or raise the 400."""
    if len(url) > MAX_URL_LENGTH:
        raise _refuse(url, f"url must be at most {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise _refuse(url, "url must not contain spaces or control characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise _refuse(url, "url must start with https:// or http://")
    if parts.username is not None or parts.password is not None:
        raise _refuse(url, "url must not carry a user name or password")
    host = parts.hostname
    if not host:
        raise _refuse(url, "url must name a host, as in https://example.com/webhooks")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise _refuse(url, "url has a port that is not a number from 1 to 65535") from exc
    if port == 0:
        raise _refuse(url, "url has a port that is not a number from 1 to 65535")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.scheme, host, port, path


def check_url(url: str) -> str:
    """Return url, stripped, once it is acceptable: http(s), a host, and (without
    WEBHOOK_ALLOW_PRIVATE) only public addresses. Nothing connects to it here."""
    url = url.strip()
    if not url:
        raise _refuse(url, "url is required")
    _scheme, host, port, _path = split_url(url)
    if allow_private():
        return url
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError) as exc:
        raise _refuse(url, f"url's host {host} could not be resolved") from exc
    for address in addresses:
        problem = address_problem(address)
        if problem:
            raise _refuse(
                url,
                f"url resolves to {address}, {problem}: webhooks are sent to public addresses only",
            )
    return url


# --- the endpoint ----------------------------------------------------------------------


def get_endpoint(partner: Partner) -> WebhookEndpoint | None:
    """Return the partner's (billing) webhook endpoint, or None."""
    return outbox.endpoint_of(partner.id)


def _endpoint_or_404(partner: Partner) -> WebhookEndpoint:
    endpoint = get_endpoint(partner)
    if endpoint is None:
        raise AppError(
            "NotFound",
            "no webhook is configured yet: PUT /api/v1/partner/webhooks/billing first",
            {"field": "url", "value": None},
        )
    return endpoint


def check_event_types(types: Sequence[str]) -> list[str]:
    """Return the event types without repeats, in the catalogue's order; 400 on unknown."""
    for index, name in enumerate(types):
        if name not in WEBHOOK_EVENT_TYPES:
            raise AppError(
                "BadRequest",
                f"eventTypes[{index}] must be one of {', '.join(WEBHOOK_EVENT_TYPES)}",
                {"field": f"eventTypes[{index}]", "value": str(name)[:100]},
            )
    return [t for t in WEBHOOK_EVENT_TYPES if t in set(types)]


def _shown(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """The audited fields of an endpoint (never its secret)."""
    return {
        "url": endpoint.url,
        "enabled": endpoint.enabled,
        "eventTypes": list(endpoint.event_types or []),
    }


def configure(
    partner: Partner,
    url: str,
    enabled: bool = True,
    event_types: Sequence[str] | None = None,
) -> tuple[WebhookEndpoint, str | None]:
    """Create or change the partner's endpoint; return it and, when it was created now,
    its secret (the only time it is given out besides a rotation)."""
    url = check_url(url)
    types = check_event_types(event_types) if event_types is not None else None
    with write_transaction():
        endpoint = get_endpoint(partner)
        now = utcnow()
        if endpoint is None:
            secret = new_secret()
            endpoint = WebhookEndpoint(
                partner_id=partner.id,
                name=outbox.ENDPOINT_NAME,
                url=url,
                enabled=enabled,
                event_types=types if types is not None else list(DEFAULT_EVENT_TYPES),
                secret=secret,
                created_at=now,
                updated_at=now,
            )
            db.session.add(endpoint)
            db.session.flush()
            audit.record(
                partner.id,
                "webhook",
                "create",
                object_id=endpoint.id,
                label=f"{endpoint.name} webhook",
                after=_shown(endpoint),
            )
            return endpoint, secret
        before = _shown(endpoint)
        endpoint.url = url
        endpoint.enabled = enabled
        if types is not None:
            endpoint.event_types = types
        old, new = audit.changed(before, _shown(endpoint))
        if new:
            endpoint.updated_at = now
            audit.record(
                partner.id,
                "webhook",
                "update",
                object_id=endpoint.id,
                label=f"{endpoint.name} webhook",
                before=old,
                after=new,
            )
    return endpoint, None


def rotate_secret(partner: Partner) -> tuple[WebhookEndpoint, str]:
    """Give the endpoint a new secret (returned, shown once); the old one signs alongside
    it for PREVIOUS_SECRET_GRACE."""
    with write_transaction():
        endpoint = _endpoint_or_404(partner)
        now = utcnow()
        secret = new_secret()
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_until = now + PREVIOUS_SECRET_GRACE
        endpoint.secret = secret
        endpoint.secret_rotated_at = now
        endpoint.updated_at = now
        audit.record(
            partner.id,
            "webhook",
            "rotate_secret",
            object_id=endpoint.id,
            label=f"{endpoint.name} webhook",
            after={"secretRotatedAt": now, "previousSecretValidUntil": now + PREVIOUS_SECRET_GRACE},
        )
    return endpoint, secret


def send_test(partner: Partner) -> WebhookMessage:
    """Queue a "test" message to the endpoint (it must exist and be enabled)."""
    with write_transaction():
        endpoint = _endpoint_or_404(partner)
        if not endpoint.enabled:
            raise AppError(
                "UnprocessableEntity",
                "the webhook is disabled: enable it before sending a test",
                {"field": "enabled", "value": False},
            )
        message = outbox.enqueue(
            partner.id,
            "test",
            {
                "message": "A test event from Partner Analytics: your endpoint is reachable.",
                "partner": {"id": partner.id, "name": partner.name},
            },
            force=True,
        )
        assert message is not None  # noqa: S101 (the endpoint is enabled)
        audit.record(
            partner.id,
            "webhook",
            "test",
            object_id=endpoint.id,
            label=f"{endpoint.name} webhook",
            after={"webhookId": message.id},
        )
    return message


def list_attempts(
    partner: Partner, page: int = 1, page_size: int = 20
) -> tuple[list[tuple[WebhookAttempt, WebhookMessage]], int]:
    """Return one page of the partner's delivery attempts, newest first, with their messages."""
    total = db.session.execute(
        select(func.count(WebhookAttempt.id)).where(WebhookAttempt.partner_id == partner.id)
    ).scalar_one()
    rows = db.session.execute(
        select(WebhookAttempt, WebhookMessage)
        .join(WebhookMessage, WebhookMessage.id == WebhookAttempt.message_id)
        .where(WebhookAttempt.partner_id == partner.id)
        .order_by(WebhookAttempt.attempted_at.desc(), WebhookAttempt.id.desc())
        .limit(page_size)
        .offset((page - 1) * page_size)
    ).all()
    return [(a, m) for a, m in rows], int(total)


def pending_messages(partner: Partner, limit: int = 20) -> list[WebhookMessage]:
    """Return the partner's messages not yet delivered nor given up, oldest first."""
    return list(
        db.session.execute(
            select(WebhookMessage)
            .where(
                WebhookMessage.partner_id == partner.id,
                WebhookMessage.next_attempt_at.is_not(None),
            )
            .order_by(WebhookMessage.created_at)
            .limit(limit)
        ).scalars()
    )
