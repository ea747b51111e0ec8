"""Charts: every figure is one plotly accepts as is, with the values worked out by hand.

app/charts.py writes the figures as plain dictionaries; plotly's own validator stays the
judge here (at test time only): go.Figure(spec) must accept each one, and plotly's JSON of
it must be the spec itself, so plotly would have changed nothing.
"""

from __future__ import annotations

import ast
import json
from datetime import date
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace as Row
from typing import Any

import plotly.graph_objects as go
import pytest

from app import charts
from app.billing import Projection
from app.metrics import TypeUsage
from app.periods import Period

D = date
HOSTILE = "<b>x</b>&"
HOSTILE_ESCAPED = "&lt;b&gt;x&lt;/b&gt;&amp;"


def day_points(dates: list[str], **columns: list[Any]) -> list[Any]:
    """Build metrics-like points: one row per date (a date) with the given columns."""
    return [
        Row(date=D.fromisoformat(d), **{k: v[i] for k, v in columns.items()})
        for i, d in enumerate(dates)
    ]


MARCH_4_6 = Period(D(2025, 3, 4), D(2025, 3, 6))
MARCH_1_3 = Period(D(2025, 3, 1), D(2025, 3, 3))
# Today is 6 Mar: its day is partial.
SERIES = day_points(
    ["2025-03-04", "2025-03-05", "2025-03-06"],
    identifications=[5, 0, 12],
    quantity=[7, 1, 20],
    organizations_with_activity=[2, 0, 3],
    days=[1, 1, 1],
    partial=[False, False, True],
)
PREVIOUS = day_points(
    ["2025-03-01", "2025-03-02", "2025-03-03"],
    identifications=[1, 2, 3],
    quantity=[4, 5, 6],
    organizations_with_activity=[1, 1, 1],
    days=[1, 1, 1],
    partial=[False, False, False],
)
# Weeks from Wed 1 Oct 2025 (clipped: 5 of 7 days), 6 Oct (whole) and 13 Oct (3 days so far).
WEEKS = day_points(
    ["2025-10-01", "2025-10-06", "2025-10-13"],
    identifications=[10, 0, 4],
    organizations_with_activity=[1, 0, 2],
    days=[5, 7, 3],
    partial=[True, False, True],
)
WEEKS_BEFORE = day_points(
    ["2025-09-01", "2025-09-08"],
    identifications=[8, 6],
    days=[7, 7],
    partial=[False, False],
)
BY_TYPE = {
    "page_view": TypeUsage(quantity=5000, events=5000),
    "identification": TypeUsage(quantity=1200, events=300),
    HOSTILE: TypeUsage(quantity=7, events=1),
    "session": TypeUsage(quantity=1200, events=1100),
}
TOP = [
    Row(name=HOSTILE, identifications=5000),
    Row(name="Abcdefghijklmnopqrstuvwxyz", identifications=1234),  # 26 characters
    Row(name="Twin", identifications=10),
    Row(name="Twin", identifications=9),
]
TOP_LINKS = ["/organizations/a?x=1&y=2", "/organizations/b", "/organizations/c", "/organizations/d"]
BURN_POINTS = day_points(
    ["2025-03-01", "2025-03-02", "2025-03-03"], cumulative_credits_used=[100, 201, 1001]
)
PERIOD_ROWS = [  # newest first, as billing.past_periods() answers
    Row(
        billing_period_start=D(2025, 3, 1),
        billing_period_end=D(2025, 3, 31),
        identifications=1500,
        estimated_cost=Decimal("1234.50"),
        currency="EUR",
        is_current=True,
    ),
    Row(
        billing_period_start=D(2025, 2, 1),
        billing_period_end=D(2025, 2, 28),
        identifications=9000,
        estimated_cost=Decimal("0.00"),
        currency="EUR",
        is_current=False,
    ),
]
# Bands as stored: max_usage is exclusive, so 0..10000 holds 0-9,999 units.
BANDS = [
    Row(tier="Base <i>", min_usage=0, max_usage=10_000),
    Row(tier="Scale & more", min_usage=10_000, max_usage=None),
]
ESTIMATED = [
    Row(tier="Base <i>", amount=Decimal("10.00")),
    Row(tier="Scale & more", amount=Decimal("2.50")),
]
PROJECTED = [
    Row(tier="Base <i>", amount=Decimal("10.00")),
    Row(tier="Scale & more", amount=Decimal("25.75")),
]
MARCH = Period(D(2025, 3, 1), D(2025, 3, 31))
# March 3 of BURN_POINTS: complete days Mar 1-2 used 100 + 101 = 201, a rate of 100.5 a day;
# today used 800 so far (more than the rate), then 28 days (Mar 4-31) at 100.5 = 2,814.
BURN = Projection(
    method="period_average",
    period=MARCH,
    today=D(2025, 3, 3),
    window=Period(D(2025, 3, 1), D(2025, 3, 2)),
    window_credits=201,
    complete_credits=201,
    used=1001,
    pool_total=10_000,
    rate=Fraction(201, 2),
    projected_identifications=3815,
    projected_cost=None,
    runout_date=None,
    unused_at_reset=6185,
)
BURN_FIRST_DAY = Projection(
    method="insufficient_data",
    period=MARCH,
    today=D(2025, 3, 1),
    window=None,
    window_credits=0,
    complete_credits=0,
    used=0,
    pool_total=10_000,
    rate=None,
    projected_identifications=None,
    projected_cost=None,
    runout_date=None,
    unused_at_reset=None,
)
MONTH_DAYS = day_points(
    ["2025-10-01", "2025-10-02", "2025-10-03"],
    identifications=[3, 0, 5],
    credits_used=[3, 0, 5],
    events=[4, 1, 2],
    days=[1, 1, 1],
    partial=[False, False, True],
)


