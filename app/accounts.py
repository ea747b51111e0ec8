"""Partners, organizations, status history and credit allocations: the rules every caller shares.

The API, the pages and the CLI change these records only through here, and the rules
that span them (the pool, the trial cap, maxOrganizations) are decided under one partner
lock: hence one module.
"""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from . import audit
from .choices import ORG_TIERS, PRODUCT_TYPES
from .database import write_transaction
from .errors import AppError
from .extensions import db
from .ingest import storable_text
from .models import (
    BILLING_MODE_ALIASES,
    BILLING_MODES,
    BILLING_PERIODS,
    DEFAULT_PRICING_TIERS,
    ORG_STATUSES,
    TRIAL_CREDIT_CAP,
    ApiKey,
    AuditEntry,
    CreditAllocation,
    Organization,
    OrganizationStatusChange,
    Partner,
)
from .periods import is_valid_timezone
from .terms import current_terms
from .timeutil import to_utc_naive, utcnow

# fullmatch (the whole text); {0,99} keeps a slug within partner.slug (String(100)).
SLUG_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,99}")
CURRENCY_RE = re.compile(r"[A-Z]{3}")  # fullmatch; partner.currency is String(3)
MAX_CREDITS = 10**12
MAX_INTEGER_COLUMN = 2**31 - 1  # partner.max_organizations is an Integer column
MAX_NAME = 200
MAX_METADATA_BYTES = 64 * 1024
MAX_REASON = 500


def _field_error(field: str, value: Any, message: str) -> AppError:
    return AppError("BadRequest", message, {"field": field, "value": value})


# Controls, format characters (the zero-width space, direction marks, BOM) and combining
# marks: a name made only of these (and whitespace) shows as nothing.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Mn", "Mc", "Me"})


def visible(char: str) -> bool:
    """Tell whether a character shows: not whitespace, a control, a format or a combining mark."""
    return not char.isspace() and unicodedata.category(char) not in _INVISIBLE_CATEGORIES


def check_name(value: Any, field: str = "name", *, required: bool = True) -> str:
    """Return a name stripped of surrounding whitespace, or raise BadRequest naming field.

    The one name rule (organizations, partners, API keys; API, CLI and pages): at most
    200 characters, at least one of them visible, and storable by both databases. When
    not required, a missing or empty name is returned as "".
    """
    if not required and (value is None or value == ""):
        return ""
    if not isinstance(value, str):
        raise _field_error(field, None, f"{field} must be text")
    text = value.strip()
    if not text:
        raise _field_error(field, value[:50], f"{field} is required")
    if not storable_text(text):
        raise _field_error(
            field, None, f"{field} must not contain NUL characters or invalid Unicode"
        )
    if not any(visible(char) for char in text):
        raise _field_error(
            field,
            value[:50],
            f"{field} must contain a visible character "
            "(not only spaces, control, invisible or combining characters)",
        )
    if len(text) > MAX_NAME:
        raise _field_error(field, text[:50], f"{field} must be at most {MAX_NAME} characters")
    return text


def check_credits(value: Any, field: str = "credits") -> int:
    """Return a whole number of credits between 0 and 10^12."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise _field_error(field, value, f"{field} must be a whole number")
    if value < 0 or value > MAX_CREDITS:
        raise _field_error(field, value, f"{field} must be between 0 and {MAX_CREDITS:,}")
    return value


def check_metadata(value: Any) -> dict[str, Any]:
    """Return metadata when it is a JSON object of at most 64 KiB (as compact JSON)."""
    if not isinstance(value, dict):
        raise _field_error("metadata", None, "metadata must be a JSON object")
    if not _storable(value):
        # The API refuses such a body before it gets here; the pages' rows do not.
        raise _field_error(
            "metadata", None, "metadata must not contain NUL characters or invalid Unicode"
        )
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_METADATA_BYTES:
        # Every list of organizations carries it: a few megabytes each would slow them all.
        raise _field_error(
            "metadata",
            None,
            f"metadata must be at most {MAX_METADATA_BYTES:,} bytes as JSON (this one is {size:,})",
        )
    return value


def check_reason(value: Any) -> str | None:
    """Return a status change's reason stripped (None when missing or blank), or raise
    BadRequest naming reason: text of at most 500 characters."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise _field_error("reason", None, "reason must be text")
    text = value.strip()
    if not storable_text(text):
        raise _field_error(
            "reason", None, "reason must not contain NUL characters or invalid Unicode"
        )
    if len(text) > MAX_REASON:
        raise _field_error(
            "reason",
            None,
            f"reason must be at most {MAX_REASON} characters (this one has {len(text):,})",
        )
    return text or None


