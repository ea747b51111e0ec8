"""Access control: who may see and change what, over every route of the URL map.

Two partners (Alpha and Bravo). Alpha has one dashboard user per role (owner, admin,
analyst), a member and a pending invitation the team forms act on, API keys with every
scope, plus a revoked and an expired one; Bravo has its owner and a key. The matrix is built
from the app's URL map: a route this file does not list fails the coverage test.

The pages' matrix is one table, ROUTES: each dashboard route (method and rule exactly as the
URL map writes them) names the permission of app/roles.py it needs (None: public, no
sign-in), the path to request ({name} filled from the world's values) and, for a POST, the
form it sends (the CSRF token is added). Every listed route is then checked for every actor:
anonymous (sent to sign in), owner, admin and analyst (allowed: below 400; refused: 403 with
the error page and no row of any table changed), and another partner's owner (an id of
Alpha's answers 404 and nothing changes). The JSON API is checked through a session too (a
session reads; the admin-scope reads need owner or admin; changes need a key).

To add a page or form: append a Route to ROUTES, e.g.
    Route("POST", "/api-keys/<key_id>/revoke", "manage_api_keys",
          "/api-keys/{key}/revoke", {"confirm": "yes"}),
A route that acts on an object names it with a placeholder: add the object to the world
fixture's "values" (Alpha's object, so the foreign actor gets its 404), and its name to
OBJECTS. Within one actor the rows run in table order on one world: put a row that removes
or ends something after the rows that still need it. To add an API endpoint: append it to
API (method, path, scope, body).

Sessions: a new session on sign-in (no fixation), sign-out ends the session everywhere (an
old cookie replayed afterwards is refused), sign-in attempts are rate limited, and
`flask set-password` ends the user's sessions.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app import alerts, auth, team
from app.extensions import db
from app.models import ApiKey, Organization
from app.roles import PERMISSIONS
from app.roles import allowed as role_allows

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
    ("GET", "/api/v1/partner/audit-log", "admin", None),
    ("GET", "/api/v1/partner/alerts", "admin", None),
    ("POST", "/api/v1/partner/alerts", "admin", {"kind": "stale_data", "threshold": 24}),
    ("GET", "/api/v1/partner/alerts/history", "admin", None),
    ("PUT", "/api/v1/partner/alerts/{alert}", "admin", {"kind": "pool_usage", "threshold": 90}),
    ("DELETE", "/api/v1/partner/alerts/{alert}", "admin", None),
    # Last: it cancels the organization the rows above use.
    ("DELETE", "/api/v1/partner/organizations/{org}", "write", None),
]
PUBLIC_API = {("GET", "/api/v1/openapi.json")}


@dataclass(frozen=True)
class Route:
    """One dashboard route: what it needs, and how the matrix requests it."""

    method: str  # GET or POST
    rule: str  # as the URL map writes it
    permission: str | None  # app/roles.py PERMISSIONS; None: public (no sign-in)
    path: str | None = None  # what to request, {name} filled from world["values"]; default rule
    data: dict[str, str] = field(default_factory=dict)  # a POST's form (CSRF token added)

    def url(self, values: dict[str, str]) -> str:
        return fill(self.path or self.rule, values)


# Every route of the URL map outside /api/. {org} and {member} are Alpha's organization and
# spare member, {invitation} Alpha's pending invitation, {month} a month with data.
ROUTES = [
    Route("GET", "/login", None),
    Route("POST", "/login", None),
    Route("POST", "/logout", None),
    Route("GET", "/static/<path:filename>", None, "/static/css/app.css"),
    Route("GET", "/invitations/<token>", None, "/invitations/" + "x" * 43),
    Route("POST", "/invitations/<token>", None, "/invitations/" + "x" * 43),
    Route("GET", "/", "read"),
    Route("GET", "/organizations", "read"),
    Route("GET", "/organizations.csv", "read"),
    Route("GET", "/organizations/<org_id>", "read", "/organizations/{org}"),
    Route("GET", "/credits", "read"),
    Route("GET", "/billing", "read"),
    Route("GET", "/billing.csv", "read"),
    Route("GET", "/reports", "read"),
    Route("GET", "/reports/<month>", "read", "/reports/{month}"),
    Route("GET", "/reports/<month>.csv", "read", "/reports/{month}.csv"),
    Route("GET", "/reports/<month>.json", "read", "/reports/{month}.json"),
    Route(
        "POST",
        "/organizations/<org_id>/allocation",
        "manage_organizations",
        "/organizations/{org}/allocation",
        {"credits": "50", "notes": "matrix"},
    ),
    Route("GET", "/organizations/new", "manage_organizations"),
    Route(
        "POST",
        "/organizations/new",
        "manage_organizations",
        data={"name": "Matrix Org", "tier": "paid", "productType": "B2B", "initialCredits": "0"},
    ),
    Route(
        "POST",
        "/organizations/<org_id>/details",
        "manage_organizations",
        "/organizations/{org}/details",
        {"name": "Alpha Client", "externalId": "alpha-ext-1", "productType": "B2B"},
    ),
    Route(
        "POST",
        "/organizations/<org_id>/tier",
        "manage_organizations",
        "/organizations/{org}/tier",
        {"tier": "paid"},
    ),
    Route("GET", "/team", "manage_team"),
    Route(
        "POST",
        "/team/invitations",
        "manage_team",
        data={"email": "invited@example.test", "role": "analyst"},
    ),
    Route(
        "POST",
        "/team/invitations/<invitation_id>/revoke",
        "manage_team",
        "/team/invitations/{invitation}/revoke",
        {"confirm": "yes"},
    ),
    Route(
        "POST",
        "/team/members/<int:user_id>/role",
        "manage_team",
        "/team/members/{member}/role",
        {"member-{member}-role": "admin"},
    ),
    Route(
        "POST",
        "/team/members/<int:user_id>/remove",
        "manage_team",
        "/team/members/{member}/remove",
        {"confirm": "yes"},
    ),
    Route("GET", "/settings", "manage_settings"),
    Route(
        "POST",
        "/settings",
        "manage_settings",
        data={
            "name": "Alpha Renamed",
            "credit_pool": "10,000",
            "billing_day": "1",
            "tiers-0-tier": "Starter",
            "tiers-0-price": "0.10",
            "tiers-0-start": "0",
        },
    ),
    Route("POST", "/settings/timezone", "manage_settings", data={"timezone": "Europe/Paris"}),
    Route("GET", "/webhooks", "manage_webhooks"),
    Route(
        "POST",
        "/webhooks",
        "manage_webhooks",
        data={"url": "http://127.0.0.1:9/matrix", "enabled": "y", "event_types": "test"},
    ),
    Route("POST", "/webhooks/secret/rotate", "manage_webhooks", data={"confirm": "y"}),
    Route("POST", "/webhooks/test", "manage_webhooks"),
    Route("GET", "/alerts", "manage_alerts"),
    Route(
        "POST",
        "/alerts/rules",
        "manage_alerts",
        data={"kind": "stale_data", "threshold": "24", "enabled": "y"},
    ),
    Route(
        "POST",
        "/alerts/rules/<rule_id>",
        "manage_alerts",
        "/alerts/rules/{alert}",
        # The rule's forms are prefixed with its id's first 8 characters.
        {"r{alert8}-kind": "pool_usage", "r{alert8}-threshold": "90", "r{alert8}-enabled": "y"},
    ),
    Route("POST", "/alerts/test", "manage_alerts"),
    Route(
        "POST",
        "/alerts/rules/<rule_id>/delete",
        "manage_alerts",
        "/alerts/rules/{alert}/delete",
        {"d{alert8}-confirm": "y"},
    ),
    Route("GET", "/account/email", "read"),
    Route("GET", "/account/password", "read"),
    Route("POST", "/account/email", "read", data={"monthly_report": "y"}),
    Route("GET", "/audit-log", "view_audit"),
    Route("GET", "/audit-log.csv", "view_audit"),
    Route("GET", "/api-keys", "manage_api_keys"),
    Route("POST", "/api-keys", "manage_api_keys", data={"name": "matrix", "scopes": "read"}),
    Route(
        "POST",
        "/api-keys/<key_id>/revoke",
        "manage_api_keys",
        "/api-keys/{key}/revoke",
    ),
    # Last: the status changes, ending with the cancellation of the organization above.
    Route(
        "GET",
        "/organizations/<org_id>/suspend",
        "manage_organizations",
        "/organizations/{org}/suspend",
    ),
    Route(
        "POST",
        "/organizations/<org_id>/suspend",
        "manage_organizations",
        "/organizations/{org}/suspend",
        {"reason": "matrix"},
    ),
    Route(
        "GET",
        "/organizations/<org_id>/reactivate",
        "manage_organizations",
        "/organizations/{org}/reactivate",
    ),
    Route(
        "POST",
        "/organizations/<org_id>/reactivate",
        "manage_organizations",
        "/organizations/{org}/reactivate",
    ),
    Route(
        "GET",
        "/organizations/<org_id>/cancel",
        "manage_organizations",
        "/organizations/{org}/cancel",
    ),
    Route(
        "POST",
        "/organizations/<org_id>/cancel",
        "manage_organizations",
        "/organizations/{org}/cancel",
    ),
    # Last of all: a password change renews the session (and its CSRF token).
    Route(
        "POST",
        "/account/password",
        "read",
        data={"current": PASSWORD, "new": PASSWORD, "confirm": PASSWORD},
    ),
]
# Placeholders that name one of Alpha's objects: another partner's user gets 404 for them.
OBJECTS = {"org", "member", "invitation", "key", "alert"}
ROLE_USERS = {
    "owner": "owner@alpha.test",
    "admin": "admin@alpha.test",
    "analyst": "analyst@alpha.test",
}
FOREIGN_USER = "owner@bravo.test"


def flask_rule(path: str) -> str:
    """Turn a path template of this file into the rule Flask shows."""
    path = path.split("?")[0]
    return (
        path.replace("{org}", "<id>" if path.startswith("/api/") else "<org_id>")
        .replace("{key}", "<id>" if path.startswith("/api/") else "<key_id>")
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
    a_user = make_user(alpha, "owner@alpha.test", PASSWORD)
    b_user = make_user(bravo, "owner@bravo.test", PASSWORD)
    auth.create_user(alpha, "admin@alpha.test", PASSWORD, "admin")
    auth.create_user(alpha, "analyst@alpha.test", PASSWORD, "analyst")
    spare_member = auth.create_user(alpha, "member@alpha.test", PASSWORD, "analyst")
    invitation, _link = team.invite(alpha, "pending@example.test", "admin", lambda t: t)
    alert = alerts.create_rule(alpha, "pool_usage", 80)
    values = {
        "org": a_org.id,
        "month": "2025-09",
        "member": str(spare_member.id),
        "invitation": invitation.id,
        "key": str(spare_id),
        "alert": alert.id,
        "alert8": alert.id[:8],
    }
    return {
        "values": values,
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
            else:
                page_rules.add((method, rule.rule))
    listed = {(m, flask_rule(p)) for m, p, _s, _b in API} | PUBLIC_API
    assert api_rules == listed, "an API route is missing from the access matrix"
    pages = [(r.method, r.rule) for r in ROUTES]
    assert len(pages) == len(set(pages)), "a route is listed twice in ROUTES"
    assert sorted(page_rules - set(pages)) == [], "a page or form is missing from ROUTES"
    assert sorted(set(pages) - page_rules) == [], "ROUTES lists a route the app does not have"


def test_each_route_needs_the_permission_its_view_declares(app):
    # The table and the views agree: a view guarded by @requires(p) is listed with p, and
    # a view without it is a read (or public) route. So neither can drift alone.
    adapter = app.url_map.bind("localhost")
    for route in ROUTES:
        endpoint, _args = adapter.match(route.url(SAMPLE_VALUES), method=route.method)
        declared = getattr(app.view_functions[endpoint], "_permission", None)
        expected = route.permission if route.permission not in (None, "read") else None
        assert declared == expected, (route.method, route.rule, declared)
        assert route.permission is None or route.permission in PERMISSIONS, route.rule
        if route.permission is not None:
            assert endpoint.startswith("dashboard."), f"{route.rule}: outside the login gate"


SAMPLE_VALUES = {
    "org": "o",
    "month": "2025-09",
    "member": "1",
    "invitation": "i",
    "key": "k",
    "alert": "a",
}


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
    sign_in(client, "owner@alpha.test")
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


def snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table: a refused action must leave all of them as they were."""
    db.session.rollback()
    rows = {}
    for table in db.metadata.sorted_tables:
        found = db.session.execute(table.select()).all()
        rows[table.name] = sorted((tuple(map(repr, r)) for r in found), key=repr)
    db.session.rollback()
    return rows