def every_figure() -> dict[str, dict[str, Any]]:
    """Call each builder, including with empty inputs (the pages can ask for those)."""
    return {
        "series": charts.series_over_time(SERIES, PREVIOUS, MARCH_4_6, MARCH_1_3, "day"),
        "series_empty": charts.series_over_time([], [], MARCH_4_6, MARCH_1_3, "month"),
        "series_weeks": charts.series_over_time(
            WEEKS, WEEKS_BEFORE, Period(D(2025, 10, 1), D(2025, 10, 15)), MARCH, "week"
        ),
        "cumulative": charts.cumulative_credits(
            day_points(
                ["2025-03-04", "2025-03-05"],
                cumulative_credits_used=[10, 25],
                credit_pool_total=[1000, 1000],
            )
        ),
        "cumulative_terms": charts.cumulative_credits(
            day_points(
                ["2025-03-31", "2025-04-01"],
                cumulative_credits_used=[900, 5],
                credit_pool_total=[1000, 2500],
            )
        ),
        "cumulative_empty": charts.cumulative_credits([]),
        "activity": charts.organizations_with_activity(SERIES, "week", MARCH_4_6),
        "types": charts.usage_by_type(BY_TYPE),
        "types_empty": charts.usage_by_type({}),
        "top": charts.top_organizations(TOP, TOP_LINKS),
        "pool_burn": charts.pool_burn(BURN_POINTS, BURN),
        "pool_burn_empty": charts.pool_burn([], BURN_FIRST_DAY),
        "billing_periods": charts.billing_periods(PERIOD_ROWS),
        "cost_by_tier": charts.cost_by_tier(BANDS, ESTIMATED, PROJECTED, "USD"),
        "cost_by_tier_unprojected": charts.cost_by_tier(BANDS, ESTIMATED, None, "USD"),
        "report_daily": charts.report_daily(MONTH_DAYS),
        "report_daily_empty": charts.report_daily([]),
    }


FIGURES = every_figure()


