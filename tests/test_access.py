"""Access control: who may see and change what, over every page and every API endpoint.

Two partners (Alpha and Bravo), one dashboard user each, and Alpha's API keys with every
scope, plus a revoked and an expired one. The matrix is built from the app's URL map, so a
new endpoint or page that this file does not list fails the coverage test until its rule
is written down here.

Sessions: a new session on sign-in (no fixation), sign-out ends the session everywhere (an
old cookie replayed afterwards is refused), sign-in attempts are rate limited, and
`flask set-password` ends the user's sessions.
"""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app import alerts, auth
from app.extensions import db
from app.models import ApiKey, Organization

NOW = datetime(2025, 10, 20, 12)
PASSWORD = "correct horse battery"
BRAVO_SECRETS = ("Bravo Secret Org", "bravo-ext-1")

# Every API operation: (method, rule, scope it needs, body). {org} is Alpha's organization,
# {key} Alpha's spare key, {month} a month with data.
API = [
    ("GET", "/api/v1/partner/me", "read", None),
    ("GET", "/api/v1/partner/analytics", "read", None),
    ("GET", "/api/v1/partner/usage", "read", None),
    ("GET", "/api/v1/partner/analytics/timeseries", "read", None),
    ("GET", "/api/v1/partner/analytics/organizations", "read", None),
    ("GET", "/api/v1/partner/organizations/{org}/analytics", "read", None),
    ("GET", "/api/v1/partner/billing", "read", None),
    ("GET", "/api/v1/partner/billing/usage", "read", None),
    ("GET", "/api/v1/partner/billing/calculate?usage=10", "read", None),
    ("GET", "/api/v1/partner/billing/periods", "read", None),
    ("GET", "/api/v1/partner/organizations", "read", None),
    ("GET", "/api/v1/partner/organizations/{org}", "read", None),
    ("GET", "/api/v1/partner/organizations/{org}/credits/history", "read", None),
    ("GET", "/api/v1/partner/reports", "read", None),
    ("GET", "/api/v1/partner/reports/{month}", "read", None),
    (
        "POST",
        "/api/v1/partner/events",
        "write",
        {
            "events": [
                {
                    "eventId": "x-{n}",
                    "organizationId": "{org}",
                    "type": "page_view",
                    "occurredAt": "2025-10-19T10:00:00Z",
                }
            ]
        },
    ),
    ("POST", "/api/v1/partner/organizations", "write", {"name": "New {n}"}),
    ("PATCH", "/api/v1/partner/organizations/{org}", "write", {"metadata": {"n": "{n}"}}),
    ("PUT", "/api/v1/partner/organizations/{org}/tier", "write", {"tier": "paid"}),
    ("PUT", "/api/v1/partner/organizations/{org}/credits", "write", {"credits": 50}),
    ("PUT", "/api/v1/partner/organizations/{org}/status", "write", {"status": "active"}),
    ("GET", "/api/v1/partner/api-keys", "admin", None),
    ("POST", "/api/v1/partner/api-keys", "admin", {"name": "k{n}", "scopes": ["read"]}),
    ("DELETE", "/api/v1/partner/api-keys/{key}", "admin", None),
    # The PUT first: the test send and the rotation need a configured webhook. Port 9 on
    # this machine refuses the connection (the tests allow private addresses).
    ("PUT", "/api/v1/partner/webhooks/billing", "admin", {"url": "http://127.0.0.1:9/h{n}"}),
    ("GET", "/api/v1/partner/webhooks", "admin", None),
    ("POST", "/api/v1/partner/webhooks/test", "admin", None),
    ("GET", "/api/v1/partner/webhooks/logs", "admin", None),
    ("POST", "/api/v1/partner/webhooks/secret/rotate", "admin", None),
    ("GET", "/api/v1/partner/alerts", "admin", None),
    ("POST", "/api/v1/partner/alerts", "admin", {"kind": "stale_data", "threshold": 24}),
    ("GET", "/api/v1/partner/alerts/history", "admin", None),
    ("PUT", "/api/v1/partner/alerts/{alert}", "admin", {"kind": "pool_usage", "threshold": 90}),
    ("DELETE", "/api/v1/partner/alerts/{alert}", "admin", None),
    # Last: it cancels the organization the rows above use.
    ("DELETE", "/api/v1/partner/organizations/{org}", "write", None),
]
PUBLIC_API = {("GET", "/api/v1/openapi.json")}