def assert_unchanged(before: dict[str, Any], label: str) -> None:
    after = snapshot()
    changed = [name for name in before if before[name] != after[name]]
    assert changed == [], f"{label}: refused, yet {changed} changed"


def request_route(client, route: Route, values: dict[str, str], token: str) -> Any:
    url = route.url(values)
    if route.method == "GET":
        return client.get(url)
    data = {fill(k, values): fill(v, values) for k, v in route.data.items()}
    return client.post(url, data={**data, "csrf_token": token})


GUARDED = [r for r in ROUTES if r.permission is not None]


def test_every_page_needs_a_sign_in(client, world):
    token = csrf_of(client, "/login")  # a valid token: the login gate, not CSRF, refuses
    for route in GUARDED:
        before = snapshot() if route.method == "POST" else None
        response = request_route(client, route, world["values"], token)
        label = f"anonymous: {route.method} {route.rule}"
        assert response.status_code == 302, (label, response.status_code)
        assert response.headers["Location"].startswith("/login"), label
        body = response.get_data(as_text=True)
        assert "Alpha Client" not in body and "alpha-ext-1" not in body, label
        if before is not None:
            assert_unchanged(before, label)


@pytest.mark.parametrize("role", ["owner", "admin", "analyst"])
def test_each_role_reaches_exactly_its_routes(client, world, role):
    assert sign_in(client, ROLE_USERS[role]).status_code == 302
    token = csrf_of(client, "/")
    for route in GUARDED:
        label = f"{role}: {route.method} {route.rule}"
        if role_allows(role, route.permission):
            response = request_route(client, route, world["values"], token)
            assert response.status_code < 400, (label, response.status_code)
            continue
        before = snapshot()
        response = request_route(client, route, world["values"], token)
        assert response.status_code == 403, (label, response.status_code)
        body = response.get_data(as_text=True)
        assert 'data-error="403"' in body and "Not allowed" in body, label
        assert_unchanged(before, label)


