"""The "Show data" table under each chart, read from the very figure the chart draws.

A screen reader gets this table, not the drawing (templates/_macros/ui.html hides the plot
from assistive technology), so it must hold the chart's numbers and only them. It is built
from the figure dict of app/charts.py, with these rules:

- one column per trace, headed by the trace's name; one row per category: the x value of
  vertical traces (traces that share an x share a row), the axis label of horizontal bars
  (listed top first, as drawn);
- a row is named by its tooltip heading when the trace carries one (customdata[0], e.g.
  "week of 3 Nov 2025 (partial: 2 of 7 days)"), else by its date ("3 Nov 2025", or a span
  when customdata[0] is the end date), else by the category itself;
- rows of dates are in date order; counts are written 1,234 and amounts 1,234.50; a cell
  a trace has no value for is "—".

Labels in a figure are HTML-escaped for Plotly (charts.label); they are unescaped here,
since the template escapes them again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import unescape
from typing import Any

from .display import fmt_day

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2})?)?$")
MISSING = "—"


@dataclass(frozen=True)
class ChartTable:
    """A chart's numbers: the heading of the row names, the series' names, then rows."""

    row_heading: str
    columns: list[str]
    rows: list[tuple[str, list[str]]]


def _is_date(value: Any) -> bool:
    return isinstance(value, str) and bool(_ISO.match(value))


def _cell(value: Any) -> str:
    if value is None:
        return MISSING
    if isinstance(value, bool) or not isinstance(value, int | float):
        return unescape(str(value))
    # The figures hold counts as int and money as float (charts.py): 1,234 and 1,234.50.
    return f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"


def _name(key: Any, custom: Any, tick: str | None) -> str:
    """Name one row from its category key, its customdata and its axis label."""
    heading = custom[0] if isinstance(custom, list) and custom else None
    if isinstance(heading, str) and not _is_date(heading):
        return unescape(heading)
    if tick is not None:
        return unescape(tick)
    if _is_date(key):
        end = f" – {fmt_day(heading)}" if isinstance(heading, str) and _is_date(heading) else ""
        return fmt_day(key) + end
    return unescape(str(key))


def chart_table(fig: dict[str, Any]) -> ChartTable | None:
    """Return the table of a figure's numbers, or None when it draws no value."""
    layout = fig.get("layout") or {}
    ticktext = (layout.get("yaxis") or {}).get("ticktext")
    order: list[Any] = []
    names: dict[Any, str] = {}
    columns: list[str] = []
    values: list[dict[Any, Any]] = []
    horizontal = False
    for trace in fig.get("data") or []:
        horizontal = horizontal or trace.get("orientation") == "h"
        keys = trace.get("y" if trace.get("orientation") == "h" else "x") or []
        amounts = trace.get("x" if trace.get("orientation") == "h" else "y") or []
        custom = trace.get("customdata") or []
        if not keys:
            continue
        columns.append(unescape(trace.get("name") or "Value"))
        column: dict[Any, Any] = {}
        for i, key in enumerate(keys):
            tick = ticktext[key] if horizontal and ticktext and isinstance(key, int) else None
            if key not in names or i < len(custom):
                names[key] = _name(key, custom[i] if i < len(custom) else None, tick)
            if key not in column and key not in order:
                order.append(key)
            column[key] = amounts[i] if i < len(amounts) else None
        values.append(column)
    if not order:
        return None
    dated = all(_is_date(key) for key in order)
    if dated:
        order.sort()
    elif horizontal:
        order.reverse()  # drawn bottom up: the table reads top down, as the chart does
    rows = [(names[key], [_cell(column.get(key)) for column in values]) for key in order]
    return ChartTable("Date" if dated else "Name", columns, rows)