# Every dashboard page (GET) and form (POST). {org} is the signed-in partner's organization.
PAGES = [
    "/",
    "/organizations",
    "/organizations.csv",
    "/organizations/{org}",
    "/credits",
    "/billing",
    "/billing.csv",
    "/reports",
    "/reports/{month}",
    "/reports/{month}.csv",
    "/reports/{month}.json",
    "/webhooks",
    "/alerts",
    "/account/email",
]
PAGE_POSTS = [
    "/organizations/{org}/allocation",
    "/webhooks",
    "/webhooks/secret/rotate",
    "/webhooks/test",
    "/alerts/rules",
    "/alerts/rules/{alert}",
    "/alerts/rules/{alert}/delete",
    "/alerts/test",
    "/account/email",
]
OPEN_PAGES = {"/login", "/logout", "/static/<path:filename>"}


def flask_rule(path: str) -> str:
    """Turn a path template of this file into the rule Flask shows."""
    path = path.split("?")[0]
    return (
        path.replace("{org}", "<id>" if path.startswith("/api/") else "<org_id>")
        .replace("{key}", "<id>")
        .replace("{alert}", "<id>" if path.startswith("/api/") else "<rule_id>")
        .replace("{month}", "<month>")
    )


@pytest.fixture
def world(app, freeze, make_partner, make_org, add_events, make_user):
    freeze(NOW)
    alpha = make_partner("alpha", pool=10_000, name="Alpha Agency", created_at=datetime(2025, 1, 1))
    bravo = make_partner("bravo", pool=10_000, name="Bravo Agency", created_at=datetime(2025, 1, 1))
    a_org = make_org(
        alpha,
        "Alpha Client",
        external_id="alpha-ext-1",
        initial_credits=100,
        tier="paid",
        created_at=datetime(2025, 1, 1),
    )
    b_org = make_org(
        bravo,
        BRAVO_SECRETS[0],
        external_id=BRAVO_SECRETS[1],
        initial_credits=200,
        tier="paid",
        created_at=datetime(2025, 1, 1),
    )
    for partner, org, prefix in ((alpha, a_org, "a"), (bravo, b_org, "b")):
        result = add_events(
            partner,
            [
                {
                    "eventId": f"{prefix}{i}",
                    "organizationId": org.id,
                    "type": "identification",
                    "quantity": 3,
                    "occurredAt": f"2025-09-{10 + i}T10:00:00Z",
                }
                for i in range(5)
            ],
        )
        assert result.rejected == []
    keys: dict[str, str] = {}
    for name, scopes in (
        ("full", None),
        ("read", ["read"]),
        ("write", ["write"]),
        ("admin", ["admin"]),
        ("revoked", None),
        ("expired", None),
        ("spare", ["read"]),
    ):
        _key, plain = auth.create_api_key(alpha, name, scopes)
        keys[name] = plain
    auth.revoke_api_key(
        db.session.execute(select(ApiKey).where(ApiKey.name == "revoked")).scalar_one()
    )
    expired = db.session.execute(select(ApiKey).where(ApiKey.name == "expired")).scalar_one()
    expired.expires_at = NOW - timedelta(seconds=1)
    db.session.commit()
    _key, keys["bravo"] = auth.create_api_key(bravo, "bravo", None)
    keys["unknown"] = "pk_live_" + "x" * 43
    spare_id = db.session.execute(select(ApiKey.id).where(ApiKey.name == "spare")).scalar()
    a_user = make_user(alpha, "ops@alpha.test", PASSWORD)
    b_user = make_user(bravo, "ops@bravo.test", PASSWORD)
    alert = alerts.create_rule(alpha, "pool_usage", 80)
    return {
        "alert": alert.id,
        "alpha": alpha,
        "bravo": bravo,
        "a_org": a_org.id,
        "b_org": b_org.id,
        "keys": keys,
        "spare": spare_id,
        "a_user": a_user,
        "b_user": b_user,
        "month": "2025-09",
    }


def fill(template: Any, values: dict[str, str]) -> Any:
    if isinstance(template, str):
        for name, value in values.items():
            template = template.replace("{" + name + "}", value)
        return template
    if isinstance(template, dict):
        return {k: fill(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, values) for v in template]
    return template


