"""Request edges: query arguments and `next` that reach redirects, the Host header,
non-canonical URLs, and what every API answer carries (issue 12, items 4 and 5).

No input may produce a 500; an action either completes with its redirect or changes
nothing; no Location is built from the Host header; nothing under /api/ is HTML.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from views_support import build_acme, csrf_token, login

from app import accounts, config
from app.extensions import db

HOSTILE_KEYS = (
    "org_id",
    "endpoint",
    "_external",
    "_scheme",
    "_anchor",
    "_method",
    "values",
    "v",
    "filename",
    "month",
    "next",
)


@pytest.fixture
def acme(freeze, make_partner, make_org, add_events, make_user):
    return build_acme(freeze, make_partner, make_org, add_events, make_user)


@pytest.fixture
def signed_in(acme, client):
    assert login(client).status_code == 302
    return acme


def text(response) -> str:
    return response.get_data(as_text=True)


# --- item 4: `next` ----------------------------------------------------------------------

CRLF_NEXT = "/x\r\nSet-Cookie: a=b"


def test_a_next_with_a_line_break_signs_in_and_goes_to_the_overview(acme, client):
    response = login(client, next_url=CRLF_NEXT)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert "a=b" not in " ".join(response.headers.getlist("Set-Cookie"))
    assert client.get("/").status_code == 200  # signed in


def test_the_login_page_of_a_signed_in_user_ignores_a_hostile_next(signed_in, client):
    response = client.get("/login?next=" + quote(CRLF_NEXT))
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


@pytest.mark.parametrize(
    ("target", "location"),
    [
        (CRLF_NEXT, "/"),
        ("/x\ny", "/"),
        ("/\t/evil.example", "/"),  # a browser drops the tab: //evil.example
        ("/\x7f", "/"),
        ("/" + "a" * 2001, "/"),  # longer than any URL of this site
        ("/credits?preset=last_7_days", "/credits?preset=last_7_days"),
        ("/caf\u00e9", "/caf%C3%A9"),  # an IRI becomes a URI in the header
    ],
)
def test_every_next_ends_in_a_local_redirect(acme, client, target, location):
    response = login(client, next_url=target)
    assert response.status_code == 302
    assert response.headers["Location"] == location


def test_the_sign_in_form_does_not_carry_a_hostile_next(acme, client):
    page = text(client.get("/login?next=" + quote(CRLF_NEXT)))
    assert 'name="next" type="hidden" value=""' in page
    page = text(client.get("/login?next=" + quote("/credits")))
    assert 'name="next" type="hidden" value="/credits"' in page


# --- item 4: query arguments of the allocation form --------------------------------------


@pytest.mark.parametrize(
    ("query", "location_query"),
    [
        ("?org_id=x", ""),
        ("?endpoint=x", ""),
        ("?_external=1&_scheme=https&_anchor=x", ""),
        (
            "?preset=last_7_days&org_id=x&granularity=week&endpoint=y",
            "?preset=last_7_days&granularity=week",
        ),
        (
            "?startDate=2025-11-01&endDate=2025-11-10&v=3",
            "?startDate=2025-11-01&endDate=2025-11-10",
        ),
        ("?preset=nonsense&granularity=%0d%0a", ""),  # invalid values are not carried
    ],
)
def test_an_allocation_with_any_query_redirects_back_with_the_period_only(
    signed_in, client, query, location_query
):
    org = signed_in["bluebird"]
    token = csrf_token(text(client.get(f"/organizations/{org.id}")))
    response = client.post(
        f"/organizations/{org.id}/allocation{query}",
        data={"credits": "450", "notes": "", "csrf_token": token},
    )
    assert response.status_code == 302
    # back to the allocation card of the same view
    assert response.headers["Location"] == f"/organizations/{org.id}{location_query}#allocation"
    db.session.refresh(org)
    assert org.credits_allocated == 450
    # The initial 400 and this change: committed exactly once.
    assert [c.credits_allocated for c in accounts.allocation_history(org)] == [450, 400]


def test_no_page_fails_on_hostile_query_arguments(signed_in, client):
    org = signed_in["bluebird"]
    hostile = "&".join(f"{quote(k)}={quote(CRLF_NEXT)}" for k in HOSTILE_KEYS)
    paths = [
        "/",
        "/organizations",
        "/organizations.csv",
        f"/organizations/{org.id}",
        "/credits",
        "/billing",
        "/billing.csv",
        "/reports",
        "/reports/2025-11",
        "/reports/2025-11.csv",
        "/reports/2025-11.json",
        "/login",
    ]
    for path in paths:
        response = client.get(f"{path}?{hostile}")
        assert response.status_code in (200, 302), path
    token = csrf_token(text(client.get(f"/organizations/{org.id}")))
    response = client.post(
        f"/organizations/{org.id}/allocation?{hostile}",
        data={"credits": "420", "csrf_token": token},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"/organizations/{org.id}#allocation"
    anonymous = client.application.test_client()
    for path in paths[:-1]:
        response = anonymous.get(f"{path}?{hostile}")
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/login?next=%2F"), path
        assert "\r" not in response.headers["Location"]


# --- item 5: the Host header and non-canonical URLs --------------------------------------

EVIL = "http://evil.example"


def test_a_non_canonical_api_path_answers_the_json_404(acme, client, api_key):
    key = api_key(acme["partner"])
    org = acme["bluebird"].id
    for path in (
        "/api/v1/partner//me",
        "/api/v1//partner/me",
        "/api/v1/partner/me/",
        f"/api/v1/partner/organizations/{org}//analytics",
        f"/api/v1/partner/organizations/{org}/",
    ):
        response = client.get(path, base_url=EVIL, headers={"X-Partner-API-Key": key})
        assert response.status_code == 404, path
        assert response.mimetype == "application/json", path
        assert response.get_json()["code"] == "NotFound", path
        assert "Location" not in response.headers, path


def test_a_non_canonical_page_path_answers_404_without_a_redirect(signed_in, client):
    for path in (
        "/reports//2025-11",
        "/organizations//x",
        "/organizations/",
        "/static//css/app.css",
    ):
        response = client.get(path, base_url=EVIL)
        assert response.status_code == 404, path
        assert "Location" not in response.headers, path


def test_no_redirect_is_built_from_the_host_header(acme, client):
    """Every redirect of the dashboard, on a server reached as evil.example."""
    org = acme["bluebird"]
    seen = []

    def location(response):
        assert response.status_code == 302
        seen.append(response.headers["Location"])
        return response.headers["Location"]

    assert location(client.get("/organizations", base_url=EVIL)) == "/login?next=%2Forganizations"
    token = csrf_token(text(client.get("/login", base_url=EVIL)))
    assert (
        location(
            client.post(
                "/login",
                base_url=EVIL,
                data={
                    "email": "ops@acme.test",
                    "password": "correct horse battery",
                    "csrf_token": token,
                    "next": "/credits",
                },
            )
        )
        == "/credits"
    )
    assert location(client.get("/login", base_url=EVIL)) == "/"
    token = csrf_token(text(client.get(f"/organizations/{org.id}", base_url=EVIL)))
    assert (
        location(
            client.post(
                f"/organizations/{org.id}/allocation?preset=last_7_days",
                base_url=EVIL,
                data={"credits": "450", "csrf_token": token},
            )
        )
        == f"/organizations/{org.id}?preset=last_7_days#allocation"
    )
    token = csrf_token(text(client.get("/", base_url=EVIL)))
    assert location(client.post("/logout", base_url=EVIL, data={"csrf_token": token})) == "/login"
    assert len(seen) == 5 and all("evil.example" not in url for url in seen)


def test_the_api_location_header_is_relative(acme, client, api_key):
    response = client.post(
        "/api/v1/partner/organizations",
        json={"name": "New"},
        base_url=EVIL,
        headers={"X-Partner-API-Key": api_key(acme["partner"])},
    )
    assert response.status_code == 201
    assert (
        response.headers["Location"] == f"/api/v1/partner/organizations/{response.get_json()['id']}"
    )


def test_trusted_hosts_refuse_any_other_host(app, acme, client, api_key):
    app.config["TRUSTED_HOSTS"] = ["localhost", ".acme.test"]
    key = api_key(acme["partner"])
    response = client.get("/api/v1/partner/me", base_url=EVIL, headers={"X-Partner-API-Key": key})
    assert response.status_code == 400
    assert response.get_json()["code"] == "BadRequest"
    assert response.get_json()["details"] == {"field": "Host", "value": "evil.example"}
    for path in ("/", "/login", "/organizations", "/static/css/app.css", "/nothing"):
        response = client.get(path, base_url=EVIL)
        assert (response.status_code, response.mimetype) == (400, "text/html"), path
        assert "is not trusted" in text(response), path
        assert "Location" not in response.headers, path
    token = csrf_token(text(client.get("/login")))
    response = client.post(
        "/login",
        base_url=EVIL,
        data={"email": "ops@acme.test", "password": "correct horse battery", "csrf_token": token},
    )
    assert response.status_code == 400
    # The names listed, with any port, and the subdomains of ".acme.test" are served.
    for base in ("http://localhost", "http://localhost:5000", "https://dash.acme.test"):
        assert client.get("/login", base_url=base).status_code == 200, base


def test_trusted_hosts_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("TRUSTED_HOSTS", " dash.example , .acme.test,")
    assert config.from_environment()["TRUSTED_HOSTS"] == ["dash.example", ".acme.test"]
    monkeypatch.setenv("TRUSTED_HOSTS", " , ")
    assert config.from_environment().get("TRUSTED_HOSTS") is None  # unset: any host


# --- item 5: what every API answer carries -----------------------------------------------

RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


def test_every_api_answer_of_a_known_url_carries_the_rate_limit_headers(app, acme, client, api_key):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    partner = acme["partner"]
    admin = {"X-Partner-API-Key": api_key(partner)}
    read = {"X-Partner-API-Key": api_key(partner, ["read"])}
    org = acme["bluebird"].id
    me = "/api/v1/partner/me"
    answers = {
        "200": client.get(me, headers=admin),
        "HEAD": client.head(me, headers=admin),
        "OPTIONS": client.options(me, headers=admin),
        "201": client.post("/api/v1/partner/organizations", json={"name": "New"}, headers=admin),
        "400": client.get("/api/v1/partner/analytics?startDate=x", headers=admin),
        "401": client.get(me),
        "401 unknown key": client.get(me, headers={"X-Partner-API-Key": "pk_live_nope"}),
        "403": client.post("/api/v1/partner/organizations", json={"name": "x"}, headers=read),
        "404 id": client.get("/api/v1/partner/organizations/nope", headers=admin),
        "405": client.delete(me, headers=admin),
        "405 without key": client.delete(me),
        "405 unknown method": client.open(me, method="BREW", headers=admin),
        "405 POST-only URL": client.get("/api/v1/partner/events", headers=admin),
        "413": client.post(
            "/api/v1/partner/events",
            data="x" * 2000,
            content_type="application/json",
            headers=admin,
        ),
        "415": client.post(
            "/api/v1/partner/events", data="x", content_type="text/plain", headers=admin
        ),
        "422": client.put(
            f"/api/v1/partner/organizations/{org}/credits", json={"credits": 999_999}, headers=admin
        ),
    }
    for label, response in answers.items():
        assert label.split()[0] in (str(response.status_code), response.request.method), label
        for header in RATE_HEADERS:
            assert header in response.headers, (label, header)
        assert response.mimetype != "text/html", label
    assert answers["405"].get_json()["code"] == "MethodNotAllowed"
    assert set(answers["405"].headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
    assert answers["OPTIONS"].headers.get("Content-Type") is None  # an empty answer


def test_a_405_counts_in_the_partners_window(acme, client, api_key):
    headers = {"X-Partner-API-Key": api_key(acme["partner"])}
    first = int(client.get("/api/v1/partner/me", headers=headers).headers["X-RateLimit-Remaining"])
    refused = client.delete("/api/v1/partner/me", headers=headers)
    assert refused.status_code == 405
    assert int(refused.headers["X-RateLimit-Remaining"]) == first - 1
    after = client.get("/api/v1/partner/me", headers=headers)
    assert int(after.headers["X-RateLimit-Remaining"]) == first - 2


def test_the_documented_exceptions_carry_no_rate_limit_headers(acme, client, api_key):
    headers = {"X-Partner-API-Key": api_key(acme["partner"])}
    first = int(client.get("/api/v1/partner/me", headers=headers).headers["X-RateLimit-Remaining"])
    for path in ("/api/v1/nothing-here", "/api/v1/partner//me", "/api/v1/openapi.json"):
        response = client.get(path, headers=headers)
        assert response.mimetype == "application/json", path
        assert not any(h in response.headers for h in RATE_HEADERS), path
    # None of them was counted in the partner's window.
    after = client.get("/api/v1/partner/me", headers=headers)
    assert int(after.headers["X-RateLimit-Remaining"]) == first - 1
