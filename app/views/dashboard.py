"""The signed-in dashboard: one parent blueprint whose login gate covers every page under it."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app
from flask_login import current_user

from ..models import Partner

# Each page family's blueprint is registered on this one (app/views/__init__.py), so its
# endpoints are dashboard.<family>.<view> and this before_request runs for all of them.
bp = Blueprint("dashboard", __name__)


@bp.before_request
def require_login() -> Any:
    """Send anonymous visitors to the login page."""
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
    return None


def current_partner() -> Partner:
    """Return the signed-in user's partner: the only partner this user may see."""
    partner: Partner = current_user.partner
    return partner