def call(client, method: str, path: str, body: Any, key: str | None) -> Any:
    headers = {"X-Partner-API-Key": key} if key is not None else {}
    return client.open(path, method=method, json=body, headers=headers)


def test_the_matrix_covers_every_route(app):
    api_rules, page_rules = set(), set()
    for rule in app.url_map.iter_rules():
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            if rule.rule.startswith("/api/"):
                api_rules.add((method, rule.rule))
            elif rule.rule not in OPEN_PAGES:
                page_rules.add((method, rule.rule))
    listed = {(m, flask_rule(p)) for m, p, _s, _b in API} | PUBLIC_API
    assert api_rules == listed, "an API route is missing from the access matrix"
    pages = {("GET", flask_rule(p)) for p in PAGES} | {("POST", flask_rule(p)) for p in PAGE_POSTS}
    assert page_rules == pages, "a page is missing from the access matrix"


def allowed(key_name: str, scope: str) -> bool:
    """The rules of spec §3 and the README: admin does all, write reads too, none = all."""
    return {
        "full": True,
        "admin": True,
        "write": scope in ("read", "write"),
        "read": scope == "read",
    }[key_name]


@pytest.mark.parametrize("key_name", ["full", "admin", "write", "read"])
def test_each_scope_reaches_exactly_its_endpoints(client, world, key_name):
    key = world["keys"][key_name]
    for n, (method, path, scope, body) in enumerate(API):
        values = {
            "org": world["a_org"],
            "key": world["spare"],
            "alert": world["alert"],
            "month": world["month"],
            "n": str(n),
        }
        response = call(client, method, fill(path, values), fill(body, values), key)
        label = f"{key_name} key: {method} {path}"
        if allowed(key_name, scope):
            assert response.status_code < 300, (label, response.status_code, response.get_json())
        else:
            assert response.status_code == 403, label
            assert response.get_json()["code"] == "Forbidden"
            assert response.get_json()["details"]["requiredScope"] == scope


@pytest.mark.parametrize("key_name", [None, "unknown", "revoked", "expired", "", "Bearer x"])
def test_no_live_key_gets_401_everywhere(client, world, key_name):
    key = world["keys"].get(key_name, key_name) if key_name else key_name
    for n, (method, path, _scope, body) in enumerate(API):
        values = {
            "org": world["a_org"],
            "key": world["spare"],
            "alert": world["alert"],
            "month": world["month"],
            "n": str(n),
        }
        response = call(client, method, fill(path, values), fill(body, values), key)
        assert response.status_code == 401, (key_name, method, path)
        assert response.get_json()["code"] == "Unauthorized"
    # Nothing was written by any of those calls.
    assert (
        db.session.execute(select(Organization.id).where(Organization.name.like("New %"))).all()
        == []
    )


def test_another_partners_key_sees_404_for_every_id_and_only_its_own_data(client, world):
    key = world["keys"]["bravo"]
    before = client.get(
        f"/api/v1/partner/organizations/{world['a_org']}",
        headers={"X-Partner-API-Key": world["keys"]["full"]},
    ).get_json()
    for n, (method, path, _scope, body) in enumerate(API):
        values = {
            "org": world["a_org"],
            "key": world["spare"],
            "alert": world["alert"],
            "month": world["month"],
            "n": str(n),
        }
        response = call(client, method, fill(path, values), fill(body, values), key)
        label = f"bravo key: {method} {path}"
        if "{org}" in path.split("?")[0] or "{key}" in path or "{alert}" in path:
            # Exactly as for an id that does not exist: 404, no hint it exists elsewhere.
            assert response.status_code == 404, label
            assert response.get_json()["code"] == "NotFound"
            missing = call(
                client,
                method,
                fill(path, {**values, "org": "0" * 36, "key": "0" * 36, "alert": "0" * 36}),
                fill(body, values),
                key,
            )
            assert missing.status_code == 404
            assert response.get_json()["message"] == missing.get_json()["message"]
        else:
            assert response.status_code < 300, (label, response.status_code)
            text = response.get_data(as_text=True)
            if path.endswith("/events"):  # the rejection echoes the id sent, nothing more
                text = text.replace(world["a_org"], "")
            assert world["a_org"] not in text and "Alpha Client" not in text, label
            assert "alpha-ext-1" not in text, label
    # An event naming Alpha's organization is refused, not stored under Bravo.
    result = client.post(
        "/api/v1/partner/events",
        headers={"X-Partner-API-Key": key},
        json={
            "events": [
                {
                    "eventId": "steal",
                    "organizationId": world["a_org"],
                    "type": "page_view",
                    "occurredAt": "2025-10-19T10:00:00Z",
                }
            ]
        },
    ).get_json()
    assert (result["accepted"], result["rejected"][0]["code"]) == (0, "unknown_organization")
    after = client.get(
        f"/api/v1/partner/organizations/{world['a_org']}",
        headers={"X-Partner-API-Key": world["keys"]["full"]},
    ).get_json()
    assert after == before


