"""Pricing tiers, graduated cost, billing periods, and the one projection of the current period."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from fractions import Fraction
from typing import Any, Literal

from . import metrics
from .models import Partner
from .periods import Period, billing_period, billing_periods, local_date_of, local_today
from .terms import Terms, current_terms, scheduled_terms
from .terms import terms_for as terms_for  # billing.terms_for: how callers read a period's terms

CENT = Decimal("0.01")


class TierError(ValueError):
    """Pricing tiers that do not form contiguous, ascending bands starting at 0."""


def cents(value: Decimal) -> Decimal:
    """Round an amount to cents, half up: the amounts the product shows and answers."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class PricingTier:
    """One band of the graduated pricing: units from min_usage up to max_usage (None: open)."""

    tier: str
    price_per_identification: Decimal
    min_usage: int
    max_usage: int | None


@dataclass(frozen=True, slots=True)
class PeriodTerms:
    """The terms a figure was computed with, as shown: since when (None: the partner's
    terms never changed), the pool, the billing day and the pricing tiers."""

    effective_from: date | None
    credit_pool_total: int
    billing_day_of_month: int
    pricing_tiers: list[PricingTier]


@dataclass(frozen=True, slots=True)
class CostLine:
    """The cost of the units that fall in one tier (amount exact, or in cents once shown)."""

    tier: str
    units: int
    price_per_identification: Decimal
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Cost:
    """The cost of a number of identifications under the partner's tiers, in cents."""

    usage: int
    total_cost: Decimal
    currency: str
    breakdown: list[CostLine]
    terms: PeriodTerms


@dataclass(frozen=True, slots=True)
class BillingInfo:
    """The billing configuration and the pool figures now."""

    partner_id: str
    billing_mode: str
    billing_period: str
    billing_day_of_month: int
    billing_period_start: date
    next_billing_date: date
    pricing_tiers: list[PricingTier]
    currency: str
    credit_pool_total: int
    credit_pool_used: int
    credit_pool_available: int
    credit_pool_allocated: int
    terms: PeriodTerms
    next_terms: PeriodTerms | None


@dataclass(frozen=True, slots=True)
class PeriodUsage:
    """Usage and cost (in cents) of a billing period counted through a day."""

    billing_period_start: date
    billing_period_end: date
    identifications: int
    credits_used: int
    total_quantity: int
    total_events: int
    estimated_cost: Decimal
    currency: str
    cost_breakdown: list[CostLine]
    terms: PeriodTerms


@dataclass(frozen=True, slots=True)
class CurrentUsage(PeriodUsage):
    """The current billing period's usage and cost, and its projection (projection())."""

    days_elapsed: int
    days_in_period: int
    projection: Projection

    @property
    def projection_method(self) -> str:
        """Return how the projection was made (spec §4 projectionMethod)."""
        return self.projection.method

    @property
    def projected_identifications(self) -> int | None:
        """Return the whole period's projected identifications (None: insufficient data)."""
        return self.projection.projected_identifications

    @property
    def projected_cost(self) -> Decimal | None:
        """Return the whole period's projected cost in cents (None: insufficient data)."""
        return self.projection.projected_cost


@dataclass(frozen=True, slots=True)
class BillingPeriodRow(PeriodUsage):
    """One billing period of the list, marked when it is the current one."""

    is_current: bool