def test_the_pages_hide_what_the_role_cannot_use(client, world):
    # The analyst's pages carry no write form (but signing out and the member's own
    # account: e-mail choices, password) and no link to a page it may not open.
    sign_in(client, "analyst@alpha.test")
    values = world["values"]
    own = {r.url(values) for r in ROUTES if r.method == "POST" and r.permission == "read"}
    assert own == {"/account/email", "/account/password"}
    for route in ROUTES:
        if (
            route.method != "GET"
            or route.permission != "read"
            or route.rule.endswith((".csv", ".json"))
        ):
            continue
        body = client.get(route.url(values)).get_data(as_text=True)
        forms = re.findall(r'<form[^>]*method="post"[^>]*action="([^"?#]*)', body)
        assert "/logout" in forms and set(forms) <= own | {"/logout"}, (route.rule, forms)
        for other in ROUTES:
            if other.method == "GET" and other.permission not in (None, "read"):
                assert f'href="{other.url(values)}"' not in body, (route.rule, other.rule)
    # The owner's organization page has the allocation form the analyst's lacks.
    owner = client.application.test_client()
    sign_in(owner, "owner@alpha.test")
    page = owner.get(f"/organizations/{values['org']}").get_data(as_text=True)
    assert f'action="/organizations/{values["org"]}/allocation' in page


