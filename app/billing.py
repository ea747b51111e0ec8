"""Pricing tiers, graduated cost, billing periods, projections and the pool run-out forecast."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from . import metrics
from .models import Partner
from .periods import Period, billing_period, billing_periods, local_date_of, local_today

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


@dataclass(frozen=True, slots=True)
class CurrentUsage(PeriodUsage):
    """The current billing period's usage and cost, and the whole period at today's pace."""

    days_elapsed: int
    days_in_period: int
    projected_identifications: int
    projected_cost: Decimal


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


def calculate(partner: Partner, usage: int) -> Cost:
    """Return the cost of usage identifications under the partner's tiers."""
    total, breakdown = graduated_cost(usage, partner.pricing_tiers)
    return Cost(usage, cents(total), partner.currency, _in_cents(breakdown))


def billing_info(partner: Partner) -> BillingInfo:
    """Return the billing configuration and the pool figures now."""
    pool = metrics.pool_status(partner)
    return BillingInfo(
        partner_id=partner.id,
        billing_mode=partner.billing_mode,
        billing_period=partner.billing_period,
        billing_day_of_month=partner.billing_day_of_month,
        billing_period_start=pool.billing_period_start,
        next_billing_date=pool.billing_period_end + timedelta(days=1),
        pricing_tiers=pricing_tiers(partner.pricing_tiers),
        currency=partner.currency,
        credit_pool_total=pool.credit_pool_total,
        credit_pool_used=pool.credit_pool_used,
        credit_pool_available=pool.credit_pool_available,
        credit_pool_allocated=pool.credit_pool_allocated,
    )


def period_usage(partner: Partner, period: Period, through: date) -> PeriodUsage:
    """Return usage and cost of a billing period counted through a day (today or its end)."""
    upto = Period(period.start, min(period.end, through))
    figures = metrics.usage(partner, upto)
    identifications = metrics.identifications_of(figures.by_type)
    cost, breakdown = graduated_cost(identifications, partner.pricing_tiers)
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
    )


def _fields_of(result: PeriodUsage) -> dict[str, Any]:
    return {f.name: getattr(result, f.name) for f in fields(PeriodUsage)}


def current_usage(partner: Partner) -> CurrentUsage:
    """Return the current billing period's usage, cost, and projection at the daily rate.

    The projection extends the average daily identifications so far (today counted as a
    whole day) over the whole period, rounded half up to a whole identification.
    """
    today = local_today(partner.timezone)
    bp = billing_period(partner, today)
    out = period_usage(partner, bp, today)
    elapsed = (today - bp.start).days + 1
    projected = (Decimal(out.identifications) * bp.days / elapsed).quantize(
        Decimal(1), rounding=ROUND_HALF_UP
    )
    projected_cost, _ = graduated_cost(int(projected), partner.pricing_tiers)
    return CurrentUsage(
        **_fields_of(out),
        days_elapsed=elapsed,
        days_in_period=bp.days,
        projected_identifications=int(projected),
        projected_cost=cents(projected_cost),
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


@dataclass(frozen=True, slots=True)
class Forecast:
    """How fast the pool burns and when it would run out at that pace."""

    pool_total: int
    used: int
    remaining: int
    daily_rate: float
    days_counted: int
    runout_date: date | None
    runs_out_this_period: bool
    period: Period
    method: str


def forecast_runout(partner: Partner, window_days: int = 7) -> Forecast:
    """Project the day the pool runs out from the average daily burn of the last days.

    The rate is the credits used over the last window_days days (today included, and no
    earlier than the billing period's first day) divided by those days.
    """
    today = local_today(partner.timezone)
    bp = billing_period(partner, today)
    used = metrics.credits_used(partner, Period(bp.start, today))
    start = max(bp.start, today - timedelta(days=window_days - 1))
    window = Period(start, today)
    rate = metrics.credits_used(partner, window) / window.days
    remaining = partner.credit_pool_total - used
    runout: date | None
    if remaining <= 0:
        runout = today
    elif rate > 0:
        runout = today + timedelta(days=math.ceil(remaining / rate))
    else:
        runout = None
    return Forecast(
        pool_total=partner.credit_pool_total,
        used=used,
        remaining=remaining,
        daily_rate=round(rate, 2),
        days_counted=window.days,
        runout_date=runout,
        runs_out_this_period=runout is not None and runout <= bp.end,
        period=bp,
        method=(
            f"average credits per day over the last {window.days} day(s) "
            f"({window.start.isoformat()} to {window.end.isoformat()}), "
            "extended until the remaining pool is used up"
        ),
    )
