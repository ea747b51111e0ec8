"""Credits: the pool, its burn rate, the projected run-out date, and who is burning it."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, render_template

from .. import billing, charts, metrics
from ..periods import Period, local_today
from .dashboard import current_partner
from .period import carry_range

bp = Blueprint("credits", __name__)

OVER_ALLOCATION_SHARE = 80


@bp.get("/credits")
def index() -> str:
    """Show the current billing period's pool figures and forecast."""
    partner = current_partner()
    carry_range(partner)
    pool = metrics.pool_status(partner)
    forecast = billing.forecast_runout(partner)
    today = local_today(partner.timezone)
    window = Period(today - timedelta(days=forecast.days_counted - 1), today)
    window_total = metrics.credits_used(partner, window)
    # Each organization with its share (%) of the credits used in the window.
    drivers = [
        (item, round(item.credits_used * 100 / window_total, 1) if window_total else None)
        for item in metrics.top_organizations(partner, window, limit=10)
    ]
    so_far = metrics.cumulative_credits(partner, Period(forecast.period.start, today))
    figure = None
    if metrics.data_freshness(partner) is not None:
        figure = charts.pool_burn(
            so_far, partner.credit_pool_total, forecast.period, today, forecast.daily_rate
        )
    return render_template(
        "credits/index.html",
        partner=partner,
        pool=pool,
        forecast=forecast,
        window=window,
        window_total=window_total,
        drivers=drivers,
        figure=figure,
        today=today,
        over=metrics.organizations_over_allocation(partner, OVER_ALLOCATION_SHARE),
        share=OVER_ALLOCATION_SHARE,
        unallocated=pool.credit_pool_total - pool.credit_pool_allocated,
    )
