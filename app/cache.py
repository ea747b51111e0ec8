"""Closed-period cache: figures for periods that ended before the partner's today.

Only a period whose last day is before the partner's local today is cached; today's
numbers are always computed live. A closed day can still change (late events, an
organization imported with a past createdAt, a status change dated in the past, a new
pool total), so every entry is keyed on the partner's data version, a counter that each
such write bumps in its own transaction:

- ingestion bumps it as it adds events to the rollups, and so do rollup rebuilds and
  timezone changes (app/rollups.py);
- any ORM flush that touches a partner, an organization, a status change or an
  allocation bumps it for that partner (the listeners below, bound by init_app).

A reader takes the version first and the figures after it, so an entry is never older
than the version it is stored under. Entries are kept through Flask-Caching: in each
process (a bounded SimpleCache) by default, or in Redis when CACHE_URL (or REDIS_URL) is
set, so that the workers of one server share one copy. A storage that fails is skipped:
the figures are then computed live. CACHE_CLOSED_PERIODS = False turns it off.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from cachelib import SimpleCache
from flask import Flask, current_app, g, has_request_context
from flask_caching import Cache
from sqlalchemy import DateTime, bindparam, event, select, text
from sqlalchemy.orm import Session

from .extensions import db
from .models import (
    CreditAllocation,
    Organization,
    OrganizationStatusChange,
    Partner,
    PartnerTerms,
)
from .models import PartnerDataVersion as Version
from .periods import Period, local_today

# A daily series of a year is ~150 kB: 1,024 entries bound a worker to ~150 MB at worst.
MAX_ENTRIES = 1024
# In Redis an entry lives a day unused at most (stale versions are never read anyway).
REDIS_TTL_SECONDS = 86_400
log = logging.getLogger(__name__)
store = Cache()
_FRONT = "partner_analytics.figure_front"
F = TypeVar("F", bound=Callable[..., Any])

_BUMP = text(
    "INSERT INTO partner_data_version (partner_id, version) VALUES (:p, 1) "
    "ON CONFLICT (partner_id) DO UPDATE SET version = partner_data_version.version + 1"
)
_BUMP_RECEIVED = text(
    "INSERT INTO partner_data_version (partner_id, version, last_received_at) "
    "VALUES (:p, 1, :t) ON CONFLICT (partner_id) DO UPDATE SET "
    "version = partner_data_version.version + 1, last_received_at = CASE "
    "WHEN partner_data_version.last_received_at IS NULL "
    "OR partner_data_version.last_received_at < excluded.last_received_at "
    "THEN excluded.last_received_at ELSE partner_data_version.last_received_at END"
).bindparams(bindparam("t", type_=DateTime()))


def init_app(app: Flask) -> None:
    """Bind the figure store: Redis at CACHE_URL when set, else a SimpleCache per process."""
    url = app.config.get("CACHE_URL")
    if url:
        config = {
            "CACHE_TYPE": "RedisCache",
            "CACHE_REDIS_URL": url,
            "CACHE_DEFAULT_TIMEOUT": REDIS_TTL_SECONDS,
            "CACHE_OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    else:
        config = {
            "CACHE_TYPE": "SimpleCache",
            "CACHE_THRESHOLD": MAX_ENTRIES,
            "CACHE_DEFAULT_TIMEOUT": 0,
        }
    # Keys name the database too: two apps on two databases never share an entry.
    digest = hashlib.sha256(app.config["SQLALCHEMY_DATABASE_URI"].encode()).hexdigest()[:12]
    config["CACHE_KEY_PREFIX"] = f"pa:figures:{digest}:"
    store.init_app(app, config=config)
    # The ORM listeners that bump versions, bound once per process (every app's sessions
    # are Session instances) when the first app is built, not when this module is imported.
    for name, listener in (
        ("do_orm_execute", _bump_on_bulk_write),
        ("after_flush", _bump_on_flush),
    ):
        if not event.contains(Session, name, listener):
            event.listen(Session, name, listener)
    # In front of Redis, a copy per process: a round trip per figure cost a cached request
    # about a third of its rate (bench/cache_store.py); an entry is only ever used under
    # the version it was stored with, so a process's copy is as good as the shared one.
    app.extensions[_FRONT] = SimpleCache(threshold=MAX_ENTRIES, default_timeout=0) if url else None


def _request_memo() -> dict[str, int] | None:
    # For the length of one request (g is its app context's); a command reads each time.
    if not has_request_context():
        return None
    memo: dict[str, int] = g.setdefault("data_versions", {})
    return memo


def bump(partner_id: str, session: Any = None, received_at: datetime | None = None) -> None:
    """Mark a partner's figures as changed, inside the caller's transaction.

    With received_at (events were stored), the newest receipt time moves forward too.
    """
    if received_at is None:
        (session or db.session).execute(_BUMP, {"p": partner_id})
    else:
        (session or db.session).execute(_BUMP_RECEIVED, {"p": partner_id, "t": received_at})
    memo = _request_memo()
    if memo is not None:
        memo.pop(partner_id, None)


def remember_version(partner_id: str, version: int) -> None:
    """Seed this request's memo with a version read alongside other rows (the API key)."""
    memo = _request_memo()
    if memo is not None:
        memo[partner_id] = version