def normalize_tiers(tiers: Any) -> list[dict[str, Any]]:
    """Validate pricing tiers and return them sorted, with prices as decimal strings.

    This is the stored form (the partner's pricing_tiers column); pricing_tiers() reads it.
    """
    if not isinstance(tiers, list) or not tiers:
        raise TierError("pricingTiers must be a non-empty list")
    out = []
    for i, tier in enumerate(sorted(tiers, key=lambda t: t.get("minUsage", 0))):
        try:
            price = Decimal(str(tier["pricePerIdentification"]))
            low = int(tier["minUsage"])
            high = tier.get("maxUsage")
            high = None if high is None else int(high)
        except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
            raise TierError(
                f"pricingTiers[{i}] needs tier, pricePerIdentification, minUsage and maxUsage"
            ) from exc
        if not price.is_finite() or price < 0:  # NaN first: comparing it raises
            raise TierError(f"pricingTiers[{i}].pricePerIdentification must be >= 0")
        if high is not None and high <= low:
            raise TierError(f"pricingTiers[{i}].maxUsage must be above minUsage")
        out.append(
            {
                "tier": str(tier.get("tier") or f"Tier {i + 1}"),
                "pricePerIdentification": str(price),
                "minUsage": low,
                "maxUsage": high,
            }
        )
    if out[0]["minUsage"] != 0:
        raise TierError("the first pricing tier must start at minUsage 0")
    for prev, nxt in zip(out, out[1:], strict=False):
        if prev["maxUsage"] != nxt["minUsage"]:
            raise TierError("pricing tiers must be contiguous (each maxUsage is the next minUsage)")
    if out[-1]["maxUsage"] is not None:
        raise TierError("the top pricing tier must be open (maxUsage null)")
    return out


def pricing_tiers(tiers: Any) -> list[PricingTier]:
    """Return stored (or given) pricing tiers as PricingTier bands, validated and sorted."""
    return [
        PricingTier(t["tier"], Decimal(t["pricePerIdentification"]), t["minUsage"], t["maxUsage"])
        for t in normalize_tiers(tiers)
    ]


def graduated_cost(usage: int, tiers: Any) -> tuple[Decimal, list[CostLine]]:
    """Price usage unit by unit in the band each unit falls in; return total and breakdown.

    Both are exact; cents() rounds them where they are shown.
    """
    total = Decimal(0)
    breakdown = []
    for tier in pricing_tiers(tiers):
        low, high = tier.min_usage, tier.max_usage
        upper = usage if high is None else min(usage, high)
        units = max(0, upper - low)
        amount = tier.price_per_identification * units
        total += amount
        breakdown.append(CostLine(tier.tier, units, tier.price_per_identification, amount))
    return total, breakdown


def _in_cents(breakdown: list[CostLine]) -> list[CostLine]:
    return [replace(line, amount=cents(line.amount)) for line in breakdown]


def shown_terms(terms: Terms) -> PeriodTerms:
    """Return terms as the pages and the API show them (tiers as PricingTier bands)."""
    return PeriodTerms(
        terms.effective_from,
        terms.credit_pool_total,
        terms.billing_day_of_month,
        pricing_tiers(terms.pricing_tiers),
    )


def calculate(partner: Partner, usage: int) -> Cost:
    """Return the cost of usage identifications under the current billing period's tiers."""
    terms = current_terms(partner)
    total, breakdown = graduated_cost(usage, terms.pricing_tiers)
    return Cost(usage, cents(total), partner.currency, _in_cents(breakdown), shown_terms(terms))


def billing_info(partner: Partner) -> BillingInfo:
    """Return the billing configuration of the current billing period and the pool figures
    now, with the terms scheduled for the next period (if any)."""
    pool = metrics.pool_status(partner)
    terms = terms_for(partner, pool.billing_period_start)
    scheduled = scheduled_terms(partner)
    return BillingInfo(
        partner_id=partner.id,
        billing_mode=partner.billing_mode,
        billing_period=partner.billing_period,
        billing_day_of_month=terms.billing_day_of_month,
        billing_period_start=pool.billing_period_start,
        next_billing_date=pool.billing_period_end + timedelta(days=1),
        pricing_tiers=pricing_tiers(terms.pricing_tiers),
        currency=partner.currency,
        credit_pool_total=pool.credit_pool_total,
        credit_pool_used=pool.credit_pool_used,
        credit_pool_available=pool.credit_pool_available,
        credit_pool_allocated=pool.credit_pool_allocated,
        terms=shown_terms(terms),
        next_terms=None if scheduled is None else shown_terms(scheduled),
    )


