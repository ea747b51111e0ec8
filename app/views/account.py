"""The signed-in member's own account: changing their password (any role).

The e-mail choices live beside the alerts (app/views/alerts.py, /account/email). A password
change goes through auth.set_password, the one implementation behind `flask set-password`:
argon2id, at least 8 characters, every other session of the member ended, audited. This
browser's session is renewed, so the member stays signed in here.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, session, url_for
from flask_login import current_user, login_user
from flask_wtf import FlaskForm
from wtforms import PasswordField
from wtforms.validators import InputRequired, Length

from .. import auth
from ..errors import AppError, sentence

bp = Blueprint("account", __name__)


class PasswordChangeForm(FlaskForm):
    """The current password, and the new one typed twice."""

    current = PasswordField(
        "Current password",
        validators=[InputRequired(message="Enter your current password"), Length(max=1024)],
    )
    new = PasswordField(
        "New password (at least 8 characters)",
        validators=[InputRequired(message="Enter a new password"), Length(max=1024)],
    )
    confirm = PasswordField(
        "New password again",
        validators=[InputRequired(message="Type the new password again"), Length(max=1024)],
    )


def _page(form: PasswordChangeForm, status: int = 200) -> tuple[str, int]:
    return render_template("account/password.html", form=form), status


@bp.get("/account/password")
def password() -> Any:
    """Show the password form."""
    return _page(PasswordChangeForm(formdata=None))


@bp.post("/account/password")
def change_password() -> Any:
    """Change the signed-in member's password after checking the current one."""
    form = PasswordChangeForm()
    if not form.validate_on_submit():
        return _page(form, 400)
    user = current_user._get_current_object()  # noqa: SLF001
    if not auth.verify_password(user.password_hash, form.current.data or ""):
        form.current.errors = ["This is not your current password"]
        return _page(form, 400)
    if form.new.data != form.confirm.data:
        form.confirm.errors = ["The two new passwords differ"]
        return _page(form, 400)
    try:
        auth.set_password(user, form.new.data or "")
    except AppError as exc:
        form.new.errors = [sentence(exc.message)]
        return _page(form, 400)
    # Every session of the member ended with the change; this one starts afresh.
    session.clear()
    login_user(user)
    flash("Your password is changed; your other sessions are signed out.", "success")
    return redirect(url_for("dashboard.account.password"))
