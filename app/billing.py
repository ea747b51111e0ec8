"""Pricing tiers, graduated cost, billing periods, projections and the pool run-out forecast."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from . import metrics
from .models import Partner
from .periods import Period, local_date_of, local_today

CENT = Decimal("0.01")


class TierError(ValueError):
    """Pricing tiers that do not form contiguous, ascending bands starting at 0."""


def money(value: Decimal) -> float:
    """Round a Decimal amount to cents (half up) for the JSON answer."""
    return float(value.quantize(CENT, rounding=ROUND_HALF_UP))


def normalize_tiers(tiers: Any) -> list[dict[str, Any]]:
    """Validate pricing tiers and return them sorted, with prices as decimal strings."""
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


def tiers_json(partner: Partner) -> list[dict[str, Any]]:
    """Return the partner's tiers as the API shows them (prices as numbers)."""
    return [
        {
            "tier": t["tier"],
            "pricePerIdentification": float(Decimal(t["pricePerIdentification"])),
            "minUsage": t["minUsage"],
            "maxUsage": t["maxUsage"],
        }
        for t in normalize_tiers(partner.pricing_tiers)
    ]


def graduated_cost(usage: int, tiers: list[dict[str, Any]]) -> tuple[Decimal, list[dict[str, Any]]]:
    """Price usage unit by unit in the band each unit falls in; return total and breakdown."""
    total = Decimal(0)
    breakdown = []
    for tier in normalize_tiers(tiers):
        low, high = tier["minUsage"], tier["maxUsage"]
        upper = usage if high is None else min(usage, high)
        units = max(0, upper - low)
        price = Decimal(tier["pricePerIdentification"])
        amount = price * units
        total += amount
        breakdown.append(
            {
                "tier": tier["tier"],
                "units": units,
                "pricePerIdentification": price,
                "amount": amount,
            }
        )
    return total, breakdown


def breakdown_json(breakdown: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return a cost breakdown with money rounded for JSON."""
    return [
        {
            "tier": b["tier"],
            "units": b["units"],
            "pricePerIdentification": float(b["pricePerIdentification"]),
            "amount": money(b["amount"]),
        }
        for b in breakdown
    ]


def calculate(partner: Partner, usage: int) -> dict[str, Any]:
    """Return the cost of usage identifications under the partner's tiers."""
    total, breakdown = graduated_cost(usage, partner.pricing_tiers)
    return {
        "usage": usage,
        "totalCost": money(total),
        "currency": partner.currency,
        "breakdown": breakdown_json(breakdown),
    }


def billing_info(partner: Partner) -> dict[str, Any]:
    """Return the billing configuration and the pool figures now."""
    pool = metrics.pool_status(partner)
    bp_end: date = pool["billingPeriodEnd"]
    return {
        "partnerId": partner.id,
        "billingMode": partner.billing_mode,
        "billingPeriod": partner.billing_period,
        "billingDayOfMonth": partner.billing_day_of_month,
        "billingPeriodStart": pool["billingPeriodStart"].isoformat(),
        "nextBillingDate": (bp_end + timedelta(days=1)).isoformat(),
        "pricingTiers": tiers_json(partner),
        "currency": partner.currency,
        "creditPoolTotal": pool["creditPoolTotal"],
        "creditPoolUsed": pool["creditPoolUsed"],
        "creditPoolAvailable": pool["creditPoolAvailable"],
        "creditPoolAllocated": pool["creditPoolAllocated"],
    }


def period_usage(partner: Partner, period: Period, through: date) -> dict[str, Any]:
    """Return usage and cost of a billing period counted through a day (today or its end)."""
    upto = Period(period.start, min(period.end, through))
    figures = metrics.usage(partner, upto)
    identifications = metrics.identifications_of(figures["byType"])
    cost, breakdown = graduated_cost(identifications, partner.pricing_tiers)
    return {
        "billingPeriodStart": period.start.isoformat(),
        "billingPeriodEnd": period.end.isoformat(),
        "identifications": identifications,
        "creditsUsed": identifications,
        "totalQuantity": figures["totalQuantity"],
        "totalEvents": figures["totalEvents"],
        "estimatedCost": money(cost),
        "currency": partner.currency,
        "costBreakdown": breakdown_json(breakdown),
    }


def current_usage(partner: Partner) -> dict[str, Any]:
    """Return the current billing period's usage, cost, and projection at the daily rate.

    The projection extends the average daily identifications so far (today counted as a
    whole day) over the whole period, rounded half up to a whole identification.
    """
    today = local_today(partner.timezone)
    bp = metrics.billing_period(partner, today)
    out = period_usage(partner, bp, today)
    elapsed = (today - bp.start).days + 1
    projected = (Decimal(out["identifications"]) * bp.days / elapsed).quantize(
        Decimal(1), rounding=ROUND_HALF_UP
    )
    projected_cost, _ = graduated_cost(int(projected), partner.pricing_tiers)
    out["daysElapsed"] = elapsed
    out["daysInPeriod"] = bp.days
    out["projectedIdentifications"] = int(projected)
    out["projectedCost"] = money(projected_cost)
    return out


def _all_periods(partner: Partner) -> list[Period]:
    """Return the billing periods from the first activity (or creation) to now, oldest first."""
    today = local_today(partner.timezone)
    first = metrics.first_activity_day(partner) or today
    created = local_date_of(partner.created_at, partner.timezone)
    first = min(first, created, today)
    metrics.billing_period(partner, today)  # validates settings
    return metrics.billing_periods(partner, first, today)


def _period_rows(partner: Partner, periods: list[Period]) -> list[dict[str, Any]]:
    today = local_today(partner.timezone)
    anchor = metrics.billing_period(partner, today)
    rows = []
    for period in periods:
        row = period_usage(partner, period, today)
        row["isCurrent"] = period == anchor
        rows.append(row)
    return rows


def past_periods(partner: Partner, limit: int = 36) -> list[dict[str, Any]]:
    """Return the billing periods from the first activity (or creation) to now, newest first."""
    return _period_rows(partner, list(reversed(_all_periods(partner)[-limit:])))


def periods_page(partner: Partner, page: int, page_size: int) -> tuple[list[dict[str, Any]], int]:
    """Return one page of past_periods() without a limit (newest first), and how many exist."""
    newest_first = list(reversed(_all_periods(partner)))
    chosen = newest_first[(page - 1) * page_size : page * page_size]
    return _period_rows(partner, chosen), len(newest_first)


@dataclass
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
    bp = metrics.billing_period(partner, today)
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
