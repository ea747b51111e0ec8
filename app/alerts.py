"""Alert rules, their evaluation and their history.

Five kinds (ALERT_KINDS): pool_usage (the billing period's use reaches threshold % of the
pool), org_allocation (an organization's use this billing period reaches threshold % of
its allocation), projected_exhaustion (billing.projection(), the Credits page's, ends the
period above the pool), stale_data (no event received for threshold hours) and
inactive_org (an active organization without events on any of the last threshold
complete days).

A rule fires once per crossing: alert_state holds one row per (rule, subject, period key)
with a unique key; a firing inserts it (insert-or-nothing) or turns a resolved row back
to firing (a conditional UPDATE), so two concurrent ingests crossing the same threshold
fire it once. The period key is the billing period's first day for the usage rules (a new
period fires again) and the quiet spell's start for the time-based ones. A firing writes,
in the same transaction, the state, a history row (alert_event), a webhook message
(app/outbox.py) and the e-mails of the members who chose that kind (app/mail.py).

The usage rules are evaluated inside each ingest transaction (evaluate_ingest, from the
rollups the batch has just updated, for the batch's organizations only); every rule, and
the resolution of every firing state, by the worker's sweep every five minutes
(evaluate_partner). A firing state resolves when its condition ends (a new billing
period, a raised pool or allocation, a lower projection, an event after a quiet spell).

It is one module of about 650 lines on purpose: the five kinds share one firing rule
(the state row, the history, the webhook and the e-mails in the firing's transaction)
and one set of figures read once per evaluation (_Figures.findings), and a kind is a few
lines of that; split by kind, each part would need the whole firing machinery.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, select, text, update

from . import audit, billing, mail, metrics, outbox
from .database import dialect_name, write_transaction
from .errors import AppError
from .extensions import db
from .models import (
    ALERT_KINDS,
    AlertEvent,
    AlertRule,
    AlertState,
    Organization,
    OrgDailyUsage,
    Partner,
    PartnerDataVersion,
)
from .periods import Period, billing_period, local_date_of, local_today
from .timeutil import iso_z, utcnow

EVENT_TYPES = {
    "pool_usage": "billing.pool.threshold",
    "org_allocation": "organization.allocation.threshold",
    "projected_exhaustion": "billing.pool.projected_exhaustion",
    "stale_data": "data.stale",
    "inactive_org": "organization.inactive",
}
KIND_LABELS = {
    "pool_usage": "Pool usage reaches a share of the pool",
    "org_allocation": "An organization reaches a share of its allocation",
    "projected_exhaustion": "The projection exceeds the pool before it resets",
    "stale_data": "No event received for some hours",
    "inactive_org": "An organization without events for some days",
}
# (unit, smallest, largest) of each kind's threshold; None: the kind takes none.
THRESHOLDS: dict[str, tuple[str, int, int] | None] = {
    "pool_usage": ("%", 1, 1000),
    "org_allocation": ("%", 1, 1000),
    "projected_exhaustion": None,
    "stale_data": ("hours", 1, 24 * 365),
    "inactive_org": ("days", 1, 365),
}
USAGE_KINDS = ("pool_usage", "org_allocation", "projected_exhaustion")
MAX_RULES = 50


def _bad(field: str, message: str, value: Any = None) -> AppError:
    return AppError("BadRequest", message, {"field": field, "value": value})


def describe(kind: str, threshold: int) -> str:
    """Return a rule in words ("Pool usage reaches 80 %")."""
    if kind == "pool_usage":
        return f"Pool usage reaches {threshold} % of the pool"
    if kind == "org_allocation":
        return f"An organization reaches {threshold} % of its allocation"
    if kind == "projected_exhaustion":
        return "The projection exceeds the pool before it resets"
    if kind == "stale_data":
        return f"No event received for {threshold} hours"
    return f"An organization without events for {threshold} days"


def check_rule(kind: Any, threshold: Any) -> tuple[str, int]:
    """Return (kind, threshold) checked, or raise a 400 naming kind or threshold."""
    if kind not in ALERT_KINDS:
        raise _bad("kind", f"kind must be one of {', '.join(ALERT_KINDS)}", kind)
    limits = THRESHOLDS[kind]
    if limits is None:
        return kind, 0
    unit, low, high = limits
    if isinstance(threshold, bool) or not isinstance(threshold, int):
        raise _bad("threshold", f"threshold must be a whole number of {unit}", threshold)
    if not low <= threshold <= high:
        raise _bad("threshold", f"threshold must be {low} to {high} ({unit})", threshold)
    return kind, threshold


def _shown(rule: AlertRule) -> dict[str, Any]:
    return {"kind": rule.kind, "threshold": rule.threshold, "enabled": rule.enabled}


def list_rules(partner: Partner) -> list[AlertRule]:
    """Return the partner's rules, oldest first."""
    return list(
        db.session.execute(
            select(AlertRule)
            .where(AlertRule.partner_id == partner.id)
            .order_by(AlertRule.created_at, AlertRule.id)
        ).scalars()
    )


