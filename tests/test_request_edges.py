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

HOSTILE_KEYS = ("org_id", "endpoint", "_external", "_scheme", "_anchor", "_method",
                "values", "v", "filename", "month", "next")


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


@pytest.mark.parametrize(("target", "location"), [
    (CRLF_NEXT, "/"),
    ("/x\ny", "/"),
    ("/\t/evil.example", "/"),     # a browser drops the tab: //evil.example
    ("/\x7f", "/"),
    ("/" + "a" * 2001, "/"),       # longer than any URL of this site
    ("/credits?preset=last_7_days", "/credits?preset=last_7_days"),
    ("/caf\u00e9", "/caf%C3%A9"),  # an IRI becomes a URI in the header
])
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

@pytest.mark.parametrize(("query", "location_query"), [
    ("?org_id=x", ""),
    ("?endpoint=x", ""),
    ("?_external=1&_scheme=https&_anchor=x", ""),
    ("?preset=last_7_days&org_id=x&granularity=week&endpoint=y", "?preset=last_7_days&granularity=week"),
    ("?startDate=2025-11-01&endDate=2025-11-10&v=3", "?startDate=2025-11-01&endDate=2025-11-10"),
    ("?preset=nonsense&granularity=%0d%0a", ""),  # invalid values are not carried
])
def test_an_allocation_with_any_query_redirects_back_with_the_period_only(
        signed_in, client, query, location_query):
    org = signed_in["bluebird"]
    token = csrf_token(text(client.get(f"/organizations/{org.id}")))
    response = client.post(f"/organizations/{org.id}/allocation{query}",
                           data={"credits": "450", "notes": "", "csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"] == f"/organizations/{org.id}{location_query}"
    db.session.refresh(org)
    assert org.credits_allocated == 450
    # The initial 400 and this change: committed exactly once.
    assert [c.credits_allocated for c in accounts.allocation_history(org)] == [450, 400]


def test_no_page_fails_on_hostile_query_arguments(signed_in, client):
    org = signed_in["bluebird"]
    hostile = "&".join(f"{quote(k)}={quote(CRLF_NEXT)}" for k in HOSTILE_KEYS)
    paths = ["/", "/organizations", "/organizations.csv", f"/organizations/{org.id}",
             "/credits", "/billing", "/billing.csv", "/reports", "/reports/2025-11",
             "/reports/2025-11.csv", "/reports/2025-11.json", "/login"]
    for path in paths:
        response = client.get(f"{path}?{hostile}")
        assert response.status_code in (200, 302), path
    token = csrf_token(text(client.get(f"/organizations/{org.id}")))
    response = client.post(f"/organizations/{org.id}/allocation?{hostile}",
                           data={"credits": "420", "csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"] == f"/organizations/{org.id}"
    anonymous = client.application.test_client()
    for path in paths[:-1]:
        response = anonymous.get(f"{path}?{hostile}")
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/login?next=%2F"), path
        assert "\r" not in response.headers["Location"]
