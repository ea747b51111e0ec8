"""Accepting an invitation: a public page (no sign-in), reached by the one-time link.

Outside the dashboard's login gate. The person chooses a password (argon2 via app/auth.py,
at least 8 characters) and gets a login with the invitation's role. A link that cannot be
used (expired, revoked, used, unknown, or an address that already has a login) gets one
and the same answer, so the page tells nothing about other people or partners.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_wtf import FlaskForm
from wtforms import PasswordField
from wtforms.validators import EqualTo, InputRequired, Length

from .. import team
from ..errors import AppError, error_page
from ..extensions import db
from ..models import Partner
from ..web_extensions import limiter

bp = Blueprint("invitations", __name__)


class AcceptForm(FlaskForm):
    """The new member's password, typed twice."""

    password = PasswordField(
        "Choose a password (at least 8 characters)",
        validators=[InputRequired(message="choose a password"), Length(max=1024)],
    )
    confirm = PasswordField(
        "Repeat the password",
        validators=[
            InputRequired(message="repeat the password"),
            EqualTo("password", message="the two passwords differ"),
        ],
    )


def _limit() -> str:
    return str(current_app.config["LOGIN_RATE_LIMIT"])


def _unusable() -> Any:
    return error_page(
        404,
        team.INVALID_LINK,
        title="This invitation link cannot be used",
        back=(url_for("auth.login"), "Go to sign in"),
    )


@bp.route("/invitations/<token>", methods=["GET", "POST"])
@limiter.limit(
    _limit,
    methods=["POST"],
    error_message="Too many attempts from this address; wait a minute and try again.",
)
def accept(token: str) -> Any:
    """Show the invitation and its password form; on a valid password create the login."""
    invitation = team.usable_invitation(token)
    if invitation is None:
        return _unusable()
    form = AcceptForm()
    status = 200
    if form.validate_on_submit():
        try:
            user = team.accept(token, form.password.data or "")
        except AppError as exc:
            if exc.field != "password":
                return _unusable()
            form.password.errors = [*form.password.errors, exc.message]
            status = exc.status
        else:
            flash(
                f"Your login is ready: sign in as {user.email} with your new password.", "success"
            )
            return redirect(url_for("auth.login"))
    elif form.is_submitted():
        status = 400
    partner = db.session.get(Partner, invitation.partner_id)
    return render_template(
        "invitations/accept.html", form=form, invitation=invitation, partner=partner
    ), status