def get_rule(partner: Partner, rule_id: str) -> AlertRule:
    """Return the partner's rule, or raise 404 (another partner's id is not found too)."""
    rule = db.session.get(AlertRule, rule_id) if len(rule_id) <= 36 else None
    if rule is None or rule.partner_id != partner.id:
        raise AppError("NotFound", "no such alert rule", {"field": "id", "value": rule_id[:80]})
    return rule


def create_rule(partner: Partner, kind: Any, threshold: Any, enabled: bool = True) -> AlertRule:
    """Add a rule (audited)."""
    kind, threshold = check_rule(kind, threshold)
    with write_transaction():
        count = db.session.execute(
            select(func.count()).select_from(AlertRule).where(AlertRule.partner_id == partner.id)
        ).scalar_one()
        if count >= MAX_RULES:
            raise _bad("kind", f"a partner has at most {MAX_RULES} alert rules")
        now = utcnow()
        rule = AlertRule(
            partner_id=partner.id,
            kind=kind,
            threshold=threshold,
            enabled=bool(enabled),
            created_at=now,
            updated_at=now,
        )
        db.session.add(rule)
        db.session.flush()
        audit.record(
            partner.id,
            "alert",
            "created",
            object_id=rule.id,
            label=describe(kind, threshold),
            after=_shown(rule),
        )
    return rule


def update_rule(
    partner: Partner, rule_id: str, kind: Any, threshold: Any, enabled: bool
) -> AlertRule:
    """Change a rule (audited). Its states go with a change of kind or threshold: the new
    rule fires on its own crossings."""
    kind, threshold = check_rule(kind, threshold)
    with write_transaction():
        rule = get_rule(partner, rule_id)
        before = _shown(rule)
        if (rule.kind, rule.threshold) != (kind, threshold):
            db.session.execute(delete(AlertState).where(AlertState.rule_id == rule.id))
        rule.kind, rule.threshold, rule.enabled = kind, threshold, bool(enabled)
        rule.updated_at = utcnow()
        after = _shown(rule)
        if before != after:
            changes = audit.changed(before, after)
            audit.record(
                partner.id,
                "alert",
                "updated",
                object_id=rule.id,
                label=describe(kind, threshold),
                before=changes[0],
                after=changes[1],
            )
    return rule


def delete_rule(partner: Partner, rule_id: str) -> None:
    """Remove a rule and its states (audited); its history stays."""
    with write_transaction():
        rule = get_rule(partner, rule_id)
        db.session.execute(delete(AlertState).where(AlertState.rule_id == rule.id))
        audit.record(
            partner.id,
            "alert",
            "deleted",
            object_id=rule.id,
            label=describe(rule.kind, rule.threshold),
            before=_shown(rule),
        )
        db.session.delete(rule)