def period_usage(partner: Partner, period: Period, through: date) -> PeriodUsage:
    """Return usage and cost of a billing period counted through a day (today or its end),
    priced with that period's terms."""
    upto = Period(period.start, min(period.end, through))
    figures = metrics.usage(partner, upto)
    identifications = metrics.identifications_of(figures.by_type)
    terms = terms_for(partner, period.start)
    cost, breakdown = graduated_cost(identifications, terms.pricing_tiers)
    return PeriodUsage(
        billing_period_start=period.start,
        billing_period_end=period.end,
        identifications=identifications,
        credits_used=identifications,
        total_quantity=figures.total_quantity,
        total_events=figures.total_events,
        estimated_cost=cents(cost),
        currency=partner.currency,
        cost_breakdown=_in_cents(breakdown),
        terms=shown_terms(terms),
    )


def _fields_of(result: PeriodUsage) -> dict[str, Any]:
    return {f.name: getattr(result, f.name) for f in fields(PeriodUsage)}


# --- the one projection (spec §4, projectionMethod) --------------------------------------

ProjectionMethod = Literal["last_7_complete_days", "period_average", "insufficient_data"]
# The projection averages at most this many complete days (the last ones).
PROJECTION_WINDOW_DAYS = 7


def _half_up(value: Fraction) -> int:
    """Round a non-negative exact quotient to a whole number, half up."""
    return (2 * value.numerator + value.denominator) // (2 * value.denominator)


@dataclass(frozen=True, slots=True)
class Projection:
    """The current billing period projected from the average of its last complete days.

    A complete day is a day of the billing period before today (in the partner's
    timezone). The rate is the identifications (= credits, one per identification) of the
    window divided by its days, kept exact. Each complete day counts what it used; today
    and every day after it count the rate, except that today counts what it has already
    used when that is more (a projection never falls below what was used). So

        projected = complete days' credits + max(today so far, rate) + rate x days after today

    rounded half up to a whole identification once, at the end.
    """

    method: ProjectionMethod
    period: Period  # the current billing period; the pool resets the day after its end
    today: date
    window: Period | None  # the complete days averaged (None: insufficient_data)
    window_credits: int  # identifications in the window
    complete_credits: int  # identifications of the period's complete days
    used: int  # identifications so far, today included
    pool_total: int
    rate: Fraction | None  # exact credits per day of the window
    projected_identifications: int | None  # the whole period; None: insufficient_data
    projected_cost: Decimal | None  # graduated cost of projected_identifications, in cents
    runout_date: date | None  # set only when the pool runs out before it resets
    unused_at_reset: int | None  # set only when a projected pool outlasts the period

    @property
    def daily_rate(self) -> Decimal | None:
        """Return the rate as shown: credits per day rounded half up to 2 places."""
        return None if self.rate is None else Decimal(_half_up(self.rate * 100)) / 100

    @property
    def reset_date(self) -> date:
        """Return the day a fresh pool starts (the day after the billing period)."""
        return self.period.end + timedelta(days=1)

    @property
    def remaining(self) -> int:
        """Return what is left in the pool now (negative when overdrawn)."""
        return self.pool_total - self.used

    @property
    def exhausted(self) -> bool:
        """Tell whether the pool is already used up."""
        return self.used >= self.pool_total

    def line(self) -> list[tuple[date, int]]:
        """Return the projected cumulative credits, rounded half up: at the last complete
        day, at the end of today, and at the period's end (empty for insufficient_data)."""
        if self.rate is None:
            return []
        ahead = [
            (day, _cumulative(self.complete_credits, self.used, self.rate, (day - self.today).days))
            for day in (self.today, self.period.end)
        ]
        return [(self.today - timedelta(days=1), self.complete_credits)] + [
            (day, _half_up(value)) for day, value in ahead
        ]


def _cumulative(complete: int, used: int, rate: Fraction, days_after_today: int) -> Fraction:
    """Return complete days' credits + max(today so far, rate) + rate x days after today."""
    return complete + max(Fraction(used - complete), rate) + rate * days_after_today


