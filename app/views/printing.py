"""What printed pages need: CSS strings for the running header and footer, and the clock.

Kept apart from filters.py (the screen's formats): base.html writes each page's running
header and footer ("partner · period · timezone", "Page X of Y") into @page margin boxes,
whose content can only be a CSS string. Their moments are written as the screen's are
(display.fmt_moment, the `moment` filter).
"""

from __future__ import annotations

from flask import Flask
from markupsafe import Markup

from ..timeutil import utcnow


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
    """Register the print filter and the clock the running footer reads."""
    app.add_template_filter(css_string, "css_string")
    app.add_template_global(utcnow, "utcnow")
