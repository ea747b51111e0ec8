"""Webhooks: the endpoint, its secret, a test send and the delivery log (admin scope)."""

from __future__ import annotations

from typing import Any

from .. import webhooks
from ..models import WEBHOOK_EVENT_TYPES, WebhookAttempt, WebhookEndpoint, WebhookMessage
from . import bp
from .guards import body_optional, current_partner, requires_scope
from .schemas import (
    PageQuery,
    WebhookAttemptOut,
    WebhookBody,
    WebhookConfiguredOut,
    WebhookListOut,
    WebhookLogsOut,
    WebhookMessageOut,
    WebhookOut,
)
from .spec import doc, validated_json, validated_query

TAGS = ("webhooks",)


def webhook_out(endpoint: WebhookEndpoint) -> WebhookOut:
    """The answer model of an endpoint."""
    return WebhookOut.model_validate(
        {
            "name": "billing",
            "url": endpoint.url,
            "enabled": endpoint.enabled,
            "event_types": list(endpoint.event_types or []),
            "secret_hint": webhooks.secret_hint(endpoint.secret),
            "created_at": endpoint.created_at,
            "updated_at": endpoint.updated_at,
            "secret_rotated_at": endpoint.secret_rotated_at,
        }
    )


def message_status(message: WebhookMessage) -> str:
    """pending, delivered or failed (given up)."""
    if message.delivered_at is not None:
        return "delivered"
    return "failed" if message.failed_at is not None else "pending"


def attempt_out(attempt: WebhookAttempt, message: WebhookMessage) -> dict[str, Any]:
    """The fields of one attempt as the log shows them."""
    return {
        "id": attempt.id,
        "webhook_id": message.id,
        "event_type": message.event_type,
        "time": attempt.attempted_at,
        "url": attempt.url,
        "status": attempt.status,
        "response_code": attempt.response_code,
        "latency": attempt.latency_ms,
        "error": attempt.error,
        "will_retry": attempt.will_retry,
    }


@bp.get("/partner/webhooks")
@requires_scope("admin")
@doc(WebhookListOut, tags=TAGS)
def list_webhooks() -> WebhookListOut:
    """The partner's webhook (none until configured) and every event type (admin)."""
    endpoint = webhooks.get_endpoint(current_partner())
    return WebhookListOut.model_validate(
        {
            "webhooks": [webhook_out(endpoint)] if endpoint is not None else [],
            "event_types": list(WEBHOOK_EVENT_TYPES),
        }
    )


@bp.put("/partner/webhooks/billing")
@requires_scope("admin")
@doc(WebhookConfiguredOut, json=WebhookBody, tags=TAGS)
def configure_webhook() -> WebhookConfiguredOut:
    """Configure the billing webhook (admin): url, enabled, eventTypes. The first PUT
    answers the signing secret (whsec_...), this once; later PUTs answer secret null.
    A URL whose host resolves to a private, loopback or link-local address answers 400
    naming url, before any connection is made."""
    body = validated_json()
    endpoint, secret = webhooks.configure(
        current_partner(), body.url, body.enabled, body.eventTypes
    )
    return WebhookConfiguredOut(webhook=webhook_out(endpoint), secret=secret)


@bp.post("/partner/webhooks/test")
@requires_scope("admin")
@body_optional
@doc(WebhookMessageOut, status=202, errors=(404, 422), tags=TAGS)
def test_webhook() -> tuple[WebhookMessageOut, int]:
    """Send a "test" event to the webhook (admin); the log shows how it went. 404 when no
    webhook is configured, 422 when it is disabled."""
    message = webhooks.send_test(current_partner())
    return (
        WebhookMessageOut.model_validate(
            {
                "webhook_id": message.id,
                "event_type": message.event_type,
                "created_at": message.created_at,
                "status": message_status(message),
                "attempts": message.attempts,
                "next_attempt_at": message.next_attempt_at,
            }
        ),
        202,
    )


@bp.get("/partner/webhooks/logs")
@requires_scope("admin")
@doc(WebhookLogsOut, query=PageQuery, tags=TAGS)
def webhook_logs() -> WebhookLogsOut:
    """Delivery attempts, newest first (admin): time, status, responseCode, latency (ms),
    error, and whether another attempt follows."""
    query = validated_query()
    rows, total = webhooks.list_attempts(current_partner(), query.page, query.pageSize)
    return WebhookLogsOut(
        logs=[WebhookAttemptOut.model_validate(attempt_out(a, m)) for a, m in rows],
        total=total,
        page=query.page,
        page_size=query.pageSize,
    )


@bp.post("/partner/webhooks/secret/rotate")
@requires_scope("admin")
@body_optional
@doc(WebhookConfiguredOut, errors=(404,), tags=TAGS)
def rotate_webhook_secret() -> WebhookConfiguredOut:
    """Rotate the signing secret (admin): the new one is answered this once; for 24 hours
    the old one signs alongside it (two v1 signatures). 404 when no webhook is configured."""
    endpoint, secret = webhooks.rotate_secret(current_partner())
    return WebhookConfiguredOut(webhook=webhook_out(endpoint), secret=secret)
