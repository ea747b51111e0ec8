"""The audit log: every change by any path, written in the same transaction as the change.

Call record() inside the change's transaction (before its commit): the entry commits or
rolls back with the change. Who made it is read from the request: an API key ("name
(prefix)"), a signed-in user (the email), or, outside any request, the command line
("cli"). Entries are only ever inserted. The demo seed runs under suppressed(), so the
demo's own setup is not audited.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from flask import g, has_request_context, request
from flask_login import current_user

from .extensions import db
from .models import AuditEntry
from .timeutil import utcnow

# What an entry's object_type may be (the page's and the API's filter choices).
OBJECT_TYPES = (
    "partner",
    "organization",
    "allocation",
    "api_key",
    "member",
    "invitation",
    "events",
    "rollups",
    "webhook",
    "alert",
)

_suppressed: ContextVar[bool] = ContextVar("audit_suppressed", default=False)


@contextmanager
def suppressed() -> Iterator[None]:
    """Record nothing inside the block (the demo seed's setup)."""
    token = _suppressed.set(True)
    try:
        yield
    finally:
        _suppressed.reset(token)


def plain(value: Any) -> Any:
    """Return value as JSON can hold it: dates and moments in ISO 8601, decimals as text."""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds") + ("Z" if value.tzinfo is None else "")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[dict, dict]:
    """Return the fields whose values differ, as (before, after)."""
    keys = [k for k in after if plain(before.get(k)) != plain(after.get(k))]
    return {k: plain(before.get(k)) for k in keys}, {k: plain(after[k]) for k in keys}


def actor() -> tuple[str, str]:
    """Return who is making the current change: (kind, name)."""
    if not has_request_context():
        return "cli", "cli"
    key = g.get("api_key")
    if key is not None:
        return "api_key", f"{key.name or 'unnamed key'} ({key.prefix})"
    if current_user and current_user.is_authenticated:
        return "user", str(current_user.email)
    return "user", "anonymous"


def record(
    partner_id: str,
    object_type: str,
    action: str,
    *,
    object_id: str | int | None = None,
    label: str | None = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    by: tuple[str, str] | None = None,
) -> AuditEntry | None:
    """Add one audit entry to the current transaction (the caller commits it).

    by overrides the actor read from the request (for example the person accepting an
    invitation, who is not signed in yet).
    """
    if _suppressed.get():
        return None
    kind, name = by or actor()
    entry = AuditEntry(
        partner_id=partner_id,
        occurred_at=utcnow(),
        actor_kind=kind,
        actor=name[:300],
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        object_label=None if label is None else label[:300],
        action=action,
        before=None if before is None else plain(before),
        after=None if after is None else plain(after),
        client_address=(request.remote_addr or None) if has_request_context() else None,
    )
    db.session.add(entry)
    return entry
