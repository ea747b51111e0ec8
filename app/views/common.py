"""What every dashboard page shares: the login gate, the period in the URL, freshness, filters."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

from flask import Flask, current_app, g, request, url_for
from flask_login import current_user
from markupsafe import Markup

from .. import metrics
from ..exports import csv_cell, table_csv
from ..forms import DateRangeForm, LogoutForm
from ..models import Partner
from ..periods import PRESETS, Period, auto_granularity, default_analytics_period
from ..timeutil import utcnow

PERIOD_KEYS = ("preset", "startDate", "endDate")


def login_gate() -> Any:
    """Send anonymous visitors to the login page (before_request of every page blueprint)."""
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
    return None


def current_partner() -> Partner:
    """Return the signed-in user's partner: the only partner this user may see."""
    partner: Partner = current_user.partner
    return partner


@dataclass
class RangeState:
    """The period a page shows, the form that chose it, and how to carry it in links."""

    form: DateRangeForm
    period: Period
    default: Period
    args: dict[str, Any]
    preset: str | None
    fallback: bool
    granularity: str
    granularity_auto: bool
    granularity_error: bool = False
    errors: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """Return a human name of the period (the preset's, or its dates)."""
        if self.preset:
            return PRESETS[self.preset]
        return "Custom range" if self.args else "Default period (today − 30 days to today)"

    def link_args(self) -> dict[str, Any]:
        """Return the query arguments that reopen this view: the period, and the
        granularity when one was chosen (never raw request arguments)."""
        if self.granularity_auto:
            return dict(self.args)
        return {**self.args, "granularity": self.granularity}

    def api_params(self) -> dict[str, str]:
        """Return the period as the API's startDate and endDate."""
        return self.period.iso()


def resolve_range(partner: Partner, default: Period | None = None) -> RangeState:
    """Read the period (and granularity) from the query string; fall back when invalid."""
    default = default or default_analytics_period(partner.timezone)
    form = DateRangeForm(request.args, tz=partner.timezone, default=default)
    form.validate()
    period_ok = not (form.preset.errors or form.startDate.errors or form.endDate.errors)
    period = form.period() if period_ok else default
    preset = form.preset.data or None if period_ok else None
    args: dict[str, Any] = {}
    if period_ok and preset:
        args = {"preset": preset}
    elif period_ok:
        args = {k: str(request.args[k]) for k in ("startDate", "endDate") if request.args.get(k)}
    granularity_error = bool(form.granularity.errors)
    chosen = form.granularity.data if not granularity_error else ""
    granularity = chosen or auto_granularity(period)
    # Show the dates actually used in the custom-range inputs, unless they hold an error.
    if not form.startDate.errors:
        form.startDate.data = period.start.isoformat()
    if not form.endDate.errors:
        form.endDate.data = period.end.isoformat()
    g.period_args = args
    return RangeState(form=form, period=period, default=default, args=args, preset=preset,
                      fallback=not period_ok, granularity=granularity,
                      granularity_auto=not chosen, granularity_error=granularity_error)


def carry_range(partner: Partner) -> None:
    """Keep a valid period from the URL in the navigation links of a page without a form."""
    resolve_range(partner)


def api_link(path: str, **params: Any) -> str:
    """Return an API path with its query string (None values left out)."""
    clean = {k: v for k, v in params.items() if v not in (None, "")}
    return path + ("?" + urlencode(clean) if clean else "")


# The CSV helpers live in app/exports.py (one escaping rule for every download).
csv_response = table_csv
__all__ = ["csv_cell", "csv_response"]


# --- template helpers -------------------------------------------------------------------

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


def fmt_day(value: date | str | None) -> str:
    """Format a date as '3 Nov 2025'."""
    if value is None:
        return "—"
    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    return f"{value.day} {value:%b %Y}"


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


def fmt_moment(value: datetime | None) -> str:
    """Format a naive-UTC moment as '3 Nov 2025 14:05 UTC'."""
    if value is None:
        return "—"
    return f"{value.day} {value:%b %Y %H:%M} UTC"


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


def freshness() -> dict[str, Any]:
    """Return when the signed-in partner's newest event was received."""
    moment = metrics.data_freshness(current_partner())
    return {"at": moment, "text": fmt_moment(moment), "age": age_text(moment)}


def page_url(**params: Any) -> str:
    """Return this page's URL (same path arguments) with the given query parameters."""
    clean = {k: v for k, v in params.items() if v not in (None, "")}
    return url_for(request.endpoint or "overview.index", **(request.view_args or {}), **clean)


def init_app(app: Flask) -> None:
    """Register the template filters and globals every page uses."""
    @app.before_request
    def forget_previous_request() -> None:
        # g lives on the app context, which can outlive a request (the tests run many
        # requests in one); the signed-in user and the period must come from this one.
        g.pop("_login_user", None)
        g.pop("period_args", None)
        g.pop(current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"), None)

    app.add_template_filter(fmt_number, "num")
    app.add_template_filter(fmt_change, "change")
    app.add_template_filter(fmt_money, "money")
    app.add_template_filter(fmt_day, "day")
    app.add_template_filter(fmt_moment, "moment")
    app.add_template_filter(fmt_span, "span")
    app.add_template_filter(fmt_price, "price")

    @app.context_processor
    def dashboard_globals() -> dict[str, Any]:
        return {
            "nav_args": g.get("period_args", {}),
            "api_link": api_link,
            "page_url": page_url,
            "freshness": freshness,
            "has_endpoint": lambda name: name in current_app.view_functions,
            "logout_form": LogoutForm,
            "presets": PRESETS,
            "period_keys": PERIOD_KEYS,
            "plotly_js": plotly_js_filename(),
            "nbsp": Markup("&nbsp;"),
        }


def plotly_js_filename() -> str:
    """Return the static path of the plotly.js bundle the installed plotly expects."""
    from plotly.offline import get_plotlyjs_version

    return f"vendor/plotly-{get_plotlyjs_version()}.min.js"
