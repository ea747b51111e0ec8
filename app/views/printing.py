"""What printed pages need: moments in words in the partner's timezone, and CSS strings.

Kept apart from filters.py (the screen's formats): base.html writes each page's running
header and footer ("partner · period · timezone", "Page X of Y") into @page margin boxes,
whose content can only be a CSS string, and printed moments read as words, not ISO texts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask import Flask
from markupsafe import Markup

from ..display import fmt_day
from ..timeutil import to_utc_naive, utcnow


def local_moment(value: datetime | None, tz: str) -> str:
    """Write a naive-UTC moment in words in the timezone tz: '5 Nov 2025 at 07:00
    (America/New_York)' ('—' for None)."""
    if value is None:
        return "—"
    local = to_utc_naive(value).replace(tzinfo=UTC).astimezone(ZoneInfo(tz))
    return f"{fmt_day(local.date())} at {local:%H:%M} ({tz})"


def css_string(value: str) -> Markup:
    """Return value as a quoted CSS string that nothing in it can end or escape from.

    Every character but ASCII letters, digits and spaces is written as a CSS escape (a
    hex code point and the space that ends it), so quotes, backslashes, '<' (of a
    '</style>') and line breaks are all inert. HTML text (Markup, e.g. a rendered
    template block) is read as the text it shows.
    """
    if isinstance(value, Markup):
        value = value.striptags()
    out = []
    for char in " ".join(str(value).split()):
        if char == " " or (char.isascii() and char.isalnum()):
            out.append(char)
        else:
            out.append(f"\\{ord(char):x} ")
    # Safe: only letters, digits, spaces, backslashes and hex digits between the quotes.
    return Markup('"' + "".join(out) + '"')  # noqa: S704


def register_printing(app: Flask) -> None:
    """Register the print filters and the clock the running footer reads."""
    app.add_template_filter(local_moment, "local_moment")
    app.add_template_filter(css_string, "css_string")
    app.add_template_global(utcnow, "utcnow")
