"""Cache-Control (issue 12, item 7): nothing that needs a session or a key is stored by a
browser (nor kept in its back/forward cache after sign-out) or by a proxy; static files
keep their year-long, immutable caching."""

from __future__ import annotations

import re

import pytest
from views_support import build_acme, csrf_token, login


@pytest.fixture
def acme(freeze, make_partner, make_org, add_events, make_user):
    return build_acme(freeze, make_partner, make_org, add_events, make_user)


def text(response) -> str:
    return response.get_data(as_text=True)


def assert_no_store(label, response):
    assert response.cache_control.no_store, (label, response.headers.get("Cache-Control"))
    assert not response.cache_control.public, label
    assert response.cache_control.max_age is None, label


def test_every_answer_with_data_says_no_store(acme, client, api_key):
    anonymous = client.application.test_client()
    assert_no_store("login page", anonymous.get("/login"))
    assert_no_store("anonymous redirect", anonymous.get("/organizations"))
    signed_in = login(client)
    assert_no_store("sign-in", signed_in)
    org = acme["bluebird"].id
    for path in (
        "/",
        "/organizations",
        f"/organizations/{org}",
        "/credits",
        "/billing",
        "/reports",
        "/reports/2025-11",
        "/organizations.csv",
        "/billing.csv",
        "/reports/2025-11.csv",
        "/reports/2025-11.json",
        "/no-such-page",
        "/reports/2999-01",
        "/api/v1/partner/me",
        "/login",
    ):
        response = client.get(path)
        assert response.status_code in (200, 302, 404), path
        assert_no_store(path, response)
    token = csrf_token(text(client.get(f"/organizations/{org}")))
    allocated = client.post(
        f"/organizations/{org}/allocation", data={"credits": "450", "csrf_token": token}
    )
    assert allocated.status_code == 302
    assert_no_store("allocation", allocated)
    refused = client.post(
        f"/organizations/{org}/allocation", data={"credits": "lots", "csrf_token": token}
    )
    assert refused.status_code == 400  # the page again, with the message
    assert_no_store("refused allocation", refused)
    token = csrf_token(text(client.get("/")))
    assert_no_store("sign-out", client.post("/logout", data={"csrf_token": token}))

    key = {"X-Partner-API-Key": api_key(acme["partner"])}
    api = client.application.test_client()
    for label, response in {
        "api 200": api.get("/api/v1/partner/analytics", headers=key),
        "api report": api.get("/api/v1/partner/reports/2025-11", headers=key),
        "api 201": api.post("/api/v1/partner/organizations", json={"name": "N"}, headers=key),
        "api 400": api.get("/api/v1/partner/analytics?startDate=x", headers=key),
        "api 401": api.get("/api/v1/partner/me"),
        "api 404": api.get("/api/v1/partner/organizations/nope", headers=key),
        "api 405": api.delete("/api/v1/partner/me", headers=key),
    }.items():
        assert_no_store(label, response)


def test_static_files_keep_their_long_immutable_caching(acme, client):
    login(client)
    page = text(client.get("/"))
    versioned = re.search(r'href="(/static/css/app\.css\?v=[0-9a-f]+)"', page).group(1)
    response = client.get(versioned)
    assert response.status_code == 200
    assert response.cache_control.max_age == 31_536_000
    assert response.cache_control.immutable
    assert not response.cache_control.no_store
    plain = client.get("/static/css/app.css")  # unversioned: revalidated, never no-store
    assert plain.status_code == 200
    assert not plain.cache_control.no_store