def test_another_partners_user_gets_404_for_every_id(client, world):
    # Bravo's owner may do everything in Bravo; Alpha's ids are as unknown as made-up ones.
    sign_in(client, FOREIGN_USER)
    token = csrf_of(client, "/")
    values = world["values"]
    for route in GUARDED:
        names = set(re.findall(r"{(\w+)}", (route.path or "") + "".join(route.data)))
        if not names & OBJECTS:
            continue
        label = f"{FOREIGN_USER}: {route.method} {route.rule}"
        before = snapshot()
        response = request_route(client, route, values, token)
        assert response.status_code == 404, (label, response.status_code)
        body = response.get_data(as_text=True)
        assert "Alpha Client" not in body and "member@alpha.test" not in body, label
        assert_unchanged(before, label)
    # Bravo's own pages show nothing of Alpha's.
    for route in GUARDED:
        if route.method == "GET" and not set(re.findall(r"{(\w+)}", route.path or "")) & OBJECTS:
            body = client.get(route.url(values)).get_data(as_text=True)
            assert "Alpha Client" not in body and "alpha.test" not in body, route.rule


@pytest.mark.parametrize("role", ["owner", "admin", "analyst"])
def test_a_session_uses_the_json_api_as_its_role_allows(client, world, role):
    # A signed-in session reads through the API (the pages' JSON links); the admin-scope
    # reads need owner or admin; any change needs a key, whatever the role.
    sign_in(client, ROLE_USERS[role])
    for n, (method, path, scope, body) in enumerate(API):
        values = {**world["values"], "n": str(n)}
        label = f"{role} session: {method} {path}"
        may = method == "GET" and (scope == "read" or role_allows(role, "view_audit"))
        before = None if may else snapshot()
        response = client.open(fill(path, values), method=method, json=fill(body, values))
        if may:
            assert response.status_code == 200, (label, response.status_code)
        else:
            assert response.status_code == 403, (label, response.status_code)
            assert response.get_json()["code"] == "Forbidden", label
            assert_unchanged(before, label)


