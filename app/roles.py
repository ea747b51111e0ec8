"""What each dashboard role may do: one table, checked on the server for every page.

owner: everything, including the team and the settings. admin: organizations,
allocations, API keys up to the write scope, and the audit log. analyst: reads and
exports only. A page action a role may not take answers 403 with the error page and
changes nothing; the templates hide what the signed-in role cannot use (can()).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask_login import current_user
from werkzeug.exceptions import Forbidden

from .choices import ROLES

F = TypeVar("F", bound=Callable[..., Any])

PERMISSIONS: dict[str, frozenset[str]] = {
    "read": frozenset(ROLES),
    "manage_organizations": frozenset({"owner", "admin"}),
    "manage_api_keys": frozenset({"owner", "admin"}),
    "view_audit": frozenset({"owner", "admin"}),
    "manage_webhooks": frozenset({"owner", "admin"}),
    "manage_alerts": frozenset({"owner", "admin"}),
    "manage_team": frozenset({"owner"}),
    "manage_settings": frozenset({"owner"}),
}

ROLE_LABELS = {
    "owner": "Owner: everything, including the team and the settings",
    "admin": (
        "Admin: organizations, allocations, API keys (up to write), webhooks, alerts and "
        "the audit log"
    ),
    "analyst": "Analyst: reads and exports only",
}


def allowed(role: str | None, permission: str) -> bool:
    """Tell whether a user with this role may use permission."""
    return role in PERMISSIONS[permission]


def can(permission: str) -> bool:
    """Tell whether the signed-in user may use permission (False when signed out)."""
    return bool(current_user and current_user.is_authenticated) and allowed(
        current_user.role, permission
    )


def requires(permission: str) -> Callable[[F], F]:
    """Refuse the view with 403 (the error page, nothing changed) unless the role allows it."""

    def wrap(view: F) -> F:
        @functools.wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            if not can(permission):
                raise Forbidden("Your role does not allow this. Ask an owner of your team.")
            return view(*args, **kwargs)

        checked._permission = permission  # type: ignore[attr-defined]
        return checked  # type: ignore[return-value]

    return wrap


# The scopes each role may give a key it makes on the API keys page: an admin up to write,
# never admin (nor a key without scopes, which has full access). Only owners grant admin.
KEY_SCOPES: dict[str, tuple[str, ...]] = {
    "owner": ("read", "write", "admin"),
    "admin": ("read", "write"),
}


def may_grant(role: str | None, scopes: list[str]) -> bool:
    """Tell whether this role may make a key with these scopes (none: full access)."""
    grantable = KEY_SCOPES.get(role or "", ())
    if not scopes:
        return "admin" in grantable
    return all(scope in grantable for scope in scopes)


def may_revoke(role: str | None, scopes: list[str]) -> bool:
    """Tell whether this role may revoke a key with these scopes: an admin may not revoke
    what it could not have made (an admin-scope or full-access key), so it cannot lock
    the owners' automation out."""
    return may_grant(role, scopes)
