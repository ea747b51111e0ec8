"""The audit log page: who changed what and when, filtered, paged, and as CSV."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, render_template, request

from .. import audit
from ..exports import export_filename, table_csv
from ..forms import AuditFilterForm
from ..models import AuditEntry, Partner
from ..periods import local_today
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
