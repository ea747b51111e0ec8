"""In the browser: make an API key, copy it (shown once), use it, revoke it (after the
confirmation), and see it refused; then find both changes in the audit log.

Screenshots (each page also checked with axe-core, WCAG 2.x A and AA, with its new key,
its confirmation, its entries): tests/artifacts/screenshots/keys-*.png and audit-log-*.png
at 390 and 1440 px.
"""

from __future__ import annotations

import re

from app import demo
from tests.browser_support import BROWSER_MARKS, SHOTS, Watched, axe_violations, use_axe

pytestmark = BROWSER_MARKS


def signed_in_page(chromium, server, width: int, height: int) -> Watched:
    context = chromium.new_context(
        viewport={"width": width, "height": height},
        base_url=server,
        permissions=["clipboard-read", "clipboard-write"],
    )
    watched = Watched(context.new_page())
    use_axe(watched)
    page = watched.page
    page.goto("/login")
    page.fill("#email", demo.DEMO_EMAIL)
    page.fill("#password", demo.DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("load")
    return watched


def shot(watched: Watched, name: str) -> None:
    """Save a screenshot, and check the page with axe-core (WCAG 2.x A and AA) as it is."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    watched.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    assert axe_violations(watched.page) == [], name


def test_key_create_copy_use_revoke(chromium, server):
    w = signed_in_page(chromium, server, 1440, 900)
    page = w.page
    page.goto("/api-keys")
    assert page.locator(".manage-tabs a.is-active").inner_text() == "API keys"
    page.fill("#name", "Browser robot")
    page.check("#scope-read")
    page.click("button:has-text('Make key')")
    page.wait_for_load_state("load")

    # Shown once, with a copy button that puts exactly the key on the clipboard.
    value = page.locator("[data-plain-key]")
    plain = value.input_value()
    assert re.fullmatch(r"pk_live_[A-Za-z0-9_-]{40,}", plain)
    assert page.locator(".flashes").inner_text().startswith("Key “Browser robot (")
    page.click("[data-copy]")
    page.wait_for_function(
        "document.querySelector('[data-copy-status]').textContent.startsWith('Copied')"
    )
    assert page.evaluate("navigator.clipboard.readText()") == plain
    assert page.locator("[data-copy]").inner_text() == "Copied"
    shot(w, "keys-created-1440")

    # The key works against the API.
    me = page.request.get("/api/v1/partner/me", headers={"X-Partner-API-Key": plain})
    assert me.status == 200 and me.json()["apiKey"]["name"] == "Browser robot"

    # Never shown again.
    page.goto("/api-keys")
    assert page.locator("[data-plain-key]").count() == 0
    assert plain not in page.content()
    row = page.locator("tr", has=page.locator("td.name", has_text="Browser robot"))
    assert row.get_attribute("data-status") == "active"

    # Revoke: a confirmation first, then the key answers 401.
    row.locator("[data-revoke]").click()
    page.wait_for_load_state("load")
    confirm = page.locator("[data-confirm-revoke]")
    assert "Revoke “Browser robot”" in confirm.inner_text()
    shot(w, "keys-confirm-1440")
    confirm.locator("button:has-text('Revoke this key')").click()
    page.wait_for_load_state("load")
    assert "revoked: it answers 401 from now on" in page.locator(".flashes").inner_text()
    row = page.locator("tr", has=page.locator("td.name", has_text="Browser robot"))
    assert row.get_attribute("data-status") == "revoked"
    refused = page.request.get("/api/v1/partner/me", headers={"X-Partner-API-Key": plain})
    assert refused.status == 401

    # Both changes are in the audit log, by the signed-in user, newest first.
    page.goto("/audit-log?objectType=api_key")
    rows = page.locator("tbody tr")
    assert rows.count() == 2
    first, second = rows.nth(0), rows.nth(1)
    assert first.get_attribute("data-action") == "revoke"
    assert second.get_attribute("data-action") == "create"
    for r in (first, second):
        assert demo.DEMO_EMAIL in r.locator("td.who").inner_text()
        assert "Browser robot (pk_live_" in r.locator("td.what").inner_text()
    assert "active → revoked" in first.locator("td.diff").inner_text()
    shot(w, "audit-log-1440")
    w.assert_clean()


def test_the_pages_on_a_phone(chromium, server):
    w = signed_in_page(chromium, server, 390, 844)
    page = w.page
    page.goto("/api-keys")
    page.fill("#name", "Phone key")
    page.check("#scope-read")
    page.check("#scope-write")
    page.click("button:has-text('Make key')")
    page.wait_for_load_state("load")
    assert page.locator("[data-plain-key]").is_visible()
    for name, path in (("keys-created", None), ("audit-log", "/audit-log")):
        if path:
            page.goto(path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, (name, width)
        shot(w, f"{name}-390")
    w.assert_clean()
