"""The period a page shows: read from the query string, carried in every navigation link."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import g, request

from ..forms import DateRangeForm
from ..models import Partner
from ..periods import PRESETS, Period, auto_granularity, local_today, preset_period
from .dashboard import current_partner

PERIOD_KEYS = ("preset", "startDate", "endDate")
# What a page with a period shows when its URL names none (or names an invalid one): a
# preset the period control shows as selected, so every period on screen has a name.
LANDING_PRESET = "last_30_days"


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
        return PRESETS[self.preset] if self.preset else "Custom"

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
    """Read the period (and granularity) from the query string; fall back when invalid.

    The valid period is also left in g.period_args, where the navigation links of the
    page (nav_args in every template) pick it up.
    """
    landing = default is None
    default = default or preset_period(LANDING_PRESET, local_today(partner.timezone))
    form = DateRangeForm(request.args, tz=partner.timezone, default=default)
    form.validate()
    period_ok = not (form.preset.errors or form.startDate.errors or form.endDate.errors)
    period = form.period() if period_ok else default
    preset = form.preset.data or None if period_ok else None
    args: dict[str, Any] = {}
    chosen_dates = period_ok and any(request.args.get(k) for k in ("startDate", "endDate"))
    if landing and not preset and not chosen_dates:
        preset = LANDING_PRESET
    if period_ok and form.preset.data:
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
    return RangeState(
        form=form,
        period=period,
        default=default,
        args=args,
        preset=preset,
        fallback=not period_ok,
        granularity=granularity,
        granularity_auto=not chosen,
        granularity_error=granularity_error,
    )


def partner_keeping_range() -> Partner:
    """Return the signed-in partner of a page without a period form, keeping a valid
    period from the URL in the page's navigation links."""
    partner = current_partner()
    resolve_range(partner)
    return partner


def nav_args() -> dict[str, Any]:
    """Return the period arguments this request's navigation links carry."""
    args: dict[str, Any] = g.get("period_args", {})
    return args
