"""The one error page: a human title, what to do, a way back, the navigation when signed in.

Every status a page can answer is reached through the app's own handlers: real URLs where
the dashboard has one (an unknown page, an unknown organization, a wrong method, a form
without its CSRF token, a month without a report) and, for the statuses no page raises
on purpose yet, a route added to this test's app that raises what a view would.
"""

from __future__ import annotations

import re

import pytest
from flask import abort

from app.errors import ServiceUnavailable
from tests.views_support import PASSWORD, login

# Names of exceptions and HTTP reason phrases that must never reach a person.
MACHINE_WORDS = (
    "NotFound",
    "Not Found",
    "MethodNotAllowed",
    "Method Not Allowed",
    "BadRequest",
    "Bad Request",
    "Forbidden",
    "TooManyRequests",
    "InternalServerError",
    "Internal Server Error",
    "ServiceUnavailable",
    "Traceback",
)


@pytest.fixture
def app_with_failures(app):
    """The app, plus routes that fail the way a view can (added before any request)."""

    def boom() -> str:
        raise RuntimeError("kaboom")

    def busy() -> str:
        raise ServiceUnavailable("the partner is busy", retry_after=7)

    app.add_url_rule("/test-403", "test_403", lambda: abort(403))
    app.add_url_rule("/test-429", "test_429", lambda: abort(429))
    app.add_url_rule("/test-500", "test_500", boom)
    app.add_url_rule("/test-503", "test_503", busy)
    return app


@pytest.fixture
def user(app_with_failures, freeze, make_partner, make_org, make_user):
    from tests.views_support import NOW

    freeze(NOW)
    partner = make_partner("acme", pool=1000)
    org = make_org(partner, "Bluebird")
    make_user(partner, "ops@acme.test", PASSWORD)
    return {"partner": partner, "org_id": org.id}


def _page(response) -> str:
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


def _h1(page: str) -> str:
    found = re.search(r"<h1>([^<]*)</h1>", page)
    assert found, page[:500]
    return found.group(1)


UNKNOWN = "00000000-0000-4000-8000-000000000000"  # an organization id nobody has
CASES = [
    # (how to get it, status, title)
    (lambda c, u: c.get("/no-such-page"), 404, "Page not found"),
    (lambda c, u: c.get(f"/organizations/{UNKNOWN}"), 404, "Page not found"),
    (lambda c, u: c.post("/credits"), 405, "Not available here"),
    (
        lambda c, u: c.post(f"/organizations/{u['org_id']}/allocation", data={"credits": "5"}),
        400,
        "This request could not be used",
    ),
    (lambda c, u: c.get("/test-403"), 403, "Not allowed"),
    (lambda c, u: c.get("/test-429"), 429, "Too many requests"),
    (lambda c, u: c.get("/test-500"), 500, "Something went wrong"),
    (lambda c, u: c.get("/test-503"), 503, "Busy for a moment"),
]


@pytest.mark.parametrize(("request_it", "status", "title"), CASES)
def test_signed_in_errors_keep_the_navigation(user, client, request_it, status, title):
    login(client)
    response = request_it(client, user)
    assert response.status_code == status
    page = _page(response)
    assert _h1(page) == title
    assert f"Error {status}" in page
    assert 'data-nav="overview"' in page and 'data-nav="reports"' in page  # the navigation
    assert re.search(r'<a class="btn" href="/" data-back-link>Back to the overview</a>', page)
    for word in MACHINE_WORDS:
        assert word not in page, word


@pytest.mark.parametrize(("request_it", "status", "title"), [CASES[0], CASES[5], CASES[6]])
def test_signed_out_errors_offer_sign_in(user, client, request_it, status, title):
    response = request_it(client, user)
    assert response.status_code == status
    page = _page(response)
    assert _h1(page) == title
    assert 'data-nav="' not in page
    assert re.search(r'<a class="btn" href="/login" data-back-link>Go to sign in</a>', page)
    for word in MACHINE_WORDS:
        assert word not in page, word


def test_an_unknown_organization_says_what_was_not_found(user, client):
    login(client)
    page = _page(client.get(f"/organizations/{UNKNOWN}"))
    assert "<title>Page not found · Partner Analytics</title>" in page
    assert "Organization not found." in page


def test_a_month_without_a_report_has_its_own_title_and_way_back(user, client):
    login(client)
    response = client.get("/reports/1999-01")
    assert response.status_code == 404
    page = _page(response)
    assert _h1(page) == "No report for “1999-01”"
    assert 'href="/reports" data-back-link>Back to the reports</a>' in page
    assert 'data-nav="overview"' in page


def test_a_503_page_keeps_its_retry_after(user, client):
    login(client)
    response = client.get("/test-503")
    assert response.status_code == 503 and response.headers["Retry-After"] == "7"


def test_the_page_still_answers_when_the_session_cannot_be_read(user, client, monkeypatch):
    # The user loader failing (the database down) costs the navigation, not the page.
    from app.extensions import login_manager

    login(client)

    def broken(_user_id: str) -> None:
        raise RuntimeError("database unavailable")

    monkeypatch.setattr(login_manager, "_user_callback", broken)
    response = client.get("/test-500")
    assert response.status_code == 500
    page = _page(response)
    assert _h1(page) == "Something went wrong" and 'data-nav="' not in page