# --- plotly as the reference for a valid figure -----------------------------------------


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_plotly_accepts_the_figure_and_changes_nothing(name: str) -> None:
    spec = FIGURES[name]
    fig = go.Figure(spec)  # raises on an unknown property or a value of the wrong kind
    echoed = json.loads(fig.to_json())
    # plotly.py adds its default template on the Python side; the page never sends one,
    # and plotly.js applies none unless told.
    echoed["layout"].pop("template")
    assert echoed == spec


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_figure_is_strict_json(name: str) -> None:
    # The templates embed figures with |tojson, which would quietly turn a date into an
    # HTTP date and a Decimal into a string: only JSON's own types may reach it.
    spec = FIGURES[name]
    assert json.loads(json.dumps(spec, allow_nan=False)) == spec


def test_charts_module_does_not_import_plotly() -> None:
    tree = ast.parse(Path(charts.__file__).read_text(encoding="utf-8"))
    imported = [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    ]
    imported += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert not [m for m in imported if m.split(".")[0] == "plotly"]


# --- label ------------------------------------------------------------------------------


def test_label_escapes_markup_plotly_would_read() -> None:
    assert charts.label(HOSTILE) == HOSTILE_ESCAPED
    assert charts.label('say "hi"') == 'say "hi"'  # quotes are harmless in a label
    assert charts.label(None) == ""


# --- series_over_time -------------------------------------------------------------------


def test_series_over_time_current_and_previous() -> None:
    fig = FIGURES["series"]
    now, before = fig["data"]
    assert [now["type"], before["type"]] == ["bar", "scatter"]
    # Each bar stands over its bucket: a day's at its noon, 85 % of a day wide.
    assert now["x"] == ["2025-03-04 12:00", "2025-03-05 12:00", "2025-03-06 12:00"]
    assert now["width"] == [73_440_000] * 3  # 0.85 * 86,400,000 ms
    assert now["y"] == [5, 0, 12]
    assert now["name"] == "Identifications (4 Mar 2025 – 6 Mar 2025)"
    # Aligned by bucket index: the previous period's days are drawn over the current ones.
    assert before["x"] == now["x"]
    assert before["y"] == [1, 2, 3]
    assert before["name"] == "Previous period (1 Mar 2025 – 3 Mar 2025)"
    assert before["line"]["dash"] == "dot"
    assert before["hoverinfo"] == "skip"  # one tooltip, the bar's, says both
    # The tooltip: the bucket, its value, the previous bucket and the change.
    assert now["hovertemplate"] == (
        "<b>%{customdata[0]}</b><br>Identifications: %{y:,}"
        "<br>Previous period, %{customdata[2]}: %{customdata[1]}"
        "<br>Change: %{customdata[3]}<extra></extra>"
    )
    assert now["customdata"] == [
        ["4 Mar 2025", "1", "1 Mar 2025", "+400.0 %"],  # (5 - 1) / 1
        ["5 Mar 2025", "2", "2 Mar 2025", "−100.0 %"],
        ["6 Mar 2025 (today, so far)", "3", "3 Mar 2025", "+300.0 %"],  # (12 - 3) / 3
    ]
    # Today's bar is partial: lighter and hatched.
    assert now["marker"]["opacity"] == [1, 1, 0.45]
    assert now["marker"]["pattern"]["shape"] == ["", "", "/"]
    layout = fig["layout"]
    # From the first day's start to the last day's end.
    assert layout["xaxis"]["range"] == ["2025-03-04 00:00", "2025-03-07 00:00"]
    assert layout["xaxis"]["tickformat"] == "%-d %b %Y"
    assert "xaxis2" not in layout
    assert layout["showlegend"] is True
    assert "template" not in layout


def test_series_over_time_partial_weeks_and_a_shorter_previous_period() -> None:
    now, before = FIGURES["series_weeks"]["data"]
    assert [row[0] for row in now["customdata"]] == [
        "week of 1 Oct 2025 (partial: 5 of 7 days)",
        "week of 6 Oct 2025",
        "week of 13 Oct 2025 (partial: 3 of 7 days)",
    ]
    assert now["marker"]["pattern"]["shape"] == ["/", "", "/"]
    # Two previous weeks for three: the third bucket has nothing to compare with.
    # Bars over their days: Wed 1-Sun 5 Oct (middle 3 Oct 12:00, 5 days), 6-12 Oct, and
    # 13-15 Oct (the period ends on the 15th: 3 days).
    assert now["x"] == ["2025-10-03 12:00", "2025-10-09 12:00", "2025-10-14 12:00"]
    assert now["width"] == [367_200_000, 514_080_000, 220_320_000]  # 0.85 * days * 86.4M
    assert before["x"] == now["x"][:2] and before["y"] == [8, 6]
    assert [row[1:] for row in now["customdata"]] == [
        ["8", "week of 1 Sep 2025", "+25.0 %"],  # (10 - 8) / 8
        ["6", "week of 8 Sep 2025", "−100.0 %"],
        ["—", "", "no bucket to compare"],
    ]


