"""WTForms forms shared by the dashboard's pages: the date range, the organization filters
and management, the allocation, signing in and out, and the fields and number readers the
pages share. A form that only one page uses lives beside its view (app/views/settings.py,
audit.py, keys.py, team.py, alerts.py, webhooks.py, account.py, invitations.py)."""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

from flask_wtf import FlaskForm
from wtforms import (
    FieldList,
    Form,
    FormField,
    HiddenField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    widgets,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, Optional, ValidationError

from .choices import ORG_TIERS, PRODUCT_TYPES
from .display import fmt_day
from .metrics import ORG_SORTS
from .models import ORG_STATUSES, TRIAL_CREDIT_CAP
from .periods import (
    GRANULARITIES,
    MAX_SPAN_DAYS,
    MIN_DATE,
    PRESETS,
    Period,
    PeriodError,
    local_today,
    preset_period,
    read_date,
    resolve_period,
)

# Applied with fullmatch; ASCII digits only, as the API ("١٢".isdigit() is true).
_WHOLE_NUMBER = re.compile(r"-?[0-9]{1,19}")
# A whole number as the pages write one ("1,000", "1 000" with a space or a no-break
# space) or plain digits: one kind of separator, only between groups of three digits.
_GROUPED = re.compile(r"-?[0-9]{1,3}(?:(?P<sep>[, \u00a0\u202f])[0-9]{3}(?:(?P=sep)[0-9]{3})*)?")


def grouped_whole_number(text: str) -> int | None:
    """Return the whole number text writes, with or without the grouping the pages show
    ("1,000", "1 000", "1000"); None for anything else ("1,00", "1.000", "1,000 000")."""
    text = text.strip()
    if _WHOLE_NUMBER.fullmatch(text):
        return int(text)
    match = _GROUPED.fullmatch(text)
    if match is None or match.group("sep") is None:
        return None
    return int(text.replace(match.group("sep"), ""))


PAGE_NUMBER = re.compile(r"[0-9]{1,9}")
ORG_SORT_CHOICES = tuple((key, label) for key, (label, _column) in ORG_SORTS.items())
PAGE_SIZES = (10, 20, 50, 100)


def choices(pairs: Any) -> list[SelectChoice]:
    """Return (value, label) pairs as WTForms select choices."""
    return [SelectChoice(value, label) for value, label in pairs]


class MultiCheckboxField(SelectMultipleField):
    """A multiple choice written as checkboxes."""

    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


def read_typed_date(typed: str, tz: str) -> date:
    """Read a date typed in a form as the API reads one (periods.read_date), or raise the
    message shown beside the field."""
    try:
        return read_date(typed, tz)
    except ValueError as exc:
        shown = typed if len(typed) <= 40 else typed[:39] + "…"
        raise ValidationError(f"“{shown}” is not a date; pick a day in the calendar") from exc


class GetForm(FlaskForm):
    """A form read from the query string: no CSRF token (it changes nothing)."""

    def __init__(self, formdata: Any, **kwargs: Any) -> None:
        super().__init__(formdata, meta={"csrf": False}, **kwargs)


class DateRangeForm(GetForm):
    """The period of a page: a preset of spec §6, or a custom start and end date.

    Dates are read as the API reads them (periods.read_date, then periods.resolve_period to
    fill a missing end), within the pages' own bounds: from MIN_DATE to today in the
    partner's timezone. An end after today is cut to today (end_cut keeps the date asked
    for, for the note the page shows); a start after today is an error. Messages are for
    people and write dates as the pages do ("3 Nov 2025").
    """

    preset = SelectField(
        "Preset", choices=choices([("", "Custom range"), *PRESETS.items()]), validate_choice=False
    )
    startDate = StringField("From")  # noqa: N815  (the API's parameter name)
    endDate = StringField("To")  # noqa: N815
    granularity = SelectField(
        "Granularity",
        choices=choices([("", "Automatic"), *((g, g.title()) for g in GRANULARITIES)]),
        validate_choice=False,
    )

    def __init__(self, formdata: Any, tz: str, default: Period, **kwargs: Any) -> None:
        super().__init__(formdata, **kwargs)
        self.tz = tz
        self.default = default
        self.today = local_today(tz)
        self.end_cut: date | None = None
        self._dates: dict[str, date] = {}

    @property
    def earliest(self) -> date:
        """Return the first day a page can show (the API's floor, 1 Jan 1970)."""
        return MIN_DATE

    def validate_preset(self, field: SelectField) -> None:
        """Accept only the presets of spec §6."""
        if field.data and field.data not in PRESETS:
            raise ValidationError(
                f"“{str(field.data)[:40]}” is not one of the periods; choose one of the buttons"
            )

    def validate_startDate(self, field: StringField) -> None:  # noqa: N802
        """Read the start date: a day from the earliest one through today."""
        day = self._read(field)
        if day is not None and day > self.today:
            raise ValidationError(f"The period starts after today ({fmt_day(self.today)})")

    def validate_endDate(self, field: StringField) -> None:  # noqa: N802
        """Read the end date: a day from the earliest one on; one after today is cut to today."""
        day = self._read(field)
        if day is not None and day > self.today:
            self.end_cut = day
            self._dates["endDate"] = self.today

    def validate_granularity(self, field: SelectField) -> None:
        """Accept day, week or month."""
        if field.data and field.data not in GRANULARITIES:
            raise ValidationError("Choose day, week or month")

    def _read(self, field: StringField) -> date | None:
        if not field.data or (self.preset.data in PRESETS):
            return None
        day = read_typed_date(str(field.data), self.tz)
        if day < self.earliest:
            raise ValidationError(
                f"{fmt_day(day)} is too early: the earliest date is {fmt_day(self.earliest)}"
            )
        self._dates[field.name] = day
        return day

    def validate(self, extra_validators: Any = None) -> bool:
        """Check each field, then the range as a whole (its order and span)."""
        valid = super().validate(extra_validators)
        if self.preset.errors or self.startDate.errors or self.endDate.errors:
            return False
        if self.preset.data:
            return valid
        start, end = self._dates.get("startDate"), self._dates.get("endDate")
        # Order and span problems are shown beside the end date, where the fix usually is.
        if start is not None and end is not None and end < start:
            self.endDate.errors = [
                *self.endDate.errors,
                f"The end date is before the start date ({fmt_day(start)})",
            ]
            return False
        try:
            self.period()
        except PeriodError:
            # Only the span is left to refuse (a start alone runs to today, an end alone
            # keeps the default's length): count it as resolve_period did.
            days = ((end or self.default.end) - (start or self.earliest)).days + 1
            target = self.endDate if self.endDate.data else self.startDate
            target.errors = [
                *target.errors,
                f"The period is {days:,} days long; it can be at most {MAX_SPAN_DAYS:,} days "
                "(about ten years)",
            ]
            return False
        return valid

    def period(self) -> Period:
        """Return the chosen period (after validate()); the default when nothing is chosen."""
        if self.preset.data:
            return preset_period(self.preset.data, self.today)
        start, end = self._dates.get("startDate"), self._dates.get("endDate")
        return resolve_period(
            start.isoformat() if start else None,
            end.isoformat() if end else None,
            self.tz,
            self.default,
        )


class OrganizationFilterForm(GetForm):
    """Filters, sorting and paging of the organization table."""

    status = SelectField(
        "Status",
        choices=choices([("", "Any status"), *((s, s.title()) for s in ORG_STATUSES)]),
        validate_choice=False,
    )
    search = StringField("Name contains", validators=[Optional(), Length(max=200)])
    externalId = StringField(
        "External ID",  # noqa: N815
        validators=[Optional(), Length(max=200)],
    )
    sort = SelectField("Sort by", choices=choices(ORG_SORT_CHOICES), validate_choice=False)
    order = SelectField(
        "Order",
        choices=choices([("desc", "Descending"), ("asc", "Ascending")]),
        validate_choice=False,
    )
    page = StringField("Page")
    pageSize = SelectField(
        "Rows",  # noqa: N815
        choices=choices((str(n), str(n)) for n in PAGE_SIZES),
        default="20",
        validate_choice=False,
    )

    def validate_status(self, field: SelectField) -> None:
        """Accept the organization statuses."""
        if field.data and field.data not in ORG_STATUSES:
            raise ValidationError(f"status must be one of {', '.join(ORG_STATUSES)}")

    def validate_sort(self, field: SelectField) -> None:
        """Accept the sortable columns."""
        if field.data and field.data not in dict(ORG_SORT_CHOICES):
            raise ValidationError("unknown sort column")

    def validate_order(self, field: SelectField) -> None:
        """Accept asc or desc."""
        if field.data and field.data not in ("asc", "desc"):
            raise ValidationError("order must be asc or desc")

    def validate_page(self, field: StringField) -> None:
        """Accept a whole number of at least 1."""
        if field.data and (not PAGE_NUMBER.fullmatch(str(field.data)) or int(field.data) < 1):
            raise ValidationError("page must be a whole number of at least 1")

    def validate_pageSize(self, field: SelectField) -> None:  # noqa: N802
        """Accept a page size from 1 to 100."""
        text = str(field.data or "")
        if text and (not PAGE_NUMBER.fullmatch(text) or not 1 <= int(text) <= 100):
            raise ValidationError("rows per page must be between 1 and 100")

    def values(self, valid: bool) -> dict[str, Any]:
        """Return the filters to apply: each field's value when valid, else its default."""

        def ok(field: Any) -> bool:
            return valid or not field.errors

        return {
            "status": (self.status.data or None) if ok(self.status) else None,
            "search": (self.search.data or "").strip() or None if ok(self.search) else None,
            "external_id": (self.externalId.data or "").strip() or None
            if ok(self.externalId)
            else None,
            "sort": (self.sort.data or "identifications") if ok(self.sort) else "identifications",
            "order": (self.order.data or "desc") if ok(self.order) else "desc",
            "page": int(self.page.data) if self.page.data and ok(self.page) else 1,
            "page_size": int(self.pageSize.data)
            if self.pageSize.data and ok(self.pageSize)
            else 20,
        }


class AllocationForm(FlaskForm):
    """Set an organization's allocation; the pool and trial rules are applied by accounts."""

    credits = StringField(
        "New allocation (credits)", validators=[InputRequired(message="credits is required")]
    )
    notes = TextAreaField("Notes", validators=[Optional()])

    def validate_credits(self, field: StringField) -> None:
        """Require a whole number, written as the pages show numbers (its range is checked
        by accounts.check_credits)."""
        if grouped_whole_number(str(field.data)) is None:
            raise ValidationError(
                "Enter a whole number of credits, such as 1000 or 1,000 "
                "(commas or spaces only between groups of three digits)"
            )

    def credits_value(self) -> int:
        """Return the credits as an int (after validate())."""
        value = grouped_whole_number(str(self.credits.data))
        assert value is not None
        return value


def _whole_number_or_blank(field: StringField) -> None:
    """Require a whole number written as the pages write numbers, when one is given."""
    if str(field.data or "").strip() and grouped_whole_number(str(field.data)) is None:
        raise ValidationError(
            "Enter a whole number of credits, such as 1000 or 1,000 "
            "(commas or spaces only between groups of three digits)"
        )


TIER_LABELS = {"trial": f"Trial (at most {TRIAL_CREDIT_CAP:,} credits)", "paid": "Paid"}
TIER_CHOICES = tuple((tier, TIER_LABELS.get(tier, tier.title())) for tier in ORG_TIERS)
PRODUCT_TYPE_CHOICES = tuple((p, p) for p in PRODUCT_TYPES)


def _text(field: Any) -> str:
    return str(field.data or "").strip()


class OrganizationCreateForm(FlaskForm):
    """A new organization: the API's POST /organizations in a form; accounts decides.

    The field names are the API's, so that a refusal naming a field lands beside it.
    """

    name = StringField("Name", validators=[InputRequired(message="name is required")])
    externalId = StringField("External ID (optional)")  # noqa: N815
    tier = SelectField("Tier", choices=choices(TIER_CHOICES), validate_choice=False)
    productType = SelectField(  # noqa: N815
        "Product type", choices=choices(PRODUCT_TYPE_CHOICES), validate_choice=False
    )
    initialCredits = StringField("First allocation (credits)", default="0")  # noqa: N815

    def validate_initialCredits(self, field: StringField) -> None:  # noqa: N802
        """Require a whole number (blank is 0); its range is accounts.check_credits's."""
        _whole_number_or_blank(field)

    def values(self) -> dict[str, Any]:
        """Return the keyword arguments of accounts.create_organization (after validate())."""
        return {
            "name": str(self.name.data or ""),
            "external_id": _text(self.externalId) or None,
            "initial_credits": grouped_whole_number(_text(self.initialCredits) or "0"),
            "tier": self.tier.data,
            "product_type": self.productType.data,
        }


class MetadataRowForm(Form):
    """One key and its value (a row of the metadata editor; no CSRF of its own)."""

    key = StringField("Key")
    value = StringField("Value")


def shown_value(value: Any) -> str:
    """Return a metadata value as its row shows it: text as it is, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


class OrganizationEditForm(FlaskForm):
    """Name, external ID, product type and metadata of an organization.

    Metadata is edited as rows of key and value: a value is stored as text, except that a
    value the API set as a number, a list or an object (shown as JSON) is kept as it was
    while its row is left unchanged. A blank key with a blank value is no row.
    """

    EMPTY_ROWS = 2

    name = StringField("Name", validators=[InputRequired(message="name is required")])
    externalId = StringField("External ID")  # noqa: N815
    productType = SelectField(  # noqa: N815
        "Product type", choices=choices(PRODUCT_TYPE_CHOICES), validate_choice=False
    )
    metadata = FieldList(FormField(MetadataRowForm), min_entries=EMPTY_ROWS)

    def __init__(self, *args: Any, original: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.original = original
        self.metadata_errors: list[str] = []
        self.parsed_metadata: dict[str, Any] = {}

    @classmethod
    def of(cls, org: Any) -> OrganizationEditForm:
        """Return the form filled with an organization's values (and empty rows to add)."""
        meta = dict(org.meta or {})
        rows = [{"key": k, "value": shown_value(v)} for k, v in meta.items()]
        rows += [{"key": "", "value": ""}] * cls.EMPTY_ROWS
        form = cls(
            formdata=None,
            original=meta,
            data={
                "name": org.name,
                "externalId": org.external_id or "",
                "productType": org.product_type,
                "metadata": rows,
            },
        )
        return form

    def validate(self, extra_validators: Any = None) -> bool:
        """Check the fields, then read the metadata rows into parsed_metadata."""
        valid = super().validate(extra_validators)
        parsed: dict[str, Any] = {}
        for entry in self.metadata:
            key, text = _text(entry.form.key), _text(entry.form.value)
            if not key:
                if text:
                    entry.form.key.errors = ["Give this value a key, or clear the value"]
                    valid = False
                continue
            if key in parsed:
                entry.form.key.errors = [f"“{key[:40]}” is already a key above; keys are unique"]
                valid = False
                continue
            old = self.original.get(key)
            kept = key in self.original and not isinstance(old, str) and text == shown_value(old)
            parsed[key] = old if kept else text
        self.parsed_metadata = parsed
        return valid

    def changes(self) -> dict[str, Any]:
        """Return the changes for accounts.update_organization, named as the API names them
        (after validate(); the unchanged ones are left out by accounts' audit)."""
        return {
            "name": str(self.name.data or ""),
            "externalId": _text(self.externalId) or None,
            "productType": self.productType.data,
            "metadata": self.parsed_metadata,
        }


class TierForm(FlaskForm):
    """Change an organization's tier (accounts.set_tier)."""

    # Its own id: the card around it is #tier, where the page comes back after a change.
    tier = SelectField(
        "Tier", choices=choices(TIER_CHOICES), validate_choice=False, id="tier-choice"
    )


class StatusForm(FlaskForm):
    """Confirm a status change, with an optional reason (accounts.set_status checks it)."""

    reason = TextAreaField("Reason (optional)")


class LoginForm(FlaskForm):
    """Email and password."""

    email = StringField(
        "Email", validators=[InputRequired(message="enter your email"), Length(max=254)]
    )
    password = PasswordField(
        "Password", validators=[InputRequired(message="enter your password"), Length(max=1024)]
    )
    next = HiddenField()


class LogoutForm(FlaskForm):
    """An empty form: only its CSRF token matters."""
