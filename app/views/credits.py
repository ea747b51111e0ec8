"""Credits: the pool, its burn rate, the projected run-out date, and who is burning it."""

from __future__ import annotations

from flask import Blueprint, render_template

from .. import billing, charts, metrics
from ..levels import WARN_AT
from ..periods import Period
from .period import partner_keeping_range

bp = Blueprint("credits", __name__)


@bp.get("/credits")
def index() -> str:
    """Show the current billing period's pool figures and its projection."""
    partner = partner_keeping_range()
    pool = metrics.pool_status(partner)
    ahead = billing.projection(partner)
    window = ahead.window  # the complete days the burn rate averages (None: none yet)
    window_total = ahead.window_credits
    # Each organization with its share (%) of the credits used in the window.
    drivers = [
        (item, round(item.credits_used * 100 / window_total, 1) if window_total else None)
        for item in (metrics.top_organizations(partner, window, limit=10) if window else [])
    ]
    so_far = metrics.cumulative_credits(partner, Period(ahead.period.start, ahead.today))
    figure = None
    if metrics.data_freshness(partner) is not None:
        figure = charts.pool_burn(so_far, ahead)
    return render_template(
        "credits/index.html",
        partner=partner,
        pool=pool,
        projection=ahead,
        window=window,
        window_total=window_total,
        drivers=drivers,
        figure=figure,
        over=metrics.organizations_over_allocation(partner),
        share=WARN_AT,
        unallocated=pool.credit_pool_total - pool.credit_pool_allocated,
    )
