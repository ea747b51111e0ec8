"""Overview page: every headline metric for a period, against the period before, with charts."""

from __future__ import annotations

from flask import Blueprint, render_template, url_for

from .. import charts, metrics
from ..periods import local_today
from .dashboard import current_partner
from .kpis import OVERVIEW_KPIS
from .period import resolve_range

bp = Blueprint("overview", __name__)


@bp.get("/")
def index() -> str:
    """Show the KPI cards and charts for the period in the URL."""
    partner = current_partner()
    state = resolve_range(partner)
    period = state.period
    comparison = metrics.summary_with_comparison(partner, period)
    previous_period = comparison.previous_period
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
        figures["identifications"] = charts.series_over_time(
            series, previous, period, previous_period, state.granularity
        )
        figures["cumulative"] = charts.cumulative_credits(
            metrics.cumulative_credits(partner, period), partner.credit_pool_total
        )
        figures["activity"] = charts.organizations_with_activity(series, state.granularity)
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
        figures=figures,
        usage=usage,
        top=top,
        has_orgs=has_orgs,
        has_events=has_events,
    )
