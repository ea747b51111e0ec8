"""Alerts page (owners and admins): rules, their history and a test send; and every
member's own e-mail choices (/account/email, any role).

The same rules as the API (app/alerts.py); the choices are app/mail.py's. The forms live
here: nothing else uses them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, SelectMultipleField, StringField
from wtforms.validators import ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from .. import alerts, mail
from ..api.alerts import firing_counts
from ..display import fmt_moment
from ..errors import AppError
from ..forms import choices, grouped_whole_number
from ..models import ALERT_KINDS
from ..roles import requires
from .dashboard import current_partner

bp = Blueprint("alerts", __name__)

HISTORY_PAGE_SIZE = 25
UNITS = {"pool_usage": "%", "org_allocation": "%", "stale_data": "hours", "inactive_org": "days"}


class RuleForm(FlaskForm):
    """A rule: its kind, its threshold, enabled."""

    kind = SelectField(
        "Alert when",
        choices=choices((k, alerts.KIND_LABELS[k]) for k in ALERT_KINDS),
        validate_choice=True,
    )
    threshold = StringField(
        "Threshold (% of the pool or allocation, hours, or days)",
        description="Not used by the projection alert.",
    )
    enabled = BooleanField("Enabled")

    def validate_threshold(self, field: StringField) -> None:
        """A whole number (its range is app/alerts.py's), or empty for the projection."""
        text = str(field.data or "").strip()
        if not text:
            if self.kind.data != "projected_exhaustion":
                raise ValidationError("Enter the threshold, a whole number such as 80")
            return
        if grouped_whole_number(text) is None:
            raise ValidationError("Enter a whole number, such as 80")

    def threshold_value(self) -> int | None:
        """The threshold as an int (None when empty)."""
        text = str(self.threshold.data or "").strip()
        return grouped_whole_number(text) if text else None


class DeleteForm(FlaskForm):
    """Delete a rule, once confirmed."""

    confirm = BooleanField("Yes, delete this rule (its history stays)")

    def validate_confirm(self, field: BooleanField) -> None:
        """Require the confirmation box."""
        if not field.data:
            raise ValidationError("tick the box to confirm the deletion")


class SendTestForm(FlaskForm):
    """Send a test (the button only)."""


class EmailForm(FlaskForm):
    """A member's e-mail choices."""

    alert_kinds = SelectMultipleField(
        "E-mail me when an alert fires",
        choices=choices((k, alerts.KIND_LABELS[k]) for k in ALERT_KINDS),
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
        validate_choice=True,
    )
    monthly_report = BooleanField(
        "E-mail me the monthly report (06:00 on the 1st, with its CSV; again if late data "
        "revises it)"
    )


def _page_number() -> int:
    text = request.args.get("page", "1")
    return int(text) if text.isdigit() and 0 < int(text) < 1_000_000 else 1


def _render(
    form: RuleForm | None = None,
    edit_forms: dict[str, RuleForm] | None = None,
    delete_forms: dict[str, DeleteForm] | None = None,
    status: int = 200,
) -> Any:
    partner = current_partner()
    rules = alerts.list_rules(partner)
    edit_forms = dict(edit_forms or {})
    delete_forms = dict(delete_forms or {})
    for rule in rules:
        if rule.id not in edit_forms:
            edit = RuleForm(formdata=None, prefix=f"r{rule.id[:8]}")
            edit.kind.data, edit.enabled.data = rule.kind, rule.enabled
            edit.threshold.data = str(rule.threshold) if rule.kind in UNITS else ""
            edit_forms[rule.id] = edit
        delete_forms.setdefault(rule.id, DeleteForm(formdata=None, prefix=f"d{rule.id[:8]}"))
    if form is None:
        form = RuleForm(formdata=None)
        form.enabled.data = True
        form.kind.data = "pool_usage"
        form.threshold.data = "80"
    page = _page_number()
    events, total = alerts.history(partner, page, HISTORY_PAGE_SIZE)
    mine = mail.preferences_of(current_user)
    return render_template(
        "alerts/index.html",
        partner=partner,
        rules=rules,
        firing=firing_counts(partner.id),
        describe=alerts.describe,
        event_types=alerts.EVENT_TYPES,
        form=form,
        edit_forms=edit_forms,
        delete_forms=delete_forms,
        test_form=SendTestForm(formdata=None),
        events=events,
        when=lambda moment: fmt_moment(moment, partner.timezone),
        total=total,
        page=page,
        pages=max(1, -(-total // HISTORY_PAGE_SIZE)),
        my_kinds=[alerts.KIND_LABELS[k] for k in mine.alert_kinds or [] if k in alerts.KIND_LABELS],
        my_report=mine.monthly_report,
    ), status


def _apply_error(form: RuleForm, exc: AppError) -> None:
    target = form.kind if exc.field == "kind" else form.threshold
    target.errors = [*target.errors, exc.message]


def _save_rule(
    form: RuleForm,
    shown: dict[str, Any],
    save: Callable[[Any, Any, bool], object],
    message: str,
    anchor: str,
) -> Any:
    """Save a posted rule form through save(kind, threshold, enabled): on success, flash the
    message and go back to the page at anchor; else answer the page with the form (shown:
    how _render takes it) and its errors beside the fields."""
    if not form.validate_on_submit():
        return _render(**shown, status=400)
    try:
        save(form.kind.data, form.threshold_value(), bool(form.enabled.data))
    except AppError as exc:
        _apply_error(form, exc)
        return _render(**shown, status=exc.status)
    flash(message, "success")
    return redirect(url_for("dashboard.alerts.index") + anchor)


@bp.get("/alerts")
@requires("manage_alerts")
def index() -> Any:
    """The rules, a form for a new one, the test button and the history."""
    return _render()


@bp.post("/alerts/rules")
@requires("manage_alerts")
def create() -> Any:
    """Add a rule."""
    form = RuleForm()
    return _save_rule(
        form,
        {"form": form},
        lambda kind, threshold, enabled: alerts.create_rule(
            current_partner(), kind, threshold, enabled
        ),
        "Alert rule added.",
        "#rules",
    )


@bp.post("/alerts/rules/<rule_id>")
@requires("manage_alerts")
def update(rule_id: str) -> Any:
    """Change a rule."""
    partner = current_partner()
    rule = alerts.get_rule(partner, rule_id)
    form = RuleForm(prefix=f"r{rule.id[:8]}")
    return _save_rule(
        form,
        {"edit_forms": {rule.id: form}},
        lambda kind, threshold, enabled: alerts.update_rule(
            partner, rule.id, kind, threshold, enabled
        ),
        "Alert rule saved.",
        f"#rule-{rule.id}",
    )


@bp.post("/alerts/rules/<rule_id>/delete")
@requires("manage_alerts")
def delete(rule_id: str) -> Any:
    """Delete a rule once confirmed."""
    partner = current_partner()
    rule = alerts.get_rule(partner, rule_id)
    form = DeleteForm(prefix=f"d{rule.id[:8]}")
    if not form.validate_on_submit():
        return _render(delete_forms={rule.id: form}, status=400)
    alerts.delete_rule(partner, rule.id)
    flash("Alert rule deleted; its history stays below.", "success")
    return redirect(url_for("dashboard.alerts.index") + "#rules")


@bp.post("/alerts/test")
@requires("manage_alerts")
def send_test() -> Any:
    """Send a test webhook (when one is configured) and a test e-mail to the signed-in user."""
    form = SendTestForm()
    if not form.validate_on_submit():
        flash("The form had expired; press Send test again.", "warning")
        return redirect(url_for("dashboard.alerts.index") + "#test")
    sent = alerts.send_test(current_partner(), current_user.email)
    hook = (
        f" and test webhook {sent['webhook_id']}"
        if sent["webhook_id"]
        else " (no webhook is configured or enabled, so no webhook)"
    )
    flash(f"Test e-mail queued to {current_user.email}{hook}.", "success")
    return redirect(url_for("dashboard.alerts.index") + "#test")


@bp.get("/account/email")
def email() -> Any:
    """The signed-in member's e-mail choices (any role)."""
    form = EmailForm(formdata=None)
    mine = mail.preferences_of(current_user)
    form.alert_kinds.data = list(mine.alert_kinds or [])
    form.monthly_report.data = mine.monthly_report
    return render_template("alerts/email.html", form=form)


@bp.post("/account/email")
def save_email() -> Any:
    """Save the signed-in member's e-mail choices."""
    form = EmailForm()
    if not form.validate_on_submit():
        return render_template("alerts/email.html", form=form), 400
    mail.save_preferences(
        current_user, list(form.alert_kinds.data or []), bool(form.monthly_report.data)
    )
    flash("Your e-mail choices are saved.", "success")
    return redirect(url_for("dashboard.alerts.email") + "#choices")
