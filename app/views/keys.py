"""The API keys page: the partner's keys, a new key shown once, and revoking with a
confirmation. Keys are made and revoked by app/auth.py, as by the API and the CLI."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.exceptions import Forbidden
from wtforms import SelectMultipleField, StringField
from wtforms.validators import InputRequired, ValidationError

from .. import accounts, auth
from ..auth import parse_scopes
from ..errors import AppError
from ..extensions import db
from ..forms import MultiCheckboxField, choices
from ..models import ApiKey, Partner
from ..roles import KEY_SCOPES, may_grant, may_revoke, requires
from .dashboard import current_partner
from .filters import age_text

bp = Blueprint("keys", __name__)

NO_ADMIN_KEYS = "Only an owner may make or revoke a key with the admin scope or full access."


class ApiKeyForm(FlaskForm):
    """Create an API key: a name and its scopes (at least one; the role bounds them)."""

    name = StringField(
        "Name",
        validators=[InputRequired(message="Give the key a name, such as “billing export”")],
    )
    scopes = MultiCheckboxField(
        "Scopes",
        choices=choices(
            [
                ("read", "read: every GET"),
                ("write", "write: also organizations, allocations and events"),
                ("admin", "admin: everything, including API keys and the audit log"),
            ]
        ),
        validate_choice=False,
    )

    def validate_scopes(self, field: SelectMultipleField) -> None:
        """Require one scope or more, each one of read, write, admin."""
        chosen = list(field.data or [])
        if not chosen:
            raise ValidationError("Choose at least one scope")
        try:
            parse_scopes(chosen)
        except AppError as exc:
            raise ValidationError(exc.message) from exc


class RevokeKeyForm(FlaskForm):
    """The confirmation of a revocation: only its CSRF token and the key matter."""


def _keys(partner: Partner) -> list[ApiKey]:
    """Return every key of the partner, newest first (a partner has a handful)."""
    return list(
        db.session.execute(
            select(ApiKey)
            .where(ApiKey.partner_id == partner.id)
            .order_by(ApiKey.created_at.desc(), ApiKey.id)
        ).scalars()
    )


def _page(
    form: ApiKeyForm,
    created: tuple[ApiKey, str] | None = None,
    revoking: ApiKey | None = None,
) -> str:
    partner = current_partner()
    role = current_user.role
    return render_template(
        "keys/index.html",
        partner=partner,
        form=form,
        keys=_keys(partner),
        created=created,
        revoking=revoking,
        revoke_form=RevokeKeyForm(),
        grantable=KEY_SCOPES.get(role, ()),
        may_revoke=lambda key: may_revoke(role, key.scope_list),
        status_of=auth.key_status,
        age_text=age_text,
    )


@bp.get("/api-keys")
@requires("manage_api_keys")
def index() -> Any:
    """Show the keys and the form that makes one; ?revoke=<id> asks to confirm a revocation."""
    revoking = None
    wanted = request.args.get("revoke")
    if wanted:
        revoking = accounts.get_api_key(current_partner(), wanted)
        if not may_revoke(current_user.role, revoking.scope_list):
            raise Forbidden(NO_ADMIN_KEYS)
        if revoking.revoked_at is not None:
            revoking = None  # nothing left to confirm: the table says it is revoked
    return _page(ApiKeyForm(), revoking=revoking)


@bp.post("/api-keys")
@requires("manage_api_keys")
def create() -> Any:
    """Make a key; the page answers with its plain text, shown this once and never again.

    No redirect: the plain key must not travel in the session cookie to be shown on the
    next page (the answer is not cached: Cache-Control no-store).
    """
    form = ApiKeyForm()
    if not form.validate_on_submit():
        return _page(form), 400
    scopes = auth.parse_scopes(list(form.scopes.data or []))
    if not may_grant(current_user.role, scopes):
        raise Forbidden(NO_ADMIN_KEYS)
    try:
        key, plain = auth.create_api_key(current_partner(), form.name.data or "", scopes)
    except AppError as exc:
        target = form.name if exc.field == "name" else form.scopes
        target.errors = [*target.errors, exc.message]
        return _page(form), exc.status
    flash(f"Key “{auth.key_label(key)}” created. Copy it now: it is shown only this once.", "key")
    return _page(ApiKeyForm(formdata=None), created=(key, plain))


@bp.post("/api-keys/<key_id>/revoke")
@requires("manage_api_keys")
def revoke(key_id: str) -> Any:
    """Revoke a key (after the confirmation); it answers 401 from then on."""
    key = accounts.get_api_key(current_partner(), key_id)
    if not may_revoke(current_user.role, key.scope_list):
        raise Forbidden(NO_ADMIN_KEYS)
    form = RevokeKeyForm()
    if not form.validate_on_submit():
        # Only the CSRF token can fail: the error page says so.
        return _page(ApiKeyForm(), revoking=key), 400
    label = auth.key_label(key)
    already = key.revoked_at is not None
    auth.revoke_api_key(key)
    flash(
        f"Key “{label}” was already revoked."
        if already
        else f"Key “{label}” revoked: it answers 401 from now on.",
        "key",
    )
    return redirect(url_for("dashboard.keys.index") + "#keys")
