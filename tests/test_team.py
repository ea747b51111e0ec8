"""The team: members and roles, invitations by one-time link, role changes, removal.

Rules (app/team.py) through the pages a person uses (/team, /invitations/<token>) and the
CLI, with the audit entry of each action by each path. Leaks: an address that already has
a login (here or at another partner) is invited like any other and its link answers like
any unusable link. The clock is frozen (the freeze fixture) for the 7-day expiry.
"""

from __future__ import annotations

import hashlib
import html
import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from app import auth
from app.extensions import db
from app.models import AuditEntry, Invitation, KnownAddress, Partner, User
from tests.views_support import csrf_token, field_error, login

NOW = datetime(2025, 10, 20, 12, 0)
PASSWORD = "correct horse battery"


@pytest.fixture
def world(app_ctx, freeze, make_partner):
    freeze(NOW)
    alpha = make_partner("alpha", name="Alpha Agency", tz="America/New_York")
    bravo = make_partner("bravo", name="Bravo Agency")
    owner = auth.create_user(alpha, "owner@alpha.test", PASSWORD, "owner")
    admin = auth.create_user(alpha, "admin@alpha.test", PASSWORD, "admin")
    analyst = auth.create_user(alpha, "analyst@alpha.test", PASSWORD, "analyst")
    other = auth.create_user(bravo, "owner@bravo.test", PASSWORD, "owner")
    return {
        "alpha": alpha.id,
        "bravo": bravo.id,
        "owner": owner.id,
        "admin": admin.id,
        "analyst": analyst.id,
        "other": other.id,
    }


def signed_in(app, email: str) -> Any:
    client = app.test_client()
    assert login(client, email).status_code == 302
    return client


def post(client, path: str, data: dict[str, str], page: str = "/team") -> Any:
    token = csrf_token(client.get(page).get_data(as_text=True))
    return client.post(path, data={**data, "csrf_token": token})


def invite(client, email: str, role: str = "analyst") -> str:
    """Invite through the page; return the one-time link it shows."""
    response = post(client, "/team/invitations", {"email": email, "role": role})
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.headers["Location"].endswith("/team#invite")
    page = client.get("/team").get_data(as_text=True)
    found = re.search(r'value="([^"]+)" readonly data-invite-link', page)
    assert found, "the link is shown after the invite"
    return html.unescape(found.group(1))


def token_of(link: str) -> str:
    return link.rsplit("/", 1)[1]


def entries(action: str) -> list[AuditEntry]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        )
    )


def member(email: str) -> User | None:
    db.session.expire_all()
    return db.session.scalars(select(User).where(User.email == email)).one_or_none()


def accept(app, link: str, password: str = "a new long secret", confirm: str | None = None) -> Any:
    client = app.test_client()
    path = link.split("localhost", 1)[1]
    page = client.get(path)
    token = csrf_token(page.get_data(as_text=True)) if page.status_code == 200 else ""
    if not token:  # an unusable link has no form: take a token from the sign-in page
        token = csrf_token(client.get("/login").get_data(as_text=True))
    return client.post(
        path,
        data={"password": password, "confirm": confirm or password, "csrf_token": token},
    )


# --- the page -------------------------------------------------------------------------------


def test_members_show_role_and_last_sign_in_in_the_partners_timezone(app, world):
    client = signed_in(app, "owner@alpha.test")
    page = client.get("/team").get_data(as_text=True)
    rows = dict(re.findall(r'<tr data-member="([^"]+)">(.*?)</tr>', page, re.S))
    assert sorted(rows) == ["admin@alpha.test", "analyst@alpha.test", "owner@alpha.test"]
    # Signed in at 12:00 UTC on 20 Oct 2025: 08:00 in New York (EDT, UTC-4).
    assert "20 Oct 2025 at 08:00 EDT (America/New_York)" in rows["owner@alpha.test"]
    assert "never" in rows["admin@alpha.test"]
    selected = re.search(r'<option selected value="(\w+)"', rows["admin@alpha.test"])
    assert selected and selected.group(1) == "admin"
    assert "owner@bravo.test" not in page