def history(partner: Partner, page: int = 1, page_size: int = 50) -> tuple[list[AlertEvent], int]:
    """Return one page of the partner's firings and resolutions, newest first, and the count."""
    where = AlertEvent.partner_id == partner.id
    total = db.session.execute(
        select(func.count()).select_from(AlertEvent).where(where)
    ).scalar_one()
    rows = db.session.execute(
        select(AlertEvent)
        .where(where)
        .order_by(AlertEvent.occurred_at.desc(), AlertEvent.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).scalars()
    return list(rows), int(total)


# --- firing and resolving ------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """A rule's condition holding for one subject: what fires."""

    subject: str
    label: str
    period_key: str
    data: dict[str, Any]


def _lock_alerts(partner_id: str) -> None:
    """PostgreSQL: serialize alert evaluation per partner until the commit, so the second
    of two concurrent ingests reads the first one's committed rollups (READ COMMITTED) and
    neither misses a crossing their sum makes. (Ingests of one partner also queue on its
    partner_data_version row, which every batch bumps; this lock does not rely on that.)
    SQLite: writers are serialized already."""
    if dialect_name() == "postgresql":
        digest = hashlib.sha256(f"partner-analytics:alerts:{partner_id}".encode()).digest()
        key = int.from_bytes(digest[:8], "big", signed=True)
        db.session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


def insert_or_nothing(model: Any, values: dict[str, Any], key: list[str]) -> bool:
    """INSERT ... ON CONFLICT (key) DO NOTHING in the current transaction; tell whether the
    row was inserted (a concurrent insert of the same key waits, then inserts nothing)."""
    dialect_insert: Any
    if dialect_name() == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    # RETURNING tells: psycopg answers rowcount -1 to an INSERT that returns rows.
    statement = (
        dialect_insert(model)
        .values(**values)
        .on_conflict_do_nothing(index_elements=key)
        .returning(*model.__table__.primary_key.columns)
    )
    return db.session.execute(statement).first() is not None


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _insert_state(values: dict[str, Any]) -> bool:
    return insert_or_nothing(AlertState, values, ["rule_id", "subject", "period_key"])


def fire(partner: Partner, rule: AlertRule, finding: Finding, now: datetime) -> bool:
    """Fire rule for finding unless it is already firing for that subject and period;
    tell whether it fired. Writes the state, the history, the webhook and the e-mails in
    the current transaction."""
    key = and_(
        AlertState.rule_id == rule.id,
        AlertState.subject == finding.subject,
        AlertState.period_key == finding.period_key,
    )
    fired = _insert_state(
        {
            "rule_id": rule.id,
            "partner_id": partner.id,
            "subject": finding.subject,
            "period_key": finding.period_key,
            "state": "firing",
            "fired_at": now,
            "resolved_at": None,
        }
    )
    if not fired:
        result = db.session.execute(
            update(AlertState)
            .where(key, AlertState.state == "resolved")
            .values(state="firing", fired_at=now, resolved_at=None)
            .execution_options(synchronize_session=False)
        )
        fired = _rowcount(result) == 1
    if not fired:
        return False
    data = {"ruleId": rule.id, "kind": rule.kind, "threshold": rule.threshold, **finding.data}
    db.session.add(
        AlertEvent(
            partner_id=partner.id,
            rule_id=rule.id,
            kind=rule.kind,
            subject=finding.subject,
            subject_label=finding.label[:200],
            action="fired",
            occurred_at=now,
            data=data,
        )
    )
    outbox.enqueue(partner.id, EVENT_TYPES[rule.kind], data)
    _mail_alert(partner, rule, finding, data)
    return True


def _mail_alert(partner: Partner, rule: AlertRule, finding: Finding, data: dict[str, Any]) -> None:
    title = describe(rule.kind, rule.threshold)
    about = f" — {finding.label}" if finding.label else ""
    subject = f"[{partner.name}] Alert: {title}{about}"
    lines = [f"{title}{about}.", ""]
    lines += [f"{name}: {value}" for name, value in data.items() if name not in ("ruleId",)]
    lines += ["", "Change the alerts you receive on the Alerts page (E-mail me)."]
    for recipient in mail.recipients(partner.id, rule.kind):
        mail.enqueue(partner.id, "alert", recipient, subject, "\n".join(lines) + "\n")


def resolve_where(
    partner: Partner, rule: AlertRule, keep: set[tuple[str, str]], now: datetime
) -> int:
    """Resolve the rule's firing states whose (subject, period key) is not in keep; return
    how many (each with a history row)."""
    firing = db.session.execute(
        select(AlertState).where(AlertState.rule_id == rule.id, AlertState.state == "firing")
    ).scalars()
    labels = _org_labels(partner.id) if rule.kind in ("org_allocation", "inactive_org") else {}
    count = 0
    for state in list(firing):
        if (state.subject, state.period_key) in keep:
            continue
        result = db.session.execute(
            update(AlertState)
            .where(AlertState.id == state.id, AlertState.state == "firing")
            .values(state="resolved", resolved_at=now)
            .execution_options(synchronize_session=False)
        )
        if _rowcount(result) != 1:
            continue
        count += 1
        db.session.add(
            AlertEvent(
                partner_id=partner.id,
                rule_id=rule.id,
                kind=rule.kind,
                subject=state.subject,
                subject_label=labels.get(state.subject, "")[:200],
                action="resolved",
                occurred_at=now,
                data={"ruleId": rule.id, "periodKey": state.period_key},
            )
        )
    return count


def _org_labels(partner_id: str) -> dict[str, str]:
    return dict(
        db.session.execute(
            select(Organization.id, Organization.name).where(Organization.partner_id == partner_id)
        ).all()
    )


# --- the conditions --------------------------------------------------------------------


def _percent(used: int, total: int) -> float:
    return round(used * 100 / total, 2) if total else 0.0


def pool_findings(partner: Partner, rule: AlertRule, bp: Period, used: int) -> list[Finding]:
    """pool_usage: the period's use against the pool."""
    pool = partner.credit_pool_total
    if pool <= 0 or used * 100 < rule.threshold * pool:
        return []
    data = {
        "billingPeriodStart": bp.start.isoformat(),
        "billingPeriodEnd": bp.end.isoformat(),
        "creditPoolTotal": pool,
        "creditPoolUsed": used,
        "usedPercent": _percent(used, pool),
    }
    return [Finding("", "", bp.start.isoformat(), data)]


def allocation_findings(
    partner: Partner, rule: AlertRule, bp: Period, orgs: list[Organization], used: dict[str, int]
) -> list[Finding]:
    """org_allocation: each organization's use this billing period against its allocation."""
    out = []
    for org in orgs:
        allocated, spent = org.credits_allocated, used.get(org.id, 0)
        if allocated <= 0 or spent * 100 < rule.threshold * allocated:
            continue
        data = {
            "organizationId": org.id,
            "organizationName": org.name,
            "externalId": org.external_id,
            "billingPeriodStart": bp.start.isoformat(),
            "billingPeriodEnd": bp.end.isoformat(),
            "creditsAllocated": allocated,
            "creditsUsed": spent,
            "usedPercent": _percent(spent, allocated),
        }
        out.append(Finding(org.id, org.name, bp.start.isoformat(), data))
    return out


def projection_findings(partner: Partner, today: date) -> list[Finding]:
    """projected_exhaustion: the Credits page's projection ends above the pool."""
    p = billing.projection(partner, today)
    if p.projected_identifications is None or p.pool_total <= 0:
        return []
    if p.projected_identifications <= p.pool_total:
        return []
    data = {
        "billingPeriodStart": p.period.start.isoformat(),
        "billingPeriodEnd": p.period.end.isoformat(),
        "resetDate": p.reset_date.isoformat(),
        "creditPoolTotal": p.pool_total,
        "creditPoolUsed": p.used,
        "projectedIdentifications": p.projected_identifications,
        "projectionMethod": p.method,
        "runoutDate": p.runout_date.isoformat() if p.runout_date else None,
    }
    return [Finding("", "", p.period.start.isoformat(), data)]


def stale_findings(partner: Partner, rule: AlertRule, now: datetime) -> list[Finding]:
    """stale_data: no event received for threshold hours (since the newest receipt, or
    since the partner was created when nothing ever arrived)."""
    last = db.session.execute(
        select(PartnerDataVersion.last_received_at).where(
            PartnerDataVersion.partner_id == partner.id
        )
    ).scalar()
    since = last or partner.created_at
    if now - since < timedelta(hours=rule.threshold):
        return []
    data = {
        "lastReceivedAt": iso_z(last) if last else None,
        "hoursWithoutEvents": int((now - since).total_seconds() // 3600),
    }
    key = ("received:" if last else "created:") + iso_z(since)  # type: ignore[operator]
    return [Finding("", "", key[:40], data)]


def inactive_findings(partner: Partner, rule: AlertRule, today: date) -> list[Finding]:
    """inactive_org: an active organization with no event on any of the last threshold
    complete days (counted from its last event's day, or its creation day)."""
    orgs = list(
        db.session.execute(
            select(Organization).where(
                Organization.partner_id == partner.id, Organization.status == "active"
            )
        ).scalars()
    )
    if not orgs:
        return []
    last_days = dict(
        db.session.execute(
            select(OrgDailyUsage.organization_id, func.max(OrgDailyUsage.day))
            .where(OrgDailyUsage.partner_id == partner.id)
            .group_by(OrgDailyUsage.organization_id)
        ).all()
    )
    out = []
    for org in orgs:
        last = last_days.get(org.id)
        if isinstance(last, str):
            last = date.fromisoformat(last)
        since = last or local_date_of(org.created_at, partner.timezone)
        quiet = (today - since).days - (1 if last else 0)
        if quiet < rule.threshold:
            continue
        data = {
            "organizationId": org.id,
            "organizationName": org.name,
            "externalId": org.external_id,
            "lastEventDate": last.isoformat() if last else None,
            "daysWithoutEvents": quiet,
        }
        key = ("day:" if last else "created:") + since.isoformat()
        out.append(Finding(org.id, org.name, key, data))
    return out


# --- evaluation ------------------------------------------------------------------------


def _rules(partner_id: str, kinds: tuple[str, ...]) -> list[AlertRule]:
    return list(
        db.session.execute(
            select(AlertRule).where(
                AlertRule.partner_id == partner_id,
                AlertRule.enabled.is_(True),
                AlertRule.kind.in_(kinds),
            )
        ).scalars()
    )


@dataclass
class _Figures:
    """One pass over a partner's rules: the findings of each rule, with the use of the pool
    and of the allocations read once, when a rule first needs them. allocated picks the
    organizations the org_allocation rules look at (a batch's, or all with an allocation)."""

    partner: Partner
    bp: Period
    today: date
    now: datetime
    allocated: ColumnElement[bool]
    used: int | None = None
    orgs: list[Organization] | None = None
    org_used: dict[str, int] = field(default_factory=dict)

    def findings(self, rule: AlertRule) -> list[Finding]:
        """Return what the rule finds now."""
        partner, bp = self.partner, self.bp
        if rule.kind == "pool_usage":
            if self.used is None:
                self.used = metrics.credits_used(partner, bp)
            return pool_findings(partner, rule, bp, self.used)
        if rule.kind == "org_allocation":
            if self.orgs is None:
                self.orgs = list(
                    db.session.execute(
                        select(Organization).where(
                            Organization.partner_id == partner.id, self.allocated
                        )
                    ).scalars()
                )
                self.org_used = metrics.org_credits_used(partner, bp, [o.id for o in self.orgs])
            return allocation_findings(partner, rule, bp, self.orgs, self.org_used)
        if rule.kind == "projected_exhaustion":
            return projection_findings(partner, self.today)
        if rule.kind == "stale_data":
            return stale_findings(partner, rule, self.now)
        return inactive_findings(partner, rule, self.today)


def evaluate_ingest(partner_id: str, organization_ids: set[str]) -> int:
    """Fire the usage rules an ingest batch may have crossed (inside its transaction, after
    its rollups were added); return how many fired. Only the partner's enabled usage rules,
    and for org_allocation only the batch's organizations."""
    rules = _rules(partner_id, USAGE_KINDS)
    if not rules:
        return 0
    _lock_alerts(partner_id)
    partner = db.session.get(Partner, partner_id)
    if partner is None:  # pragma: no cover
        return 0
    db.session.refresh(partner)
    now = utcnow()
    today = local_today(partner.timezone)
    bp = billing_period(partner, today)
    fired = 0
    figures = _Figures(partner, bp, today, now, Organization.id.in_(sorted(organization_ids)))
    for rule in rules:
        for finding in figures.findings(rule):
            fired += fire(partner, rule, finding, now)
    return fired


def evaluate_partner(partner: Partner, now: datetime | None = None) -> int:
    """Evaluate every enabled rule of the partner, firing and resolving (the sweep); return
    how many fired. Runs in its own transaction."""
    now = now or utcnow()
    fired = 0
    with write_transaction():
        _lock_alerts(partner.id)
        db.session.refresh(partner)
        today = local_today(partner.timezone)
        bp = billing_period(partner, today)
        rules = list(
            db.session.execute(
                select(AlertRule).where(AlertRule.partner_id == partner.id)
            ).scalars()
        )
        figures = _Figures(partner, bp, today, now, Organization.credits_allocated > 0)
        for rule in rules:
            if not rule.enabled:
                resolve_where(partner, rule, set(), now)
                continue
            findings = figures.findings(rule)
            for finding in findings:
                fired += fire(partner, rule, finding, now)
            resolve_where(partner, rule, {(f.subject, f.period_key) for f in findings}, now)
    return fired


def sweep() -> int:
    """Evaluate every partner that has alert rules (the worker, every five minutes)."""
    ids = [r[0] for r in db.session.execute(select(AlertRule.partner_id).distinct()).all()]
    db.session.rollback()
    fired = 0
    for partner_id in ids:
        partner = db.session.get(Partner, partner_id)
        if partner is not None:
            fired += evaluate_partner(partner)
    return fired


def send_test(partner: Partner, email: str) -> dict[str, Any]:
    """The Alerts page's "Send test": a test webhook (if one is configured and enabled)
    and a test e-mail to email; in the history as "test"."""
    now = utcnow()
    data = {"message": "A test of the alerts of " + partner.name, "sentBy": email}
    with write_transaction():
        message = outbox.enqueue(partner.id, "test", data, force=True)
        mailed = mail.enqueue(
            partner.id,
            "test",
            email,
            f"[{partner.name}] Test alert",
            "This is a test of your Partner Analytics alerts. E-mail reaches you.\n",
        )
        db.session.add(
            AlertEvent(
                partner_id=partner.id,
                rule_id="",
                kind="test",
                subject="",
                subject_label=email[:200],
                action="test",
                occurred_at=now,
                data={"webhookId": message.id if message else None, "mailId": mailed.id},
            )
        )
    return {"webhook_id": message.id if message else None, "mail_id": mailed.id}
