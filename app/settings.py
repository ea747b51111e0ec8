"""A partner's settings: its name now, and its pool, prices and billing day from the next
billing period (a new version of its terms), each change audited in its transaction.

The timezone is changed by rollups.set_timezone (it re-buckets the history); this module
tells beforehand how many events that moves and when the page must leave it to the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, select

from . import audit, metrics
from .accounts import check_credits, check_name
from .billing import TierError, normalize_tiers
from .database import write_transaction
from .errors import AppError
from .extensions import db
from .models import Organization, Partner, PartnerTerms
from .periods import billing_period, is_valid_timezone, local_date_of, local_today
from .rollups import set_timezone, stored_events, timezone_change_preview
from .terms import Terms, current_terms, next_change_date

# Above this many stored events a timezone change is left to `flask set-timezone`: it
# holds the partner's lock while it re-buckets, longer than a page request should wait.
PAGE_TIMEZONE_LIMIT = 1_000_000
BILLING_DAYS = range(1, 29)  # spec: billingDayOfMonth 1-28, so every month has the day


def _field_error(field: str, value: Any, message: str) -> AppError:
    return AppError("BadRequest", message, {"field": field, "value": value})


def allocated_now(partner: Partner) -> int:
    """Return the sum of the current allocations (organizations not canceled)."""
    value = db.session.execute(
        select(func.coalesce(func.sum(Organization.credits_allocated), 0)).where(
            Organization.partner_id == partner.id, Organization.status != "canceled"
        )
    ).scalar()
    return int(value or 0)


def check_pool(partner: Partner, pool: Any) -> int:
    """Return the pool when it is a whole number of credits that covers the current
    allocations; raise UnprocessableEntity (422) naming the shortfall otherwise."""
    pool = check_credits(pool, "creditPoolTotal")
    allocated = allocated_now(partner)
    if pool < allocated:
        short = allocated - pool
        raise AppError(
            "UnprocessableEntity",
            f"A pool of {pool:,} credits is {short:,} short of the {allocated:,} credits "
            f"allocated to organizations now: lower their allocations first, or keep the "
            f"pool at {allocated:,} or more",
            {
                "field": "creditPoolTotal",
                "value": pool,
                "creditPoolAllocated": allocated,
                "shortfall": short,
            },
        )
    return pool


def check_billing_day(value: Any) -> int:
    """Return a billing day of the month from 1 to 28."""
    if isinstance(value, bool) or not isinstance(value, int) or value not in BILLING_DAYS:
        raise _field_error("billingDayOfMonth", value, "billingDayOfMonth must be between 1 and 28")
    return value


def _first_period_start(partner: Partner) -> date:
    """Return the first day of the partner's first billing period (its creation or its
    first usage, whichever is earlier), by the terms it has had so far."""
    today = local_today(partner.timezone)
    first = metrics.first_activity_day(partner) or today
    created = local_date_of(partner.created_at, partner.timezone) if partner.created_at else today
    return billing_period(partner, min(first, created, today)).start


@dataclass(frozen=True, slots=True)
class SettingsChange:
    """What a settings change did: the fields changed (before, after, as audited) and the
    day its terms apply from (None when pool, prices and billing day did not change)."""

    before: dict[str, Any]
    after: dict[str, Any]
    effective_from: date | None


def _fields(name: str, terms: Terms) -> dict[str, Any]:
    return {
        "name": name,
        "creditPoolTotal": terms.credit_pool_total,
        "billingDayOfMonth": terms.billing_day_of_month,
        "pricingTiers": terms.pricing_tiers,
    }


def update_settings(
    partner: Partner,
    *,
    name: Any,
    credit_pool_total: Any,
    billing_day_of_month: Any,
    pricing_tiers: Any,
) -> SettingsChange:
    """Change the partner's name (now) and its pool, prices and billing day (from the next
    billing period), in one transaction with its audit entry.

    Raises BadRequest naming the field for a value that cannot be used, and
    UnprocessableEntity (422) for a pool below the current allocations; nothing changes then.
    """
    name = check_name(name)
    billing_day = check_billing_day(billing_day_of_month)
    try:
        tiers = normalize_tiers(pricing_tiers)
    except TierError as exc:
        raise _field_error("pricingTiers", None, str(exc)) from exc
    with write_transaction():
        # The allocation rules read the pool under this lock too (accounts._lock_partner).
        db.session.execute(
            select(Partner.id).where(Partner.id == partner.id).with_for_update(key_share=True)
        )
        db.session.refresh(partner)
        pool = check_credits(credit_pool_total, "creditPoolTotal")
        if pool != partner.credit_pool_total:
            check_pool(partner, pool)
        newest = Terms(None, pool, tiers, billing_day)
        before = _fields(partner.name, Terms(None, *_row(partner)))
        effective: date | None = None
        if not newest.same_as(Terms(None, *_row(partner))):
            effective = _schedule(partner, newest)
        partner.name = name
        partner.credit_pool_total = pool
        partner.billing_day_of_month = billing_day
        partner.pricing_tiers = tiers
        old, new = audit.changed(before, _fields(name, newest))
        if effective is not None:
            new["effectiveFrom"] = effective.isoformat()
        if new:
            audit.record(
                partner.id,
                "partner",
                "update",
                object_id=partner.id,
                label=name,
                before=old,
                after=new,
            )
    db.session.expire(partner, ["terms_versions"])
    return SettingsChange(old, new, effective)


def _row(partner: Partner) -> tuple[int, list[dict[str, Any]], int]:
    return (
        int(partner.credit_pool_total),
        list(partner.pricing_tiers),
        int(partner.billing_day_of_month),
    )


def _schedule(partner: Partner, newest: Terms) -> date:
    """Make newest the terms of the next billing period on (caller's transaction); return
    the day they apply from.

    The first change keeps the terms so far as the first version, from the partner's
    first billing period. A second change in the same period replaces the scheduled
    version; one back to the current terms removes it.
    """
    effective = next_change_date(partner)
    current = current_terms(partner)
    if not partner.terms_versions:
        db.session.add(
            PartnerTerms(
                partner_id=partner.id,
                effective_from=min(_first_period_start(partner), effective),
                credit_pool_total=current.credit_pool_total,
                pricing_tiers=current.pricing_tiers,
                billing_day_of_month=current.billing_day_of_month,
            )
        )
    scheduled = db.session.execute(
        select(PartnerTerms).where(
            PartnerTerms.partner_id == partner.id, PartnerTerms.effective_from == effective
        )
    ).scalar_one_or_none()
    if newest.same_as(current):
        if scheduled is not None:
            db.session.delete(scheduled)
        return effective
    if scheduled is None:
        scheduled = PartnerTerms(partner_id=partner.id, effective_from=effective)
        db.session.add(scheduled)
    scheduled.credit_pool_total = newest.credit_pool_total
    scheduled.pricing_tiers = newest.pricing_tiers
    scheduled.billing_day_of_month = newest.billing_day_of_month
    return effective


# --- the timezone ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimezonePreview:
    """What a timezone change would do: the events stored, how many would move to another
    day, and whether the page may make it (None: too many events, use the CLI)."""

    timezone: str
    stored_events: int
    events_moved: int | None

    @property
    def page_allowed(self) -> bool:
        """Tell whether the page may make the change (at most PAGE_TIMEZONE_LIMIT events)."""
        return self.events_moved is not None


def preview_timezone(partner: Partner, tz: str) -> TimezonePreview:
    """Count what changing the partner's timezone to tz would move (nothing changes)."""
    stored = stored_events(partner.id)
    if stored > PAGE_TIMEZONE_LIMIT:
        return TimezonePreview(tz, stored, None)
    return TimezonePreview(tz, stored, timezone_change_preview(partner.id, tz))


def change_timezone(partner: Partner, tz: str) -> int:
    """Change the timezone from the page (rollups.set_timezone, audited there); return how
    many events moved. Refused with 422 above PAGE_TIMEZONE_LIMIT events (the CLI's job)."""
    if not is_valid_timezone(tz):
        raise _field_error("timezone", tz, "timezone must be an IANA name such as Europe/Paris")
    stored = stored_events(partner.id)
    if stored > PAGE_TIMEZONE_LIMIT:
        raise AppError(
            "UnprocessableEntity",
            f"this partner has {stored:,} events, more than the {PAGE_TIMEZONE_LIMIT:,} a page "
            f"may re-bucket: run `{cli_command(partner, tz)}`",
            {"field": "timezone", "value": tz, "storedEvents": stored},
        )
    return set_timezone(partner, tz)


def cli_command(partner: Partner, tz: str) -> str:
    """Return the command that changes the timezone from a shell."""
    return f"flask set-timezone --partner {partner.slug} --timezone {tz}"