def test_an_invitation_shows_its_link_once_and_stores_only_its_digest(app, world):
    client = signed_in(app, "owner@alpha.test")
    link = invite(client, "New.Person@Example.test", "admin")
    assert link.startswith("http://localhost/invitations/")
    token = token_of(link)
    again = client.get("/team").get_data(as_text=True)
    assert token not in again, "the link is shown only once"
    row = db.session.scalars(select(Invitation)).one()
    assert row.email == "new.person@example.test" and row.role == "admin"
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert row.expires_at == datetime(2025, 10, 27, 12, 0)
    assert row.invited_by == "owner@alpha.test"
    assert 'data-invitation="new.person@example.test"' in again
    # 12:00 UTC on 27 Oct 2025 is 08:00 in New York (still EDT until 2 Nov).
    assert "27 Oct 2025 at 08:00 EDT (America/New_York)" in again
    [entry] = entries("invite")
    assert (entry.actor_kind, entry.actor, entry.object_type) == (
        "user",
        "owner@alpha.test",
        "invitation",
    )
    assert entry.after == {
        "email": "new.person@example.test",
        "role": "admin",
        "expiresAt": "2025-10-27T12:00:00Z",
    }
    assert entry.partner_id == world["alpha"]


def test_the_invite_form_says_what_is_wrong_beside_the_field(app, world):
    client = signed_in(app, "owner@alpha.test")
    bad_email = post(client, "/team/invitations", {"email": "not an address", "role": "admin"})
    assert bad_email.status_code == 400
    assert (
        field_error(bad_email.get_data(as_text=True), "email")
        == "a valid email address is required"
    )
    bad_role = post(client, "/team/invitations", {"email": "x@example.test", "role": "boss"})
    assert bad_role.status_code == 400
    assert field_error(bad_role.get_data(as_text=True), "role") == "choose owner, admin or analyst"
    empty = post(client, "/team/invitations", {"email": "", "role": "admin"})
    assert field_error(empty.get_data(as_text=True), "email") == "enter an email address"
    assert db.session.scalar(select(func.count()).select_from(Invitation)) == 0


def test_accepting_sets_a_password_and_makes_a_member_with_the_role(app, world):
    owner = signed_in(app, "owner@alpha.test")
    link = invite(owner, "joiner@example.test", "admin")
    stranger = app.test_client()
    page = stranger.get(link.split("localhost", 1)[1]).get_data(as_text=True)
    assert "joiner@example.test" in page and "Alpha Agency" in page
    assert re.search(r"data-role>admin<", page)
    short = accept(app, link, "short")
    assert short.status_code == 400
    assert field_error(short.get_data(as_text=True), "password") == (
        "the password must have at least 8 characters"
    )
    differ = accept(app, link, "a new long secret", "another long secret")
    assert field_error(differ.get_data(as_text=True), "confirm") == "the two passwords differ"
    assert member("joiner@example.test") is None
    done = accept(app, link)
    assert done.status_code == 302 and done.headers["Location"] == "/login"
    user = member("joiner@example.test")
    assert user is not None and user.role == "admin" and user.partner_id == world["alpha"]
    assert user.password_hash.startswith("$argon2id$")
    invitation = db.session.scalars(select(Invitation)).one()
    assert invitation.accepted_at == NOW
    [entry] = entries("accept")
    assert (entry.actor_kind, entry.actor, entry.object_type) == (
        "user",
        "joiner@example.test",
        "member",
    )
    assert entry.object_id == str(user.id)
    assert entry.after["role"] == "admin"
    # The new member signs in, and the link is used up.
    assert login(app.test_client(), "joiner@example.test", "a new long secret").status_code == 302
    assert accept(app, link, "yet another secret").status_code == 404
    assert auth.authenticate("joiner@example.test", "a new long secret") is not None
    assert "joiner@example.test" in owner.get("/team").get_data(as_text=True)


def _answer(response: Any) -> str:
    """The page's text without its CSRF token (it differs between sessions)."""
    return re.sub(r'name="csrf_token"[^>]*value="[^"]+"', "", response.get_data(as_text=True))


def test_every_unusable_link_gets_the_same_answer(app, world, freeze):
    owner = signed_in(app, "owner@alpha.test")
    links = {
        "revoked": invite(owner, "revoked@example.test"),
        "used": invite(owner, "used@example.test"),
        "expired": invite(owner, "late@example.test"),
        "another partner's user": invite(owner, "owner@bravo.test"),
        "this partner's user": invite(owner, "admin@alpha.test"),
    }
    assert accept(app, links["used"]).status_code == 302
    revoked_id = db.session.scalar(
        select(Invitation.id).where(Invitation.email == "revoked@example.test")
    )
    assert (
        post(owner, f"/team/invitations/{revoked_id}/revoke", {"confirm": "yes"}).status_code == 302
    )
    links["unknown"] = "http://localhost/invitations/" + "A" * 43
    links["garbage"] = "http://localhost/invitations/x"
    expired_row = db.session.scalars(
        select(Invitation).where(Invitation.email == "late@example.test")
    ).one()
    expired_row.expires_at = NOW  # its 7 days are over (the freeze test walks the clock)
    db.session.commit()
    answers = {}
    for reason, link in links.items():
        response = app.test_client().get(link.split("localhost", 1)[1])
        assert response.status_code == 404, reason
        answers[reason] = _answer(response)
        sent = accept(app, link, "a long enough password")
        assert sent.status_code == 404, reason
        assert _answer(sent) == answers[reason], reason
    assert len(set(answers.values())) == 1, answers.keys()
    assert "cannot be used" in answers["unknown"]
    # Nothing changed for the people who already had a login.
    assert member("owner@bravo.test").partner_id == world["bravo"]
    assert member("admin@alpha.test").role == "admin"
    assert auth.authenticate("owner@bravo.test", PASSWORD) is not None
    assert entries("accept") == [entries("accept")[0]] and len(entries("accept")) == 1


