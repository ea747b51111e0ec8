"""Sign-in and sign-out of dashboard users."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_user, logout_user
from flask_wtf.csrf import CSRFError

from .. import auth, signin
from ..errors import error_page
from ..forms import LoginForm, LogoutForm
from ..web_extensions import limiter

bp = Blueprint("auth", __name__)


def _login_limit() -> str:
    return str(current_app.config["LOGIN_RATE_LIMIT"])


# Longer than any URL of this site with its query string; a Location header no proxy refuses.
MAX_NEXT_LENGTH = 2000


def _local_path(target: str | None) -> str | None:
    """Return target when it is a path on this site that can go in a Location header."""
    if (
        not target
        or len(target) > MAX_NEXT_LENGTH
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
    ):
        return None
    # A control character cannot go in a header (CR/LF would split it: werkzeug refuses
    # them with an error), and browsers drop tabs and newlines from URLs, so "/\t/x.example"
    # would leave this site.
    if any(ord(c) < 32 or ord(c) == 127 for c in target) or urlsplit(target).netloc:
        return None
    return target


def _safe_next(target: str | None) -> str:
    """Return target when it is a path on this site, else the overview (no open redirect)."""
    return _local_path(target) or url_for("dashboard.overview.index")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(
    _login_limit,
    methods=["POST"],
    error_message="Too many sign-in attempts from this address; wait a minute and try again.",
)
def login() -> Any:
    """Show the sign-in form; on valid credentials start a fresh session."""
    if current_user.is_authenticated and request.method == "GET":
        return redirect(_safe_next(request.args.get("next")))
    form = LoginForm()
    if request.method == "GET":
        form.next.data = _local_path(request.args.get("next")) or ""
    status = 200
    if form.validate_on_submit():
        user = signin.sign_in(
            form.email.data or "", form.password.data or "", request.remote_addr or ""
        )
        if user is not None:
            # A brand-new session: nothing from before sign-in survives (no fixation).
            session.clear()
            login_user(user)
            return redirect(_safe_next(form.next.data))
        form.password.errors = [*form.password.errors, "email or password is incorrect"]
        status = 401
    elif request.method == "POST":
        status = 400
    return render_template("auth/login.html", form=form), status


@bp.post("/logout")
def logout() -> Any:
    """End the session; the user's old session cookies stop working too."""
    form = LogoutForm()
    if form.validate_on_submit() and current_user.is_authenticated:
        # A new token invalidates copies of the session cookie made before sign-out.
        auth.end_sessions(current_user._get_current_object())  # noqa: SLF001
    logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))


@bp.errorhandler(CSRFError)
def form_expired(exc: CSRFError) -> Any:
    """Show the sign-in form again when its token is missing or stale (an old tab)."""
    if request.endpoint != "auth.login":
        return error_page(
            400,
            "The form was open too long or in another session; please go back and send it again.",
            title="This form has expired",
        )
    form = LoginForm(formdata=None)
    form.next.data = _local_path(request.form.get("next")) or ""
    return render_template("auth/login.html", form=form, expired=True), 400
