"""Template filters: numbers, changes, money, dates and moments as the pages show them.

A moment is written by display.fmt_moment alone, in the partner's timezone:
`{{ value|moment(tz) }}` (templates/_macros/ui.html's moment() adds its <time datetime>).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from flask import Flask

from ..display import event_label, fmt_day, fmt_moment, plural, tier_band
from ..timeutil import iso_z, utcnow


def fmt_number(value: Any) -> str:
    """Format a whole number with thousands separators (— for None)."""
    if value is None:
        return "—"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}"


def fmt_change(value: float | None) -> str:
    """Format a relative change as a signed percentage."""
    if value is None:
        return "n/a"
    percent = value * 100
    if percent == 0:
        return "±0 %"
    sign = "+" if percent > 0 else "−"
    return f"{sign}{abs(percent):,.1f} %"


def fmt_money(value: Any, currency: str = "USD") -> str:
    """Format an amount with two decimals and its currency."""
    return f"{float(value):,.2f} {currency}"


def fmt_span(period: Any, end: date | str | None = None) -> str:
    """Format a period compactly: '25 Sep – 25 Oct 2026' (years shown when they differ).

    Takes a Period, or a start and an end (dates or ISO texts).
    """
    if end is None:
        start, end = period.start, period.end
    else:
        start = period
    start = date.fromisoformat(start[:10]) if isinstance(start, str) else start
    end = date.fromisoformat(end[:10]) if isinstance(end, str) else end
    if start == end:
        return fmt_day(start)
    if start.year == end.year:
        return f"{start.day} {start:%b} – {fmt_day(end)}"
    return f"{fmt_day(start)} – {fmt_day(end)}"


def fmt_price(value: Any) -> str:
    """Format a unit price with at least two decimals (0.1 -> 0.10, 0.0125 stays)."""
    text = f"{float(value):.6f}".rstrip("0")
    whole, _, decimals = text.partition(".")
    return f"{int(whole):,}.{decimals.ljust(2, '0')}"


def fmt_utc(value: datetime | None) -> str:
    """Format a naive-UTC moment as the API writes it, 2025-11-03T14:05:00Z ('' for None)."""
    return iso_z(value) or ""


def age_text(moment: datetime | None) -> str:
    """Return how long ago moment was, in words."""
    if moment is None:
        return ""
    seconds = max(0, int((utcnow() - moment).total_seconds()))
    if seconds < 90:
        return "just now"
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now"  # pragma: no cover


def fmt_band(band: Any) -> str:
    """Format a pricing tier's band by the units it holds: '0–9,999', '100,000+'."""
    return tier_band(band.min_usage, band.max_usage)


FILTERS: dict[str, Callable[..., str]] = {
    "num": fmt_number,
    "change": fmt_change,
    "money": fmt_money,
    "day": fmt_day,
    "moment": fmt_moment,
    "span": fmt_span,
    "price": fmt_price,
    "utc": fmt_utc,
    "event": event_label,
    "band": fmt_band,
    "plural": plural,
}


def register_filters(app: Flask) -> None:
    """Register the filters every template uses."""
    for name, function in FILTERS.items():
        app.add_template_filter(function, name)