def test_series_over_time_other_key_and_name() -> None:
    fig = charts.series_over_time(
        SERIES,
        PREVIOUS,
        MARCH_4_6,
        MARCH_1_3,
        "day",
        key="quantity",
        name=charts.label("Quantity <b>"),
    )
    now, before = fig["data"]
    assert now["y"] == [7, 1, 20]
    assert before["y"] == [4, 5, 6]
    assert now["name"] == "Quantity &lt;b&gt; (4 Mar 2025 – 6 Mar 2025)"
    assert "<br>Quantity &lt;b&gt;: %{y:,}" in now["hovertemplate"]


def test_small_counts_get_whole_number_ticks() -> None:
    # Every value below 5: one tick per whole number (not 0, 0.2, 0.4 ... written 0, 0, 0).
    small = charts.series_over_time(
        day_points(["2025-03-04"], identifications=[0], days=[1], partial=[False]),
        [],
        Period(D(2025, 3, 4), D(2025, 3, 4)),
        Period(D(2025, 3, 3), D(2025, 3, 3)),
        "day",
    )
    assert small["layout"]["yaxis"]["dtick"] == 1
    assert small["layout"]["yaxis"]["range"] == [0, 1.1]
    assert "dtick" not in FIGURES["series"]["layout"]["yaxis"]  # up to 12: plotly's ticks


def test_series_over_time_empty() -> None:
    now, before = FIGURES["series_empty"]["data"]
    assert before["x"] == before["y"] == now["x"] == now["y"] == []


# --- cumulative_credits -----------------------------------------------------------------


def test_cumulative_credits_against_the_pool() -> None:
    used, pool = FIGURES["cumulative"]["data"]
    assert used["x"] == pool["x"] == ["2025-03-04", "2025-03-05"]
    assert used["y"] == [10, 25]
    assert used["line"]["shape"] == "hv"
    assert used["name"] == "Credits used (cumulative)"
    assert pool["y"] == [1000, 1000]
    assert pool["name"] == "Pool (1,000 per billing period)"
    assert FIGURES["cumulative"]["layout"]["hovermode"] == "x unified"
    used, pool = FIGURES["cumulative_empty"]["data"]
    assert used["y"] == pool["y"] == []


def test_cumulative_credits_steps_to_each_billing_period_s_own_pool() -> None:
    # The pool grew from 1,000 to 2,500 with the billing period starting 1 Apr.
    _used, pool = FIGURES["cumulative_terms"]["data"]
    assert pool["y"] == [1000, 2500]
    assert pool["line"]["shape"] == "hv"
    assert pool["name"] == "Pool of each billing period"


# --- organizations_with_activity --------------------------------------------------------


def test_organizations_with_activity_bars() -> None:
    (bars,) = FIGURES["activity"]["data"]
    assert bars["type"] == "bar"
    assert bars["x"] == ["2025-03-04 12:00", "2025-03-05 12:00", "2025-03-06 12:00"]
    assert bars["y"] == [2, 0, 3]
    assert bars["hovertemplate"] == (
        "<b>%{customdata[0]}</b><br>%{y:,} organizations with activity<extra></extra>"
    )
    assert bars["customdata"] == [
        ["week of 4 Mar 2025"],
        ["week of 5 Mar 2025"],
        ["week of 6 Mar 2025 (partial: 1 of 7 days)"],
    ]
    assert bars["marker"]["pattern"]["shape"] == ["", "", "/"]
    layout = FIGURES["activity"]["layout"]
    assert layout["xaxis"]["type"] == "date"
    assert layout["xaxis"]["range"] == ["2025-03-04 00:00", "2025-03-07 00:00"]


