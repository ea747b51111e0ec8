"""Alert rules and their history (admin scope): the rules of app/alerts.py."""

from __future__ import annotations

from flask import Response
from sqlalchemy import func, select

from .. import alerts
from ..extensions import db
from ..models import AlertRule, AlertState
from . import bp, serializers
from .guards import current_partner, requires_scope
from .schemas import (
    AlertEventOut,
    AlertHistoryOut,
    AlertRuleBody,
    AlertRuleListOut,
    AlertRuleOut,
    PageQuery,
)
from .spec import doc, validated_json, validated_query

TAGS = ("alerts",)


def firing_counts(partner_id: str) -> dict[str, int]:
    """Return {rule id: how many subjects it fires for now}."""
    rows = db.session.execute(
        select(AlertState.rule_id, func.count())
        .where(AlertState.partner_id == partner_id, AlertState.state == "firing")
        .group_by(AlertState.rule_id)
    ).all()
    return {rule_id: int(count) for rule_id, count in rows}


def rule_out(rule: AlertRule, firing: dict[str, int]) -> AlertRuleOut:
    """The answer model of a rule."""
    return AlertRuleOut.model_validate(
        {
            "id": rule.id,
            "kind": rule.kind,
            "threshold": rule.threshold,
            "enabled": rule.enabled,
            "description": alerts.describe(rule.kind, rule.threshold),
            "event_type": alerts.EVENT_TYPES[rule.kind],
            "firing": firing.get(rule.id, 0),
            "created_at": rule.created_at,
            "updated_at": rule.updated_at,
        }
    )


@bp.get("/partner/alerts")
@requires_scope("admin")
@doc(AlertRuleListOut, tags=TAGS)
def list_alerts() -> AlertRuleListOut:
    """The partner's alert rules, oldest first (admin), each with how many subjects it is
    firing for now."""
    partner = current_partner()
    firing = firing_counts(partner.id)
    return AlertRuleListOut(alerts=[rule_out(r, firing) for r in alerts.list_rules(partner)])


@bp.post("/partner/alerts")
@requires_scope("admin")
@doc(AlertRuleOut, status=201, json=AlertRuleBody, tags=TAGS)
def create_alert() -> tuple[AlertRuleOut, int]:
    """Add an alert rule (admin). 400 naming kind or threshold when they do not fit."""
    body = validated_json()
    rule = alerts.create_rule(current_partner(), body.kind, body.threshold, body.enabled)
    return rule_out(rule, {}), 201


@bp.put("/partner/alerts/<id>")
@requires_scope("admin")
@doc(AlertRuleOut, json=AlertRuleBody, errors=(404,), tags=TAGS)
def update_alert(id: str) -> AlertRuleOut:  # noqa: A002
    """Change an alert rule (admin); a new kind or threshold starts it afresh (it fires on
    its own crossings). 404 for an id that is not one of the partner's rules."""
    body = validated_json()
    partner = current_partner()
    rule = alerts.update_rule(partner, id, body.kind, body.threshold, body.enabled)
    return rule_out(rule, firing_counts(partner.id))


@bp.delete("/partner/alerts/<id>")
@requires_scope("admin")
@doc(None, status=204, errors=(404,), tags=TAGS)
def delete_alert(id: str) -> Response:  # noqa: A002
    """Remove an alert rule (admin); its history stays."""
    alerts.delete_rule(current_partner(), id)
    return serializers.no_content()


@bp.get("/partner/alerts/history")
@requires_scope("admin")
@doc(AlertHistoryOut, query=PageQuery, tags=TAGS)
def alert_history() -> AlertHistoryOut:
    """Firings, resolutions and test sends, newest first (admin)."""
    query = validated_query()
    rows, total = alerts.history(current_partner(), query.page, query.pageSize)
    return AlertHistoryOut(
        history=[
            AlertEventOut.model_validate(
                {
                    "id": e.id,
                    "rule_id": e.rule_id,
                    "kind": e.kind,
                    "action": e.action,
                    "subject": e.subject,
                    "subject_label": e.subject_label,
                    "occurred_at": e.occurred_at,
                    "data": e.data or {},
                }
            )
            for e in rows
        ],
        total=total,
        page=query.page,
        page_size=query.pageSize,
    )