def test_inviting_an_address_with_a_login_answers_like_any_invite(app, world):
    owner = signed_in(app, "owner@alpha.test")

    def shown(email: str) -> tuple[int, str]:
        response = post(owner, "/team/invitations", {"email": email, "role": "analyst"})
        page = owner.get("/team").get_data(as_text=True)
        notice = re.search(r"data-confirmation>([^<]*)<", page).group(1)
        link = re.search(r'value="([^"]+)" readonly data-invite-link', page)
        return response.status_code, notice.replace(email, "EMAIL") + str(bool(link))

    assert shown("owner@bravo.test") == shown("brand.new@example.test")
    assert shown("analyst@alpha.test") == shown("brand.new2@example.test")


def test_a_link_is_valid_for_seven_days(app, world, freeze):
    owner = signed_in(app, "owner@alpha.test")
    link = invite(owner, "slow@example.test")
    path = link.split("localhost", 1)[1]
    freeze(NOW + timedelta(days=7) - timedelta(seconds=1))
    assert app.test_client().get(path).status_code == 200
    freeze(NOW + timedelta(days=7))
    assert app.test_client().get(path).status_code == 404
    assert accept(app, link).status_code == 404
    assert member("slow@example.test") is None
    # Nor is it listed as pending any more.
    freeze(NOW + timedelta(days=7))
    assert 'data-invitation="slow@example.test"' not in owner.get("/team").get_data(as_text=True)


def test_revoking_an_invitation_ends_its_link(app, world):
    owner = signed_in(app, "owner@alpha.test")
    link = invite(owner, "maybe@example.test")
    invitation_id = db.session.scalar(select(Invitation.id))
    # The confirmation is part of the form: without it, nothing happens.
    unconfirmed = post(owner, f"/team/invitations/{invitation_id}/revoke", {"confirm": ""})
    assert unconfirmed.status_code == 400
    assert app.test_client().get(link.split("localhost", 1)[1]).status_code == 200
    done = post(owner, f"/team/invitations/{invitation_id}/revoke", {"confirm": "yes"})
    assert done.status_code == 302 and done.headers["Location"].endswith("/team#invitations")
    page = owner.get("/team").get_data(as_text=True)
    assert "Invitation for maybe@example.test revoked" in page
    assert 'data-invitation="maybe@example.test"' not in page
    assert app.test_client().get(link.split("localhost", 1)[1]).status_code == 404
    [entry] = entries("revoke")
    assert (entry.actor, entry.object_type, entry.after) == (
        "owner@alpha.test",
        "invitation",
        {"status": "revoked"},
    )


def test_a_new_invitation_replaces_the_addresss_pending_one(app, world):
    owner = signed_in(app, "owner@alpha.test")
    first = invite(owner, "twice@example.test", "analyst")
    second = invite(owner, "twice@example.test", "admin")
    assert app.test_client().get(first.split("localhost", 1)[1]).status_code == 404
    assert accept(app, second).status_code == 302
    assert member("twice@example.test").role == "admin"
    page = owner.get("/team").get_data(as_text=True)
    assert 'data-invitation="twice@example.test"' not in page


