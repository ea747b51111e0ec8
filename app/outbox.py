"""The outbox: webhook messages written in the transaction of what caused them.

enqueue() adds a message to the CURRENT transaction (the caller commits it): an alert's
firing commits or rolls back with the state that caused it, so a crash neither loses nor
doubles it. The table is the source of truth; once the transaction commits, the worker is
asked to deliver the message now (app/worker.py), and its sweep every minute picks up
whatever is due and undelivered, so a job lost from the queue is not a lost delivery.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from .extensions import db
from .models import WEBHOOK_EVENT_TYPES, WebhookEndpoint, WebhookMessage
from .timeutil import iso_z, utcnow

log = logging.getLogger(__name__)

# session.info key: (message id, when due) to hand to the worker once the commit is done.
_PENDING = "worker_dispatch"
ENDPOINT_NAME = "billing"


def new_message_id() -> str:
    """Return a new webhook-id (msg_ and 32 hex digits), the same on every attempt."""
    return "msg_" + uuid.uuid4().hex


def body_of(event_type: str, data: dict[str, Any], moment: datetime) -> str:
    """Return the exact JSON body of a message: {"type", "timestamp", "data"}."""
    payload = {"type": event_type, "timestamp": iso_z(moment), "data": data}
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def endpoint_of(partner_id: str) -> WebhookEndpoint | None:
    """Return the partner's webhook endpoint, or None when none is configured."""
    return db.session.execute(
        select(WebhookEndpoint).where(
            WebhookEndpoint.partner_id == partner_id, WebhookEndpoint.name == ENDPOINT_NAME
        )
    ).scalar_one_or_none()


def enqueue(
    partner_id: str, event_type: str, data: dict[str, Any], *, force: bool = False
) -> WebhookMessage | None:
    """Add a message for the partner's webhook to the current transaction.

    Returns None (and adds nothing) when the partner has no enabled endpoint, or when its
    endpoint does not subscribe to event_type (force, for the test send, skips that check).
    """
    if event_type not in WEBHOOK_EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    endpoint = endpoint_of(partner_id)
    if endpoint is None or not endpoint.enabled:
        return None
    if not force and event_type not in (endpoint.event_types or []):
        return None
    now = utcnow()
    message = WebhookMessage(
        id=new_message_id(),
        partner_id=partner_id,
        event_type=event_type,
        body=body_of(event_type, data, now),
        created_at=now,
        next_attempt_at=now,
        attempts=0,
    )
    db.session.add(message)
    dispatch_after_commit(message.id, now)
    return message


def dispatch_after_commit(message_id: str, due: datetime, kind: str = "webhook") -> None:
    """Ask the worker to send message_id (a webhook, or with kind "mail" an e-mail of
    app/mail.py) at due, once the current transaction commits; nothing if it rolls back.
    The database row is the source of truth: a lost hand-over is picked up by the sweep."""
    db.session().info.setdefault(_PENDING, []).append((kind, message_id, due))


@event.listens_for(Session, "after_commit")
def _dispatch(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    from . import worker

    for kind, message_id, due in pending:
        schedule = worker.schedule_mail if kind == "mail" else worker.schedule_delivery
        schedule(message_id, due)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_PENDING, None)