def test_a_user_cannot_change_another_partners_allocation(client, world):
    sign_in(client, "owner@alpha.test")
    token = csrf_of(client, f"/organizations/{world['a_org']}")
    response = client.post(
        f"/organizations/{world['b_org']}/allocation",
        data={"credits": "0", "notes": "", "csrf_token": token},
    )
    assert response.status_code == 404
    assert db.session.get(Organization, world["b_org"]).credits_allocated == 200


def test_forms_need_their_csrf_token(client, world):
    sign_in(client, "owner@alpha.test")
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
    sign_in(client, "owner@alpha.test")
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
    sign_in(client, "owner@alpha.test")
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
    sign_in(client, "owner@alpha.test")
    assert client.get("/").status_code == 200
    result = runner.invoke(
        args=["set-password", "--email", "owner@alpha.test", "--password", "a whole new secret"]
    )
    assert result.exit_code == 0, result.output
    assert client.get("/").status_code == 302
    fresh = client.application.test_client()
    assert sign_in(fresh, "owner@alpha.test").status_code == 401
    fresh = client.application.test_client()
    assert sign_in(fresh, "owner@alpha.test", "a whole new secret").status_code == 302
    short = runner.invoke(
        args=["set-password", "--email", "owner@alpha.test", "--password", "short"]
    )
    assert short.exit_code != 0 and "8 characters" in short.output


def test_sign_in_attempts_are_rate_limited(app, client, world):
    app.config["LOGIN_RATE_LIMIT"] = "5 per minute"
    # An address of its own: the limiter's counters may outlive one test's app.
    client.environ_base["REMOTE_ADDR"] = "10.0.0.1"
    codes = [sign_in(client, "owner@alpha.test", "wrong password").status_code for _ in range(5)]
    assert codes == [401] * 5
    blocked = sign_in(client, "owner@alpha.test", PASSWORD)
    # The right password does not get through either once the address is over its limit.
    assert blocked.status_code == 429
    assert "Alpha Client" not in client.get("/organizations").get_data(as_text=True)
    # Another address still can sign in.
    other = app.test_client()
    page = other.get("/login", environ_base={"REMOTE_ADDR": "10.0.0.2"}).get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    ok = other.post(
        "/login",
        data={"email": "owner@alpha.test", "password": PASSWORD, "csrf_token": token},
        environ_base={"REMOTE_ADDR": "10.0.0.2"},
    )
    assert ok.status_code == 302


def test_wrong_password_and_unknown_email_answer_alike(client, world):
    wrong = sign_in(client, "owner@alpha.test", "nope nope nope")
    unknown = sign_in(client, "nobody@alpha.test", "nope nope nope")
    assert wrong.status_code == unknown.status_code == 401
    strip = re.compile(r'name="csrf_token"[^>]*value="[^"]+"|value="[^"]*@[^"]*"')
    assert strip.sub("", wrong.get_data(as_text=True)) == strip.sub(
        "", unknown.get_data(as_text=True)
    )


def test_session_cookie_flags(client, world):
    sign_in(client, "owner@alpha.test")
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
