"""Each request has a g of its own, as on a server: nothing one request leaves on g (its
API key and partner, the signed-in user, the period its links carry, its CSRF token)
reaches the next one, and nothing the test keeps in its own app context reaches a request.

These run inside app_ctx on purpose: Flask runs a request in the active app context when
it is one of the same app, so they fail if the test client ever ran requests in the
test's context again (and the app needed to clean g up at the start of each request).
"""

from __future__ import annotations

from datetime import datetime

import pytest
from flask import g
from views_support import PASSWORD, csrf_token, login

from app.extensions import db
from app.models import Partner, User

NOW = datetime(2025, 10, 20, 12)
ME = "/api/v1/partner/me"


@pytest.fixture
def keys(app_ctx, freeze, make_partner, make_user, api_key):
    freeze(NOW)
    keys = {}
    for slug in ("acme", "globex"):
        partner = make_partner(slug, created_at=datetime(2025, 1, 1))
        make_user(partner, f"ops@{slug}.test", PASSWORD)
        keys[slug] = {"X-Partner-API-Key": api_key(partner)}
    return keys


def test_consecutive_api_requests_each_authenticate_their_own_key(keys, client):
    assert client.get(ME, headers=keys["acme"]).get_json()["slug"] == "acme"
    assert client.get(ME, headers=keys["globex"]).get_json()["slug"] == "globex"
    assert client.get(ME).status_code == 401
    assert client.get(ME, headers={"X-Partner-API-Key": "pa_unknown"}).status_code == 401
    assert client.get(ME, headers=keys["acme"]).get_json()["slug"] == "acme"


def test_a_signed_in_request_does_not_sign_the_next_client_in(keys, app):
    acme = app.test_client()
    assert login(acme, "ops@acme.test").status_code == 302
    assert acme.get("/").status_code == 200
    anonymous = app.test_client()
    assert anonymous.get("/").headers["Location"].startswith("/login?next=")
    # Its own CSRF token, not the one the previous request generated for acme's session.
    globex = app.test_client()
    assert login(globex, "ops@globex.test").status_code == 302
    assert "Globex" in globex.get("/").get_data(as_text=True)
    assert acme.get(ME).get_json()["slug"] == "acme"


def test_the_period_of_one_request_is_not_carried_by_the_next(keys, client):
    login(client, "ops@acme.test")
    with_preset = client.get("/?preset=last_7_days").get_data(as_text=True)
    assert 'class="brand" href="/?preset=last_7_days"' in with_preset
    plain = client.get("/organizations").get_data(as_text=True)
    assert 'class="brand" href="/"' in plain


def test_a_request_sees_nothing_of_the_tests_own_context(keys, client):
    """What the test leaves on its g, or uncommitted in its session, is not the request's."""
    acme = db.session.query(Partner).filter_by(slug="acme").one()
    g.partner = acme
    g.api_key_sent = True
    g.period_args = {"preset": "last_7_days"}
    g._login_user = db.session.query(User).filter_by(email="ops@acme.test").one()
    assert client.get(ME).status_code == 401
    assert client.get("/").headers["Location"].startswith("/login?next=")
    login(client, "ops@acme.test")
    assert 'class="brand" href="/"' in client.get("/").get_data(as_text=True)
    # The test's g is left as it was.
    assert g.partner is acme and g.period_args == {"preset": "last_7_days"}


def test_a_request_ends_the_tests_open_transaction(keys, client):
    """The test's objects are read again after a request, and see what it wrote."""
    acme = db.session.query(Partner).filter_by(slug="acme").one()
    assert acme.name == "Acme"
    headers = keys["acme"]
    token = csrf_token(client.get("/login").get_data(as_text=True))
    assert token
    response = client.get(ME, headers=headers)
    assert response.get_json()["name"] == "Acme"
    acme.name = "Not committed"
    # Uncommitted, so the request does not see it, and it is rolled back.
    assert client.get(ME, headers=headers).get_json()["name"] == "Acme"
    assert acme.name == "Acme"
