"""The settings page: owner only, fields checked beside each field, the 422 of a pool below
the allocations, the two-step timezone change, and the audit entry of every path (page,
flask set-timezone, flask rollups rebuild)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select

from app import auth, settings
from app.extensions import db
from app.models import AuditEntry, Partner, PartnerTerms
from tests.browser_support import CHROMIUM, demo_app, new_page, serving, sign_in

PASSWORD = "correct horse battery"
NOW = datetime(2025, 9, 10, 12)


def token_of(html: str) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


def log_in(client, email: str) -> None:
    token = token_of(client.get("/login").get_data(as_text=True))
    response = client.post(
        "/login", data={"email": email, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302


@pytest.fixture
def acme(freeze, make_partner, make_org, add_events):
    """Pool 1,000 on day 1, created 15 Aug; Alpha holds 300 credits, Beta 400; three events."""
    freeze(NOW)
    partner = make_partner("acme", pool=1000, created_at=datetime(2025, 8, 15))
    alpha = make_org(partner, "Alpha", initial_credits=300, tier="paid")
    make_org(partner, "Beta", initial_credits=400, tier="paid")
    events = [
        # 02:00Z on 9 Sep is still 8 Sep (22:00) in New York: it moves. 14:00Z stays.
        ("e1", "2025-09-09T02:00:00Z"),
        ("e2", "2025-09-09T14:00:00Z"),
        ("e3", "2025-09-05T03:30:00Z"),  # 4 Sep 23:30 in New York: moves too
    ]
    result = add_events(
        partner,
        [
            {"eventId": e, "organizationId": alpha.id, "type": "identification", "occurredAt": at}
            for e, at in events
        ],
    )
    assert result.rejected == []
    for email, role in (
        ("owner@acme.test", "owner"),
        ("admin@acme.test", "admin"),
        ("analyst@acme.test", "analyst"),
    ):
        auth.create_user(partner, email, PASSWORD, role)
    return partner


def form_data(token: str, **changes: str) -> dict[str, str]:
    data = {
        "csrf_token": token,
        "name": "Acme",
        "credit_pool": "1,000",
        "billing_day": "1",
        "tiers-0-tier": "Starter",
        "tiers-0-price": "0.10",
        "tiers-0-start": "0",
        "tiers-1-tier": "Growth",
        "tiers-1-price": "0.08",
        "tiers-1-start": "10,000",
        "tiers-2-tier": "Scale",
        "tiers-2-price": "0.05",
        "tiers-2-start": "100,000",
        "tiers-3-tier": "",
        "tiers-3-price": "",
        "tiers-3-start": "",
    }
    return data | changes


def error_beside(html: str, name: str) -> str:
    found = re.search(rf'data-error-for="{re.escape(name)}">([^<]*)<', html)
    assert found, f"no error beside {name}"
    return found.group(1).replace("&#39;", "'")


def audit_entries() -> list[AuditEntry]:
    db.session.expire_all()
    # The settings' own entries: the fixtures' organizations and members are audited too.
    setting_kinds = ("partner", "rollups")
    return list(
        db.session.execute(
            select(AuditEntry)
            .where(AuditEntry.object_type.in_(setting_kinds))
            .order_by(AuditEntry.id)
        ).scalars()
    )


def test_the_owner_sees_the_settings_with_the_day_changes_apply_from(client, acme):
    log_in(client, "owner@acme.test")
    page = client.get("/settings")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    # Today 10 Sep, in the period 1-30 Sep: a change applies from 1 Oct.
    assert 'data-applies-from="2025-10-01"' in html
    assert 'value="Acme"' in html and 'value="1,000"' in html
    assert 'value="10,000"' in html  # the Growth tier's first unit, as the pages write numbers
    assert 'class="is-active" aria-current="page">Settings<' in html


def test_a_settings_change_is_saved_for_the_next_period_and_audited(client, acme):
    client.environ_base["REMOTE_ADDR"] = "10.1.2.3"
    log_in(client, "owner@acme.test")
    token = token_of(client.get("/settings").get_data(as_text=True))
    response = client.post(
        "/settings",
        data=form_data(token, name="Acme Agency", credit_pool="2,500", billing_day="15"),
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/settings#terms")
    html = client.get("/settings").get_data(as_text=True)
    # Once, beside the form (not also in the page's general messages).
    assert (
        html.count(
            "Settings saved. The pool, prices and billing day apply from the billing period "
            "starting 1 Oct 2025"
        )
        == 1
    )
    db.session.expire_all()
    partner = db.session.get(Partner, acme.id)
    assert (partner.name, partner.credit_pool_total, partner.billing_day_of_month) == (
        "Acme Agency",
        2500,
        15,
    )
    (entry,) = audit_entries()
    assert (entry.object_type, entry.action, entry.actor_kind, entry.actor) == (
        "partner",
        "update",
        "user",
        "owner@acme.test",
    )
    assert entry.before == {"name": "Acme", "creditPoolTotal": 1000, "billingDayOfMonth": 1}
    assert entry.after == {
        "name": "Acme Agency",
        "creditPoolTotal": 2500,
        "billingDayOfMonth": 15,
        "effectiveFrom": "2025-10-01",
    }
    assert entry.client_address == "10.1.2.3"
    # The current period keeps its terms: the billing page still shows 1,000 and day 1.
    billing = client.get("/api/v1/partner/billing").get_json()
    assert (billing["creditPoolTotal"], billing["billingDayOfMonth"]) == (1000, 1)
    assert (billing["nextTerms"]["creditPoolTotal"], billing["nextTerms"]["billingDayOfMonth"]) == (
        2500,
        15,
    )


def test_a_pool_below_the_allocations_answers_422_naming_the_shortfall(client, acme):
    log_in(client, "owner@acme.test")
    token = token_of(client.get("/settings").get_data(as_text=True))
    response = client.post("/settings", data=form_data(token, credit_pool="650"))
    assert response.status_code == 422
    # Alpha 300 + Beta 400 = 700 allocated; 700 - 650 = 50 short.
    assert error_beside(response.get_data(as_text=True), "credit_pool") == (
        "A pool of 650 credits is 50 short of the 700 credits allocated to organizations now: "
        "lower their allocations first, or keep the pool at 700 or more."
    )
    db.session.expire_all()
    assert db.session.get(Partner, acme.id).credit_pool_total == 1000
    assert db.session.execute(select(PartnerTerms)).all() == []
    assert audit_entries() == []


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"tiers-0-start": "5"}, "tiers-0-start", "The first tier must start at 0"),
        (
            {"tiers-2-start": "10,000"},
            "tiers-2-start",
            "Must be above 10,000, where the tier before starts: each tier starts where the "
            "one before ends",
        ),
        (
            {"tiers-1-price": "0"},
            "tiers-1-price",
            "Enter a price above 0, such as 0.08 (a dot for decimals, at most 6)",
        ),
        (
            {"tiers-1-price": "-0.5"},
            "tiers-1-price",
            "Enter a price above 0, such as 0.08 (a dot for decimals, at most 6)",
        ),
        ({"tiers-2-start": "lots"}, "tiers-2-start", "Enter a whole number of identifications"),
        (
            {"credit_pool": "1.5"},
            "credit_pool",
            "Enter a whole number of credits, such as 50000 or 50,000 (commas or spaces only "
            "between groups of three digits)",
        ),
        ({"billing_day": "29"}, "billing_day", "Choose a day from 1 to 28"),
        ({"name": "   "}, "name", "Enter the partner's name"),
        (
            {f"tiers-{i}-{f}": "" for i in range(3) for f in ("tier", "price", "start")},
            "tiers",
            "Enter at least one pricing tier (it starts at 0)",
        ),
    ],
)
def test_bad_settings_are_refused_beside_the_field(client, acme, changes, field, message):
    log_in(client, "owner@acme.test")
    token = token_of(client.get("/settings").get_data(as_text=True))
    response = client.post("/settings", data=form_data(token, **changes))
    assert response.status_code == 400
    assert error_beside(response.get_data(as_text=True), field) == message
    assert audit_entries() == []
    db.session.expire_all()
    assert db.session.get(Partner, acme.id).name == "Acme"


def test_a_band_can_be_added_and_one_removed(client, acme):
    log_in(client, "owner@acme.test")
    token = token_of(client.get("/settings").get_data(as_text=True))
    data = form_data(
        token,
        **{"tiers-2-tier": "", "tiers-2-price": "", "tiers-2-start": ""},  # drop Scale
        **{"tiers-3-tier": "Huge", "tiers-3-price": "0.01", "tiers-3-start": "1 000 000"},
    )
    assert client.post("/settings", data=data).status_code == 302
    db.session.expire_all()
    assert db.session.get(Partner, acme.id).pricing_tiers == [
        {"tier": "Starter", "pricePerIdentification": "0.10", "minUsage": 0, "maxUsage": 10000},
        {
            "tier": "Growth",
            "pricePerIdentification": "0.08",
            "minUsage": 10000,
            "maxUsage": 1000000,
        },
        {"tier": "Huge", "pricePerIdentification": "0.01", "minUsage": 1000000, "maxUsage": None},
    ]


@pytest.mark.parametrize("email", ["admin@acme.test", "analyst@acme.test"])
def test_an_admin_or_analyst_is_refused_and_nothing_changes(client, acme, email):
    log_in(client, email)
    assert client.get("/settings").status_code == 403
    token = token_of(client.get("/").get_data(as_text=True))
    refused = client.post("/settings", data=form_data(token, name="Hijacked", credit_pool="5,000"))
    assert refused.status_code == 403
    tz = client.post(
        "/settings/timezone", data={"csrf_token": token, "timezone": "Asia/Tokyo", "confirm": "yes"}
    )
    assert tz.status_code == 403
    db.session.expire_all()
    partner = db.session.get(Partner, acme.id)
    assert (partner.name, partner.credit_pool_total, partner.timezone) == ("Acme", 1000, "UTC")
    assert audit_entries() == []
    # No Settings tab for them either.
    assert 'data-tab="settings"' not in client.get("/").get_data(as_text=True)


def test_the_settings_form_needs_its_csrf_token(client, acme):
    log_in(client, "owner@acme.test")
    response = client.post("/settings", data=form_data("", name="No token"))
    assert response.status_code == 400
    db.session.expire_all()
    assert db.session.get(Partner, acme.id).name == "Acme"


def test_a_timezone_change_is_confirmed_with_the_events_it_moves_then_made(client, acme):
    log_in(client, "owner@acme.test")
    token = token_of(client.get("/settings").get_data(as_text=True))
    first = client.post(
        "/settings/timezone", data={"csrf_token": token, "timezone": "America/New_York"}
    )
    assert first.status_code == 200
    html = first.get_data(as_text=True)
    # e1 (02:00Z) and e3 (03:30Z) fall on the day before in New York (UTC-4); e2 stays.
    assert re.search(r'data-field="eventsMoved">2</strong> of 3 events', html)
    # The settings form beside it still shows the saved tiers (not this POST's fields).
    assert 'value="10,000"' in html and 'value="Acme"' in html
    db.session.expire_all()
    assert db.session.get(Partner, acme.id).timezone == "UTC"  # nothing changed yet
    assert audit_entries() == []
    done = client.post(
        "/settings/timezone",
        data={"csrf_token": token, "timezone": "America/New_York", "confirm": "yes"},
    )
    assert done.status_code == 302 and done.headers["Location"].endswith("/settings#time-zone")
    assert "2 events moved to another day" in client.get("/settings").get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Partner, acme.id).timezone == "America/New_York"
    (entry,) = audit_entries()
    assert (entry.object_type, entry.action, entry.actor) == (
        "partner",
        "set_timezone",
        "owner@acme.test",
    )
    assert (entry.before, entry.after) == (
        {"timezone": "UTC"},
        {"timezone": "America/New_York", "eventsMoved": 2},
    )


def test_above_the_page_limit_the_owner_is_given_the_command(client, acme, monkeypatch):
    monkeypatch.setattr(settings, "PAGE_TIMEZONE_LIMIT", 2)  # the partner has 3 events
    log_in(client, "owner@acme.test")
    token = token_of(client.get("/settings").get_data(as_text=True))
    for confirm in ("", "yes"):
        response = client.post(
            "/settings/timezone",
            data={"csrf_token": token, "timezone": "Asia/Tokyo", "confirm": confirm},
        )
        assert response.status_code == 422
        html = response.get_data(as_text=True)
        assert (
            "<code data-cli-command>flask set-timezone --partner acme --timezone Asia/Tokyo</code>"
            in html
        )
    db.session.expire_all()
    assert db.session.get(Partner, acme.id).timezone == "UTC"
    assert audit_entries() == []


def test_an_unknown_timezone_is_refused_beside_the_field(client, acme):
    log_in(client, "owner@acme.test")
    token = token_of(client.get("/settings").get_data(as_text=True))
    response = client.post(
        "/settings/timezone", data={"csrf_token": token, "timezone": "Mars/Olympus"}
    )
    assert response.status_code == 400
    assert error_beside(response.get_data(as_text=True), "timezone") == (
        "Choose a timezone from the list (an IANA name such as Europe/Paris)"
    )


def test_the_cli_timezone_change_and_rollup_rebuild_are_audited_as_cli(runner, acme):
    result = runner.invoke(
        args=["set-timezone", "--partner", "acme", "--timezone", "America/New_York"]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["rollups", "rebuild", "--partner", "acme"])
    assert result.exit_code == 0, result.output
    timezone, rebuild = audit_entries()
    assert (timezone.actor_kind, timezone.actor, timezone.object_type, timezone.action) == (
        "cli",
        "cli",
        "partner",
        "set_timezone",
    )
    assert timezone.after == {"timezone": "America/New_York", "eventsMoved": 2}
    assert (rebuild.actor_kind, rebuild.object_type, rebuild.action, rebuild.object_id) == (
        "cli",
        "rollups",
        "rebuild",
        acme.id,
    )
    # Right after the change every event is already on its New York day: none re-bucketed.
    assert rebuild.after == {"eventsMoved": 0}


# --- in a browser ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def settings_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The demo on a server of its own: this test changes its settings."""
    from app.timeutil import set_frozen_now

    app = demo_app(tmp_path_factory.mktemp("settings-browser"))
    with serving(app) as url:
        yield url
    set_frozen_now(None)


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="no Chromium at /usr/bin/chromium")
def test_an_owner_changes_the_pool_and_a_price_in_the_browser(chromium, settings_server):
    for width in (390, 1440):
        w = new_page(chromium, settings_server, width=width, height=900)
        sign_in(w)
        w.goto("/settings")
        w.shot(f"settings-{width}")
        w.page.close()
    w = new_page(chromium, settings_server, width=1440, height=900)
    page = w.page
    sign_in(w)
    page.click("a[data-nav=manage]")  # the owner's first management page: Settings
    w.settle()
    applies = page.locator("[data-applies-from]").get_attribute("data-applies-from")
    pool = page.locator("#credit_pool")
    # A band starting below the one before is refused beside its field, nothing saved.
    page.fill("#tiers-1-start", "0")
    page.click("text=Save settings")
    w.settle()
    assert "Must be above 0" in page.locator("[data-error-for='tiers-1-start']").inner_text()
    w.shot("settings-band-error")
    page.fill("#tiers-1-start", "10,000")
    pool.fill("999,999")
    page.fill("#tiers-0-price", "0.12")
    page.click("text=Save settings")
    w.settle()
    confirmation = page.locator("[data-confirmation]").inner_text()
    assert "apply from the billing period starting" in confirmation
    assert page.locator("#credit_pool").input_value() == "999,999"
    assert page.locator("#tiers-0-price").input_value() == "0.12"
    next_terms = page.locator("[data-terms=next] [data-field=creditPoolTotal]").inner_text()
    assert next_terms.startswith("999,999 credits")
    assert applies  # the card names the day the change applies from
    w.shot("settings-saved")
    # The timezone asks first, counting the events it moves.
    page.select_option("select#timezone", "Europe/Paris")
    page.click("text=Check the change")
    w.settle()
    assert page.locator("[data-timezone-confirmation]").count() == 1
    w.shot("settings-timezone-confirm")
    page.click("a:has-text('Cancel')")
    w.settle()
    assert page.locator("[data-timezone-confirmation]").count() == 0
    # The refused band answered 400, which Chromium reports on the console; nothing else.
    w.assert_clean(
        (
            "console: Failed to load resource: the server responded with a status "
            "of 400 (BAD REQUEST)",
        )
    )
