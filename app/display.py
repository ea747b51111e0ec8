"""How the pages write things for people: dates, moments, counts, event types, pricing bands.

One home for these rules, imported by the template filters (views/filters.py), the charts
and the forms' messages alike (views/ cannot be imported by charts or forms: it imports
them). The API and the CSV files keep the machine forms (ISO dates, type names).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

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


def fmt_moment(value: datetime | None, tz: str) -> str:
    """Write a moment in words in the timezone tz, with the zone's abbreviation when it has
    one (it tells the two 01:30s of a DST change apart) and its name: '5 Nov 2025 at 07:00
    EST (America/New_York)', '5 Nov 2025 at 12:00 (UTC)' ('—' for None).

    A naive value is UTC, as the database stores moments.
    """
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    local = value.astimezone(ZoneInfo(tz))
    abbreviation = local.tzname() or ""
    # Zones without a letter abbreviation ('+0545') are named by their IANA name alone.
    shown = f" {abbreviation}" if abbreviation.isalpha() and abbreviation != tz else ""
    return f"{fmt_day(local.date())} at {local:%H:%M}{shown} ({tz})"


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
