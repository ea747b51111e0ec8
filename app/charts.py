"""Plotly figures built from metrics results; the pages embed them as JSON for charts.js.

Each figure is written as the plain {"data": [...], "layout": {...}} that plotly.js reads,
not through plotly.graph_objects: validating every property cost ~45 ms of CPU per
overview page. tests/test_charts.py keeps plotly's validator as the judge of each figure.
Values are JSON-native (dates as ISO strings, money as floats) because the templates embed
the figures with |tojson as they are.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from html import escape
from typing import TYPE_CHECKING, Any

from .display import event_label, fmt_day, tier_band
from .periods import Period, bucket_length

if TYPE_CHECKING:
    from .billing import BillingPeriodRow, CostLine, PricingTier, Projection
    from .metrics import ByType, CreditPoint, OrgBreakdownItem, SeriesPoint

BLUE = "#2563eb"
BLUE_FILL = "rgba(37, 99, 235, 0.10)"
GREY = "#94a3b8"
TEAL = "#0d9488"
AMBER = "#d97706"
RED = "#dc2626"
INK = "#1e293b"
GRID = "#e2e8f0"
FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'
# One date format on every axis and in every tooltip: '3 Nov 2025', as the pages write dates.
DATE_TICKS = "%-d %b %Y"
DAY_MS = 86_400_000


def label(text: str | None) -> str:
    """Escape user text for a chart label: Plotly reads <b>, <a> and entities in labels."""
    return escape(text or "", quote=False)


def _layout(height: int = 300, **extra: Any) -> dict[str, Any]:
    # No "template" key: plotly.js applies none unless told (plotly.py's default look is
    # a Python-side template, which these figures never used).
    layout: dict[str, Any] = {
        "height": height,
        "autosize": True,
        "margin": {"l": 56, "r": 16, "t": 12, "b": 40},
        "font": {"family": FONT, "size": 12, "color": INK},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "hovermode": "x unified",
        "showlegend": False,
        "xaxis": {"gridcolor": GRID, "linecolor": GRID, "zeroline": False, "fixedrange": True},
        "yaxis": {
            "gridcolor": GRID,
            "zeroline": False,
            "rangemode": "tozero",
            "fixedrange": True,
            "separatethousands": True,
            "tickformat": ",d",
        },
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
        "separators": ".,",
    }
    layout.update(extra)
    return layout


def _legend_layout(left: int = 64, **extra: Any) -> dict[str, Any]:
    """Return _layout() with the legend shown, and room above the plot for it."""
    return _layout(showlegend=True, margin={"l": left, "r": 16, "t": 36, "b": 40}, **extra)


def _figure(data: list[dict[str, Any]], layout: dict[str, Any]) -> dict[str, Any]:
    return {"data": data, "layout": layout}


def _x_range(period: Period) -> list[str]:
    """Return a date-axis range covering the period with half a day on each side."""
    return [
        (period.start - timedelta(days=1)).isoformat() + " 12:00",
        period.end.isoformat() + " 12:00",
    ]


def _bucket_axis(period: Period) -> dict[str, Any]:
    """Return the date axis of bars drawn over their buckets' days (_bucket_centres): from
    the first day's start to the last day's end."""
    axis = _date_axis()
    axis["range"] = [f"{period.start} 00:00", f"{period.end + timedelta(days=1)} 00:00"]
    return axis


def _date_axis(period: Period | None = None) -> dict[str, Any]:
    """Return the date x-axis of the time charts (over the period, when given)."""
    axis: dict[str, Any] = {
        "type": "date",
        "tickformat": DATE_TICKS,
        "gridcolor": GRID,
        "linecolor": GRID,
        "fixedrange": True,
        # Tick labels slanted on a narrow chart take the room they need below the plot.
        "automargin": True,
    }
    if period is not None:
        axis["range"] = _x_range(period)
    return axis


def _span(period: Period) -> str:
    return f"{fmt_day(period.start)} – {fmt_day(period.end)}"


def _bucket_text(point: SeriesPoint, granularity: str) -> str:
    """Name a bucket for a tooltip: the day, 'week of 3 Nov 2025' or 'Nov 2025', and say
    when it is partial ('partial: 3 of 7 days')."""
    if granularity == "day":
        text = fmt_day(point.date)
    elif granularity == "week":
        text = f"week of {fmt_day(point.date)}"
    else:
        text = f"{point.date:%b %Y}"
    if point.partial:
        whole = bucket_length(point.date, granularity)
        text += " (today, so far)" if whole == 1 else f" (partial: {point.days} of {whole} days)"
    return text


def _change_text(current: int, previous: int | None) -> str:
    if previous is None:
        return "no bucket to compare"
    if previous == 0:
        return "n/a (previous 0)" if current else "±0 %"
    percent = (current - previous) * 100 / previous
    if percent == 0:
        return "±0 %"
    return f"{'+' if percent > 0 else '−'}{abs(percent):,.1f} %"


def _bucket_centres(series: list[SeriesPoint], period: Period) -> tuple[list[str], list[int]]:
    """Return each bucket's middle (an ISO moment) and a bar width (ms) of 85 % of its days,
    so that a week's bar spans its week and a clipped bucket's bar is narrower."""
    starts = [p.date for p in series]
    ends = [*starts[1:], period.end + timedelta(days=1)][: len(starts)]
    centres, widths = [], []
    for start, end in zip(starts, ends, strict=True):
        days = (end - start).days
        middle = datetime.combine(start, time()) + timedelta(hours=12 * days)
        centres.append(middle.isoformat(sep=" ", timespec="minutes"))
        widths.append(int(days * DAY_MS * 0.85))
    return centres, widths


def count_axis(values: list[int]) -> dict[str, Any]:
    """Return a y-axis of whole counts: ticks on whole numbers even when every value is
    small (plotly would put 0, 0.2, 0.4 ... and write each as 0 or 1)."""
    axis = dict(_layout()["yaxis"])
    if max(values, default=0) < 5:
        axis.update(dtick=1, range=[0, max(max(values, default=0), 1) * 1.1])
    return axis


def series_over_time(
    series: list[SeriesPoint],
    previous: list[SeriesPoint],
    period: Period,
    previous_period: Period,
    granularity: str,
    key: str = "identifications",
    name: str = "Identifications",
) -> dict[str, Any]:
    """Return bars of key per bucket, with the comparable period's as a dotted line.

    The previous period is aligned by bucket index: its first bucket is drawn over the
    current first bucket, and so on. A partial bucket (clipped by the period, or still
    running) is drawn hatched and lighter. One tooltip per bucket gives the value, the
    previous period's bucket and the change.
    """
    before = [getattr(p, key) for p in previous]
    values = [getattr(p, key) for p in series]
    x, widths = _bucket_centres(series, period)
    custom = []
    for i, point in enumerate(series):
        earlier = previous[i] if i < len(previous) else None
        custom.append(
            [
                _bucket_text(point, granularity),
                f"{before[i]:,}" if earlier else "—",
                _bucket_text(earlier, granularity) if earlier else "",
                _change_text(values[i], before[i] if earlier else None),
            ]
        )
    now = {
        "type": "bar",
        "x": x,
        "y": values,
        "name": f"{name} ({_span(period)})",
        "width": widths,
        "marker": {
            "color": BLUE,
            "opacity": [0.45 if p.partial else 1 for p in series],
            "pattern": {"shape": ["/" if p.partial else "" for p in series], "fgcolor": INK},
        },
        "customdata": custom,
        "hovertemplate": f"<b>%{{customdata[0]}}</b><br>{name}: %{{y:,}}"
        "<br>Previous period, %{customdata[2]}: %{customdata[1]}"
        "<br>Change: %{customdata[3]}<extra></extra>",
    }
    shown_before = before[: len(series)]
    line = {
        "type": "scatter",
        "x": x[: len(shown_before)],
        "y": shown_before,
        "name": f"Previous period ({_span(previous_period)})",
        "mode": "lines+markers",
        "line": {"color": GREY, "width": 2, "dash": "dot"},
        "marker": {"color": GREY, "size": 4},
        "hoverinfo": "skip",
    }
    return _figure(
        [now, line],
        _legend_layout(
            left=56,
            hovermode="closest",
            xaxis=_bucket_axis(period),
            yaxis=count_axis(values + shown_before),
        ),
    )


def cumulative_credits(points: list[CreditPoint]) -> dict[str, Any]:
    """Return the credits used so far in each day's billing period against that period's
    pool (the pool of each period's terms: it steps where the terms changed)."""
    x = [p.date.isoformat() for p in points]
    used = {
        "type": "scatter",
        "x": x,
        "y": [p.cumulative_credits_used for p in points],
        "name": "Credits used (cumulative)",
        "mode": "lines",
        "line": {"color": BLUE, "width": 2.5, "shape": "hv"},
        "fill": "tozeroy",
        "fillcolor": BLUE_FILL,
        "hovertemplate": "%{x|%-d %b %Y}: %{y:,} used this billing period<extra></extra>",
    }
    pools = [p.credit_pool_total for p in points]
    distinct = sorted(set(pools))
    limit = {
        "type": "scatter",
        "x": list(x),
        "y": pools,
        "name": "Pool of each billing period"
        if len(distinct) > 1
        else f"Pool ({distinct[0]:,} per billing period)"
        if distinct
        else "Pool",
        "mode": "lines",
        "line": {"color": RED, "width": 1.5, "dash": "dash", "shape": "hv"},
        "hovertemplate": "Pool: %{y:,}<extra></extra>",
    }
    return _figure(
        [used, limit],
        _legend_layout(hovermode="x unified", xaxis=_date_axis()),
    )


def organizations_with_activity(
    series: list[SeriesPoint], granularity: str, period: Period
) -> dict[str, Any]:
    """Return a bar per bucket: how many organizations had at least one event."""
    values = [p.organizations_with_activity for p in series]
    centres, widths = _bucket_centres(series, period)
    bars = {
        "type": "bar",
        "x": centres,
        "y": values,
        "name": "Organizations with activity",
        "width": widths,
        "marker": {
            "color": TEAL,
            "opacity": [0.45 if p.partial else 1 for p in series],
            "pattern": {"shape": ["/" if p.partial else "" for p in series], "fgcolor": INK},
        },
        "customdata": [[_bucket_text(p, granularity)] for p in series],
        "hovertemplate": "<b>%{customdata[0]}</b><br>%{y:,} organizations with activity"
        "<extra></extra>",
    }
    return _figure(
        [bars],
        _layout(
            hovermode="closest",
            xaxis=_bucket_axis(period),
            yaxis=count_axis(values),
        ),
    )


def usage_by_type(by_type: ByType) -> dict[str, Any]:
    """Return a horizontal bar of quantity per event type, largest on top."""
    items = sorted(by_type.items(), key=lambda kv: (kv[1].quantity, kv[0]))
    return _horizontal_bars(
        "Quantity",
        [v.quantity for _k, v in items],
        [label(event_label(k)) for k, _v in items],
        color=[BLUE if k == "identification" else GREY for k, _v in items],
        customdata=[[label(event_label(k)), v.events] for k, v in items],
        hovertemplate="%{customdata[0]}: quantity %{x:,} in %{customdata[1]:,} events"
        "<extra></extra>",
        height=max(160, 48 * len(items) + 60),
        left=120,
    )


def top_organizations(items: list[OrgBreakdownItem], links: list[str]) -> dict[str, Any]:
    """Return a horizontal bar of identifications per organization; a click opens one.

    Rows are placed by position, not by name, so two organizations with the same name
    keep their own bars.
    """
    rows = list(reversed(items))
    hrefs = list(reversed(links))
    return _horizontal_bars(
        "Identifications",
        [i.identifications for i in rows],
        [label(_short(i.name)) for i in rows],
        color=BLUE,
        customdata=[[label(i.name), href] for i, href in zip(rows, hrefs, strict=True)],
        hovertemplate="%{customdata[0]}: %{x:,} identifications<extra></extra>",
        height=max(180, 30 * len(rows) + 60),
        left=160,
    )


def _horizontal_bars(
    name: str,
    values: list[int],
    names: list[str],
    *,
    color: str | list[str],
    customdata: list[list[Any]],
    hovertemplate: str,
    height: int,
    left: int,
) -> dict[str, Any]:
    """Return one horizontal bar per value, bottom up, each named on the y axis by position;
    name is the series' (the heading of its "Show data" column, app/chart_tables.py)."""
    bars = {
        "type": "bar",
        "name": name,
        "y": list(range(len(values))),
        "x": values,
        "orientation": "h",
        "marker": {"color": color},
        "text": [f"{v:,}" for v in values],
        "textposition": "auto",
        "textangle": 0,
        "customdata": customdata,
        "hovertemplate": hovertemplate,
    }
    return _figure(
        [bars],
        _layout(
            height=height,
            hovermode="closest",
            margin={"l": left, "r": 16, "t": 8, "b": 32},
            yaxis={
                "tickmode": "array",
                "tickvals": list(range(len(values))),
                "ticktext": names,
                "fixedrange": True,
                # A name longer than the margin widens it instead of being cut at the edge.
                "automargin": True,
            },
            xaxis={
                "gridcolor": GRID,
                "rangemode": "tozero",
                "fixedrange": True,
                "tickformat": ",d",
                "tickangle": 0,
                "nticks": 4,
            },
        ),
    )


def _short(name: str, limit: int = 24) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def pool_burn(points: list[CreditPoint], projection: Projection) -> dict[str, Any]:
    """Return this billing period's cumulative use, the pool, and the projection ahead.

    The projection line (billing.Projection.line) runs from the last complete day through
    today to the period's end; it is left out when there is no complete day yet.
    """
    billing = projection.period
    pool = projection.pool_total
    used = {
        "type": "scatter",
        "x": [p.date.isoformat() for p in points],
        "y": [p.cumulative_credits_used for p in points],
        "name": "Used so far",
        "mode": "lines",
        "line": {"color": BLUE, "width": 2.5},
        "fill": "tozeroy",
        "fillcolor": BLUE_FILL,
        "hovertemplate": "%{x|%-d %b %Y}: %{y:,} used<extra></extra>",
    }
    traces = [used]
    line = projection.line()
    if line:
        traces.append(
            {
                "type": "scatter",
                "x": [day.isoformat() for day, _ in line],
                "y": [value for _, value in line],
                "name": f"Projected ({projection.daily_rate:,.2f} per day)",
                "mode": "lines",
                "line": {"color": AMBER, "width": 2, "dash": "dot"},
                "hovertemplate": "%{x|%-d %b %Y}: %{y:,} projected<extra></extra>",
            }
        )
    limit = {
        "type": "scatter",
        "x": [billing.start.isoformat(), billing.end.isoformat()],
        "y": [pool, pool],
        "name": f"Pool ({pool:,})",
        "mode": "lines",
        "line": {"color": RED, "width": 1.5, "dash": "dash"},
        "hovertemplate": "Pool: %{y:,}<extra></extra>",
    }
    return _figure(
        [*traces, limit],
        _legend_layout(hovermode="closest", xaxis=_date_axis(billing)),
    )


def billing_periods(rows: list[BillingPeriodRow]) -> dict[str, Any]:
    """Return identifications per billing period, oldest first, with the cost in the hover."""
    ordered = list(reversed(rows))
    bars = {
        "type": "bar",
        "x": [r.billing_period_start.isoformat() for r in ordered],
        "y": [r.identifications for r in ordered],
        "name": "Identifications",
        "marker": {"color": [AMBER if r.is_current else BLUE for r in ordered]},
        "customdata": [
            [
                f"{fmt_day(r.billing_period_start)} – {fmt_day(r.billing_period_end)}",
                f"{float(r.estimated_cost):,.2f} {r.currency}",
            ]
            for r in ordered
        ],
        "hovertemplate": "%{customdata[0]}: %{y:,} identifications, "
        "%{customdata[1]}<extra></extra>",
    }
    return _figure(
        [bars],
        _layout(
            hovermode="closest",
            bargap=0.3,
            xaxis=_date_axis(),
        ),
    )


def cost_by_tier(
    bands: list[PricingTier],
    estimated: list[CostLine],
    projected: list[CostLine] | None,
    currency: str,
) -> dict[str, Any]:
    """Return grouped bars per pricing tier, each named with the band of units it holds
    ('Starter (0–9,999)'): the cost so far and the projected cost (left out when there is
    no projection yet). bands, estimated and projected are in the same order."""
    names = [
        f"{label(band.tier)} ({tier_band(band.min_usage, band.max_usage)})"
        for band, _line in zip(bands, estimated, strict=True)
    ]
    so_far = {
        "type": "bar",
        "x": names,
        "y": [float(b.amount) for b in estimated],
        "name": "So far",
        "marker": {"color": BLUE},
        "hovertemplate": f"%{{x}}: %{{y:,.2f}} {currency} so far<extra></extra>",
    }
    ahead = {
        "type": "bar",
        "x": list(names),
        "y": [float(b.amount) for b in projected or []],
        "name": "Projected for the period",
        "marker": {"color": GREY},
        "hovertemplate": f"%{{x}}: %{{y:,.2f}} {currency} projected<extra></extra>",
    }
    # Under each bar the tier's name, then its band on a second line: on one line, three
    # tiers' labels would turn sideways on a phone.
    ticks = [f"{label(band.tier)}<br>{tier_band(band.min_usage, band.max_usage)}" for band in bands]
    return _figure(
        [so_far, ahead] if projected is not None else [so_far],
        _legend_layout(
            hovermode="closest",
            barmode="group",
            xaxis={
                "type": "category",
                "gridcolor": GRID,
                "linecolor": GRID,
                "fixedrange": True,
                "tickmode": "array",
                "tickvals": list(names),
                "ticktext": ticks,
            },
            yaxis={
                "gridcolor": GRID,
                "rangemode": "tozero",
                "fixedrange": True,
                "tickformat": ",.2f",
            },
        ),
    )


# The report chart takes its container's width (a phone's, a desktop's, the paper's:
# static/js/charts.js redraws charts at the printed width); only its height is fixed.
REPORT_CHART_HEIGHT = 280


def report_daily(daily: list[SeriesPoint]) -> dict[str, Any]:
    """Return a month's identifications per day (bars) and its cumulative credits (line).

    Identification events are what consume credits, so a day's credits equal its
    identifications; the line shows how the month's credits added up.
    """
    days = [p.date.isoformat() for p in daily]
    cumulative, running = [], 0
    for point in daily:
        running += point.credits_used
        cumulative.append(running)
    bars = {
        "type": "bar",
        "x": days,
        "y": [p.identifications for p in daily],
        "name": "Identifications per day (= credits used)",
        "marker": {
            "color": BLUE,
            "opacity": [0.45 if p.partial else 1 for p in daily],
            "pattern": {"shape": ["/" if p.partial else "" for p in daily], "fgcolor": INK},
        },
        "customdata": [[_bucket_text(p, "day")] for p in daily],
        "hovertemplate": "<b>%{customdata[0]}</b><br>%{y:,} identifications<extra></extra>",
    }
    line = {
        "type": "scatter",
        "x": list(days),
        "y": cumulative,
        "name": "Credits used since the 1st",
        "yaxis": "y2",
        "mode": "lines",
        "line": {"color": AMBER, "width": 2},
        "hovertemplate": "%{x|%-d %b %Y}: %{y:,} credits so far<extra></extra>",
    }
    # Its own layout, not _layout(): a print-sized font and a second axis on the right.
    layout = {
        "height": REPORT_CHART_HEIGHT,
        "autosize": True,
        "margin": {"l": 56, "r": 64, "t": 36, "b": 36},
        "font": {"family": "system-ui, Arial, sans-serif", "size": 11, "color": INK},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "showlegend": True,
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
        "hovermode": "closest",
        "bargap": 0.2,
        "xaxis": {
            "type": "date",
            "gridcolor": GRID,
            "fixedrange": True,
            "tickformat": DATE_TICKS,
            "automargin": True,
        },
        "yaxis": {
            "title": {"text": "per day"},
            "gridcolor": GRID,
            "rangemode": "tozero",
            "fixedrange": True,
            "tickformat": ",d",
        },
        "yaxis2": {
            "title": {"text": "cumulative"},
            "overlaying": "y",
            "side": "right",
            "rangemode": "tozero",
            "showgrid": False,
            "fixedrange": True,
            "tickformat": ",d",
        },
    }
    return _figure([bars, line], layout)
