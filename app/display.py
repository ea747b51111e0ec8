"""How the pages write things for people: dates, counts, event types and pricing bands.

One home for these rules, imported by the template filters (views/filters.py), the charts
and the forms' messages alike (views/ cannot be imported by charts or forms: it imports
them). The API and the CSV files keep the machine forms (ISO dates, type names).
"""

from __future__ import annotations

from datetime import date

# The event types of the spec, by the name a person reads; any other type is humanized.
EVENT_LABELS = {
    "identification": "Identifications",
    "page_view": "Page views",
    "session": "Sessions",
}


def fmt_day(value: date | str | None) -> str:
    """Format a date as '3 Nov 2025' (— for None)."""
    if value is None:
        return "—"
    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    return f"{value.day} {value:%b %Y}"


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """Return '1 day', '7 days', '1,000 days' (the plural is singular + 's' unless given)."""
    word = singular if count == 1 else (plural_form or singular + "s")
    return f"{count:,} {word}"


def event_label(event_type: str) -> str:
    """Name an event type for people: 'page_view' -> 'Page views'; a partner's own type is
    written as named, underscores as spaces ('file_download' -> 'File download')."""
    if event_type in EVENT_LABELS:
        return EVENT_LABELS[event_type]
    text = event_type.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def tier_band(min_usage: int, max_usage: int | None) -> str:
    """Write a pricing band by the units it holds: max_usage is exclusive, so 0..10000 is
    '0–9,999', and an open band is '100,000+'."""
    if max_usage is None:
        return f"{min_usage:,}+"
    if max_usage - 1 <= min_usage:
        return f"{min_usage:,}"
    return f"{min_usage:,}–{max_usage - 1:,}"