def check_external_id(value: Any, *, nullable: bool = False) -> str | None:
    """Return an external id (None only when nullable), or raise BadRequest naming externalId."""
    if value is None and nullable:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
        raise _field_error(
            "externalId",
            value if isinstance(value, str) else None,
            "externalId must be a non-empty string of at most 200 characters"
            + (", or null" if nullable else ""),
        )
    if not storable_text(value):
        raise _field_error(
            "externalId", None, "externalId must not contain NUL characters or invalid Unicode"
        )
    return value


def _storable(value: Any) -> bool:
    """Tell whether every text in a JSON value (keys too) can be stored by both databases."""
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, dict):
        return all(_storable(k) and _storable(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_storable(v) for v in value)
    return True


def _choice(value: Any, field: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise _field_error(field, value, f"{field} must be one of {', '.join(choices)}")
    return str(value)


# --- partners --------------------------------------------------------------------------


def create_partner(
    name: str,
    slug: str,
    pool: int,
    billing_day: int = 1,
    billing_period: str = "monthly",
    timezone: str = "UTC",
    billing_mode: str = "credit_pool",
    pricing_tiers: list[dict[str, Any]] | None = None,
    max_organizations: int | None = None,
    currency: str = "USD",
) -> Partner:
    """Create a partner after checking every setting."""
    name = check_name(name)
    if not isinstance(slug, str) or not SLUG_RE.fullmatch(slug):
        raise _field_error("slug", slug, "slug must be lowercase letters, digits and dashes")
    pool = check_credits(pool, "creditPoolTotal")
    if (
        isinstance(billing_day, bool)
        or not isinstance(billing_day, int)
        or not 1 <= billing_day <= 28
    ):
        raise _field_error(
            "billingDayOfMonth", billing_day, "billingDayOfMonth must be between 1 and 28"
        )
    _choice(billing_period, "billingPeriod", BILLING_PERIODS)
    billing_mode = BILLING_MODE_ALIASES.get(billing_mode, billing_mode)
    _choice(billing_mode, "billingMode", BILLING_MODES)
    if not is_valid_timezone(timezone):
        raise _field_error(
            "timezone", timezone, "timezone must be an IANA name such as Europe/Paris"
        )
    if max_organizations is not None and (
        isinstance(max_organizations, bool)
        or not isinstance(max_organizations, int)
        or not 0 <= max_organizations <= MAX_INTEGER_COLUMN
    ):
        raise _field_error(
            "maxOrganizations",
            max_organizations,
            f"maxOrganizations must be between 0 and {MAX_INTEGER_COLUMN}",
        )
    if not isinstance(currency, str) or not CURRENCY_RE.fullmatch(currency):
        raise _field_error(
            "currency", currency, "currency must be a three-letter ISO 4217 code such as USD"
        )
    # Imported here: billing reads the figures (app.metrics), which nothing else in this
    # module needs, so `flask create-org` does not import them.
    from .billing import TierError, normalize_tiers

    try:
        tiers = normalize_tiers(pricing_tiers or [dict(t) for t in DEFAULT_PRICING_TIERS])
    except TierError as exc:
        raise _field_error("pricingTiers", None, str(exc)) from exc
    if db.session.execute(select(Partner.id).where(Partner.slug == slug)).first():
        raise AppError(
            "Conflict",
            f"a partner with slug {slug!r} already exists",
            {"field": "slug", "value": slug},
        )
    partner = Partner(
        name=name,
        slug=slug,
        credit_pool_total=pool,
        billing_day_of_month=billing_day,
        billing_period=billing_period,
        timezone=timezone,
        billing_mode=billing_mode,
        pricing_tiers=tiers,
        max_organizations=max_organizations,
        currency=currency,
    )
    db.session.add(partner)
    db.session.commit()
    return partner


def partner_by_slug(slug: str) -> Partner:
    """Return the partner with this slug or raise NotFound."""
    partner = db.session.execute(select(Partner).where(Partner.slug == slug)).scalar_one_or_none()
    if partner is None:
        raise AppError(
            "NotFound", f"no partner with slug {slug!r}", {"field": "partner", "value": slug}
        )
    return partner


# --- organizations -----------------------------------------------------------------------


def get_organization(partner: Partner, organization_id: str) -> Organization:
    """Return the partner's organization; another partner's id answers NotFound too."""
    org = (
        db.session.get(Organization, organization_id)
        if isinstance(organization_id, str) and len(organization_id) <= 36
        else None
    )
    if org is None or org.partner_id != partner.id:
        raise AppError(
            "NotFound",
            "organization not found",
            {"field": "organizationId", "value": str(organization_id)[:100]},
        )
    return org


def _lock_partner(partner: Partner) -> None:
    """Serialize allocation and creation changes of one partner (PostgreSQL row lock).

    FOR NO KEY UPDATE: event inserts hold a key-share lock on the partner row (their
    foreign key), which this does not block; a plain FOR UPDATE would stall ingestion.
    """
    db.session.execute(
        select(Partner.id).where(Partner.id == partner.id).with_for_update(key_share=True)
    )


def _allocated_to_others(partner: Partner, exclude_id: str | None) -> int:
    query = select(func.coalesce(func.sum(Organization.credits_allocated), 0)).where(
        Organization.partner_id == partner.id, Organization.status != "canceled"
    )
    if exclude_id:
        query = query.where(Organization.id != exclude_id)
    return int(db.session.execute(query).scalar() or 0)


def _check_allocation(partner: Partner, org_id: str | None, tier: str, credits: int) -> None:
    """Raise InsufficientCredits when credits would break the pool or the trial cap."""
    if tier == "trial" and credits > TRIAL_CREDIT_CAP:
        raise AppError(
            "InsufficientCredits",
            f"a trial organization can hold at most {TRIAL_CREDIT_CAP:,} credits",
            {
                "field": "credits",
                "requested": credits,
                "trialCap": TRIAL_CREDIT_CAP,
                "available": TRIAL_CREDIT_CAP,
            },
        )
    others = _allocated_to_others(partner, org_id)
    # An allocation must fit the pool now and the one a settings change scheduled for the
    # next billing period (the partner row's, the newest): the smaller of the two.
    pool = min(current_terms(partner).credit_pool_total, partner.credit_pool_total)
    available = pool - others
    if credits > available:
        raise AppError(
            "InsufficientCredits",
            f"{credits:,} credits requested, but at most {max(available, 0):,} can be allocated "
            f"here: the pool holds {pool:,} and other organizations "
            f"hold {others:,}",
            {
                "field": "credits",
                "requested": credits,
                "available": max(available, 0),
                "creditPoolTotal": pool,
                "creditPoolAllocated": others,
            },
        )


def _check_organization_limit(partner: Partner) -> None:
    """Refuse one more live (not canceled) organization beyond maxOrganizations."""
    if partner.max_organizations is None:
        return
    count = (
        db.session.execute(
            select(func.count())
            .select_from(Organization)
            .where(Organization.partner_id == partner.id, Organization.status != "canceled")
        ).scalar()
        or 0
    )
    if count >= partner.max_organizations:
        raise AppError(
            "UnprocessableEntity",
            f"the partner may have at most {partner.max_organizations:,} organizations "
            "that are not canceled",
            {"field": "maxOrganizations", "maxOrganizations": partner.max_organizations},
        )


def _org_fields(org: Organization) -> dict[str, Any]:
    """Return what an organization's audit entries compare, named as the API names it."""
    return {
        "name": org.name,
        "externalId": org.external_id,
        "metadata": org.meta,
        "productType": org.product_type,
    }


def _audit_org(org: Organization, action: str, before: Any = None, after: Any = None) -> None:
    audit.record(
        org.partner_id,
        "organization",
        action,
        object_id=org.id,
        label=org.name,
        before=before,
        after=after,
    )


def _audit_allocation(org: Organization, action: str, before: int, after: dict[str, Any]) -> None:
    audit.record(
        org.partner_id,
        "allocation",
        action,
        object_id=org.id,
        label=org.name,
        before={"credits": before},
        after=after,
    )


def create_organization(
    partner: Partner,
    name: Any,
    external_id: Any = None,
    initial_credits: Any = 0,
    metadata: Any = None,
    tier: Any = "trial",
    product_type: Any = "B2B",
    created_at: datetime | None = None,
) -> Organization:
    """Create an organization with its first status and (optionally) its first allocation."""
    fields = _checked_organization(
        name, external_id, initial_credits, metadata, tier, product_type, created_at
    )
    with write_transaction():
        _lock_partner(partner)
        org = _insert_organization(partner, **fields)
    return org


class OrganizationsRejected(Exception):
    """create_organizations refused its rows: errors lists (row index, error), by index."""

    def __init__(self, errors: list[tuple[int, AppError]]) -> None:
        super().__init__(f"{len(errors)} row(s) rejected")
        self.errors = errors


def create_organizations(
    partner: Partner, rows: list[dict[str, Any]], *, check_only: bool = False
) -> list[Organization]:
    """Create many organizations in one transaction, by create_organization's rules.

    Each row holds create_organization's keyword arguments. Every row is checked (an
    externalId given twice in the rows is a conflict too, and the pool, the trial cap and
    maxOrganizations count the rows before it); if any is refused, nothing is created and
    OrganizationsRejected lists every refused row. check_only checks every row, then rolls
    back and raises OrganizationsRejected (its list empty when no row was refused): for a
    caller that refuses other rows already.
    """
    errors: list[tuple[int, AppError]] = []
    checked: list[tuple[int, dict[str, Any]]] = []
    first_row_of: dict[str, int] = {}
    for index, row in enumerate(rows):
        try:
            fields = _checked_organization(**row)
            external_id = fields["external_id"]
            if external_id is not None:
                if external_id in first_row_of:
                    raise AppError(
                        "Conflict",
                        f"externalId {external_id!r} is given to an earlier row too",
                        {"field": "externalId", "value": external_id},
                    )
                first_row_of[external_id] = index
            checked.append((index, fields))
        except AppError as exc:
            errors.append((index, exc))
    created: list[Organization] = []
    with write_transaction():
        _lock_partner(partner)
        for index, fields in checked:
            try:
                # Every check runs before anything is added: a refused row adds nothing.
                created.append(_insert_organization(partner, **fields))
            except AppError as exc:
                errors.append((index, exc))
        if errors or check_only:
            raise OrganizationsRejected(sorted(errors, key=lambda item: item[0]))
    return created


def _checked_organization(
    name: Any,
    external_id: Any = None,
    initial_credits: Any = 0,
    metadata: Any = None,
    tier: Any = "trial",
    product_type: Any = "B2B",
    created_at: datetime | None = None,
) -> dict[str, Any]:
    """Return a new organization's fields checked on their own (before any transaction)."""
    name = check_name(name)
    if external_id is not None:
        check_external_id(external_id)
    credits = check_credits(initial_credits if initial_credits is not None else 0, "initialCredits")
    metadata = check_metadata({} if metadata is None else metadata)
    tier = _choice(tier or "trial", "tier", ORG_TIERS)
    product_type = _choice(product_type or "B2B", "productType", PRODUCT_TYPES)
    now = utcnow()
    created = to_utc_naive(created_at) if created_at else now
    if created > now:
        raise _field_error("createdAt", created.isoformat(), "createdAt must not be in the future")
    return {
        "name": name,
        "external_id": external_id,
        "credits": credits,
        "metadata": metadata,
        "tier": tier,
        "product_type": product_type,
        "created": created,
        "now": now,
    }


def _next_seq(partner: Partner) -> int:
    """Return the number the partner's next organization gets (its bit in partner_activity).

    Runs under the partner's lock, so two creations cannot take the same number.
    """
    found = db.session.execute(
        select(func.max(Organization.seq)).where(Organization.partner_id == partner.id)
    ).scalar()
    return 0 if found is None else int(found) + 1


def _add_status_change(org: Organization, status: str, moment: datetime) -> None:
    """Add an entry to an organization's status history and keep latest_status (the
    newest entry, ties to the later one) in step: the only writer of the history, and
    of latest_status once the organization exists (_insert_organization gives the new
    row the values its first entry then confirms, as the columns take no NULL)."""
    db.session.add(
        OrganizationStatusChange(
            organization_id=org.id, partner_id=org.partner_id, status=status, changed_at=moment
        )
    )
    if org.latest_status_at is None or moment >= org.latest_status_at:
        org.latest_status = status
        org.latest_status_at = moment


def _insert_organization(
    partner: Partner,
    *,
    name: str,
    external_id: str | None,
    credits: int,
    metadata: dict[str, Any],
    tier: str,
    product_type: str,
    created: datetime,
    now: datetime,
) -> Organization:
    """Check the partner's limits, then add the organization, its status and allocation.

    Runs inside the caller's write_transaction, holding the partner's lock.
    """
    _check_organization_limit(partner)
    _check_external_id_free(partner, external_id, None)
    if credits:
        _check_allocation(partner, None, tier, credits)
    org = Organization(
        partner_id=partner.id,
        name=name,
        external_id=external_id,
        status="active",
        latest_status="active",
        latest_status_at=created,
        seq=_next_seq(partner),
        tier=tier,
        product_type=product_type,
        meta=metadata,
        credits_allocated=credits,
        created_at=created,
        updated_at=now,
    )
    db.session.add(org)
    db.session.flush()
    _add_status_change(org, "active", created)
    _audit_org(
        org,
        "create",
        after={
            **_org_fields(org),
            "status": "active",
            "tier": tier,
            "initialCredits": credits,
            "createdAt": created,
        },
    )
    if credits:
        # Dated like the first status, so an imported (backdated) client's history
        # shows its allocation from the day it was created.
        db.session.add(
            CreditAllocation(
                partner_id=partner.id,
                organization_id=org.id,
                credits_allocated=credits,
                previous_credits=0,
                notes="initial allocation",
                allocated_at=created,
            )
        )
        _audit_allocation(org, "set", 0, {"credits": credits, "notes": "initial allocation"})
    return org


def _check_external_id_free(partner: Partner, external_id: str | None, org_id: str | None) -> None:
    """Refuse an externalId another organization of the partner has (409 Conflict)."""
    if external_id is None:
        return
    query = select(Organization.id).where(
        Organization.partner_id == partner.id, Organization.external_id == external_id
    )
    if org_id is not None:
        query = query.where(Organization.id != org_id)
    if db.session.execute(query).first():
        raise AppError(
            "Conflict",
            f"an organization with externalId {external_id!r} exists",
            {"field": "externalId", "value": external_id},
        )


def update_organization(partner: Partner, org: Organization, changes: dict[str, Any]) -> bool:
    """Apply a partial update of name, externalId, metadata, productType, status or tier;
    return whether anything changed.

    All of it happens in one transaction: a refused field leaves every field unchanged.
    The audit log gets one entry for the fields that changed (before and after), and one
    for a status or a tier that changed.
    """
    status = _choice(changes["status"], "status", ORG_STATUSES) if "status" in changes else None
    tier = _choice(changes["tier"], "tier", ORG_TIERS) if "tier" in changes else None
    with write_transaction():
        _lock_partner(partner)
        db.session.refresh(org)
        before = {**_org_fields(org), "status": org.status, "tier": org.tier}
        if status is not None:
            _apply_status(partner, org, status, utcnow())
        if tier is not None:
            _apply_tier(org, tier)
        if "name" in changes:
            org.name = check_name(changes["name"])
        if "externalId" in changes:
            ext = check_external_id(changes["externalId"], nullable=True)
            _check_external_id_free(partner, ext, org.id)
            org.external_id = ext
        if "metadata" in changes:
            org.meta = check_metadata(changes["metadata"])
        if "productType" in changes:
            org.product_type = _choice(changes["productType"], "productType", PRODUCT_TYPES)
        old, new = audit.changed({k: before[k] for k in _org_fields(org)}, _org_fields(org))
        if new:
            _audit_org(org, "update", old, new)
        org.updated_at = utcnow()
    return bool(new) or (org.status, org.tier) != (before["status"], before["tier"])


def set_status(
    partner: Partner,
    org: Organization,
    status: Any,
    at: datetime | None = None,
    reason: Any = None,
    *,
    action: str = "status",
) -> None:
    """Change an organization's status and keep the change with its time.

    reason (optional, at most 500 characters) is kept in the audit entry; action names
    that entry ("delete" for the API's DELETE, which cancels).
    """
    status = _choice(status, "status", ORG_STATUSES)
    reason = check_reason(reason)
    if status == org.status:
        return
    moment = to_utc_naive(at) if at else utcnow()
    if moment < org.created_at:
        raise _field_error(
            "changedAt",
            moment.isoformat(),
            "a status change cannot predate the organization's createdAt",
        )
    with write_transaction():
        # Under the partner lock, so the credits released are the ones committed.
        _lock_partner(partner)
        db.session.refresh(org)
        _apply_status(partner, org, status, moment, reason, action)


def _apply_status(
    partner: Partner,
    org: Organization,
    status: str,
    moment: datetime,
    reason: str | None = None,
    action: str = "status",
) -> None:
    """Record a status change inside the caller's transaction (no-op when unchanged)."""
    if status == org.status:
        return
    if org.status == "canceled":
        # Coming back from canceled takes a place again under maxOrganizations.
        _check_organization_limit(partner)
    previous = org.status
    org.status = status
    org.updated_at = utcnow()
    _add_status_change(org, status, moment)
    # changedAt ties the entry to its row of the status history (whose reason it shows).
    after: dict[str, Any] = {"status": status, "changedAt": moment}
    if reason:
        after["reason"] = reason
    _audit_org(org, action, {"status": previous}, after)
    if status == "canceled" and org.credits_allocated:
        # A canceled organization's credits go back to the pool, on the audit trail.
        db.session.add(
            CreditAllocation(
                partner_id=partner.id,
                organization_id=org.id,
                credits_allocated=0,
                previous_credits=org.credits_allocated,
                notes="released: organization canceled",
                allocated_at=moment,
            )
        )
        _audit_allocation(
            org,
            "release",
            org.credits_allocated,
            {"credits": 0, "notes": "released: organization canceled"},
        )
        org.credits_allocated = 0


def status_history(org: Organization) -> list[OrganizationStatusChange]:
    """Return an organization's status changes, oldest first."""
    return list(
        db.session.execute(
            select(OrganizationStatusChange)
            .where(OrganizationStatusChange.organization_id == org.id)
            .order_by(OrganizationStatusChange.changed_at, OrganizationStatusChange.id)
        ).scalars()
    )


def status_reasons(org: Organization) -> dict[tuple[str, str], str]:
    """Return the reasons given for an organization's status changes, by (status, changedAt
    as the audit log writes it): read from the audit entries, which keep them."""
    entries = db.session.execute(
        select(AuditEntry.after).where(
            AuditEntry.partner_id == org.partner_id,
            AuditEntry.object_type == "organization",
            AuditEntry.object_id == org.id,
            AuditEntry.action.in_(("status", "delete")),
        )
    ).scalars()
    return {
        (after["status"], after["changedAt"]): after["reason"]
        for after in entries
        if isinstance(after, dict) and after.get("reason") and after.get("changedAt")
    }


def reason_key(change: OrganizationStatusChange) -> tuple[str, str]:
    """Return the key of status_reasons() for one row of the status history."""
    return change.status, audit.plain(change.changed_at)


def set_tier(partner: Partner, org: Organization, tier: Any) -> None:
    """Change an organization's tier; a trial tier needs an allocation within the trial cap."""
    tier = _choice(tier, "tier", ORG_TIERS)
    with write_transaction():
        # Check the committed allocation under the partner lock, not a copy read earlier.
        _lock_partner(partner)
        db.session.refresh(org)
        _apply_tier(org, tier)
        org.updated_at = utcnow()


def _apply_tier(org: Organization, tier: str) -> None:
    """Change the tier inside the caller's transaction, with its audit entry (no-op when
    unchanged)."""
    _check_tier(org, tier)
    if tier == org.tier:
        return
    _audit_org(org, "tier", {"tier": org.tier}, {"tier": tier})
    org.tier = tier


def _check_tier(org: Organization, tier: str) -> None:
    """Refuse the trial tier for an organization holding more than the trial cap."""
    if tier == "trial" and org.credits_allocated > TRIAL_CREDIT_CAP:
        raise AppError(
            "UnprocessableEntity",
            f"the organization holds {org.credits_allocated:,} credits; a trial "
            f"organization can hold at most {TRIAL_CREDIT_CAP:,}. Lower the allocation "
            "first.",
            {"field": "tier", "value": tier, "trialCap": TRIAL_CREDIT_CAP},
        )


def set_allocation(
    partner: Partner, org: Organization, credits: Any, notes: Any = None
) -> CreditAllocation:
    """Set an allocation to credits; on InsufficientCredits nothing changes (nor is audited)."""
    credits = check_credits(credits)
    if notes is not None and (not isinstance(notes, str) or len(notes) > 2000):
        raise _field_error("notes", None, "notes must be text of at most 2000 characters")
    with write_transaction():
        _lock_partner(partner)
        db.session.refresh(org)
        # Checked after the refresh: the organization may have been canceled meanwhile.
        if org.status == "canceled" and credits > 0:
            raise AppError(
                "UnprocessableEntity",
                "a canceled organization cannot hold credits; reactivate it first",
                {"field": "credits", "status": org.status},
            )
        _check_allocation(partner, org.id, org.tier, credits)
        allocation = CreditAllocation(
            partner_id=partner.id,
            organization_id=org.id,
            credits_allocated=credits,
            previous_credits=org.credits_allocated,
            notes=notes,
            allocated_at=utcnow(),
        )
        after: dict[str, Any] = {"credits": credits}
        if notes:
            after["notes"] = notes
        _audit_allocation(org, "set", org.credits_allocated, after)
        org.credits_allocated = credits
        org.updated_at = utcnow()
        db.session.add(allocation)
    return allocation


def allocation_history(org: Organization) -> list[CreditAllocation]:
    """Return an organization's allocation changes, newest first."""
    return list(
        db.session.execute(
            select(CreditAllocation)
            .where(CreditAllocation.organization_id == org.id)
            .order_by(CreditAllocation.allocated_at.desc(), CreditAllocation.id)
        ).scalars()
    )


def allocation_history_page(
    org: Organization, page: int, page_size: int
) -> tuple[list[CreditAllocation], int]:
    """Return one page of an organization's allocation changes (newest first) and their count."""
    ca = CreditAllocation
    return _page(
        ca, [ca.organization_id == org.id], (ca.allocated_at.desc(), ca.id), page, page_size
    )


def _page(
    model: Any, clauses: list[Any], order: tuple[Any, ...], page: int, page_size: int
) -> tuple[list[Any], int]:
    """Return one page (from 1) of model's rows matching clauses, in order, and how many
    rows match in all."""
    total = int(
        db.session.execute(select(func.count()).select_from(model).where(*clauses)).scalar() or 0
    )
    rows = list(
        db.session.execute(
            select(model)
            .where(*clauses)
            .order_by(*order)
            .limit(page_size)
            .offset((page - 1) * page_size)
        ).scalars()
    )
    return rows, total


def list_organizations(
    partner: Partner,
    *,
    status: str | None = None,
    search: str | None = None,
    external_id: str | None = None,
    page: int = 1,
    page_size: int = 20,
) -> tuple[list[Organization], int]:
    """Return one page of the partner's organizations (by name) matching the filters."""
    clauses = Organization.matching(partner.id, status, search, external_id)
    return _page(Organization, list(clauses), (Organization.name, Organization.id), page, page_size)


# --- API keys (listing and lookup; creation and checks are in auth.py) -------------------


def list_api_keys(partner: Partner, page: int, page_size: int) -> tuple[list[ApiKey], int]:
    """Return one page of the partner's API keys (newest first) and their count."""
    return _page(
        ApiKey,
        [ApiKey.partner_id == partner.id],
        (ApiKey.created_at.desc(), ApiKey.id),
        page,
        page_size,
    )


def get_api_key(partner: Partner, key_id: str) -> ApiKey:
    """Return the partner's key; another partner's key id answers NotFound too."""
    key = db.session.get(ApiKey, key_id) if isinstance(key_id, str) and len(key_id) <= 36 else None
    if key is None or key.partner_id != partner.id:
        raise AppError("NotFound", "API key not found", {"field": "id", "value": str(key_id)[:100]})
    return key
