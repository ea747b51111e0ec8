"""A member's own password change (/account/password): any role, the current password
first, the new one twice, other sessions ended, this one kept, audited as the member."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select

from app import auth
from app.extensions import db
from app.models import AuditEntry
from tests.views_support import csrf_token, field_error, login

NOW = datetime(2025, 10, 20, 12, 0)
PASSWORD = "correct horse battery"
NEW = "a different long secret"


@pytest.fixture
def world(app_ctx, freeze, make_partner):
    freeze(NOW)
    partner = make_partner("alpha", name="Alpha Agency")
    auth.create_user(partner, "owner@alpha.test", PASSWORD, "owner")
    auth.create_user(partner, "analyst@alpha.test", PASSWORD, "analyst")
    return partner


def signed_in(app, email: str, password: str = PASSWORD) -> Any:
    client = app.test_client()
    assert login(client, email, password).status_code == 302
    return client


def change(client, current: str, new: str, confirm: str | None = None) -> Any:
    token = csrf_token(client.get("/account/password").get_data(as_text=True))
    return client.post(
        "/account/password",
        data={
            "csrf_token": token,
            "current": current,
            "new": new,
            "confirm": new if confirm is None else confirm,
        },
    )


def password_entries() -> list[AuditEntry]:
    db.session.expire_all()
    return list(
        db.session.scalars(select(AuditEntry).where(AuditEntry.action == "password_change"))
    )


def test_an_analyst_changes_their_password_and_stays_signed_in_here_only(app, world):
    here = signed_in(app, "analyst@alpha.test")
    elsewhere = signed_in(app, "analyst@alpha.test")
    answer = change(here, PASSWORD, NEW)
    assert answer.status_code == 302
    assert answer.headers["Location"].endswith("/account/password")
    page = here.get("/account/password").get_data(as_text=True)
    assert "Your password is changed" in page
    # The other browser's session ended with the change.
    assert elsewhere.get("/account/password").status_code == 302
    # The old password no longer signs in; the new one does.
    assert login(app.test_client(), "analyst@alpha.test", PASSWORD).status_code != 302
    assert login(app.test_client(), "analyst@alpha.test", NEW).status_code == 302
    [entry] = password_entries()
    assert (entry.actor_kind, entry.actor, entry.object_type, entry.object_label) == (
        "user",
        "analyst@alpha.test",
        "member",
        "analyst@alpha.test",
    )
    assert entry.before is None and entry.after is None  # never the password


@pytest.mark.parametrize(
    ("current", "new", "confirm", "field", "message"),
    [
        ("wrong password!", NEW, None, "current", "This is not your current password"),
        (PASSWORD, NEW, "something else entirely", "confirm", "The two new passwords differ"),
        (PASSWORD, "short", None, "new", "8 characters"),
        ("", NEW, None, "current", "Enter your current password"),
    ],
)
def test_a_refused_change_says_why_beside_the_field_and_changes_nothing(
    app, world, current, new, confirm, field, message
):
    client = signed_in(app, "owner@alpha.test")
    answer = change(client, current, new, confirm)
    assert answer.status_code == 400
    shown = field_error(answer.get_data(as_text=True), field)
    assert shown is not None and message in shown, shown
    assert password_entries() == []
    assert login(app.test_client(), "owner@alpha.test", PASSWORD).status_code == 302


def test_the_form_needs_its_csrf_token(app, world):
    client = signed_in(app, "owner@alpha.test")
    answer = client.post(
        "/account/password", data={"current": PASSWORD, "new": NEW, "confirm": NEW}
    )
    assert answer.status_code == 400
    assert password_entries() == []
