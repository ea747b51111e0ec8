"""The audit log page: who changed what and when, filtered, paged, and as CSV."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, Response, render_template, request
from wtforms import SelectField, StringField
from wtforms.validators import Optional, ValidationError

from .. import audit
from ..audit import OBJECT_TYPES, AuditFilters, check_action, check_actor, check_object_type
from ..display import fmt_day
from ..errors import AppError
from ..exports import export_filename, table_csv
from ..forms import PAGE_NUMBER, GetForm, choices, read_typed_date
from ..models import AuditEntry, Partner
from ..periods import MAX_DATE, MIN_DATE, local_today
from ..roles import requires
from ..timeutil import iso_z
from .dashboard import current_partner
from .filters import age_text

bp = Blueprint("audit", __name__)

# How the page names each kind of actor.
ACTOR_KINDS = {"user": "dashboard user", "api_key": "API key", "cli": "command line"}

FILTER_KEYS = ("actor", "objectType", "action", "startDate", "endDate", "pageSize")
# The CSV's columns, named as the API names the fields; before and after as JSON text.
CSV_HEADER = [
    "occurredAt",
    "actorKind",
    "actor",
    "objectType",
    "objectId",
    "objectLabel",
    "action",
    "before",
    "after",
    "clientAddress",
]


class AuditFilterForm(GetForm):
    """The audit log's filters: who, object type, action, the days from and to, paging.

    Each value is checked by the same rule the API applies (app/audit.py), and the dates
    are read as the date-range form reads them; a message goes beside its field.
    """

    actor = StringField("Who", validators=[Optional()])
    objectType = SelectField(  # noqa: N815  (the API's parameter name)
        "Object",
        choices=choices([("", "Any object"), *((t, t.replace("_", " ")) for t in OBJECT_TYPES)]),
        validate_choice=False,
    )
    action = SelectField("Action", choices=choices([("", "Any action")]), validate_choice=False)
    startDate = StringField("From")  # noqa: N815
    endDate = StringField("To")  # noqa: N815
    page = StringField("Page")
    pageSize = SelectField(  # noqa: N815
        "Rows",
        choices=choices((str(n), str(n)) for n in (20, 50, 100)),
        default="50",
        validate_choice=False,
    )

    def __init__(self, formdata: Any, tz: str, known_actions: list[str], **kwargs: Any) -> None:
        super().__init__(formdata, **kwargs)
        self.tz = tz
        self.today = local_today(tz)
        self._dates: dict[str, date] = {}
        # The actions the log holds, and one asked for in the address that it does not.
        listed = list(known_actions)
        if self.action.data and self.action.data not in listed:
            listed.append(str(self.action.data))
        self.action.choices = choices([("", "Any action"), *((a, a) for a in listed)])

    def _checked(self, check: Any, field: Any) -> None:
        try:
            check(field.data)
        except AppError as exc:
            raise ValidationError(exc.message) from exc

    def validate_actor(self, field: StringField) -> None:
        """Accept a part of who made the change (audit.check_actor)."""
        self._checked(check_actor, field)

    def validate_objectType(self, field: SelectField) -> None:  # noqa: N802
        """Accept an object type of the log (audit.check_object_type)."""
        self._checked(check_object_type, field)

    def validate_action(self, field: SelectField) -> None:
        """Accept an action shaped as the log writes them (audit.check_action)."""
        self._checked(check_action, field)

    def _day(self, field: StringField) -> None:
        if not field.data or not str(field.data).strip():
            return
        day = read_typed_date(str(field.data), self.tz)
        if not MIN_DATE <= day <= MAX_DATE:
            raise ValidationError(f"Pick a day from {fmt_day(MIN_DATE)} to {fmt_day(MAX_DATE)}")
        self._dates[field.name] = day

    def validate_startDate(self, field: StringField) -> None:  # noqa: N802
        """Read the first day shown."""
        self._day(field)

    def validate_endDate(self, field: StringField) -> None:  # noqa: N802
        """Read the last day shown."""
        self._day(field)

    def validate_page(self, field: StringField) -> None:
        """Accept a whole number of at least 1."""
        if field.data and (not PAGE_NUMBER.fullmatch(str(field.data)) or int(field.data) < 1):
            raise ValidationError("page must be a whole number of at least 1")

    def validate_pageSize(self, field: SelectField) -> None:  # noqa: N802
        """Accept 20, 50 or 100."""
        if field.data and str(field.data) not in ("20", "50", "100"):
            raise ValidationError("rows per page must be 20, 50 or 100")

    def validate(self, extra_validators: Any = None) -> bool:
        """Check each field, then that the end date is not before the start date."""
        valid = super().validate(extra_validators)
        start, end = self._dates.get("startDate"), self._dates.get("endDate")
        if start is not None and end is not None and end < start:
            self.endDate.errors = [
                *self.endDate.errors,
                f"The end date is before the start date ({fmt_day(start)})",
            ]
            return False
        return valid

    def filters(self) -> AuditFilters:
        """Return the filters to apply (after validate()): a field in error is left out."""

        def ok(field: Any) -> bool:
            return not field.errors

        return AuditFilters(
            actor=check_actor(self.actor.data) if ok(self.actor) else None,
            object_type=(self.objectType.data or None) if ok(self.objectType) else None,
            action=(self.action.data or None) if ok(self.action) else None,
            start=self._dates.get("startDate") if ok(self.startDate) else None,
            end=self._dates.get("endDate") if ok(self.endDate) else None,
        )

    def paging(self) -> tuple[int, int]:
        """Return (page, page size), each its default when in error."""
        page = int(self.page.data) if self.page.data and not self.page.errors else 1
        size = int(self.pageSize.data) if self.pageSize.data and not self.pageSize.errors else 50
        return page, size


def _form(partner: Partner) -> AuditFilterForm:
    form = AuditFilterForm(request.args, partner.timezone, audit.actions(partner))
    form.validate()
    return form


def _filters_in_url(form: AuditFilterForm) -> dict[str, str]:
    """Return the filters of the address the page understood (for links and the CSV)."""
    return {
        k: str(request.args[k])
        for k in FILTER_KEYS
        if request.args.get(k) and not getattr(form, k).errors
    }


@bp.get("/audit-log")
@requires("view_audit")
def index() -> Any:
    """Show the partner's audit log, newest first, with its filters."""
    partner = current_partner()
    form = _form(partner)
    filters = form.filters()
    page, page_size = form.paging()
    found, total = audit.entries(partner, filters, page, page_size)
    pages = max(1, -(-total // page_size))
    return render_template(
        "audit/index.html",
        partner=partner,
        form=form,
        entries=[(entry, audit.changes(entry, partner.timezone)) for entry in found],
        total=total,
        page=page,
        page_size=page_size,
        pages=pages,
        filters=_filters_in_url(form),
        filtered=any(
            (filters.actor, filters.object_type, filters.action, filters.start, filters.end)
        ),
        actor_kinds=ACTOR_KINDS,
        age_text=age_text,
    )


def _csv_row(entry: AuditEntry) -> list[Any]:
    return [
        iso_z(entry.occurred_at),
        entry.actor_kind,
        entry.actor,
        entry.object_type,
        entry.object_id,
        entry.object_label,
        entry.action,
        audit.json_text(entry.before),
        audit.json_text(entry.after),
        entry.client_address,
    ]


@bp.get("/audit-log.csv")
@requires("view_audit")
def export() -> Response:
    """Download every entry the filters match (all pages), newest first, as CSV.

    Named after the days it covers: the filter's, or from the day of the oldest entry
    to today when the filter leaves them open. The entries are read a thousand at a time.
    """
    partner = current_partner()
    form = _form(partner)
    filters = form.filters()
    end = filters.end or local_today(partner.timezone)
    start = filters.start
    if start is None:
        first = audit.first_day(partner)
        start = first if first is not None and first <= end else end
    name = export_filename(partner.slug, "audit-log", start, end)
    rows = (_csv_row(entry) for entry in audit.all_entries(partner, filters))
    return table_csv(CSV_HEADER, rows, name)
