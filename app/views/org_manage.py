"""Running organizations from the dashboard: create, edit, tier, suspend, reactivate, cancel.

Every change goes through app/accounts.py, as the API's does: the same rules, the same
refusals (shown beside the field they name, never a 500) and the same audit entries. Only
roles with manage_organizations (owner, admin) reach these views; an analyst gets 403.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Blueprint, flash, redirect, render_template, url_for
from werkzeug.wrappers import Response

from .. import accounts, metrics
from ..errors import AppError
from ..forms import OrganizationCreateForm, OrganizationEditForm, StatusForm, TierForm
from ..models import Organization
from ..roles import requires
from .dashboard import current_partner
from .organizations import _opened, detail_page

bp = Blueprint("org_manage", __name__)


def _show_refusal(form: Any, exc: AppError, fields: dict[str, str]) -> None:
    """Put a refusal of accounts beside the field it names (fields: the API's name -> the
    form's field); one that names no field of the form goes above the form's button."""
    name = fields.get(exc.field or "")
    if name is not None:
        target = getattr(form, name)
        target.errors = [*target.errors, exc.message]
    else:
        form.form_errors = [*form.form_errors, exc.message]


# --- a new organization ------------------------------------------------------------------

CREATE_FIELDS = {
    "name": "name",
    "externalId": "externalId",
    "initialCredits": "initialCredits",
    "credits": "initialCredits",  # InsufficientCredits names the credits
    "tier": "tier",
    "productType": "productType",
}


@bp.route("/organizations/new", methods=["GET", "POST"])
@requires("manage_organizations")
def new() -> Any:
    """Show the new-organization form; create the organization with the API's rules."""
    partner = current_partner()
    form = OrganizationCreateForm()
    status = 200
    if form.is_submitted():
        status = 400
        if form.validate():
            try:
                org = accounts.create_organization(partner, **form.values())
            except AppError as exc:
                status = exc.status
                _show_refusal(form, exc, CREATE_FIELDS)
            else:
                flash(f"{org.name} created.", "success")
                return redirect(url_for("dashboard.organizations.detail", org_id=org.id))
    page = render_template(
        "organizations/new.html", form=form, partner=partner, pool=metrics.pool_status(partner)
    )
    return page, status


# --- name, external id, product type and metadata; tier ------------------------------------

EDIT_FIELDS = {"name": "name", "externalId": "externalId", "productType": "productType"}


@bp.post("/organizations/<org_id>/details")
@requires("manage_organizations")
def edit(org_id: str) -> Any:
    """Change the name, external ID, product type and metadata; back to the Details card."""
    partner, org, state = _opened(org_id)
    form = OrganizationEditForm(original=dict(org.meta or {}))
    status = 400
    if form.validate_on_submit():
        try:
            changed = accounts.update_organization(partner, org, form.changes())
        except AppError as exc:
            status = exc.status
            if exc.field == "metadata":
                form.metadata_errors.append(exc.message)
            else:
                _show_refusal(form, exc, EDIT_FIELDS)
        else:
            flash(f"{org.name} saved." if changed else "Nothing changed.", "org-details")
            return _back(org, state, "details")
    return detail_page(partner, org, state, edit_form=form), status


@bp.post("/organizations/<org_id>/tier")
@requires("manage_organizations")
def tier(org_id: str) -> Any:
    """Change the tier; a refusal (the trial cap) is shown beside the field."""
    partner, org, state = _opened(org_id)
    form = TierForm()
    status = 400
    if form.validate_on_submit():
        before = org.tier
        try:
            accounts.set_tier(partner, org, form.tier.data)
        except AppError as exc:
            status = exc.status
            _show_refusal(form, exc, {"tier": "tier"})
        else:
            flash(
                f"{org.name} is now {org.tier}."
                if org.tier != before
                else f"{org.name} was already {org.tier}.",
                "org-tier",
            )
            return _back(org, state, "tier")
    return detail_page(partner, org, state, tier_form=form), status


# --- status: a confirmation page per change ----------------------------------------------


@dataclass(frozen=True)
class StatusAction:
    """A status change the pages offer: its verb, the status it sets, and its words."""

    verb: str
    status: str
    title: str  # "Suspend {name}?"
    button: str  # the confirming button
    keep: str  # the way back without changing anything
    done: str  # the confirmation after it


STATUS_ACTIONS = {
    a.verb: a
    for a in (
        StatusAction(
            "suspend",
            "suspended",
            "Suspend {name}?",
            "Suspend {name}",
            "No, keep it {status}",
            "{name} is suspended.",
        ),
        StatusAction(
            "reactivate",
            "active",
            "Reactivate {name}?",
            "Reactivate {name}",
            "No, keep it {status}",
            "{name} is active again.",
        ),
        StatusAction(
            "cancel",
            "canceled",
            "Cancel {name}?",
            "Cancel {name}",
            "No, keep it {status}",
            "{name} is canceled.",
        ),
    )
}


def change_status(org_id: str, verb: str) -> Any:
    """Ask for the confirmation (and an optional reason) of a status change; make it."""
    partner, org, state = _opened(org_id)
    action = STATUS_ACTIONS[verb]
    form = StatusForm()
    status = 200
    if form.is_submitted():
        status = 400
        if form.validate():
            if org.status == action.status:
                flash(f"{org.name} is already {org.status}: nothing changed.", "org-status")
                return _back(org, state, "status")
            try:
                accounts.set_status(partner, org, action.status, reason=form.reason.data)
            except AppError as exc:
                status = exc.status
                _show_refusal(form, exc, {"reason": "reason"})
            else:
                flash(action.done.format(name=org.name), "org-status")
                return _back(org, state, "status")
    words = {
        k: getattr(action, k).format(name=org.name, status=org.status)
        for k in ("title", "button", "keep")
    }
    if org.status == action.status:
        words["title"] = f"{org.name} is already {org.status}"
    page = render_template(
        "organizations/status.html",
        form=form,
        org=org,
        action=action,
        words=words,
        partner=partner,
        state=state,
        back=url_for("dashboard.organizations.detail", org_id=org.id, **state.link_args())
        + "#status",
        pool=metrics.pool_status(partner),
    )
    return page, status


@bp.route("/organizations/<org_id>/suspend", methods=["GET", "POST"])
@requires("manage_organizations")
def suspend(org_id: str) -> Any:
    """Confirm and make a suspension."""
    return change_status(org_id, "suspend")


@bp.route("/organizations/<org_id>/reactivate", methods=["GET", "POST"])
@requires("manage_organizations")
def reactivate(org_id: str) -> Any:
    """Confirm and make a reactivation (from suspended or canceled)."""
    return change_status(org_id, "reactivate")


@bp.route("/organizations/<org_id>/cancel", methods=["GET", "POST"])
@requires("manage_organizations")
def cancel(org_id: str) -> Any:
    """Confirm and make a cancellation (the API's soft delete)."""
    return change_status(org_id, "cancel")


# --- helpers -----------------------------------------------------------------------------


def _back(org: Organization, state: Any, anchor: str) -> Response:
    """Redirect to the organization's page (same period), scrolled to the card changed."""
    target = url_for("dashboard.organizations.detail", org_id=org.id, **state.link_args())
    return redirect(f"{target}#{anchor}")