# --- usage_by_type ----------------------------------------------------------------------


def test_usage_by_type_smallest_first_so_the_largest_is_on_top() -> None:
    (bars,) = FIGURES["types"]["data"]
    # 7 (hostile) < 1,200 identification = 1,200 session (tie broken by name) < 5,000.
    assert bars["orientation"] == "h"
    assert bars["y"] == [0, 1, 2, 3]
    assert bars["x"] == [7, 1200, 1200, 5000]
    assert bars["text"] == ["7", "1,200", "1,200", "5,000"]
    # Types by their human labels (data keyed by type stays in the API).
    assert bars["customdata"] == [
        [HOSTILE_ESCAPED, 1],
        ["Identifications", 300],
        ["Sessions", 1100],
        ["Page views", 5000],
    ]
    assert bars["marker"]["color"] == [charts.GREY, charts.BLUE, charts.GREY, charts.GREY]
    layout = FIGURES["types"]["layout"]
    assert layout["yaxis"]["tickvals"] == [0, 1, 2, 3]
    assert layout["yaxis"]["ticktext"] == [
        HOSTILE_ESCAPED,
        "Identifications",
        "Sessions",
        "Page views",
    ]
    assert layout["height"] == 48 * 4 + 60  # 252, above the 160 floor


def test_usage_by_type_empty_keeps_the_minimum_height() -> None:
    (bars,) = FIGURES["types_empty"]["data"]
    assert bars["x"] == bars["y"] == []
    assert FIGURES["types_empty"]["layout"]["height"] == 160


# --- top_organizations ------------------------------------------------------------------


def test_top_organizations_bottom_up_with_links_and_escaped_names() -> None:
    (bars,) = FIGURES["top"]["data"]
    # Largest first in, drawn on top: the rows are reversed; the twins keep two bars.
    assert bars["y"] == [0, 1, 2, 3]
    assert bars["x"] == [9, 10, 1234, 5000]
    assert bars["text"] == ["9", "10", "1,234", "5,000"]
    assert bars["customdata"] == [
        ["Twin", "/organizations/d"],
        ["Twin", "/organizations/c"],
        ["Abcdefghijklmnopqrstuvwxyz", "/organizations/b"],
        [HOSTILE_ESCAPED, "/organizations/a?x=1&y=2"],  # a link, not a label: not escaped
    ]
    layout = FIGURES["top"]["layout"]
    # Tick labels are cut to 24 characters: 23 letters and an ellipsis.
    assert layout["yaxis"]["ticktext"] == [
        "Twin",
        "Twin",
        "Abcdefghijklmnopqrstuvw…",
        HOSTILE_ESCAPED,
    ]
    assert layout["height"] == 180  # 30 * 4 + 60 = 180, the floor
    assert charts.top_organizations(TOP * 2, TOP_LINKS * 2)["layout"]["height"] == 300


def test_top_organizations_needs_one_link_per_row() -> None:
    with pytest.raises(ValueError, match="zip"):
        charts.top_organizations(TOP, TOP_LINKS[:-1])


# --- pool_burn --------------------------------------------------------------------------


def test_pool_burn_draws_the_projection_to_the_period_end() -> None:
    used, pace, pool = FIGURES["pool_burn"]["data"]
    assert used["x"] == ["2025-03-01", "2025-03-02", "2025-03-03"]
    assert used["y"] == [100, 201, 1001]
    # From the last complete day (201 on Mar 2) through today (201 + 800 = 1,001) to the
    # period's end: 1,001 + 28 x 100.5 = 3,815.
    assert pace["x"] == ["2025-03-02", "2025-03-03", "2025-03-31"]
    assert pace["y"] == [201, 1001, 3815]
    assert pace["name"] == "Projected (100.50 per day)"
    assert pool["x"] == ["2025-03-01", "2025-03-31"]
    assert pool["y"] == [10_000, 10_000]
    assert pool["name"] == "Pool (10,000)"
    assert FIGURES["pool_burn"]["layout"]["xaxis"]["range"] == [
        "2025-02-28 12:00",
        "2025-03-31 12:00",
    ]


