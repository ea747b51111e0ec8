"""The audit log: every change by any path, written in the same transaction as the change.

Call record() inside the change's transaction (before its commit): the entry commits or
rolls back with the change. Who made it is read from the request: an API key ("name
(prefix)"), a signed-in user (the email), or, outside any request, the command line
("cli"). Entries are only ever inserted. The demo seed runs under suppressed(), so the
demo's own setup is not audited.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, cast

from flask import g, has_request_context, request
from flask_login import current_user
from sqlalchemy import Table, and_, func, insert, or_, select
from sqlalchemy.sql.elements import ColumnElement

from .display import fmt_moment
from .errors import AppError
from .extensions import db
from .models import AuditEntry, Partner
from .periods import PeriodError, day_end_utc, day_start_utc, local_date_of, parse_date
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


def _row(
    partner_id: str,
    object_type: str,
    action: str,
    object_id: str | int | None,
    label: str | None,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    by: tuple[str, str] | None,
) -> dict[str, Any]:
    """Return the column values of one entry, its actor read from the request."""
    kind, name = by or actor()
    return {
        "partner_id": partner_id,
        "occurred_at": utcnow(),
        "actor_kind": kind,
        "actor": name[:300],
        "object_type": object_type,
        "object_id": None if object_id is None else str(object_id),
        "object_label": None if label is None else label[:300],
        "action": action,
        "before": None if before is None else plain(before),
        "after": None if after is None else plain(after),
        "client_address": (request.remote_addr or None) if has_request_context() else None,
    }


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
    entry = AuditEntry(**_row(partner_id, object_type, action, object_id, label, before, after, by))
    db.session.add(entry)
    return entry


# --- reading the log: one query behind the page, its CSV and the API -------------------

# An action is a short lower-case word (create, revoke, ingest, import, status...).
ACTION_RE = re.compile(r"[a-z][a-z0-9_.-]{0,39}")
ACTOR_KINDS = ("user", "api_key", "cli")
MAX_ACTOR_FILTER = 300


@dataclass(frozen=True)
class AuditFilters:
    """What the log is narrowed to: who (a part of the actor, any case), the object type,
    the action, and the days from start through end in the partner's timezone."""

    actor: str | None = None
    object_type: str | None = None
    action: str | None = None
    start: date | None = None
    end: date | None = None


def check_actor(value: str | None) -> str | None:
    """Return the who filter stripped (None when empty); refuse one that is too long."""
    text = (value or "").strip()
    if len(text) > MAX_ACTOR_FILTER:
        raise AppError(
            "BadRequest",
            f"actor must be at most {MAX_ACTOR_FILTER} characters",
            {"field": "actor", "value": text[:100]},
        )
    return text or None


def check_object_type(value: str | None) -> str | None:
    """Return the object type filter (None when empty); it must be one of OBJECT_TYPES."""
    text = (value or "").strip()
    if text and text not in OBJECT_TYPES:
        raise AppError(
            "BadRequest",
            f"objectType must be one of {', '.join(OBJECT_TYPES)}",
            {"field": "objectType", "value": text[:100]},
        )
    return text or None


def check_action(value: str | None) -> str | None:
    """Return the action filter (None when empty); it must look like an action."""
    text = (value or "").strip()
    if text and not ACTION_RE.fullmatch(text):
        raise AppError(
            "BadRequest",
            "action must be a lower-case word such as create, revoke or ingest",
            {"field": "action", "value": text[:100]},
        )
    return text or None


def check_days(start: date | None, end: date | None) -> None:
    """Refuse a period whose end comes before its start (named on the end date)."""
    if start is not None and end is not None and end < start:
        raise AppError(
            "BadRequest",
            f"endDate ({end.isoformat()}) is before startDate ({start.isoformat()})",
            {"field": "endDate", "value": end.isoformat()},
        )


def read_filters(
    tz: str,
    actor: str | None = None,
    object_type: str | None = None,
    action: str | None = None,
    start: str | None = None,
    end: str | None = None,
) -> AuditFilters:
    """Return the filters of the API's parameters; raise the 400 naming the first bad one.

    Dates are read as the other endpoints read them (periods.parse_date: YYYY-MM-DD or a
    timestamp whose day in the partner's timezone counts).
    """
    days: dict[str, date | None] = {}
    for field, text in (("startDate", start), ("endDate", end)):
        if text is None or not text.strip():
            days[field] = None
            continue
        try:
            days[field] = parse_date(text, field, tz)
        except PeriodError as exc:
            raise AppError(
                "BadRequest", exc.message, {"field": field, "value": text[:100]}
            ) from exc
    filters = AuditFilters(
        actor=check_actor(actor),
        object_type=check_object_type(object_type),
        action=check_action(action),
        start=days["startDate"],
        end=days["endDate"],
    )
    check_days(filters.start, filters.end)
    return filters


def _clauses(partner_id: str, tz: str, filters: AuditFilters) -> list[ColumnElement[bool]]:
    """Return the WHERE clauses: this partner's entries only, then each filter."""
    clauses: list[ColumnElement[bool]] = [AuditEntry.partner_id == partner_id]
    if filters.actor:
        escaped = filters.actor.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        clauses.append(AuditEntry.actor.ilike(f"%{escaped}%", escape="\\"))
    if filters.object_type:
        clauses.append(AuditEntry.object_type == filters.object_type)
    if filters.action:
        clauses.append(AuditEntry.action == filters.action)
    if filters.start is not None:
        clauses.append(AuditEntry.occurred_at >= day_start_utc(filters.start, tz))
    if filters.end is not None:
        clauses.append(AuditEntry.occurred_at < day_end_utc(filters.end, tz))
    return clauses