def projection(partner: Partner, today: date | None = None) -> Projection:
    """Project the current billing period: the one method every page, alert and answer uses.

    last_7_complete_days when the period has at least 7 complete days, period_average
    (all of its complete days) when it has 1-6, insufficient_data on its first day.
    """
    today = today or local_today(partner.timezone)
    bp = billing_period(partner, today)
    complete = (today - bp.start).days
    used = metrics.credits_used(partner, Period(bp.start, today))
    terms = terms_for(partner, bp.start)
    pool = terms.credit_pool_total
    if complete == 0:
        return Projection(
            method="insufficient_data",
            period=bp,
            today=today,
            window=None,
            window_credits=0,
            complete_credits=0,
            used=used,
            pool_total=pool,
            rate=None,
            projected_identifications=None,
            projected_cost=None,
            runout_date=None,
            unused_at_reset=None,
        )
    method: ProjectionMethod = (
        "last_7_complete_days" if complete >= PROJECTION_WINDOW_DAYS else "period_average"
    )
    yesterday = today - timedelta(days=1)
    window = Period(max(bp.start, today - timedelta(days=PROJECTION_WINDOW_DAYS)), yesterday)
    window_credits = metrics.credits_used(partner, window)
    complete_credits = (
        window_credits
        if window.start == bp.start
        else metrics.credits_used(partner, Period(bp.start, yesterday))
    )
    rate = Fraction(window_credits, window.days)
    exact_total = _cumulative(complete_credits, used, rate, (bp.end - today).days)
    projected = _half_up(exact_total)
    cost, _ = graduated_cost(projected, terms.pricing_tiers)
    runout: date | None = None
    unused: int | None = None
    if used < pool and exact_total >= pool:
        # The first day whose projected cumulative use reaches the pool (rate > 0 here,
        # or the total could not pass the pool that what was used has not reached).
        gap = pool - _cumulative(complete_credits, used, rate, 0)
        runout = today + timedelta(days=max(0, math.ceil(gap / rate)))
    elif used < pool:
        unused = pool - projected
    return Projection(
        method=method,
        period=bp,
        today=today,
        window=window,
        window_credits=window_credits,
        complete_credits=complete_credits,
        used=used,
        pool_total=pool,
        rate=rate,
        projected_identifications=projected,
        projected_cost=cents(cost),
        runout_date=runout,
        unused_at_reset=unused,
    )


def current_usage(partner: Partner, today: date | None = None) -> CurrentUsage:
    """Return the current billing period's usage and cost, and its projection()."""
    ahead = projection(partner, today)
    bp = ahead.period
    out = period_usage(partner, bp, ahead.today)
    return CurrentUsage(
        **_fields_of(out),
        days_elapsed=(ahead.today - bp.start).days + 1,
        days_in_period=bp.days,
        projection=ahead,
    )


def _all_periods(partner: Partner) -> list[Period]:
    """Return the billing periods from the first activity (or creation) to now, oldest first."""
    today = local_today(partner.timezone)
    first = metrics.first_activity_day(partner) or today
    created = local_date_of(partner.created_at, partner.timezone)
    first = min(first, created, today)
    billing_period(partner, today)  # validates settings
    return billing_periods(partner, first, today)


def _period_rows(partner: Partner, periods: list[Period]) -> list[BillingPeriodRow]:
    today = local_today(partner.timezone)
    anchor = billing_period(partner, today)
    return [
        BillingPeriodRow(
            **_fields_of(period_usage(partner, period, today)), is_current=period == anchor
        )
        for period in periods
    ]


def past_periods(partner: Partner, limit: int = 36) -> list[BillingPeriodRow]:
    """Return the billing periods from the first activity (or creation) to now, newest first."""
    return _period_rows(partner, list(reversed(_all_periods(partner)[-limit:])))


def periods_page(partner: Partner, page: int, page_size: int) -> tuple[list[BillingPeriodRow], int]:
    """Return one page of past_periods() without a limit (newest first), and how many exist."""
    newest_first = list(reversed(_all_periods(partner)))
    chosen = newest_first[(page - 1) * page_size : page * page_size]
    return _period_rows(partner, chosen), len(newest_first)
