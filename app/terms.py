"""The terms of each billing period: its credit pool, pricing tiers and billing day, by version.

A partner's terms change from the next billing period on (docs/billing-terms.md): past and
current periods keep the pool, prices and dates they had. Every figure that depends on
them (pool totals, costs, the periods' dates) reads a period's terms through terms_for().
A partner whose terms never changed has no version: its row's columns are its terms.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from .models import Partner, PartnerTerms
from .periods import current_billing_period


@dataclass(frozen=True, slots=True)
class Terms:
    """The pool, prices and billing day of a billing period, and since when they apply.

    effective_from is None for a partner whose terms never changed (the partner row's).
    """

    effective_from: date | None
    credit_pool_total: int
    pricing_tiers: list[dict[str, Any]]
    billing_day_of_month: int

    def same_as(self, other: Terms) -> bool:
        """Tell whether two terms hold the same pool, prices and billing day."""
        return (
            self.credit_pool_total == other.credit_pool_total
            and _bands(self.pricing_tiers) == _bands(other.pricing_tiers)
            and self.billing_day_of_month == other.billing_day_of_month
        )


def _bands(tiers: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Return tiers as comparable bands: 0.1 and "0.10" are the same price."""
    return [
        (
            str(t.get("tier")),
            Decimal(str(t.get("pricePerIdentification"))),
            t.get("minUsage"),
            t.get("maxUsage"),
        )
        for t in tiers
    ]


def of_version(version: PartnerTerms) -> Terms:
    """Return a stored version as Terms."""
    return Terms(
        version.effective_from,
        int(version.credit_pool_total),
        list(version.pricing_tiers),
        int(version.billing_day_of_month),
    )


def of_partner(partner: Partner) -> Terms:
    """Return the partner row's terms: the newest ones (what /me and the settings show)."""
    return Terms(
        None,
        int(partner.credit_pool_total),
        list(partner.pricing_tiers),
        int(partner.billing_day_of_month),
    )


def version_for(partner: Partner, period_start: date) -> PartnerTerms | None:
    """Return the version in force for the billing period starting on period_start: the
    newest that starts on or before it, else the oldest (None when there is no version)."""
    versions = partner.terms_versions
    if not versions:
        return None
    chosen = versions[0]
    for version in versions:
        if version.effective_from <= period_start:
            chosen = version
    return chosen


def terms_for(partner: Partner, period_start: date) -> Terms:
    """Return the terms of the billing period that starts on period_start.

    The one way every page, report and API answer reads a period's pool, prices and
    billing day; any day of the period gives the same answer (versions start on period
    boundaries). Without versions, the partner row's terms.
    """
    version = version_for(partner, period_start)
    return of_partner(partner) if version is None else of_version(version)


def current_terms(partner: Partner) -> Terms:
    """Return the terms of the current billing period (the cost calculator's)."""
    return terms_for(partner, current_billing_period(partner).start)


def next_change_date(partner: Partner) -> date:
    """Return the first day a change of the terms made now applies from: the day after the
    current billing period (its dates drawn by the terms in force)."""
    return current_billing_period(partner).end + timedelta(days=1)


def scheduled_terms(partner: Partner) -> Terms | None:
    """Return the terms that start with the next billing period, when they differ from
    the current ones (None when nothing is scheduled)."""
    current = current_billing_period(partner)
    for version in partner.terms_versions:
        if version.effective_from > current.start:
            return of_version(version)
    return None