def test_role_change_and_the_last_owner(app, world):
    owner = signed_in(app, "owner@alpha.test")
    demote = post(
        owner, f"/team/members/{world['owner']}/role", {f"member-{world['owner']}-role": "admin"}
    )
    assert demote.status_code == 409
    assert field_error(demote.get_data(as_text=True), f"member-{world['owner']}-role") == (
        "owner@alpha.test is the team's last owner: make another member an owner first"
    )
    assert member("owner@alpha.test").role == "owner"
    remove_self = post(owner, f"/team/members/{world['owner']}/remove", {"confirm": "yes"})
    assert remove_self.status_code == 409
    assert "is the team&#39;s last owner" in remove_self.get_data(as_text=True)
    assert member("owner@alpha.test") is not None
    assert entries("role_change") == [] and entries("remove") == []

    promote = post(
        owner, f"/team/members/{world['admin']}/role", {f"member-{world['admin']}-role": "owner"}
    )
    assert promote.status_code == 302 and promote.headers["Location"].endswith("/team#members")
    assert "admin@alpha.test is now owner." in owner.get("/team").get_data(as_text=True)
    assert member("admin@alpha.test").role == "owner"
    [entry] = entries("role_change")
    assert (entry.actor, entry.object_type, entry.object_label) == (
        "owner@alpha.test",
        "member",
        "admin@alpha.test",
    )
    assert (entry.before, entry.after) == ({"role": "admin"}, {"role": "owner"})
    # With a second owner, the first may step down: the page then is no longer theirs.
    down = post(
        owner, f"/team/members/{world['owner']}/role", {f"member-{world['owner']}-role": "analyst"}
    )
    assert down.status_code == 302 and down.headers["Location"] == "/"
    assert member("owner@alpha.test").role == "analyst"
    assert owner.get("/team").status_code == 403


def test_a_bad_role_is_refused_beside_the_form(app, world):
    owner = signed_in(app, "owner@alpha.test")
    name = f"member-{world['analyst']}-role"
    response = post(owner, f"/team/members/{world['analyst']}/role", {name: "superuser"})
    assert response.status_code == 400
    assert field_error(response.get_data(as_text=True), name) == "choose owner, admin or analyst"
    assert member("analyst@alpha.test").role == "analyst"


def test_removing_a_member_ends_their_sessions_at_once(app, world):
    analyst = signed_in(app, "analyst@alpha.test")
    assert analyst.get("/").status_code == 200
    assert (
        db.session.scalar(
            select(func.count())
            .select_from(KnownAddress)
            .where(KnownAddress.user_id == world["analyst"])
        )
        == 1
    )
    owner = signed_in(app, "owner@alpha.test")
    unconfirmed = post(owner, f"/team/members/{world['analyst']}/remove", {"confirm": "no"})
    assert unconfirmed.status_code == 400
    assert analyst.get("/").status_code == 200
    done = post(owner, f"/team/members/{world['analyst']}/remove", {"confirm": "yes"})
    assert done.status_code == 302 and done.headers["Location"].endswith("/team#members")
    assert "analyst@alpha.test was removed from the team" in owner.get("/team").get_data(
        as_text=True
    )
    gone = analyst.get("/")
    assert gone.status_code == 302 and gone.headers["Location"].startswith("/login")
    assert member("analyst@alpha.test") is None
    assert (
        db.session.scalar(
            select(func.count())
            .select_from(KnownAddress)
            .where(KnownAddress.user_id == world["analyst"])
        )
        == 0
    )
    [entry] = entries("remove")
    assert (entry.actor, entry.object_label, entry.before) == (
        "owner@alpha.test",
        "analyst@alpha.test",
        {"email": "analyst@alpha.test", "role": "analyst"},
    )
    # The address may be invited again, and join again.
    assert accept(app, invite(owner, "analyst@alpha.test")).status_code == 302


def test_an_owner_who_removes_themselves_is_signed_out(app, world):
    owner = signed_in(app, "owner@alpha.test")
    post(owner, f"/team/members/{world['admin']}/role", {f"member-{world['admin']}-role": "owner"})
    response = post(owner, f"/team/members/{world['owner']}/remove", {"confirm": "yes"})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert owner.get("/team").status_code == 302
    assert member("owner@alpha.test") is None


def test_another_partners_members_and_invitations_are_404(app, world):
    other = signed_in(app, "owner@bravo.test")
    bravo_link = invite(other, "bravo.joiner@example.test")
    bravo_invitation = db.session.scalar(select(Invitation.id))
    owner = signed_in(app, "owner@alpha.test")
    page = owner.get("/team").get_data(as_text=True)
    assert "bravo" not in page.lower()
    for path, data in (
        (f"/team/members/{world['other']}/role", {f"member-{world['other']}-role": "analyst"}),
        (f"/team/members/{world['other']}/remove", {"confirm": "yes"}),
        (f"/team/invitations/{bravo_invitation}/revoke", {"confirm": "yes"}),
        ("/team/members/999999/remove", {"confirm": "yes"}),
        (f"/team/invitations/{'0' * 36}/revoke", {"confirm": "yes"}),
    ):
        response = post(owner, path, data)
        assert response.status_code == 404, path
        assert "owner@bravo.test" not in response.get_data(as_text=True)
    assert member("owner@bravo.test").role == "owner"
    assert app.test_client().get(bravo_link.split("localhost", 1)[1]).status_code == 200
    assert entries("remove") == [] and entries("revoke") == [] and entries("role_change") == []


