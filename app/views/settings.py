"""Settings (owner only): the partner's name and billing terms, and its timezone."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, url_for

from .. import billing, settings
from ..display import fmt_day, plural
from ..errors import AppError, sentence
from ..forms import MAX_TIER_ROWS, SettingsForm, TimezoneForm
from ..models import Partner
from ..periods import current_billing_period, timezone_names
from ..roles import requires
from ..terms import next_change_date, of_partner, scheduled_terms
from .dashboard import current_partner

bp = Blueprint("settings", __name__)

# Which form field shows a refusal of app/settings.py, by the field it names.
_FIELDS = {
    "name": "name",
    "creditPoolTotal": "credit_pool",
    "billingDayOfMonth": "billing_day",
}


def _settings_form(partner: Partner) -> SettingsForm:
    """Return the form filled with the partner's newest settings, and one blank band."""
    newest = of_partner(partner)
    rows = [
        {
            "tier": t["tier"],
            "price": str(t["pricePerIdentification"]),
            "start": f"{t['minUsage']:,}",
        }
        for t in newest.pricing_tiers
    ]
    # formdata=None: on the timezone form's POST the request's fields are not this form's.
    form = SettingsForm(
        formdata=None,
        data={
            "name": partner.name,
            "billing_day": str(newest.billing_day_of_month),
            "credit_pool": f"{newest.credit_pool_total:,}",
            "tiers": rows[: MAX_TIER_ROWS - 1] + [{}],
        },
    )
    return form


def _timezone_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in timezone_names()]


def _timezone_form(partner: Partner) -> TimezoneForm:
    """Return the timezone form showing the partner's timezone."""
    form = TimezoneForm(formdata=None, data={"timezone": partner.timezone})
    form.timezone.choices = _timezone_choices()
    return form


def _page(
    partner: Partner,
    form: SettingsForm,
    tz_form: TimezoneForm,
    preview: settings.TimezonePreview | None = None,
) -> str:
    current = current_billing_period(partner)
    return render_template(
        "settings/index.html",
        partner=partner,
        form=form,
        tz_form=tz_form,
        preview=preview,
        cli_command=settings.cli_command(partner, preview.timezone) if preview else None,
        limit=settings.PAGE_TIMEZONE_LIMIT,
        current_period=current,
        current_terms=billing.shown_terms(billing.terms_for(partner, current.start)),
        next_terms=_shown_or_none(partner),
        applies_from=next_change_date(partner),
    )


def _shown_or_none(partner: Partner) -> billing.PeriodTerms | None:
    scheduled = scheduled_terms(partner)
    return None if scheduled is None else billing.shown_terms(scheduled)


@bp.get("/settings")
@requires("manage_settings")
def index() -> str:
    """Show the settings: name and billing terms, and the timezone."""
    partner = current_partner()
    return _page(partner, _settings_form(partner), _timezone_form(partner))


@bp.post("/settings")
@requires("manage_settings")
def save() -> Any:
    """Save the name (now) and the pool, prices and billing day (from the next period)."""
    partner = current_partner()
    form = SettingsForm()
    status = 400
    if form.validate_on_submit():
        try:
            change = settings.update_settings(
                partner,
                name=form.name.data,
                credit_pool_total=form.pool_value(),
                billing_day_of_month=int(form.billing_day.data),
                pricing_tiers=form.tier_values(),
            )
        except AppError as exc:
            status = exc.status
            if exc.field == "pricingTiers":
                form.tier_errors.append(sentence(exc.message))
            else:
                target = getattr(form, _FIELDS.get(exc.field or "", "name"))
                target.errors = [*target.errors, sentence(exc.message)]
        else:
            if not change.after:
                flash("Nothing changed: the settings were already these.", "settings")
            elif change.effective_from is not None:
                flash(
                    "Settings saved. The pool, prices and billing day apply from the billing "
                    f"period starting {fmt_day(change.effective_from)}; the current one keeps "
                    "its terms.",
                    "settings",
                )
            else:
                flash("Settings saved.", "settings")
            return redirect(url_for("dashboard.settings.index") + "#terms")
    # Keep one blank band to add a tier, as the page offers it.
    if len(form.tiers) < MAX_TIER_ROWS and not form.tiers[-1].form.is_blank():
        form.tiers.append_entry()
    return _page(partner, form, _timezone_form(partner)), status


@bp.post("/settings/timezone")
@requires("manage_settings")
def timezone() -> Any:
    """Change the timezone in two steps: say how many events move, then move them."""
    partner = current_partner()
    tz_form = TimezoneForm()
    tz_form.timezone.choices = _timezone_choices()
    if not tz_form.validate_on_submit():
        return _page(partner, _settings_form(partner), tz_form), 400
    tz = str(tz_form.timezone.data)
    if tz == partner.timezone:
        flash(f"The timezone is already {tz}: nothing changed.", "timezone")
        return redirect(url_for("dashboard.settings.index") + "#time-zone")
    preview = settings.preview_timezone(partner, tz)
    if not preview.page_allowed:
        return _page(partner, _settings_form(partner), tz_form, preview), 422
    if tz_form.confirm.data != "yes":
        return _page(partner, _settings_form(partner), tz_form, preview)
    try:
        moved = settings.change_timezone(partner, tz)
    except AppError as exc:
        tz_form.timezone.errors = [sentence(exc.message)]
        return _page(partner, _settings_form(partner), tz_form), exc.status
    flash(
        f"Timezone set to {tz}: {plural(moved, 'event')} moved to another day, and the "
        "daily figures were rebuilt.",
        "timezone",
    )
    return redirect(url_for("dashboard.settings.index") + "#time-zone")