def test_a_dashboard_session_only_reads_its_own_partner_through_the_api(client, world):
    # The pages' JSON links open in the browser: a signed-in user may GET its partner's JSON,
    # never change anything (writes need a key), and never see another partner's ids.
    sign_in(client, "ops@alpha.test")
    response = client.get("/api/v1/partner/me")
    assert response.status_code == 200
    assert response.get_json()["apiKey"] is None
    refused = client.post("/api/v1/partner/events", json={"events": []})
    assert (refused.status_code, refused.get_json()["code"]) == (403, "Forbidden")
    other = client.get(f"/api/v1/partner/organizations/{world['b_org']}")
    assert other.status_code == 404


# --- pages ----------------------------------------------------------------------------------


def sign_in(client, email: str, password: str = PASSWORD) -> Any:
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


def csrf_of(client, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert found, path
    return found.group(1)


def test_every_page_needs_a_sign_in(client, world):
    for path in PAGES + PAGE_POSTS:
        url = fill(path, {"org": world["a_org"], "month": world["month"], "alert": world["alert"]})
        method = "POST" if path in PAGE_POSTS else "GET"
        response = client.open(url, method=method, data={"credits": "1"})
        assert response.status_code in (302, 400, 401), (path, response.status_code)
        if response.status_code == 302:
            assert response.headers["Location"].startswith("/login")
        body = response.get_data(as_text=True)
        assert "Alpha Client" not in body and "alpha-ext-1" not in body, path


def test_a_user_sees_only_their_partner_on_every_page(client, world):
    assert sign_in(client, "ops@alpha.test").status_code == 302
    for path in PAGES:
        response = client.get(fill(path, {"org": world["a_org"], "month": world["month"]}))
        assert response.status_code == 200, path
        body = response.get_data(as_text=True)
        for secret in BRAVO_SECRETS + (world["b_org"],):
            assert secret not in body, (path, secret)
    for path in PAGES:
        if "{org}" not in path:
            continue
        response = client.get(fill(path, {"org": world["b_org"], "month": world["month"]}))
        assert response.status_code == 404, path
        assert BRAVO_SECRETS[0] not in response.get_data(as_text=True)


def test_a_user_cannot_change_another_partners_allocation(client, world):
    sign_in(client, "ops@alpha.test")
    token = csrf_of(client, f"/organizations/{world['a_org']}")
    response = client.post(
        f"/organizations/{world['b_org']}/allocation",
        data={"credits": "0", "notes": "", "csrf_token": token},
    )
    assert response.status_code == 404
    assert db.session.get(Organization, world["b_org"]).credits_allocated == 200


def test_forms_need_their_csrf_token(client, world):
    sign_in(client, "ops@alpha.test")
    response = client.post(f"/organizations/{world['a_org']}/allocation", data={"credits": "7"})
    assert response.status_code == 400
    db.session.expire_all()
    assert db.session.get(Organization, world["a_org"]).credits_allocated == 100
    # Signing out is a form too: a cross-site POST without the token does not end it.
    client.post("/logout")
    assert client.get("/").status_code == 200


# --- sessions ------------------------------------------------------------------------------


def session_cookie(client) -> str | None:
    cookie = client.get_cookie("session")
    return cookie.value if cookie else None


def test_sign_in_starts_a_new_session(client, world):
    page = client.get("/login")
    assert page.status_code == 200
    before = session_cookie(client)
    assert before, "the login page sets a session (for its CSRF token)"
    with client.session_transaction() as sess:
        sess["planted"] = "by an attacker"
    planted = session_cookie(client)
    sign_in(client, "ops@alpha.test")
    after = session_cookie(client)
    assert after not in (before, planted)
    with client.session_transaction() as sess:
        assert "planted" not in sess
    # The cookie from before sign-in is still anonymous: it opens nothing.
    other = client.application.test_client()
    other.set_cookie("session", planted, domain="localhost")
    response = other.get("/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_sign_out_ends_the_session_even_for_a_copied_cookie(client, world):
    sign_in(client, "ops@alpha.test")
    stolen = session_cookie(client)
    assert client.get("/").status_code == 200
    token = csrf_of(client, "/")
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 302
    assert client.get("/").status_code == 302
    thief = client.application.test_client()
    thief.set_cookie("session", stolen, domain="localhost")
    response = thief.get("/organizations")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert "Alpha Client" not in thief.get("/organizations.csv").get_data(as_text=True)


def test_set_password_command_ends_sessions_and_changes_the_password(client, runner, world):
    sign_in(client, "ops@alpha.test")
    assert client.get("/").status_code == 200
    result = runner.invoke(
        args=["set-password", "--email", "ops@alpha.test", "--password", "a whole new secret"]
    )
    assert result.exit_code == 0, result.output
    assert client.get("/").status_code == 302
    fresh = client.application.test_client()
    assert sign_in(fresh, "ops@alpha.test").status_code == 401
    fresh = client.application.test_client()
    assert sign_in(fresh, "ops@alpha.test", "a whole new secret").status_code == 302
    short = runner.invoke(args=["set-password", "--email", "ops@alpha.test", "--password", "short"])
    assert short.exit_code != 0 and "8 characters" in short.output


def test_sign_in_attempts_are_rate_limited(app, client, world):
    app.config["LOGIN_RATE_LIMIT"] = "5 per minute"
    # An address of its own: the limiter's counters may outlive one test's app.
    client.environ_base["REMOTE_ADDR"] = "10.0.0.1"
    codes = [sign_in(client, "ops@alpha.test", "wrong password").status_code for _ in range(5)]
    assert codes == [401] * 5
    blocked = sign_in(client, "ops@alpha.test", PASSWORD)
    # The right password does not get through either once the address is over its limit.
    assert blocked.status_code == 429
    assert "Alpha Client" not in client.get("/organizations").get_data(as_text=True)
    # Another address still can sign in.
    other = app.test_client()
    page = other.get("/login", environ_base={"REMOTE_ADDR": "10.0.0.2"}).get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    ok = other.post(
        "/login",
        data={"email": "ops@alpha.test", "password": PASSWORD, "csrf_token": token},
        environ_base={"REMOTE_ADDR": "10.0.0.2"},
    )
    assert ok.status_code == 302


def test_wrong_password_and_unknown_email_answer_alike(client, world):
    wrong = sign_in(client, "ops@alpha.test", "nope nope nope")
    unknown = sign_in(client, "nobody@alpha.test", "nope nope nope")
    assert wrong.status_code == unknown.status_code == 401
    strip = re.compile(r'name="csrf_token"[^>]*value="[^"]+"|value="[^"]*@[^"]*"')
    assert strip.sub("", wrong.get_data(as_text=True)) == strip.sub(
        "", unknown.get_data(as_text=True)
    )


def test_session_cookie_flags(client, world):
    sign_in(client, "ops@alpha.test")
    cookie = client.get_cookie("session")
    assert cookie.http_only and cookie.same_site == "Lax"
    secure = client.application.test_client()
    secure.get("/login", base_url="https://localhost")
    assert secure.get_cookie("session", domain="localhost").secure


ROOT = Path(__file__).resolve().parent.parent


def test_the_unknown_email_hash_is_made_at_the_first_sign_in_not_at_start_up(tmp_path):
    # A fresh interpreter: start-up makes no argon2 hash (64 MB for a moment in every
    # process); the first sign-in does, and an unknown email is checked against it.
    script = (
        "from app import auth, create_app\n"
        f"app = create_app({{'DATABASE_URL': 'sqlite:///{tmp_path / 'a.db'}', "
        "'SECRET_KEY': 'x'})\n"
        "from app.extensions import db\n"
        "before = auth._dummy_hash.cache_info().currsize\n"
        "with app.app_context():\n"
        "    db.create_all()\n"
        "    assert auth.authenticate('nobody@example.com', 'whatever pass') is None\n"
        "print(before, auth._dummy_hash()[:10])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.split()
    assert out == ["0", "$argon2id$"]
