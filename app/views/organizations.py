"""Organizations: the filtered table with its CSV, and one organization with its allocation."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from pydantic.alias_generators import to_camel

from .. import accounts, charts, metrics
from ..errors import AppError
from ..exports import export_filename, table_csv
from ..forms import (
    AllocationForm,
    OrganizationEditForm,
    OrganizationFilterForm,
    TierForm,
)
from ..models import TRIAL_CREDIT_CAP, Organization, Partner
from ..roles import can, requires
from .dashboard import current_partner
from .kpis import ORGANIZATION_KPIS
from .period import RangeState, resolve_range

bp = Blueprint("organizations", __name__)

FILTER_KEYS = ("status", "search", "externalId", "sort", "order", "pageSize")
# The table's columns: (field of metrics.OrgBreakdownItem, heading, sort key or None, group).
# The key figures come right after the name, so that on a phone, where the table scrolls
# sideways under its sticky name column, they are what shows first; who the organization is
# (external id, status, tier) closes the row.
COLUMNS = (
    ("name", "Organization", "name", ""),
    ("identifications", "Identifications", "identifications", "period"),
    ("credits_used", "Credits used", "creditsUsed", "period"),
    ("events", "Events", "events", "period"),
    ("quantity", "Quantity", "quantity", "period"),
    ("credits_allocated", "Allocation", "credits", "billing"),
    ("credits_used_this_billing_period", "Used", "creditsUsedThisBillingPeriod", "billing"),
    ("credits_available", "Available", "creditsAvailable", "billing"),
    ("external_id", "External ID", None, ""),
    ("status", "Status", "status", ""),
    ("tier", "Tier", None, ""),
)
# The status changes the organization page offers, by its status: (view of org_manage,
# the button's words). Each leads to a confirmation page.
STATUS_CHOICES = {
    "active": (("suspend", "Suspend"), ("cancel", "Cancel organization")),
    "suspended": (("reactivate", "Reactivate"), ("cancel", "Cancel organization")),
    "canceled": (("reactivate", "Reactivate"),),
}
# The CSV keeps its columns in the order it has always had (identity first).
CSV_FIELDS = (
    "organization_id",
    "name",
    "external_id",
    "status",
    "tier",
    "identifications",
    "credits_used",
    "events",
    "quantity",
    "credits_allocated",
    "credits_used_this_billing_period",
    "credits_available",
)
# The CSV's header names the columns as the API names the fields.
CSV_HEADER = [to_camel(name) for name in CSV_FIELDS]


def _table(partner: Partner, state: RangeState, all_rows: bool = False) -> dict[str, Any]:
    """Read the filters and return the rows of the table (or of every page) and paging."""
    form = OrganizationFilterForm(request.args)
    valid = form.validate()
    chosen = form.values(valid)
    page, page_size = chosen.pop("page"), chosen.pop("page_size")
    items, total = metrics.organization_breakdown(
        partner, state.period, page=1 if all_rows else page, page_size=page_size, **chosen
    )
    if all_rows and total > len(items):
        items, total = metrics.organization_breakdown(
            partner, state.period, page=1, page_size=total, **chosen
        )
    pages = max(1, -(-total // page_size))
    filters = {
        k: str(request.args[k])
        for k in FILTER_KEYS
        if request.args.get(k) and not getattr(form, k).errors
    }
    return {
        "form": form,
        "items": items,
        "total": total,
        "page": page,
        "page_size": page_size,
        "pages": pages,
        "sort": chosen["sort"],
        "order": chosen["order"],
        "filters": filters,
        "chosen": chosen,
    }


@bp.get("/organizations")
def index() -> str:
    """Show the organizations with their figures for the period."""
    partner = current_partner()
    state = resolve_range(partner)
    table = _table(partner, state)
    chosen = table["chosen"]
    # Every page's figures summed (same filters) for the table's totals row.
    totals = metrics.organization_breakdown_totals(
        partner,
        state.period,
        status=chosen["status"],
        search=chosen["search"],
        external_id=chosen["external_id"],
    )
    return render_template(
        "organizations/index.html",
        partner=partner,
        state=state,
        columns=COLUMNS,
        totals=totals,
        **table,
    )


@bp.get("/organizations.csv")
def export() -> Response:
    """Download the table as CSV: this page's rows, or every page's with all=1."""
    partner = current_partner()
    state = resolve_range(partner)
    every = request.args.get("all") == "1"
    table = _table(partner, state, all_rows=every)
    rows = [[getattr(item, f) for f in CSV_FIELDS] for item in table["items"]]
    # Every row, or one page of them (named, so two pages' files differ).
    what = "organizations" if every else f"organizations-page{table['page']}"
    name = export_filename(partner.slug, what, state.period.start, state.period.end)
    return table_csv(CSV_HEADER, rows, name)


def _detail_context(partner: Partner, org: Organization, state: RangeState) -> dict[str, Any]:
    period = state.period
    compared = metrics.comparable(partner, period)
    previous_period = compared.previous
    current = metrics.organization_summary(partner, org, period)
    previous = metrics.organization_summary(partner, org, previous_period)
    series = metrics.timeseries(partner, period, state.granularity, organization_id=org.id)
    previous_series = metrics.timeseries(
        partner, previous_period, state.granularity, organization_id=org.id
    )
    figures = {}
    if any(p.events for p in series) or any(p.events for p in previous_series):
        figures["identifications"] = charts.series_over_time(
            series, previous_series, period, previous_period, state.granularity
        )
    if current.by_type:
        figures["types"] = charts.usage_by_type(current.by_type)
    allocated = current.credits_allocated
    return {
        "partner": partner,
        "org": org,
        "state": state,
        "current": current,
        "previous": previous,
        "previous_period": previous_period,
        "compared": compared,
        "kpis": ORGANIZATION_KPIS,
        "change": metrics.compare(current, previous),
        "figures": figures,
        "allocations": accounts.allocation_history(org),
        "statuses": _statuses(org),
        "status_actions": STATUS_CHOICES.get(org.status, ()),
        "trial_cap": TRIAL_CREDIT_CAP,
        "percent_used": round(current.credits_used_this_billing_period * 100 / allocated, 1)
        if allocated
        else None,
        "pool": metrics.pool_status(partner),
    }


def _statuses(org: Organization) -> list[tuple[Any, str | None]]:
    """Return the status history, newest first, each change with the reason given for it."""
    reasons = accounts.status_reasons(org)
    return [
        (change, reasons.get(accounts.reason_key(change)))
        for change in reversed(accounts.status_history(org))
    ]


@bp.get("/organizations/<org_id>")
def detail(org_id: str) -> str:
    """Show one organization: its figures for the period, allocation and history."""
    partner, org, state = _opened(org_id)
    return detail_page(partner, org, state)


@bp.post("/organizations/<org_id>/allocation")
@requires("manage_organizations")
def allocate(org_id: str) -> Any:
    """Set the allocation with the API's rules; show a refusal beside the field."""
    partner, org, state = _opened(org_id)
    form = AllocationForm()
    status = 400
    # Back to the page the form was on: same period, same granularity. Only the values the
    # page understood are carried, and the target is built before anything changes.
    back = url_for("dashboard.organizations.detail", org_id=org.id, **state.link_args())
    if form.validate_on_submit():
        try:
            accounts.set_allocation(
                partner, org, form.credits_value(), (form.notes.data or "").strip() or None
            )
        except AppError as exc:
            status = exc.status
            target = form.notes if exc.field == "notes" else form.credits
            target.errors = [*target.errors, exc.message]
        else:
            # Shown inside the allocation card, which the page scrolls to.
            flash(
                f"Allocation of {org.name} set to {org.credits_allocated:,} credits.", "allocation"
            )
            return redirect(back + "#allocation")
    return detail_page(partner, org, state, form=form), status


def _opened(org_id: str) -> tuple[Partner, Organization, RangeState]:
    """Return the signed-in partner, its organization org_id (404 if unknown) and the period."""
    partner = current_partner()
    return partner, accounts.get_organization(partner, org_id), resolve_range(partner)


def detail_page(partner: Partner, org: Organization, state: RangeState, **forms: Any) -> str:
    """Render the organization page; the management forms (allocation, details, tier) only
    for a role that may use them, each filled with the organization's values unless given
    (a refused form comes back with what was sent and its messages)."""
    if can("manage_organizations"):
        credits = str(org.credits_allocated)
        forms.setdefault("form", AllocationForm(formdata=None, data={"credits": credits}))
        forms.setdefault("edit_form", OrganizationEditForm.of(org))
        forms.setdefault("tier_form", TierForm(formdata=None, data={"tier": org.tier}))
    return render_template(
        "organizations/detail.html", **forms, **_detail_context(partner, org, state)
    )
