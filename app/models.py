"""The tables: partners, organizations, allocations, keys, users, events and daily rollups.

One module on purpose: it is declarations only (columns, keys, indexes and a few
properties), the one schema the migrations in migrations/versions are written against,
and every other module imports its tables from here. Behaviour lives beside each idea
(app/accounts.py, app/rollups.py, app/webhooks.py, app/alerts.py, ...).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.elements import ColumnElement

from .extensions import Base
from .timeutil import utcnow

# SQLite needs INTEGER (not BIGINT) for an auto-incrementing primary key.
BigId = BigInteger().with_variant(Integer(), "sqlite")

BILLING_MODES = ("credit_pool", "external", "usage_based")
BILLING_MODE_ALIASES = {"pooled": "credit_pool"}
BILLING_PERIODS = ("monthly", "annual")
ORG_STATUSES = ("active", "suspended", "canceled")
TRIAL_CREDIT_CAP = 500
IDENTIFICATION = "identification"

DEFAULT_PRICING_TIERS: list[dict[str, Any]] = [
    {"tier": "Starter", "pricePerIdentification": "0.10", "minUsage": 0, "maxUsage": 10000},
    {"tier": "Growth", "pricePerIdentification": "0.08", "minUsage": 10000, "maxUsage": 100000},
    {"tier": "Scale", "pricePerIdentification": "0.05", "minUsage": 100000, "maxUsage": None},
]


def new_uuid() -> str:
    """Return a new random UUID as text."""
    return str(uuid.uuid4())


class Partner(Base):
    """A reseller or agency account with its billing settings and credit pool."""

    __tablename__ = "partner"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    status: Mapped[str] = mapped_column(String(20), default="active")
    billing_mode: Mapped[str] = mapped_column(String(20), default="credit_pool")
    billing_period: Mapped[str] = mapped_column(String(10), default="monthly")
    billing_day_of_month: Mapped[int] = mapped_column(Integer, default=1)
    credit_pool_total: Mapped[int] = mapped_column(BigInteger, default=0)
    pricing_tiers: Mapped[list[dict[str, Any]]] = mapped_column(
        JSON, default=lambda: [dict(t) for t in DEFAULT_PRICING_TIERS]
    )
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    max_organizations: Mapped[int | None] = mapped_column(Integer, nullable=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    organizations: Mapped[list[Organization]] = relationship(back_populates="partner")
    # The versions of its pool, prices and billing day, oldest first (app/terms.py); none
    # until the terms first change, when the columns above are the only terms. Loaded once
    # per session; app/terms.py expires it when it writes a version.
    terms_versions: Mapped[list[PartnerTerms]] = relationship(
        order_by="PartnerTerms.effective_from", viewonly=True
    )


class Organization(Base):
    """A client organization managed by a partner."""

    __tablename__ = "organization"
    __table_args__ = (
        UniqueConstraint("partner_id", "external_id"),
        Index("uq_organization_partner_id_seq", "partner_id", "seq", unique=True),
        Index("ix_organization_partner_created", "partner_id", "created_at"),
        Index("ix_organization_partner_latest", "partner_id", "latest_status_at", "latest_status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partner.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    external_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="active")
    # The newest entry of the status history (by changedAt, then id): the status from
    # latest_status_at on. It differs from status only after a backdated change older than
    # the newest entry; with it, a date after every change needs no history look-up.
    latest_status: Mapped[str] = mapped_column(String(20), default="active")
    latest_status_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # The organization's number within its partner (0, 1, 2... in order of creation): its
    # bit in partner_activity.
    seq: Mapped[int] = mapped_column(Integer)
    tier: Mapped[str] = mapped_column(String(10), default="trial")
    product_type: Mapped[str] = mapped_column(String(3), default="B2B")
    # "metadata" is reserved on declarative classes, so the attribute is meta.
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    # The current allocation; its history is in credit_allocation.
    credits_allocated: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    partner: Mapped[Partner] = relationship(back_populates="organizations")

    @staticmethod
    def matching(
        partner_id: str,
        status: str | None = None,
        search: str | None = None,
        external_id: str | None = None,
    ) -> list[ColumnElement[bool]]:
        """Return the WHERE clauses of the organization list's filters (the API's and the
        page's): the partner's organizations with this status, a name containing search
        (any case, taken literally) and this external id."""
        clauses: list[ColumnElement[bool]] = [Organization.partner_id == partner_id]
        if status:
            clauses.append(Organization.status == status)
        if search:
            escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            clauses.append(Organization.name.ilike(f"%{escaped}%", escape="\\"))
        if external_id:
            clauses.append(Organization.external_id == external_id)
        return clauses


class OrganizationStatusChange(Base):
    """One status an organization entered, and when, so any past date can be answered."""

    __tablename__ = "organization_status_change"
    __table_args__ = (Index("ix_status_change_org_time", "organization_id", "changed_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organization.id"))
    partner_id: Mapped[str] = mapped_column(ForeignKey("partner.id"), index=True)
    status: Mapped[str] = mapped_column(String(20))
    changed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class CreditAllocation(Base):
    """One change of an organization's allocation: the audit trail."""

    __tablename__ = "credit_allocation"
    __table_args__ = (Index("ix_allocation_org_time", "organization_id", "allocated_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partner.id"), index=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organization.id"))
    credits_allocated: Mapped[int] = mapped_column(BigInteger)
    previous_credits: Mapped[int] = mapped_column(BigInteger, default=0)
    notes: Mapped[str | None] = mapped_column(Text, nullable=True)
    allocated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ApiKey(Base):
    """An API key; only its SHA-256 digest is stored."""

    __tablename__ = "api_key"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partner.id"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    prefix: Mapped[str] = mapped_column(String(20))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # Comma-separated subset of read,write,admin; empty means full access.
    scopes: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    @property
    def scope_list(self) -> list[str]:
        """Return the key's scopes as a list (empty means full access)."""
        return [s for s in self.scopes.split(",") if s]


class User(Base):
    """A dashboard login; each user sees exactly one partner, with one role in it."""

    __tablename__ = "user"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partner.id"), index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(10), default="owner", server_default="owner")
    # Bumped on logout and password change so old sessions stop working.
    session_token: Mapped[str] = mapped_column(String(64), default=new_uuid)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    partner: Mapped[Partner] = relationship()

    # Flask-Login protocol.
    is_authenticated = True
    is_active = True
    is_anonymous = False

    def get_id(self) -> str:
        """Return the session identity: user id and session token."""
        return f"{self.id}:{self.session_token}"


class UsageEvent(Base):
    """One raw usage fact, stored exactly once per (partner, eventId)."""

    __tablename__ = "usage_event"
    __table_args__ = (
        UniqueConstraint("partner_id", "event_id"),
        # No (organization_id, local_date) index: ranges are read from the rollups and
        # that index only slowed every insert (migration 0003). No (partner_id,
        # received_at) index either: the newest receipt is kept in partner_data_version
        # (migration 0005).
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # No foreign keys here (migration 0006): ingestion checks every organization against
    # the partner's own before inserting, and partners and organizations are never
    # deleted (an organization is canceled), so the database's per-row check only
    # repeated that one at half of PostgreSQL's insert cost. `flask rollups verify`
    # reports any event whose organization is not its partner's.
    partner_id: Mapped[str] = mapped_column(String(36))
    organization_id: Mapped[str] = mapped_column(String(36))
    event_id: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(BigInteger)
    occurred_at: Mapped[datetime] = mapped_column(DateTime)
    # The calendar day of occurred_at in the partner's timezone when it was stored.
    local_date: Mapped[date] = mapped_column(Date)
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class OrgDailyUsage(Base):
    """Rollup: one organization's usage of one type on one local day."""

    __tablename__ = "org_daily_usage"
    __table_args__ = (Index("ix_org_daily_partner_day", "partner_id", "day", "organization_id"),)

    organization_id: Mapped[str] = mapped_column(ForeignKey("organization.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    type: Mapped[str] = mapped_column(String(64), primary_key=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partner.id"))
    quantity: Mapped[int] = mapped_column(BigInteger, default=0)
    events: Mapped[int] = mapped_column(BigInteger, default=0)


class OrgBucketUsage(Base):
    """Rollup: one organization's usage in one calendar week (from Monday) or month, so
    that long ranges read a dozen rows per organization, not one per day and type.

    identifications is the quantity of its identification events (the credits they
    consumed); quantity and events count every type. Derived from the same sums as
    org_daily_usage in the same transaction; like usage_event it has no foreign keys
    (ingestion checks organizations itself, and `flask rollups verify` recounts it from
    the raw events). The key leads with the partner and the bucket, and on SQLite the
    rows live in that key's B-tree (WITHOUT ROWID): one ingest batch touches a few
    contiguous runs of it, and every read is a range of it, so no second index is needed.
    """

    __tablename__ = "org_bucket_usage"
    __table_args__ = {"sqlite_with_rowid": False}

    partner_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    grain: Mapped[str] = mapped_column(String(8), primary_key=True)  # "week" or "month"
    bucket_start: Mapped[date] = mapped_column(Date, primary_key=True)
    organization_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    identifications: Mapped[int] = mapped_column(BigInteger, default=0)
    quantity: Mapped[int] = mapped_column(BigInteger, default=0)
    events: Mapped[int] = mapped_column(BigInteger, default=0)


class PartnerActivity(Base):
    """Rollup: which of a partner's organizations had any event in one day, calendar week
    (from Monday) or month, as bitmaps, so that "organizations with activity" over a
    range ORs a few dozen rows instead of probing every organization.

    Organization number seq is bit seq % ACTIVITY_BITS of the row whose chunk is seq //
    ACTIVITY_BITS (63 bits: a signed 64-bit integer on both back ends, which OR in SQL, so
    concurrent ingests can set bits without reading first). Bits are only ever set; a
    rebuild recomputes the rows from org_daily_usage, and `flask rollups verify` recounts
    them from the raw events.
    """

    __tablename__ = "partner_activity"
    __table_args__ = {"sqlite_with_rowid": False}

    partner_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    grain: Mapped[str] = mapped_column(String(8), primary_key=True)  # "day", "week", "month"
    start: Mapped[date] = mapped_column(Date, primary_key=True)
    chunk: Mapped[int] = mapped_column(Integer, primary_key=True)
    organizations: Mapped[int] = mapped_column(BigInteger, default=0)


ACTIVITY_BITS = 63


class PartnerDailyUsage(Base):
    """Rollup: a partner's usage of one type on one local day, for fast range totals."""

    __tablename__ = "partner_daily_usage"

    partner_id: Mapped[str] = mapped_column(ForeignKey("partner.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    type: Mapped[str] = mapped_column(String(64), primary_key=True)
    quantity: Mapped[int] = mapped_column(BigInteger, default=0)
    events: Mapped[int] = mapped_column(BigInteger, default=0)


class PartnerBucketUsage(Base):
    """Rollup: a partner's usage of one type in one calendar week (from Monday) or month,
    so that a year's totals read a few dozen rows instead of one per day and type.

    Derived from the same sums as partner_daily_usage in the same transaction; `flask
    rollups verify` recounts it from the raw events. WITHOUT ROWID on SQLite: every read
    is a range of its key.
    """

    __tablename__ = "partner_bucket_usage"
    __table_args__ = {"sqlite_with_rowid": False}

    partner_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    grain: Mapped[str] = mapped_column(String(8), primary_key=True)  # "week" or "month"
    bucket_start: Mapped[date] = mapped_column(Date, primary_key=True)
    type: Mapped[str] = mapped_column(String(64), primary_key=True)
    quantity: Mapped[int] = mapped_column(BigInteger, default=0)
    events: Mapped[int] = mapped_column(BigInteger, default=0)


class PartnerDailyReceipt(Base):
    """Rollup: a partner's usage of one type on one local day, by the local day it arrived.

    The month-end reports read it to tell how much of a closed month arrived late,
    without scanning raw events.
    """

    __tablename__ = "partner_daily_receipt"

    partner_id: Mapped[str] = mapped_column(ForeignKey("partner.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    received_day: Mapped[date] = mapped_column(Date, primary_key=True)
    type: Mapped[str] = mapped_column(String(64), primary_key=True)
    quantity: Mapped[int] = mapped_column(BigInteger, default=0)
    events: Mapped[int] = mapped_column(BigInteger, default=0)


class PartnerDataVersion(Base):
    """A counter bumped by every write that can change a partner's figures.

    The closed-period cache (app/cache.py) keys its entries on it, so a late event or an
    organization imported with a past createdAt invalidates them in the same transaction.
    """

    __tablename__ = "partner_data_version"

    partner_id: Mapped[str] = mapped_column(ForeignKey("partner.id"), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    # When the newest stored event was received (naive UTC): the dashboard's "data as of".
    last_received_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class KnownAddress(Base):
    """A client address a user has signed in from, kept as HMAC(SECRET_KEY, address).

    The per-account sign-in throttle (app/signin.py) still lets the right password through
    from such an address, so a flood of wrong guesses cannot lock the owner out. The keyed
    digest keeps the addresses themselves out of the database (an unkeyed hash of an IPv4
    address is reversed by trying all 2^32).
    """

    __tablename__ = "user_known_address"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("user.id", ondelete="CASCADE"), primary_key=True
    )
    address_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Invitation(Base):
    """An invitation to join a partner's team: a one-time link, kept as a SHA-256 digest.

    Valid until expires_at (7 days) and used at most once (accepted_at). An address that
    already belongs to another partner gets an invitation like any other, which cannot be
    accepted: the inviter learns nothing about other partners.
    """

    __tablename__ = "invitation"
    __table_args__ = (Index("ix_invitation_partner_created", "partner_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partner.id"))
    email: Mapped[str] = mapped_column(String(254))
    role: Mapped[str] = mapped_column(String(10))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by: Mapped[str] = mapped_column(String(254), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class AuditEntry(Base):
    """One change, by any path (page, API key, CLI), written in the change's transaction.

    Never updated or deleted by the application (app/audit.py only inserts). actor_kind
    is "user", "api_key" or "cli"; actor is the user's email, the key's "name (prefix)",
    or "cli". before and after hold the changed fields (JSON objects, or null).
    """

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_partner_time", "partner_id", "occurred_at", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partner.id"))
    occurred_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    actor_kind: Mapped[str] = mapped_column(String(10))
    actor: Mapped[str] = mapped_column(String(300))
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    object_label: Mapped[str | None] = mapped_column(String(300), nullable=True)
    action: Mapped[str] = mapped_column(String(40))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    client_address: Mapped[str | None] = mapped_column(String(64), nullable=True)


class PartnerTerms(Base):
    """The pool, prices and billing day a partner's billing periods use, by version.

    A version applies to the billing periods that start on or after effective_from; a
    change made in a period takes effect from the next one, so past and current periods
    keep the terms they had. The partner row keeps the newest version's values as well
    (what the settings page and the API's /me show).
    """

    __tablename__ = "partner_terms"
    __table_args__ = (UniqueConstraint("partner_id", "effective_from"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partner.id"))
    effective_from: Mapped[date] = mapped_column(Date)
    credit_pool_total: Mapped[int] = mapped_column(BigInteger)
    pricing_tiers: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    billing_day_of_month: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


# What a webhook message may be about (docs/webhooks.md); "test" is the test send.
WEBHOOK_EVENT_TYPES = (
    "test",
    "billing.pool.threshold",
    "billing.pool.projected_exhaustion",
    "organization.allocation.threshold",
    "data.stale",
    "organization.inactive",
)


class WebhookEndpoint(Base):
    """Where a partner's webhook messages go, and the secret that signs them.

    One endpoint per partner and name ("billing", the platform's only one). The secret is
    kept whole (it signs every message); the API and the page show it once, when the
    endpoint is first configured and after a rotation. For a day after a rotation the
    previous secret signs too (a second v1 signature), so receivers can switch over.
    """

    __tablename__ = "webhook_endpoint"
    __table_args__ = (UniqueConstraint("partner_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partner.id"))
    name: Mapped[str] = mapped_column(String(40), default="billing")
    url: Mapped[str] = mapped_column(String(2000))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    event_types: Mapped[list[str]] = mapped_column(JSON)
    secret: Mapped[str] = mapped_column(String(100))
    previous_secret: Mapped[str | None] = mapped_column(String(100), nullable=True)
    previous_secret_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    secret_rotated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class WebhookMessage(Base):
    """One message of the outbox: the source of truth of what must be delivered.

    Written in the transaction of what caused it (app/outbox.py). id is the webhook-id,
    the same on every attempt; body is the exact JSON sent (signed as is on every
    attempt). next_attempt_at is when it is due (null once delivered or given up);
    a worker claims a message by moving next_attempt_at past its own attempt's end.
    """

    __tablename__ = "webhook_message"
    __table_args__ = (
        Index("ix_webhook_message_due", "next_attempt_at"),
        Index("ix_webhook_message_partner_created", "partner_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partner.id"))
    event_type: Mapped[str] = mapped_column(String(60))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    failed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class WebhookAttempt(Base):
    """One try at delivering a message: when, to where, the answer (or the error)."""

    __tablename__ = "webhook_attempt"
    __table_args__ = (Index("ix_webhook_attempt_partner_time", "partner_id", "attempted_at", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("webhook_message.id"), index=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partner.id"))
    attempted_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    url: Mapped[str] = mapped_column(String(2000))
    status: Mapped[str] = mapped_column(String(10))  # "succeeded" or "failed"
    response_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    latency_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    response_body: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Whether another attempt follows (false: delivered, or not retried).
    will_retry: Mapped[bool] = mapped_column(Boolean, default=False)


# --- alerts and e-mail (issue 17, migration 0011) ----------------------------------------

# What an alert rule watches (app/alerts.py); threshold is a percent, hours or days.
ALERT_KINDS = ("pool_usage", "org_allocation", "projected_exhaustion", "stale_data", "inactive_org")


class AlertRule(Base):
    """One alert rule of a partner: a kind and its threshold (percent, hours or days)."""

    __tablename__ = "alert_rule"
    __table_args__ = (Index("ix_alert_rule_partner", "partner_id", "kind"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partner.id"))
    kind: Mapped[str] = mapped_column(String(30))
    # pool_usage, org_allocation: percent; stale_data: hours; inactive_org: days;
    # projected_exhaustion: unused (0).
    threshold: Mapped[int] = mapped_column(Integer, default=0)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class AlertState(Base):
    """Whether a rule is firing for one subject in one period (the once-per-crossing key).

    subject is an organization id (org_allocation, inactive_org) or "". period_key is the
    billing period's first day for the usage rules, and the start of the quiet spell for
    the time-based ones. The unique key makes a concurrent second firing insert nothing.
    """

    __tablename__ = "alert_state"
    __table_args__ = (UniqueConstraint("rule_id", "subject", "period_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    rule_id: Mapped[str] = mapped_column(ForeignKey("alert_rule.id"))
    partner_id: Mapped[str] = mapped_column(ForeignKey("partner.id"))
    subject: Mapped[str] = mapped_column(String(36), default="")
    period_key: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(10))  # "firing" or "resolved"
    fired_at: Mapped[datetime] = mapped_column(DateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class AlertEvent(Base):
    """The history: one firing or resolution of a rule, with what it saw."""

    __tablename__ = "alert_event"
    __table_args__ = (Index("ix_alert_event_partner_time", "partner_id", "occurred_at", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partner.id"))
    # Kept when the rule is deleted: the history stays readable.
    rule_id: Mapped[str] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(30))
    subject: Mapped[str] = mapped_column(String(36), default="")
    subject_label: Mapped[str] = mapped_column(String(200), default="")
    action: Mapped[str] = mapped_column(String(10))  # "fired", "resolved" or "test"
    occurred_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class MailMessage(Base):
    """One e-mail of the mail outbox, written in the transaction of what caused it.

    raw is the whole RFC 5322 message (what the .eml file holds); the worker sends it by
    SMTP, or writes it under instance/outbox/ when no MAIL_SERVER is set (app/mail.py).
    """

    __tablename__ = "mail_message"
    __table_args__ = (Index("ix_mail_message_due", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    partner_id: Mapped[str | None] = mapped_column(ForeignKey("partner.id"), nullable=True)
    kind: Mapped[str] = mapped_column(String(20))  # alert, report, invitation, test
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300))
    raw: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    failed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)


class MailPreference(Base):
    """A member's e-mail choices: the alert kinds to be told of, and the monthly report."""

    __tablename__ = "mail_preference"

    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), primary_key=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partner.id"), index=True)
    alert_kinds: Mapped[list[str]] = mapped_column(JSON, default=list)
    monthly_report: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ReportMailing(Base):
    """One sending of a month's report (revision 0, then 1, 2, ... when revised)."""

    __tablename__ = "report_mailing"
    __table_args__ = (UniqueConstraint("partner_id", "month", "revision"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partner.id"))
    month: Mapped[str] = mapped_column(String(7))  # YYYY-MM
    revision: Mapped[int] = mapped_column(Integer)
    sent_at: Mapped[datetime] = mapped_column(DateTime)
    headline: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    recipients: Mapped[int] = mapped_column(Integer, default=0)
