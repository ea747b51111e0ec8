"""Overview page: every headline metric for a period, against the period before, with charts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, render_template, url_for

from .. import billing, charts, metrics
from ..display import fmt_day, plural
from ..models import Partner
from ..periods import Period, current_billing_period, local_today
from .dashboard import current_partner
from .kpis import OVERVIEW_KPIS
from .period import resolve_range

bp = Blueprint("overview", __name__)


def _billing_period_cards(partner: Partner, shown: Period) -> tuple[dict[str, Any], dict[str, str]]:
    """Return the cost card of the billing period so far, and the reset note of the credits
    remaining card when the period shown ends in the current billing period."""
    today = local_today(partner.timezone)
    bp = current_billing_period(partner)
    usage = billing.period_usage(partner, bp, today)
    cost = {
        "amount": usage.estimated_cost,
        "currency": usage.currency,
        "period": Period(bp.start, today),
        "so_far": today < bp.end,
        "pool": usage.terms.credit_pool_total,  # this billing period's pool (its terms)
    }
    notes = {}
    if bp.start <= shown.end and shown.end >= today:
        reset = bp.end + timedelta(days=1)
        days = (reset - today).days
        notes["credits_remaining"] = (
            f"The pool resets on {fmt_day(reset)}, in {plural(days, 'day')}."
        )
    return cost, notes


@bp.get("/")
def index() -> str:
    """Show the KPI cards and charts for the period in the URL."""
    partner = current_partner()
    state = resolve_range(partner)
    period = state.period
    comparison = metrics.summary_with_comparison(partner, period)
    previous_period = comparison.previous_period
    cost, notes = _billing_period_cards(partner, period)
    has_orgs = (
        metrics.organization_counts(partner, local_today(partner.timezone)).total_organizations > 0
    )
    has_events = metrics.data_freshness(partner) is not None
    figures = {}
    usage = metrics.usage(partner, period)
    top = metrics.top_organizations(partner, period, limit=10)
    if has_events:
        series = metrics.timeseries(partner, period, state.granularity)
        previous = metrics.timeseries(partner, previous_period, state.granularity)
        if any(p.events for p in series) or any(p.events for p in previous):
            figures["identifications"] = charts.series_over_time(
                series, previous, period, previous_period, state.granularity
            )
        figures["cumulative"] = charts.cumulative_credits(
            metrics.cumulative_credits(partner, period)
        )
        if any(p.events for p in series):
            figures["activity"] = charts.organizations_with_activity(
                series, state.granularity, period
            )
        if usage.by_type:
            figures["types"] = charts.usage_by_type(usage.by_type)
        if top:
            links = [
                url_for("dashboard.organizations.detail", org_id=t.organization_id, **state.args)
                for t in top
            ]
            figures["top"] = charts.top_organizations(top, links)
    return render_template(
        "overview/index.html",
        partner=partner,
        state=state,
        comparison=comparison,
        kpis=OVERVIEW_KPIS,
        cost=cost,
        notes=notes,
        figures=figures,
        usage=usage,
        top=top,
        has_orgs=has_orgs,
        has_events=has_events,
    )
