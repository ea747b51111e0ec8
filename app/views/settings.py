"""Settings (owner only): the partner's name and billing terms, and its timezone."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_wtf import FlaskForm
from wtforms import FieldList, Form, FormField, HiddenField, SelectField, StringField
from wtforms.validators import InputRequired, Length, Optional, ValidationError

from .. import billing, settings
from ..display import fmt_day, plural
from ..errors import AppError, sentence
from ..forms import choices, grouped_whole_number
from ..models import Partner
from ..periods import current_billing_period, is_valid_timezone, timezone_names
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


# --- the forms (only this page uses them) ----------------------------------------------

MAX_TIER_ROWS = 10
_PRICE = re.compile(r"[0-9]{1,9}(?:\.[0-9]{1,6})?")  # fullmatch: 0.05, 12, 0.000125


class TierRowForm(Form):
    """One band of the pricing tiers: its name, price and first unit (it runs to the next
    band's first unit; the last band is open-ended). A row left wholly blank is no band."""

    tier = StringField("Tier name", validators=[Optional(), Length(max=60)])
    price = StringField("Price per identification")
    start = StringField("From (identifications)")

    def is_blank(self) -> bool:
        """Tell whether every field of the row is empty."""
        return not any(str(f.data or "").strip() for f in (self.tier, self.price, self.start))


class SettingsForm(FlaskForm):
    """The partner's name, billing day, credit pool and pricing tiers (app/settings.py
    applies the rules; this form reads what was typed and checks each band)."""

    name = StringField(
        "Partner name", validators=[InputRequired(message="Enter the partner's name")]
    )
    billing_day = SelectField(
        "Billing day of the month",
        choices=choices((str(d), str(d)) for d in range(1, 29)),
        validate_choice=False,
    )
    credit_pool = StringField(
        "Credit pool (credits per billing period)",
        validators=[InputRequired(message="Enter the credit pool")],
    )
    tiers = FieldList(FormField(TierRowForm), min_entries=1, max_entries=MAX_TIER_ROWS)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Messages about the bands as a whole (none given; refused by the rules).
        self.tier_errors: list[str] = []

    def validate_name(self, field: StringField) -> None:
        """Require a name with more than spaces (accounts.check_name applies the rest)."""
        if not str(field.data or "").strip():
            raise ValidationError("Enter the partner's name")

    def validate_billing_day(self, field: SelectField) -> None:
        """Accept a day from 1 to 28 (every month has it)."""
        if str(field.data) not in {str(d) for d in range(1, 29)}:
            raise ValidationError("Choose a day from 1 to 28")

    def validate_credit_pool(self, field: StringField) -> None:
        """Require a whole number of credits, written as the pages show numbers."""
        value = grouped_whole_number(str(field.data or ""))
        if value is None or value < 0:
            raise ValidationError(
                "Enter a whole number of credits, such as 50000 or 50,000 "
                "(commas or spaces only between groups of three digits)"
            )

    def validate(self, extra_validators: Any = None) -> bool:
        """Check each field, then the bands together: the first starts at 0, each starts
        above the one before (where that one ends), every price is above 0."""
        valid = super().validate(extra_validators)
        rows = [row.form for row in self.tiers if not row.form.is_blank()]
        if not rows:
            self.tier_errors.append("Enter at least one pricing tier (it starts at 0)")
            return False
        previous: int | None = None
        for i, row in enumerate(rows):
            price_text = str(row.price.data or "").strip()
            if not _PRICE.fullmatch(price_text) or Decimal(price_text) <= 0:
                row.price.errors = [
                    *row.price.errors,
                    "Enter a price above 0, such as 0.08 (a dot for decimals, at most 6)",
                ]
                valid = False
            start = grouped_whole_number(str(row.start.data or ""))
            if start is None or start < 0:
                row.start.errors = [*row.start.errors, "Enter a whole number of identifications"]
                valid = False
                previous = None
                continue
            if i == 0 and start != 0:
                row.start.errors = [*row.start.errors, "The first tier must start at 0"]
                valid = False
            elif previous is not None and start <= previous:
                row.start.errors = [
                    *row.start.errors,
                    f"Must be above {previous:,}, where the tier before starts: each tier "
                    "starts where the one before ends",
                ]
                valid = False
            previous = start
        return valid

    def tier_values(self) -> list[dict[str, Any]]:
        """Return the bands as the API writes pricing tiers (after validate())."""
        rows = [row.form for row in self.tiers if not row.form.is_blank()]
        starts = [grouped_whole_number(str(r.start.data)) for r in rows]
        return [
            {
                "tier": (row.tier.data or "").strip() or f"Tier {i + 1}",
                "pricePerIdentification": str(row.price.data).strip(),
                "minUsage": starts[i],
                "maxUsage": starts[i + 1] if i + 1 < len(rows) else None,
            }
            for i, row in enumerate(rows)
        ]

    def pool_value(self) -> int:
        """Return the credit pool as an int (after validate())."""
        value = grouped_whole_number(str(self.credit_pool.data))
        assert value is not None
        return value


class TimezoneForm(FlaskForm):
    """A new reporting timezone; confirm is set by the confirmation step."""

    timezone = SelectField("Timezone", validate_choice=False)
    confirm = HiddenField()

    def validate_timezone(self, field: SelectField) -> None:
        """Accept an IANA timezone name this machine knows."""
        if not is_valid_timezone(str(field.data or "")):
            raise ValidationError(
                "Choose a timezone from the list (an IANA name such as Europe/Paris)"
            )


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