@pytest.mark.parametrize("email", ["admin@alpha.test", "analyst@alpha.test"])
def test_only_owners_open_the_team_page(app, world, email):
    client = signed_in(app, email)
    response = client.get("/team")
    assert response.status_code == 403
    assert 'data-error="403"' in response.get_data(as_text=True)
    token = csrf_token(client.get("/").get_data(as_text=True))
    for path, data in (
        ("/team/invitations", {"email": "sneaky@example.test", "role": "owner"}),
        (f"/team/members/{world['owner']}/role", {f"member-{world['owner']}-role": "analyst"}),
        (f"/team/members/{world['owner']}/remove", {"confirm": "yes"}),
    ):
        refused = client.post(path, data={**data, "csrf_token": token})
        assert refused.status_code == 403, path
    assert member("owner@alpha.test").role == "owner"
    assert db.session.scalar(select(func.count()).select_from(Invitation)) == 0
    # No link to the page in the navigation either.
    assert 'href="/team"' not in client.get("/").get_data(as_text=True)


# --- the command line -----------------------------------------------------------------------


def test_create_user_gives_the_first_user_owner_and_asks_for_the_role_after(
    app_ctx, runner, make_partner
):
    make_partner("charlie")
    first = runner.invoke(
        args=[
            "create-user",
            "--partner",
            "charlie",
            "--email",
            "first@c.test",
            "--password",
            PASSWORD,
        ]
    )
    assert first.exit_code == 0, first.output
    assert "first@c.test (owner)" in first.output
    assert member("first@c.test").role == "owner"
    second = runner.invoke(
        args=[
            "create-user",
            "--partner",
            "charlie",
            "--email",
            "second@c.test",
            "--password",
            PASSWORD,
        ]
    )
    assert second.exit_code != 0
    assert "--role" in second.output and "has users already" in second.output
    assert member("second@c.test") is None
    third = runner.invoke(
        args=[
            "create-user", "--partner", "charlie", "--email", "second@c.test",
            "--password", PASSWORD, "--role", "analyst",
        ]
    )  # fmt: skip
    assert third.exit_code == 0, third.output
    assert member("second@c.test").role == "analyst"
    wrong = runner.invoke(
        args=[
            "create-user", "--partner", "charlie", "--email", "third@c.test",
            "--password", PASSWORD, "--role", "king",
        ]
    )  # fmt: skip
    assert wrong.exit_code != 0 and "king" in wrong.output
    made = entries("create")
    assert [(e.actor_kind, e.actor, e.object_label, e.after) for e in made] == [
        ("cli", "cli", "first@c.test", {"email": "first@c.test", "role": "owner"}),
        ("cli", "cli", "second@c.test", {"email": "second@c.test", "role": "analyst"}),
    ]
    charlie = db.session.scalars(select(Partner).where(Partner.slug == "charlie")).one()
    assert {e.partner_id for e in made} == {charlie.id}


def test_set_password_is_audited(app, runner, world):
    result = runner.invoke(
        args=["set-password", "--email", "admin@alpha.test", "--password", "another long one"]
    )
    assert result.exit_code == 0, result.output
    [entry] = entries("password_change")
    assert (entry.actor_kind, entry.actor, entry.object_label, entry.partner_id) == (
        "cli",
        "cli",
        "admin@alpha.test",
        world["alpha"],
    )
    assert entry.object_id == str(world["admin"])
    # The password itself is never written to the log.
    assert entry.before is None and entry.after is None
    refused = runner.invoke(args=["set-password", "--email", "admin@alpha.test", "--password", "x"])
    assert refused.exit_code != 0
    assert len(entries("password_change")) == 1


def test_the_invitation_link_is_mailed_to_the_invited_address_once(app, world):
    from email import message_from_bytes, policy
    from pathlib import Path

    link = invite(signed_in(app, "owner@alpha.test"), "mailed@example.test", "admin")
    files = sorted(Path(app.config["MAIL_OUTBOX_DIR"]).glob("*.eml"))
    assert len(files) == 1
    message = message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert message["To"] == "mailed@example.test"
    assert "Alpha Agency" in message["Subject"]
    assert link in message.get_body(("plain",)).get_content()