def test_pool_burn_on_the_first_day_has_no_projection() -> None:
    used, pool = FIGURES["pool_burn_empty"]["data"]
    assert used["x"] == used["y"] == []
    assert pool["name"] == "Pool (10,000)"


# --- billing_periods --------------------------------------------------------------------


def test_billing_periods_oldest_first_current_in_amber() -> None:
    (bars,) = FIGURES["billing_periods"]["data"]
    assert bars["x"] == ["2025-02-01", "2025-03-01"]
    assert bars["y"] == [9000, 1500]
    assert bars["marker"]["color"] == [charts.BLUE, charts.AMBER]
    assert bars["customdata"] == [
        ["1 Feb 2025 – 28 Feb 2025", "0.00 EUR"],
        ["1 Mar 2025 – 31 Mar 2025", "1,234.50 EUR"],
    ]
    assert FIGURES["billing_periods"]["layout"]["bargap"] == 0.3


# --- cost_by_tier -----------------------------------------------------------------------


def test_cost_by_tier_grouped_with_escaped_tier_names_and_their_bands() -> None:
    so_far, ahead = FIGURES["cost_by_tier"]["data"]
    tiers = ["Base &lt;i&gt; (0–9,999)", "Scale &amp; more (10,000+)"]
    assert so_far["x"] == ahead["x"] == tiers
    assert so_far["y"] == [10.0, 2.5]
    assert ahead["y"] == [10.0, 25.75]
    assert [so_far["name"], ahead["name"]] == ["So far", "Projected for the period"]
    assert so_far["hovertemplate"] == "%{x}: %{y:,.2f} USD so far<extra></extra>"
    assert ahead["hovertemplate"] == "%{x}: %{y:,.2f} USD projected<extra></extra>"
    layout = FIGURES["cost_by_tier"]["layout"]
    assert layout["barmode"] == "group"
    assert layout["xaxis"]["type"] == "category"
    # Under the bars: the name, then the band on a line of its own.
    assert layout["xaxis"]["tickvals"] == tiers
    assert layout["xaxis"]["ticktext"] == [
        "Base &lt;i&gt;<br>0–9,999",
        "Scale &amp; more<br>10,000+",
    ]
    assert layout["yaxis"]["tickformat"] == ",.2f"


def test_cost_by_tier_without_a_projection_has_only_the_cost_so_far() -> None:
    (so_far,) = FIGURES["cost_by_tier_unprojected"]["data"]
    assert so_far["name"] == "So far"
    assert so_far["y"] == [10.0, 2.5]


# --- report_daily -----------------------------------------------------------------------


def test_report_daily_bars_per_day_and_cumulative_credits() -> None:
    bars, line = FIGURES["report_daily"]["data"]
    assert [bars["type"], line["type"]] == ["bar", "scatter"]
    assert bars["x"] == line["x"] == ["2025-10-01", "2025-10-02", "2025-10-03"]
    assert bars["y"] == [3, 0, 5]
    assert line["y"] == [3, 3, 8]  # 3, 3 + 0, 3 + 0 + 5
    assert line["yaxis"] == "y2"
    assert bars["name"] == "Identifications per day (= credits used)"
    assert line["name"] == "Credits used since the 1st"
    layout = FIGURES["report_daily"]["layout"]
    # The container's width (no fixed width: a phone's 390 px or the paper's), a fixed height.
    assert "width" not in layout
    assert (layout["height"], layout["autosize"]) == (280, True)
    assert layout["yaxis2"]["overlaying"] == "y" and layout["yaxis2"]["side"] == "right"
    assert "template" not in layout


def test_report_daily_of_a_month_without_days() -> None:
    bars, line = FIGURES["report_daily_empty"]["data"]
    assert bars["x"] == bars["y"] == line["x"] == line["y"] == []
