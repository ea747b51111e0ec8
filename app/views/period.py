"""The period a page shows: read from the query string, carried in every navigation link."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from flask import g, request
from werkzeug.datastructures import MultiDict

from ..forms import DateRangeForm
from ..models import Partner
from ..periods import PRESETS, Period, auto_granularity, local_today, preset_period
from .dashboard import current_partner

PERIOD_KEYS = ("preset", "startDate", "endDate")
# What a page with a period shows when its URL names none (or names an invalid one and
# carries no valid period shown before): a preset the period control shows as selected,
# so every period on screen has a name.
LANDING_PRESET = "last_30_days"
# The custom-range form carries the period on screen under this name, so that a range it
# sends that cannot be used leaves the figures where they were (the URL alone decides the
# page: a bookmarked or shared address shows the same figures to everyone).
SHOWN_KEY = "shown"


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
    # Set when the end asked for was after today and the period was cut there.
    end_cut: date | None = None

    @property
    def label(self) -> str:
        """Return a human name of the period (the preset's, or its dates)."""
        return PRESETS[self.preset] if self.preset else "Custom"

    @property
    def shown(self) -> str:
        """Return the period on screen as the form carries it: a preset, or start..end."""
        if self.preset:
            return self.preset
        return f"{self.period.start.isoformat()}..{self.period.end.isoformat()}"

    def link_args(self) -> dict[str, Any]:
        """Return the query arguments that reopen this view: the period, and the
        granularity when one was chosen (never raw request arguments)."""
        if self.granularity_auto:
            return dict(self.args)
        return {**self.args, "granularity": self.granularity}

    def api_params(self) -> dict[str, str]:
        """Return the period as the API's startDate and endDate."""
        return self.period.iso()


def _shown_before(tz: str, default: Period) -> tuple[Period, str | None, dict[str, Any]] | None:
    """Return the valid period the form says was on screen when it was sent (its period,
    preset and link arguments), or None when it names none that can still be used."""
    text = str(request.args.get(SHOWN_KEY, ""))[:100]
    if text in PRESETS:
        data = {"preset": text}
    elif text.count("..") == 1:
        start, end = text.split("..")
        data = {"startDate": start, "endDate": end}
    else:
        return None
    form = DateRangeForm(MultiDict(data), tz=tz, default=default)
    if not form.validate() or form.end_cut is not None:
        return None
    return form.period(), data.get("preset"), data


def resolve_range(partner: Partner, default: Period | None = None) -> RangeState:
    """Read the period (and granularity) from the query string; fall back when invalid.

    An invalid period leaves the figures on the period the form says was shown before (or
    on the default, the landing preset, when it names none) while the form keeps what was
    typed, with its messages. The period used is also left in g.period_args, where the
    navigation links of the page (nav_args in every template) pick it up.
    """
    landing = default is None
    default = default or preset_period(LANDING_PRESET, local_today(partner.timezone))
    form = DateRangeForm(request.args, tz=partner.timezone, default=default)
    form.validate()
    period_ok = not (form.preset.errors or form.startDate.errors or form.endDate.errors)
    args: dict[str, Any] = {}
    preset: str | None = None
    if period_ok:
        period = form.period()
        preset = form.preset.data or None
        if preset:
            args = {"preset": preset}
        else:
            args = {k: str(request.args[k]) for k in PERIOD_KEYS[1:] if request.args.get(k)}
            if form.end_cut is not None:
                args["endDate"] = period.end.isoformat()
    elif (before := _shown_before(partner.timezone, default)) is not None:
        period, preset, args = before
    else:
        period = default
    if landing and not preset and not args:
        preset = LANDING_PRESET
    granularity_error = bool(form.granularity.errors)
    chosen = form.granularity.data if not granularity_error else ""
    granularity = chosen or auto_granularity(period)
    # The custom-range inputs show the dates in use; after an error in a date, what was
    # typed (both dates, so the pair still makes sense beside its message).
    if not (form.startDate.errors or form.endDate.errors):
        form.startDate.data = period.start.isoformat()
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
        end_cut=form.end_cut if period_ok else None,
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
