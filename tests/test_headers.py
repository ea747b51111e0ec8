"""Security headers on every kind of response: pages, downloads, API, errors, static files.

The Content-Security-Policy allows scripts from this site only (no unsafe-eval, no inline
script), no framing, no plugins; HSTS is sent over HTTPS only (a plain-HTTP answer cannot
set it and would lock out a server that has no certificate). The real-browser check that
no page triggers a CSP violation is in test_browser.py and test_hostile.py.
"""

from __future__ import annotations

import re
from datetime import datetime

import pytest

NOW = datetime(2025, 10, 20, 12)
PASSWORD = "correct horse battery"


def policy(response) -> dict[str, list[str]]:
    """Parse the Content-Security-Policy header into {directive: [sources]}."""
    header = response.headers.get("Content-Security-Policy", "")
    out = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


@pytest.fixture
def signed_in(app, client, freeze, make_partner, make_org, add_events, make_user):
    freeze(NOW)
    partner = make_partner("acme", created_at=datetime(2025, 1, 1))
    org = make_org(partner, "Alpha", created_at=datetime(2025, 1, 1))
    add_events(
        partner,
        [
            {
                "eventId": "e1",
                "organizationId": org.id,
                "type": "identification",
                "occurredAt": "2025-09-10T10:00:00Z",
            }
        ],
    )
    make_user(partner, "ops@acme.test", PASSWORD)
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    assert (
        client.post(
            "/login", data={"email": "ops@acme.test", "password": PASSWORD, "csrf_token": token}
        ).status_code
        == 302
    )
    return {"client": client, "org": org.id, "partner": partner}


def every_response(ctx, base_url: str = "http://localhost"):
    client = ctx["client"]
    from app import auth

    _k, key = auth.create_api_key(ctx["partner"], "h", None)
    paths = [
        "/",
        "/organizations",
        f"/organizations/{ctx['org']}",
        "/credits",
        "/billing",
        "/reports",
        "/reports/2025-09",
        "/organizations.csv",
        "/billing.csv",
        "/reports/2025-09.csv",
        "/reports/2025-09.json",
        "/no-such-page",
        "/organizations/not-an-id",
    ]
    for path in paths:
        yield path, client.get(path, base_url=base_url)
    yield "login", client.application.test_client().get("/login", base_url=base_url)
    yield "static", client.get("/static/css/app.css", base_url=base_url)
    api = {"X-Partner-API-Key": key}
    for path in (
        "/api/v1/partner/me",
        "/api/v1/partner/analytics?startDate=x",
        "/api/v1/nothing-here",
        "/api/v1/openapi.json",
    ):
        yield path, client.get(path, headers=api, base_url=base_url)
    yield (
        "api 401",
        client.get(
            "/api/v1/partner/me",
            base_url=base_url,
            headers={"X-Partner-API-Key": "pk_live_not-a-key"},
        ),
    )
    yield "api 405", client.delete("/api/v1/partner/me", headers=api, base_url=base_url)


def test_every_response_carries_the_security_headers(signed_in):
    seen = set()
    for label, response in every_response(signed_in):
        seen.add(response.status_code)
        csp = policy(response)
        assert csp.get("script-src") == ["'self'"], label
        assert "'unsafe-eval'" not in response.headers["Content-Security-Policy"], label
        assert csp.get("default-src") == ["'self'"], label
        assert csp.get("frame-ancestors") == ["'none'"], label
        assert csp.get("object-src") == ["'none'"], label
        assert csp.get("base-uri") == ["'self'"], label
        assert csp.get("form-action") == ["'self'"], label
        # Nothing in the policy reaches outside this site.
        assert not any(re.match(r"https?:|\*", s) for v in csp.values() for s in v), label
        assert response.headers["X-Content-Type-Options"] == "nosniff", label
        assert response.headers["X-Frame-Options"] == "DENY", label
        assert response.headers["Referrer-Policy"] in (
            "same-origin",
            "no-referrer",
            "strict-origin-when-cross-origin",
        ), label
        assert "Strict-Transport-Security" not in response.headers, label
    # The walk met successes, downloads, redirects, errors and refusals.
    assert {200, 404, 401, 405, 400} <= seen


def test_hsts_over_https(signed_in):
    for label, response in every_response(signed_in, base_url="https://localhost"):
        hsts = response.headers.get("Strict-Transport-Security", "")
        max_age = re.search(r"max-age=(\d+)", hsts)
        assert max_age and int(max_age.group(1)) >= 15_552_000, label  # at least 180 days
        assert "includeSubDomains" in hsts, label


def test_https_behind_a_proxy_is_not_trusted_blindly(signed_in):
    # Without a configured proxy, X-Forwarded-Proto from a client is not believed: a
    # plain-HTTP request cannot make the app send HSTS or Secure cookies on its word.
    response = signed_in["client"].get("/", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" not in response.headers


def test_downloads_are_attachments_with_their_type(signed_in):
    client = signed_in["client"]
    for path in ("/organizations.csv", "/billing.csv", "/reports/2025-09.csv"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.mimetype == "text/csv", path
        assert response.headers["Content-Disposition"].startswith("attachment;"), path


def test_json_answers_are_json(signed_in):
    client = signed_in["client"]
    for path in ("/api/v1/nothing", "/api/v1/partner/me", "/reports/2025-09.json"):
        response = client.get(path)
        assert response.mimetype == "application/json", path
