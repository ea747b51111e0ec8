"""Closed-period cache: figures for periods that ended before the partner's today.

Only a period whose last day is before the partner's local today is cached; today's
numbers are always computed live. A closed day can still change (late events, an
organization imported with a past createdAt, a status change dated in the past, a new
pool total), so every entry is keyed on the partner's data version, a counter that each
such write bumps in its own transaction:

- ingestion bumps it as it adds events to the rollups, and so do rollup rebuilds and
  timezone changes (app/rollups.py);
- any ORM flush that touches a partner, an organization, a status change or an
  allocation bumps it for that partner (the listener below).

A reader takes the version first and the figures after it, so an entry is never older
than the version it is stored under. The cache lives in each process (gunicorn worker),
bounded in size; CACHE_CLOSED_PERIODS = False turns it off.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from flask import current_app, has_request_context, request
from sqlalchemy import DateTime, bindparam, event, select, text
from sqlalchemy.orm import Session

from .extensions import db
from .models import CreditAllocation, Organization, OrganizationStatusChange, Partner
from .models import PartnerDataVersion as Version
from .periods import Period, local_today

# A daily series of a year is ~150 kB: 1,024 entries bound a worker to ~150 MB at worst.
MAX_ENTRIES = 1024
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
_entries: OrderedDict[Any, tuple[int, Any]] = OrderedDict()
_lock = threading.Lock()


def _request_memo() -> dict[str, int] | None:
    # On the request itself, not on g: an app context (and its g) can outlive requests.
    if not has_request_context():
        return None
    memo: dict[str, int] = request.environ.setdefault("partner_analytics.data_versions", {})
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


def _copy(value: Any) -> Any:
    # Callers may change what they get; entries hold plain dicts, lists and scalars.
    kind = type(value)
    if kind is dict:
        return {k: _copy(v) for k, v in value.items()}
    if kind is list:
        return [_copy(v) for v in value]
    if kind is tuple:
        return tuple(_copy(v) for v in value)
    return value


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
    key = (
        id(db.engine),
        fn.__qualname__,
        partner.id,
        *key_parts,
        repr(args),
        repr(sorted(kwargs.items())),
    )
    with _lock:
        hit = _entries.get(key)
        if hit is not None and hit[0] == version:
            _entries.move_to_end(key)
            return _copy(hit[1])
    value = fn(partner, *key_parts[:1], *args, **kwargs)
    with _lock:
        _entries[key] = (version, _copy(value))
        _entries.move_to_end(key)
        while len(_entries) > MAX_ENTRIES:
            _entries.popitem(last=False)
    return value


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
    """Drop every entry of this process."""
    with _lock:
        _entries.clear()


_TRACKED = (Partner, Organization, OrganizationStatusChange, CreditAllocation)
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
    "partner_daily_usage",
    "partner_daily_receipt",
}
_BUMP_ALL = text(
    "INSERT INTO partner_data_version (partner_id, version) SELECT id, 1 FROM partner "
    "WHERE true ON CONFLICT (partner_id) DO UPDATE SET version = partner_data_version.version + 1"
)


@event.listens_for(Session, "do_orm_execute")
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


@event.listens_for(Session, "after_flush")
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
