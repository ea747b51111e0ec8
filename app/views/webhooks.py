"""Webhooks page (owners and admins): the endpoint, its secret, a test send, the delivery log.

The same rules as the API (app/webhooks.py). The secret is shown once, in the answer to
the form that made it (first configuration, rotation), never put in a cookie or a flash
message. The forms live here rather than in app/forms.py: nothing else uses them.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectMultipleField, StringField
from wtforms.validators import InputRequired, Length, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from .. import webhooks
from ..errors import AppError
from ..forms import choices
from ..models import WEBHOOK_EVENT_TYPES, WebhookEndpoint
from ..roles import requires
from .dashboard import current_partner

bp = Blueprint("webhooks", __name__)

LOG_PAGE_SIZE = 20


class WebhookForm(FlaskForm):
    """The endpoint: URL, enabled, event types."""

    url = StringField(
        "Endpoint URL",
        validators=[InputRequired(message="enter the URL to send webhooks to"), Length(max=2000)],
    )
    enabled = BooleanField("Enabled: send events to this URL")
    event_types = SelectMultipleField(
        "Events to send",
        choices=choices((t, f"{t} — {webhooks.EVENT_TYPE_LABELS[t]}") for t in WEBHOOK_EVENT_TYPES),
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
        validate_choice=True,
    )


class RotateForm(FlaskForm):
    """Rotate the secret, once confirmed."""

    confirm = BooleanField(
        "Yes, make a new secret (the current one keeps signing for 24 hours only)"
    )

    def validate_confirm(self, field: BooleanField) -> None:
        """Require the confirmation box."""
        if not field.data:
            raise ValidationError("tick the box to confirm the rotation")


class SendTestForm(FlaskForm):
    """Send a test event (the button only)."""


def _page_number() -> int:
    text = request.args.get("page", "1")
    return int(text) if text.isdigit() and 0 < int(text) < 1_000_000 else 1


def _pretty(body: str | None) -> str:
    """The JSON body indented for reading (as is if it is not JSON)."""
    if not body:
        return ""
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return body


def _render(
    form: WebhookForm | None = None,
    rotate_form: RotateForm | None = None,
    secret: str | None = None,
    confirmation: str | None = None,
    status: int = 200,
) -> Any:
    partner = current_partner()
    endpoint = webhooks.get_endpoint(partner)
    if form is None:
        form = WebhookForm(formdata=None)
        _fill(form, endpoint)
    page = _page_number()
    rows, total = webhooks.list_attempts(partner, page, LOG_PAGE_SIZE)
    pages = max(1, -(-total // LOG_PAGE_SIZE))
    return render_template(
        "webhooks/index.html",
        partner=partner,
        endpoint=endpoint,
        form=form,
        rotate_form=rotate_form or RotateForm(formdata=None),
        test_form=SendTestForm(formdata=None),
        secret=secret,
        confirmation=confirmation,
        secret_hint=webhooks.secret_hint(endpoint.secret) if endpoint else None,
        rows=[(a, m, _pretty(m.body)) for a, m in rows],
        pending=webhooks.pending_messages(partner),
        total=total,
        page=page,
        pages=pages,
    ), status


def _fill(form: WebhookForm, endpoint: WebhookEndpoint | None) -> None:
    if endpoint is None:
        form.enabled.data = True
        form.event_types.data = list(webhooks.DEFAULT_EVENT_TYPES)
        return
    form.url.data = endpoint.url
    form.enabled.data = endpoint.enabled
    form.event_types.data = list(endpoint.event_types or [])


@bp.get("/webhooks")
@requires("manage_webhooks")
def index() -> Any:
    """The endpoint form, the secret's hint, rotation, the test button and the log."""
    return _render()


@bp.post("/webhooks")
@requires("manage_webhooks")
def configure() -> Any:
    """Save the endpoint; a new one shows its secret, this once."""
    form = WebhookForm()
    if not form.validate_on_submit():
        return _render(form=form, status=400)
    try:
        endpoint, secret = webhooks.configure(
            current_partner(),
            form.url.data or "",
            bool(form.enabled.data),
            list(form.event_types.data or []),
        )
    except AppError as exc:
        target = form.event_types if (exc.field or "").startswith("eventTypes") else form.url
        target.errors = [*target.errors, exc.message]
        return _render(form=form, status=exc.status)
    if secret is not None:
        return _render(
            secret=secret,
            confirmation="Webhook saved. Here is its signing secret: copy it now, it is not "
            "shown again.",
        )
    flash("Webhook saved.", "success")
    return redirect(url_for("dashboard.webhooks.index") + "#endpoint")


@bp.post("/webhooks/secret/rotate")
@requires("manage_webhooks")
def rotate() -> Any:
    """Make a new secret once confirmed, and show it this once."""
    form = RotateForm()
    if not form.validate_on_submit():
        return _render(rotate_form=form, status=400)
    try:
        _endpoint, secret = webhooks.rotate_secret(current_partner())
    except AppError as exc:
        form.confirm.errors = [*form.confirm.errors, exc.message]
        return _render(rotate_form=form, status=exc.status)
    return _render(
        secret=secret,
        confirmation="Secret rotated. Copy the new one now, it is not shown again; the old one "
        "keeps signing alongside it for 24 hours.",
    )


@bp.post("/webhooks/test")
@requires("manage_webhooks")
def send_test() -> Any:
    """Queue a test event and come back to the log."""
    form = SendTestForm()
    if not form.validate_on_submit():
        flash("The form had expired; press Send test again.", "warning")
        return redirect(url_for("dashboard.webhooks.index") + "#log")
    try:
        message = webhooks.send_test(current_partner())
    except AppError as exc:
        flash(f"No test sent: {exc.message}", "warning")
        return redirect(url_for("dashboard.webhooks.index") + "#endpoint")
    flash(f"Test event {message.id} queued; its attempts show in the log below.", "success")
    return redirect(url_for("dashboard.webhooks.index") + "#log")
