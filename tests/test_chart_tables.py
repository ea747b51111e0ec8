"""The "Show data" tables: each chart's numbers, read from the figure, worked out by hand.

The figures are test_charts' (the same small inputs, the values written there); the pages'
tables are checked against what plotly draws in test_accessibility.
"""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from app.chart_tables import chart_table
from tests.test_charts import FIGURES, HOSTILE
from tests.views_support import PASSWORD, login


def rows(name: str) -> list[tuple[str, list[str]]]:
    table = chart_table(FIGURES[name])
    assert table is not None
    return table.rows


def test_series_by_day_names_today_and_lines_up_the_previous_period():
    table = chart_table(FIGURES["series"])
    assert table is not None
    assert table.row_heading == "Date"
    assert table.columns == [
        "Identifications (4 Mar 2025 – 6 Mar 2025)",
        "Previous period (1 Mar 2025 – 3 Mar 2025)",
    ]
    # 4-6 Mar: 5, 0, 12 (the 6th is today); 1-3 Mar drawn over them: 1, 2, 3.
    assert table.rows == [
        ("4 Mar 2025", ["5", "1"]),
        ("5 Mar 2025", ["0", "2"]),
        ("6 Mar 2025 (today, so far)", ["12", "3"]),
    ]


def test_series_by_week_says_partial_weeks_and_a_missing_previous_bucket():
    # Weeks of 1 Oct (5 of 7 days), 6 Oct, 13 Oct (3 days so far); two previous weeks.
    assert rows("series_weeks") == [
        ("week of 1 Oct 2025 (partial: 5 of 7 days)", ["10", "8"]),
        ("week of 6 Oct 2025", ["0", "6"]),
        ("week of 13 Oct 2025 (partial: 3 of 7 days)", ["4", "—"]),
    ]


def test_horizontal_bars_read_top_down_with_whole_unescaped_names():
    table = chart_table(FIGURES["types"])
    assert table is not None
    assert (table.row_heading, table.columns) == ("Name", ["Quantity"])
    # Largest first: 5,000 page views; 1,200 sessions and identifications (drawn by name,
    # bottom up, so sessions are above); 7 for the hostile name, as text. Types by the
    # pages' labels (app/display.py).
    assert table.rows == [
        ("Page views", ["5,000"]),
        ("Sessions", ["1,200"]),
        ("Identifications", ["1,200"]),
        (HOSTILE, ["7"]),
    ]
    # The top list: whole names (the axis shortens the 26 characters), twins kept apart.
    assert rows("top") == [
        (HOSTILE, ["5,000"]),
        ("Abcdefghijklmnopqrstuvwxyz", ["1,234"]),
        ("Twin", ["10"]),
        ("Twin", ["9"]),
    ]


def test_dated_series_of_different_days_share_one_dated_column():
    # Used 100, 201, 1,001 on 1-3 Mar; the projection from the 2nd (201) through today
    # (1,001) to the 31st (3,815); the pool at the period's two ends.
    table = chart_table(FIGURES["pool_burn"])
    assert table is not None
    assert table.columns == ["Used so far", "Projected (100.50 per day)", "Pool (10,000)"]
    assert table.rows == [
        ("1 Mar 2025", ["100", "—", "10,000"]),
        ("2 Mar 2025", ["201", "201", "—"]),
        ("3 Mar 2025", ["1,001", "1,001", "—"]),
        ("31 Mar 2025", ["—", "3,815", "10,000"]),
    ]


def test_periods_are_spans_and_money_has_cents():
    assert rows("billing_periods") == [
        ("1 Feb 2025 – 28 Feb 2025", ["9,000"]),
        ("1 Mar 2025 – 31 Mar 2025", ["1,500"]),
    ]
    table = chart_table(FIGURES["cost_by_tier"])
    assert table is not None
    assert table.columns == ["So far", "Projected for the period"]
    assert table.rows == [
        ("Base <i> (0–9,999)", ["10.00", "10.00"]),
        ("Scale & more (10,000+)", ["2.50", "25.75"]),
    ]


def test_report_month_by_day_with_its_running_total():
    # 3, 0, 5 identifications on 1-3 Oct: 3, 3, 8 credits since the 1st.
    assert rows("report_daily") == [
        ("1 Oct 2025", ["3", "3"]),
        ("2 Oct 2025", ["0", "3"]),
        ("3 Oct 2025 (today, so far)", ["5", "8"]),
    ]


@pytest.mark.parametrize(
    "name", ["series_empty", "cumulative_empty", "types_empty", "report_daily_empty"]
)
def test_a_figure_without_values_has_no_table(name):
    assert chart_table(FIGURES[name]) is None


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_every_series_is_named(name):
    table = chart_table(FIGURES[name])
    if table is not None:
        assert "Value" not in table.columns  # each trace says what it counts


@pytest.fixture
def one_event(freeze, make_partner, make_org, make_user, add_events):
    """One identification of 3 on Thu 20 Nov 2025 (today), at 08:00 UTC."""
    freeze(datetime(2025, 11, 20, 12, 0))
    partner = make_partner("acme", pool=1000)
    org = make_org(partner, "Bluebird")
    make_user(partner, "ops@acme.test", PASSWORD)
    event = {
        "eventId": "e1",
        "organizationId": org.id,
        "type": "identification",
        "quantity": 3,
        "occurredAt": "2025-11-20T08:00:00Z",
    }
    assert add_events(partner, [event]).rejected == []


def test_the_overview_has_one_show_data_table_per_chart(one_event, client):
    """The page: a folded table under each chart macro; the drawing is charts.js's."""
    login(client)
    html = client.get("/?preset=last_7_days").get_data(as_text=True)
    charts = re.findall(r'data-target="chart-(\w+)"', html)
    tables = re.findall(r'<details class="chart-data" data-chart-data="(\w+)">', html)
    # The top organizations chart has its table beside it, always shown.
    assert sorted(tables) == ["activity", "cumulative", "identifications", "types"]
    assert sorted(set(charts) - {"top"}) == sorted(tables)
    # Identifications, 14-20 Nov: nothing until today's 3; the week before had none.
    section = html[html.index('data-chart-data="identifications"') :]
    section = section[: section.index("</details>")]
    cells = re.findall(r"<t[hd][^>]*>([^<]*)</t[hd]>", section)
    assert cells[:3] == [
        "Date",
        "Identifications (14 Nov 2025 – 20 Nov 2025)",
        "Previous period (7 Nov 2025 – 13 Nov 2025)",
    ]
    days = [f"{d} Nov 2025" for d in range(14, 20)] + ["20 Nov 2025 (today, so far)"]
    values = ["0"] * 6 + ["3"]
    assert cells[3:] == [c for day, v in zip(days, values) for c in (day, v, "0")]