# Newest first; the id breaks ties between entries of the same instant.
_NEWEST_FIRST = (AuditEntry.occurred_at.desc(), AuditEntry.id.desc())


def entries(
    partner: Partner, filters: AuditFilters, page: int = 1, page_size: int = 50
) -> tuple[list[AuditEntry], int]:
    """Return one page (from 1) of the partner's entries matching filters, newest first,
    and how many match in all."""
    clauses = _clauses(partner.id, partner.timezone, filters)
    total = int(
        db.session.execute(select(func.count()).select_from(AuditEntry).where(*clauses)).scalar()
        or 0
    )
    rows = db.session.execute(
        select(AuditEntry)
        .where(*clauses)
        .order_by(*_NEWEST_FIRST)
        .limit(page_size)
        .offset((page - 1) * page_size)
    ).scalars()
    return list(rows), total


def all_entries(partner: Partner, filters: AuditFilters, chunk: int = 1000) -> Iterator[AuditEntry]:
    """Yield every matching entry, newest first, reading chunk rows at a time (the CSV).

    Keyset paging on (occurred_at, id): each chunk is its own short query, so a long
    download holds no cursor open and costs the same on its last chunk as on its first.
    """
    clauses = _clauses(partner.id, partner.timezone, filters)
    after: tuple[datetime, int] | None = None
    while True:
        query = select(AuditEntry).where(*clauses)
        if after is not None:
            moment, last_id = after
            query = query.where(
                or_(
                    AuditEntry.occurred_at < moment,
                    and_(AuditEntry.occurred_at == moment, AuditEntry.id < last_id),
                )
            )
        rows = list(db.session.execute(query.order_by(*_NEWEST_FIRST).limit(chunk)).scalars())
        yield from rows
        if len(rows) < chunk:
            return
        # The session's identity map holds entries weakly: a chunk read is let go of.
        after = (rows[-1].occurred_at, rows[-1].id)


def actions(partner: Partner) -> list[str]:
    """Return the actions the partner's log holds, sorted (the page's choices)."""
    return list(
        db.session.execute(
            select(AuditEntry.action)
            .where(AuditEntry.partner_id == partner.id)
            .distinct()
            .order_by(AuditEntry.action)
        ).scalars()
    )


# --- showing an entry -----------------------------------------------------------------


def field_label(name: str) -> str:
    """Write a field name for people: creditPoolTotal and credit_pool_total both read
    'credit pool total'."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ")
    return spaced.lower().strip() or name


# A moment as plain() stores it: '2025-11-27T12:00:00Z'.
_STORED_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


def value_text(value: Any, tz: str = "UTC") -> str:
    """Write a stored value for people: — for none, numbers grouped, lists joined, a
    moment in words in the timezone tz (display.fmt_moment, as every page writes one)."""
    if value is None:
        return "—"
    if isinstance(value, str) and _STORED_MOMENT.fullmatch(value):
        return fmt_moment(datetime.fromisoformat(value[:-1]), tz)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return ", ".join(str(v) for v in value) if value else "none"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return str(value)


@dataclass(frozen=True)
class Change:
    """One field of an entry as the page shows it: before → after (either may be absent)."""

    field: str
    before: str | None
    after: str | None


def changes(entry: AuditEntry, tz: str = "UTC") -> list[Change]:
    """Return the entry's fields in order: those of after first, then any only in before
    (moments written in the timezone tz).

    A field present on one side only is shown without the other (a creation has no before,
    a removal no after); a field equal on both sides, or new and empty, is left out.
    """
    before = entry.before if isinstance(entry.before, dict) else {}
    after = entry.after if isinstance(entry.after, dict) else {}
    names = [*after, *(k for k in before if k not in after)]
    found = []
    for name in names:
        if name in before and name in after and before[name] == after[name]:
            continue
        if name not in before and after.get(name) is None:
            continue
        found.append(
            Change(
                field_label(name),
                value_text(before[name], tz) if name in before else None,
                value_text(after[name], tz) if name in after else None,
            )
        )
    return found


# --- ingestion: one entry per API call or imported file, never one per event ---------


# Built once: Core, not the ORM's bulk path (the table's INSERT, compiled and cached).
_INSERT = insert(cast(Table, AuditEntry.__table__))


def record_ingest(partner_id: str, action: str, label: str, counts: Mapping[str, Any]) -> None:
    """Insert the entry of one ingestion (an API call, a file) with its counts, in the
    current transaction: object type "events", action "ingest" (API) or "import" (file).

    A plain INSERT rather than an ORM object: it runs on ingestion's hot path, once per
    call, where the session's unit of work would cost about as much again.
    """
    if _suppressed.get():
        return
    row = _row(partner_id, "events", action, None, label, None, counts, None)
    db.session.execute(_INSERT, row)


def json_text(value: Any) -> str | None:
    """Write before or after as compact JSON text for the CSV (None stays empty)."""
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=False)


def first_day(partner: Partner) -> date | None:
    """Return the local day of the partner's oldest entry (None for an empty log)."""
    oldest = db.session.execute(
        select(func.min(AuditEntry.occurred_at)).where(AuditEntry.partner_id == partner.id)
    ).scalar()
    if oldest is None:
        return None
    return local_date_of(oldest, partner.timezone)
