"""The team in a real browser: invite → accept in a fresh browser → sign in as the member,
and an analyst refused on every write (no write form on its pages; a direct POST is 403).

Over the demo server of tests/browser_support.py (its owner is demo@example.com).
"""

from __future__ import annotations

import re

from tests.browser_support import BROWSER_MARKS, new_page, sign_in

pytestmark = BROWSER_MARKS

NEW_PASSWORD = "a brand new password"


def invite_and_accept(chromium, server, email: str, role: str) -> None:
    """The demo owner invites email with role; the link is opened in a fresh browser
    context (another person's browser) and a password is chosen there."""
    owner = new_page(chromium, server)
    sign_in(owner)
    owner.goto("/team")
    owner.page.fill("#email", email)
    owner.page.select_option("#role", role)
    owner.page.click("form[data-form=invite] button[type=submit]")
    owner.settle()
    assert owner.page.url.endswith("/team#invite")
    notice = owner.page.locator("#invite [data-confirmation]").inner_text()
    assert f"Invitation for {email} as {role} created" in notice
    link = owner.page.locator("[data-invite-link]").input_value()
    assert re.fullmatch(re.escape(server) + r"/invitations/[A-Za-z0-9_-]{43}", link), link
    assert owner.page.locator(f'tr[data-invitation="{email}"]').count() == 1
    # Shown once: a reload no longer has it.
    owner.goto("/team")
    assert owner.page.locator("[data-invite-link]").count() == 0
    owner.assert_clean()
    owner.page.context.close()

    invitee = new_page(chromium, server)
    invitee.goto(link)
    assert invitee.page.locator("[data-email]").inner_text() == email
    assert invitee.page.locator("[data-role]").inner_text() == role
    invitee.page.fill("#password", "short")
    invitee.page.fill("#confirm", "short")
    invitee.page.click("button[type=submit]")
    invitee.settle()
    assert (
        "at least 8 characters" in invitee.page.locator('[data-error-for="password"]').inner_text()
    )
    invitee.page.fill("#password", NEW_PASSWORD)
    invitee.page.fill("#confirm", NEW_PASSWORD)
    invitee.page.click("button[type=submit]")
    invitee.settle()
    assert invitee.page.url.endswith("/login")
    assert f"sign in as {email}" in invitee.page.locator(".flashes").inner_text()
    # The link is used up.
    invitee.goto(link)
    assert invitee.page.locator("[data-error='404']").count() == 1
    # The browser logs the two refusals' statuses (the short password, the used link).
    invitee.assert_clean(
        tuple(
            f"console: Failed to load resource: the server responded with a status of {s}"
            for s in ("400 (BAD REQUEST)", "404 (NOT FOUND)")
        )
    )
    invitee.page.context.close()


def sign_in_as(chromium, server, email: str):
    watched = new_page(chromium, server)
    page = watched.page
    page.goto("/login")
    page.fill("#email", email)
    page.fill("#password", NEW_PASSWORD)
    page.click("button[type=submit]")
    watched.settle()
    return watched


def test_invite_accept_and_sign_in_as_the_new_member(chromium, server):
    invite_and_accept(chromium, server, "new.admin@example.com", "admin")
    member = sign_in_as(chromium, server, "new.admin@example.com")
    assert member.page.url == server + "/"
    assert member.page.locator(".signout__who").inner_text() == "new.admin@example.com"
    # An admin manages organizations but not the team: Manage leads elsewhere, /team is 403.
    assert member.page.locator("[data-tab=team]").count() == 0
    response = member.page.goto(server + "/team")
    assert response.status == 403
    member.page.context.close()


def test_an_analyst_is_refused_on_every_write(chromium, server):
    invite_and_accept(chromium, server, "new.analyst@example.com", "analyst")
    analyst = sign_in_as(chromium, server, "new.analyst@example.com")
    page = analyst.page
    assert page.locator("[data-nav=manage]").count() == 0
    page.goto(server + "/organizations")
    analyst.settle()
    org_path = page.locator("a[data-org-link]").first.get_attribute("href").split("?")[0]
    analyst.goto(org_path)
    allocated = page.locator('[data-field="creditsAllocated"]').inner_text()
    # No write form on the page: only signing out posts.
    actions = page.eval_on_selector_all(
        "form[method=post]", "forms => forms.map(f => new URL(f.action).pathname)"
    )
    assert actions == ["/logout"]
    assert page.locator("[data-read-only]").count() == 1
    token = page.locator("input[name=csrf_token]").first.input_value()
    # The forms' POSTs sent straight: 403, the error page, nothing changed.
    for path, form in (
        (org_path + "/allocation", {"credits": "1", "notes": ""}),
        ("/team/invitations", {"email": "sneak@example.com", "role": "owner"}),
        ("/team/members/1/role", {"member-1-role": "analyst"}),
        ("/team/members/1/remove", {"confirm": "yes"}),
    ):
        response = page.request.post(server + path, form={**form, "csrf_token": token})
        assert response.status == 403, path
        assert 'data-error="403"' in response.text(), path
    for path in ("/team",):
        assert page.goto(server + path).status == 403
    analyst.goto(org_path)
    assert page.locator('[data-field="creditsAllocated"]').inner_text() == allocated
    page.context.close()
    # The owner still is, and nobody was invited by the analyst.
    owner = new_page(chromium, server)
    sign_in(owner)
    owner.goto("/team")
    assert owner.page.locator('tr[data-member="demo@example.com"] select').input_value() == "owner"
    assert owner.page.locator('tr[data-invitation="sneak@example.com"]').count() == 0
    owner.page.context.close()