def data_version(partner_id: str) -> int:
    """Return the partner's data version (memoized for the length of one request)."""
    memo = _request_memo()
    if memo is not None and partner_id in memo:
        return memo[partner_id]
    version = (
        db.session.execute(select(Version.version).where(Version.partner_id == partner_id)).scalar()
        or 0
    )
    if memo is not None:
        memo[partner_id] = version
    return int(version)


def enabled() -> bool:
    """Tell whether the application caches figures (CACHE_CLOSED_PERIODS)."""
    return bool(current_app.config.get("CACHE_CLOSED_PERIODS"))


def _cached(
    fn: Callable[..., Any],
    partner: Partner,
    key_parts: tuple[Any, ...],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    version = data_version(partner.id)
    key = _key(fn, partner, key_parts, args, kwargs)
    front = current_app.extensions.get(_FRONT)
    if front is not None:
        hit = front.get(key)
        if hit is not None and hit[0] == version:
            return hit[1]
    try:
        hit = store.get(key)
    except Exception:  # noqa: BLE001 - a storage that fails is skipped, never fatal
        log.warning("figure cache unavailable; computing live", exc_info=True)
        hit = None
    if hit is not None and hit[0] == version:
        if front is not None:
            front.set(key, hit)
        return hit[1]
    value = fn(partner, *key_parts[:1], *args, **kwargs)
    try:
        store.set(key, (version, value))
    except Exception:  # noqa: BLE001
        log.warning("figure cache unavailable; not stored", exc_info=True)
    if front is not None:
        front.set(key, (version, value))
    return value


def _key(
    fn: Callable[..., Any],
    partner: Partner,
    key_parts: tuple[Any, ...],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> str:
    """Return the entry's key: the function, the partner, the period (or day), today, and
    the arguments (as JSON, hashed)."""
    parts = [_text(p) for p in key_parts]
    arguments = json.dumps([args, kwargs], default=_text, sort_keys=True)
    digest = hashlib.sha256(arguments.encode()).hexdigest()[:16]
    return ":".join([fn.__module__, fn.__qualname__, partner.id, *parts, digest])


def _text(value: Any) -> str:
    """Return a key part as text: a Period as its two dates, a date in ISO form."""
    if isinstance(value, Period):
        return f"{value.start.isoformat()}..{value.end.isoformat()}"
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def closed_period_cache(fn: F) -> F:
    """Cache fn(partner, period, ...) while period ends before the partner's today."""

    @functools.wraps(fn)
    def wrapper(partner: Partner, period: Period, *args: Any, **kwargs: Any) -> Any:
        if not enabled():
            return fn(partner, period, *args, **kwargs)
        today = local_today(partner.timezone)
        if period.end >= today:
            return fn(partner, period, *args, **kwargs)
        return _cached(fn, partner, (period, today), args, kwargs)

    return wrapper  # type: ignore[return-value]


def state_cache(fn: F) -> F:
    """Cache fn(partner, day, ...): organization state as of a day, which only changes
    through writes to organizations and their status history (each bumps the version),
    so it is exact for today's date too. Usage figures are never cached this way."""

    @functools.wraps(fn)
    def wrapper(partner: Partner, day: Any, *args: Any, **kwargs: Any) -> Any:
        if not enabled():
            return fn(partner, day, *args, **kwargs)
        return _cached(fn, partner, (day,), args, kwargs)

    return wrapper  # type: ignore[return-value]


def clear() -> None:
    """Drop every entry of the store (this process's, or the shared Redis's and this
    process's copies)."""
    store.clear()
    front = current_app.extensions.get(_FRONT)
    if front is not None:
        front.clear()


_TRACKED = (Partner, Organization, OrganizationStatusChange, CreditAllocation, PartnerTerms)
# Tables whose rows feed the figures; a bulk statement on one of them (not per-object
# ORM work, which the flush listener sees partner by partner) bumps every partner.
_FEEDING = {
    "partner",
    "organization",
    "organization_status_change",
    "credit_allocation",
    "usage_event",
    "org_daily_usage",
    "org_bucket_usage",
    "partner_activity",
    "partner_bucket_usage",
    "partner_daily_usage",
    "partner_daily_receipt",
    "partner_terms",
}
_BUMP_ALL = text(
    "INSERT INTO partner_data_version (partner_id, version) SELECT id, 1 FROM partner "
    "WHERE true ON CONFLICT (partner_id) DO UPDATE SET version = partner_data_version.version + 1"
)


def _bump_on_bulk_write(state: Any) -> None:
    """Bump every partner before an INSERT, UPDATE or DELETE statement on a feeding table."""
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    if state.execution_options.get("partner_scoped"):
        # One partner's statement (a rollup rebuild, a timezone change), which bumps that
        # partner itself: bumping every partner would lock every partner's version row
        # until the long transaction commits, stalling other partners' ingestion.
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) not in _FEEDING:
        return
    state.session.connection().execute(_BUMP_ALL)
    memo = _request_memo()
    if memo is not None:
        memo.clear()


def _bump_on_flush(session: Session, _context: Any) -> None:
    """Bump the version of every partner whose organizations or settings were written."""
    partners: set[str] = set()
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, Partner):
            if obj not in session.deleted:
                partners.add(obj.id)
        elif isinstance(obj, _TRACKED):
            partner_id = getattr(obj, "partner_id", None)
            if partner_id:
                partners.add(partner_id)
    if not partners:
        return
    connection = session.connection()
    memo = _request_memo()
    for partner_id in sorted(partners):
        connection.execute(_BUMP, {"p": partner_id})
        if memo is not None:
            memo.pop(partner_id, None)
