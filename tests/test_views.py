"""Dashboard pages: login, the period form, every page and every form path.

The data set is views_support.build_acme (today is Thu 20 Nov 2025, UTC, pool 1000); every
expected number below is worked out by hand from it.
"""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import datetime

import pytest
from views_support import (
    FORMULA_NAME,
    NOW,
    PASSWORD,
    build_acme,
    cells,
    csrf_token,
    field_error,
    figures,
    kpi_changes,
    kpis,
    login,
    number,
    shown_kpi,
)

from app import accounts, auth, forms
from app.extensions import db

PAGES = ["/", "/organizations", "/credits", "/billing", "/organizations.csv", "/billing.csv"]


@pytest.fixture
def acme(freeze, make_partner, make_org, add_events, make_user):
    return build_acme(freeze, make_partner, make_org, add_events, make_user)


@pytest.fixture
def signed_in(acme, client):
    response = login(client)
    assert response.status_code == 302
    return acme


def text(response) -> str:
    return response.get_data(as_text=True)


# --- login and logout --------------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
def test_every_page_requires_login(acme, client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_every_page_is_behind_the_dashboard_login_gate(app):
    # One before_request on the parent blueprint guards them all: a page family must be
    # registered under it, or its pages would be open.
    open_endpoints = {"static", "auth.login", "auth.logout", "invitations.accept"}
    pages = {
        rule.endpoint for rule in app.url_map.iter_rules() if not rule.rule.startswith("/api/")
    } - open_endpoints
    assert pages and all(e.startswith("dashboard.") for e in pages), sorted(pages)
    assert len(app.before_request_funcs["dashboard"]) == 1


def test_templates_build_api_links_with_url_for():
    from pathlib import Path

    templates = Path(__file__).resolve().parent.parent / "templates"
    hard_coded = [
        str(p.relative_to(templates))
        for p in templates.rglob("*.html")
        if "/api/v1" in p.read_text(encoding="utf-8")
    ]
    assert hard_coded == []


def test_organization_page_requires_login(acme, client):
    response = client.get(f"/organizations/{acme['bluebird'].id}")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_login_page_has_the_form_with_a_csrf_token(app, client):
    page = text(client.get("/login"))
    assert 'name="email"' in page and 'name="password"' in page
    assert csrf_token(page)


def test_login_with_the_right_password_opens_the_overview(acme, client):
    response = login(client)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain HTTP in the test client
    page = text(client.get("/"))
    assert "Acme Agency" in page and "ops@acme.test" in page


def test_session_cookie_is_secure_over_https(acme, client):
    token = csrf_token(text(client.get("/login", base_url="https://localhost")))
    # Over HTTPS the CSRF check also wants a same-site Referer, as a browser sends.
    response = client.post(
        "/login",
        base_url="https://localhost",
        headers={"Referer": "https://localhost/login"},
        data={"email": "ops@acme.test", "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 302
    assert "Secure" in response.headers["Set-Cookie"]


def test_wrong_password_shows_a_message_beside_the_field(acme, client):
    response = login(client, password="not the password")
    assert response.status_code == 401
    assert field_error(text(response), "password") == "email or password is incorrect"
    assert client.get("/").status_code == 302


def test_unknown_email_gets_the_same_message(acme, client):
    response = login(client, email="nobody@acme.test")
    assert response.status_code == 401
    assert field_error(text(response), "password") == "email or password is incorrect"


def test_empty_login_form_names_both_fields(acme, client):
    token = csrf_token(text(client.get("/login")))
    response = client.post("/login", data={"email": "", "password": "", "csrf_token": token})
    assert response.status_code == 400
    assert field_error(text(response), "email") == "enter your email"
    assert field_error(text(response), "password") == "enter your password"


def test_login_without_csrf_token_is_refused(acme, client):
    response = client.post("/login", data={"email": "ops@acme.test", "password": PASSWORD})
    assert response.status_code == 400
    page = text(response)
    assert "The sign-in form expired (its CSRF token was missing or stale)" in page
    assert csrf_token(page)  # a fresh form to try again
    assert client.get("/").status_code == 302


def test_login_starts_a_new_session(acme, client):
    with client.session_transaction() as sess:
        sess["planted"] = "by an attacker"
    login(client)
    with client.session_transaction() as sess:
        assert "planted" not in sess
        assert sess.get("_user_id") == f"{acme['user'].id}:{acme['user'].session_token}"


def test_login_follows_a_local_next_only(acme, client):
    assert login(client, next_url="/credits").headers["Location"] == "/credits"
    other = client.application.test_client()
    assert login(other, next_url="//evil.example/x").headers["Location"] == "/"
    third = client.application.test_client()
    assert login(third, next_url="https://evil.example/").headers["Location"] == "/"


def test_login_is_rate_limited(acme, client, app):
    app.config["LOGIN_RATE_LIMIT"] = "3 per minute"
    statuses = [login(client, password="wrong").status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    assert "Too many sign-in attempts" in text(login(client))


def test_logout_ends_the_session_and_old_cookies(signed_in, client):
    cookie = client.get_cookie("session")
    assert cookie is not None
    page = text(client.get("/"))
    response = client.post("/logout", data={"csrf_token": csrf_token(page)})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert client.get("/").status_code == 302
    # A copy of the session cookie taken before sign-out no longer opens the dashboard.
    replay = client.application.test_client()
    replay.set_cookie(cookie.key, cookie.value)
    assert replay.get("/").status_code == 302


def test_logout_without_csrf_token_is_refused(signed_in, client):
    response = client.post("/logout")
    assert response.status_code == 400
    assert "The form was open too long or in another session" in text(response)
    assert client.get("/").status_code == 200


def test_a_password_change_ends_the_session(signed_in, client):
    auth.set_password(signed_in["user"], "another long password")
    assert client.get("/").status_code == 302


# --- overview -------------------------------------------------------------------------------


def test_overview_kpis_for_last_7_days(signed_in, client):
    page = text(client.get("/?preset=last_7_days"))
    # Period Nov 14..20; previous Nov 7..13.
    assert kpis(page) == {
        "totalOrganizations": 3,  # all three created by Nov 20
        "activeOrganizations": 3,
        "totalIdentifications": 18,  # b1 10 + b2 5 + c2 3
        "creditsUsed": 18,
        "creditsRemaining": 966,  # 1000 - (10 + 5 + 7 + 3 + 9) used Nov 1..20
        "organizationsWithActivity": 2,  # Bluebird, Cobalt
        "totalQuantity": 50,  # 18 + page_view 30 + session 2
        "totalEvents": 5,  # b1 b2 b3 c2 c3
    }
    changes = kpi_changes(page)
    assert changes["totalIdentifications"] == pytest.approx(1.5714)  # (18 - 7) / 7
    assert changes["creditsRemaining"] == pytest.approx(-0.0183)  # (966 - 984) / 984
    assert changes["totalEvents"] == pytest.approx(4.0)  # (5 - 1) / 1
    assert changes["totalOrganizations"] == 0.0
    assert shown_kpi(page, "creditsRemaining") == "966"
    assert "25 Sep" not in page
    # The comparison window is stated, once above the cards and on each card.
    assert (
        "compares <strong>14 Nov – 20 Nov 2025</strong>\n"
        "  with <strong>7 Nov – 13 Nov 2025</strong>, the 7 days before." in page
    )
    assert page.count("vs ") >= 7 and "7 Nov – 13 Nov 2025" in page
    assert 'class="pill is-active" data-preset="last_7_days"' in page


def test_overview_thousands_are_separated(
    freeze, make_partner, make_org, add_events, make_user, client
):
    freeze(NOW)
    partner = make_partner("big", pool=2_000_000)
    org = make_org(partner, "Big", created_at=datetime(2025, 1, 1))
    add_events(
        partner,
        [
            {
                "eventId": "x",
                "organizationId": org.id,
                "type": "identification",
                "quantity": 1_234_567,
                "occurredAt": "2025-11-19T08:00:00Z",
            }
        ],
    )
    make_user(partner, "big@acme.test", PASSWORD)
    login(client, "big@acme.test")
    page = text(client.get("/"))
    assert shown_kpi(page, "totalIdentifications") == "1,234,567"
    assert shown_kpi(page, "creditsRemaining") == "765,433"  # 2,000,000 - 1,234,567


def test_overview_without_parameters_lands_on_the_last_30_days(signed_in, client):
    page = text(client.get("/"))
    # The "Last 30 days" preset, shown as selected: Oct 22 .. Nov 20 (today), 30 days; all
    # seven events (Nov 3 .. Nov 20) inside.
    assert 'data-period-start="2025-10-22"' in page and 'data-period-end="2025-11-20"' in page
    assert re.search(r'class="pill is-active" data-preset="last_30_days"', page)
    assert "(Last 30 days, 30 days)" in page
    assert kpis(page)["totalIdentifications"] == 34  # 10 + 5 + 7 + 3 + 9
    assert "startDate=2025-10-22&amp;endDate=2025-11-20" in page  # the JSON link
    # Clicking the preset shows the very same figures (it used to change them).
    assert kpis(text(client.get("/?preset=last_30_days"))) == kpis(page)


def test_a_custom_period_is_named_custom(signed_in, client):
    page = text(client.get("/?startDate=2025-11-10&endDate=2025-11-14"))
    assert "(Custom, 5 days)" in page
    assert "is-active" not in page.split('class="presets"')[1].split("</nav>")[0]


def test_overview_custom_range(signed_in, client):
    page = text(client.get("/?startDate=2025-11-10&endDate=2025-11-14"))
    assert kpis(page)["totalIdentifications"] == 17  # c1 7 (Nov 10) + b1 10 (Nov 14)
    assert 'value="2025-11-10"' in page and 'value="2025-11-14"' in page
    # The range travels with the navigation links.
    assert 'href="/organizations?startDate=2025-11-10&amp;endDate=2025-11-14"' in page
    assert 'href="/credits?startDate=2025-11-10&amp;endDate=2025-11-14"' in page


def test_overview_charts_have_one_point_per_bucket(signed_in, client):
    page = text(client.get("/?preset=last_7_days"))
    figs = figures(page)
    assert set(figs) == {"identifications", "cumulative", "activity", "types", "top"}
    current, previous = figs["identifications"]["data"]
    assert current["x"] == [f"2025-11-{d} 12:00" for d in range(14, 21)]  # each day's noon
    assert current["y"] == [10, 0, 0, 0, 3, 0, 5]
    # Nov 7..13, drawn day by day over Nov 14..20; today (Nov 20) is partial.
    assert previous["x"] == current["x"]
    assert previous["y"] == [0, 0, 0, 7, 0, 0, 0]
    assert [row[2] for row in current["customdata"]][:2] == ["7 Nov 2025", "8 Nov 2025"]
    assert current["customdata"][-1][0] == "20 Nov 2025 (today, so far)"
    assert current["marker"]["pattern"]["shape"] == [""] * 6 + ["/"]
    used, pool = figs["cumulative"]["data"]
    # Credits used since Nov 1, day by day: 16 before Nov 14 (f1 9 + c1 7), then +10, +3, +5.
    assert used["y"] == [26, 26, 26, 26, 29, 29, 34]
    assert pool["y"] == [1000] * 7
    assert figs["activity"]["data"][0]["y"] == [1, 1, 0, 0, 1, 0, 1]
    types = figs["types"]["data"][0]
    assert types["x"] == [2, 18, 30]  # session, identification, page_view, largest on top
    assert figs["types"]["layout"]["yaxis"]["ticktext"] == [
        "Sessions",
        "Identifications",
        "Page views",
    ]
    top = figs["top"]["data"][0]
    assert top["x"] == [3, 15]  # Cobalt, Bluebird (largest on top)
    assert top["customdata"][1][1].startswith(f"/organizations/{signed_in['bluebird'].id}?")


def test_overview_granularity_is_automatic_and_switchable(signed_in, client):
    page = text(client.get("/?preset=last_12_months"))
    assert re.search(r'data-granularity="week"\s+class="is-active"', page)  # 365 days: weekly
    page = text(client.get("/?preset=last_12_months&granularity=month"))
    current = figures(page)["identifications"]["data"][0]
    # Nov 21, 2024 .. Nov 20, 2025: Nov 2024 (clipped) + Dec..Oct + Nov 2025 = 13 months.
    assert len(current["x"]) == 13
    assert current["y"][-1] == 34
    # The first month is clipped (21-30 Nov 2024), the last still running (1-20 Nov 2025).
    assert current["customdata"][0][0] == "Nov 2024 (partial: 10 of 30 days)"
    assert current["customdata"][-1][0] == "Nov 2025 (partial: 20 of 30 days)"
    assert current["marker"]["pattern"]["shape"] == ["/"] + [""] * 11 + ["/"]
    # The period switch keeps the chosen granularity.
    assert 'href="/?preset=last_7_days&amp;granularity=month"' in page


def test_overview_bad_granularity_is_explained_and_ignored(signed_in, client):
    response = client.get("/?preset=last_7_days&granularity=hour")
    assert response.status_code == 200
    page = text(response)
    assert field_error(page, "granularity") == "Choose day, week or month"
    assert len(figures(page)["identifications"]["data"][1]["x"]) == 7  # daily, automatic


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        (
            "startDate=2025-13-01",
            "startDate",
            "“2025-13-01” is not a date; pick a day in the calendar",
        ),
        (
            "startDate=2025-11-01&endDate=yesterday",
            "endDate",
            "“yesterday” is not a date; pick a day in the calendar",
        ),
        (
            "startDate=2025-11-10&endDate=2025-11-01",
            "endDate",
            "The end date is before the start date (10 Nov 2025)",
        ),
        (
            # 1 Jan 1990 .. 20 Nov 2025: 35 years with 9 leap days (12,784 days) + 304 days
            # of Jan..Oct 2025 + 20 of November = 13,108 days.
            "startDate=1990-01-01&endDate=2025-11-20",
            "endDate",
            "The period is 13,108 days long; it can be at most 3,660 days (about ten years)",
        ),
        (
            "startDate=1800-01-01&endDate=2025-11-20",
            "startDate",
            "1 Jan 1800 is too early: the earliest date is 1 Jan 1970",
        ),
        (
            "startDate=2025-11-01&endDate=1969-12-31",
            "endDate",
            "31 Dec 1969 is too early: the earliest date is 1 Jan 1970",
        ),
        # Today is 20 Nov 2025: a period in 2030 is refused, not shown empty.
        (
            "startDate=2030-01-01&endDate=2030-01-31",
            "startDate",
            "The period starts after today (20 Nov 2025)",
        ),
        ("startDate=2025-11-21", "startDate", "The period starts after today (20 Nov 2025)"),
        (
            "preset=last_decade",
            "preset",
            "“last_decade” is not one of the periods; choose one of the buttons",
        ),
    ],
)
def test_invalid_period_shows_a_message_and_the_default_period(
    signed_in, client, query, field, message
):
    response = client.get("/?" + query)
    assert response.status_code == 200
    page = text(response)
    assert field_error(page, field) == message
    assert "could not be used" in page
    # Without a period shown before, the page stays usable on the landing preset, last 30
    # days (Oct 22 .. Nov 20).
    assert kpis(page)["totalIdentifications"] == 34
    assert 'data-period-start="2025-10-22"' in page
    assert "showing last 30 days instead" in page
    # An invalid period is not carried along in links.
    assert 'href="/organizations"' in page


def test_end_before_start_keeps_both_dates_and_the_period_shown_before(signed_in, client):
    # Sent from the page of the last 7 days (the form carries shown=last_7_days).
    query = "shown=last_7_days&startDate=2025-11-10&endDate=2025-11-01"
    page = text(client.get("/?" + query))
    assert field_error(page, "endDate") == "The end date is before the start date (10 Nov 2025)"
    assert field_error(page, "startDate") is None
    # Both dates stay as typed, so the pair beside its message is the one that was sent.
    assert re.search(r'id="startDate"[^>]*value="2025-11-10"', page)
    assert re.search(r'id="endDate"[^>]*value="2025-11-01"', page)
    # The figures stay on the last 7 days (Nov 14 .. 20): Bluebird 10 + 5, Cobalt 3.
    assert 'data-period-start="2025-11-14"' in page and 'data-period-end="2025-11-20"' in page
    assert kpis(page)["totalIdentifications"] == 18
    assert "showing last 7 days instead" in page
    assert re.search(r'class="pill is-active" data-preset="last_7_days"', page)
    assert 'href="/organizations?preset=last_7_days"' in page


def test_a_bad_range_after_a_custom_one_keeps_the_custom_figures(signed_in, client):
    query = "shown=2025-11-10..2025-11-14&startDate=2025-11-12&endDate=yesterday"
    page = text(client.get("/?" + query))
    assert field_error(page, "endDate") == "“yesterday” is not a date; pick a day in the calendar"
    assert kpis(page)["totalIdentifications"] == 17  # Cobalt 7 (Nov 10) + Bluebird 10 (Nov 14)
    assert "showing 10 Nov – 14 Nov 2025 instead" in page
    assert 'href="/organizations?startDate=2025-11-10&amp;endDate=2025-11-14"' in page
    # The next try from this page still remembers the same period.
    assert 'name="shown" value="2025-11-10..2025-11-14"' in page


@pytest.mark.parametrize("shown", ["garbage", "2025-11-14..2025-11-01", "2025-11-01..2099-01-01"])
def test_an_unusable_period_shown_before_falls_back_to_the_landing_preset(signed_in, client, shown):
    page = text(client.get(f"/?shown={shown}&startDate=2025-11-10&endDate=2025-11-01"))
    assert field_error(page, "endDate") == "The end date is before the start date (10 Nov 2025)"
    assert 'data-period-start="2025-10-22"' in page
    assert kpis(page)["totalIdentifications"] == 34


def test_a_valid_period_ignores_the_period_shown_before(signed_in, client):
    page = text(client.get("/?shown=last_7_days&startDate=2025-11-10&endDate=2025-11-14"))
    assert kpis(page)["totalIdentifications"] == 17
    assert "could not be used" not in page


def test_an_end_after_today_is_cut_to_today_with_a_note(signed_in, client):
    response = client.get("/?startDate=2025-11-14&endDate=2025-12-31")
    assert response.status_code == 200
    page = text(response)
    assert field_error(page, "endDate") is None
    assert "could not be used" not in page
    note = re.search(r'data-note-for="endDate">([^<]*)<', page)
    assert note and html.unescape(note.group(1)) == (
        "31 Dec 2025 is after today: the period ends today, 20 Nov 2025."
    )
    # Nov 14 .. 20, 7 days: Bluebird 10 + 5, Cobalt 3.
    assert 'data-period-end="2025-11-20"' in page
    assert "(Custom, 7 days)" in page
    assert kpis(page)["totalIdentifications"] == 18
    assert re.search(r'id="endDate"[^>]*value="2025-11-20"', page)
    # Links carry the period shown, through today.
    assert 'href="/organizations?startDate=2025-11-14&amp;endDate=2025-11-20"' in page


def test_an_end_alone_after_today_keeps_the_default_length_through_today(signed_in, client):
    page = text(client.get("/?endDate=2999-12-31"))
    # Cut to Nov 20, then 30 days back as the landing preset: Oct 22 .. Nov 20.
    assert 'data-period-start="2025-10-22"' in page and 'data-period-end="2025-11-20"' in page
    assert "31 Dec 2999 is after today" in html.unescape(page)


def test_the_date_inputs_are_bounded_from_1970_to_today(signed_in, client):
    page = text(client.get("/organizations?preset=last_7_days"))
    for name in ("startDate", "endDate"):
        found = re.search(rf'<input[^>]*id="{name}"[^>]*>', page)
        assert found, name
        assert 'min="1970-01-01"' in found.group(0)
        assert 'max="2025-11-20"' in found.group(0)  # today
    assert re.search(r'<form class="range-form"[^>]*novalidate', page)
    assert 'name="shown" value="last_7_days"' in page


def test_a_timestamp_is_accepted_as_a_date(signed_in, client):
    page = text(client.get("/?startDate=2025-11-14T23:30:00-02:00&endDate=2025-11-20"))
    # 23:30 at -02:00 is 01:30 UTC on Nov 15: the period starts on Nov 15.
    assert 'data-period-start="2025-11-15"' in page
    assert kpis(page)["totalIdentifications"] == 8  # c2 3 + b2 5


def test_overview_for_a_partner_without_organizations(freeze, make_partner, make_user, client):
    freeze(NOW)
    partner = make_partner("empty", pool=500)
    make_user(partner, "empty@acme.test", PASSWORD)
    login(client, "empty@acme.test")
    response = client.get("/")
    assert response.status_code == 200
    page = text(response)
    assert "No organizations yet" in page
    assert "No events received yet" in page
    assert figures(page) == {}
    assert "plotly" not in page  # no chart script on a page without charts
    assert kpis(page)["totalOrganizations"] == 0
    assert kpis(page)["creditsRemaining"] == 500


def test_overview_for_a_partner_without_events(freeze, make_partner, make_org, make_user, client):
    freeze(NOW)
    partner = make_partner("quiet", pool=500)
    make_org(partner, "Quiet Co", created_at=datetime(2025, 10, 1))
    make_user(partner, "quiet@acme.test", PASSWORD)
    login(client, "quiet@acme.test")
    page = text(client.get("/"))
    assert "No usage received yet" in page
    assert figures(page) == {}
    assert kpis(page)["totalOrganizations"] == 1


def test_overview_period_without_usage_keeps_the_series_and_explains_the_rest(signed_in, client):
    page = text(client.get("/?startDate=2025-10-01&endDate=2025-10-07"))
    figs = figures(page)
    # Neither Oct 1-7 nor Sep 24-30 had an event: a sentence, not an empty axis.
    assert "identifications" not in figs and "activity" not in figs
    assert "No events in this period or the one before." in page
    assert "types" not in figs and "top" not in figs
    assert "No events in this period." in page
    assert "No identifications in this period." in page


def test_overview_shows_freshness_and_json_links(signed_in, client):
    page = text(client.get("/?preset=last_7_days"))
    # The newest event was received at the frozen clock.
    assert "20 Nov 2025 at 12:00 (UTC)" in page and 'data-freshness="2025-11-20T12:00:00Z"' in page
    assert (
        'href="/api/v1/partner/analytics?compare=previous&amp;startDate=2025-11-14'
        '&amp;endDate=2025-11-20"'
    ) in page
    assert 'href="/api/v1/partner/usage?startDate=2025-11-14&amp;endDate=2025-11-20"' in page


def test_user_text_in_chart_labels_is_escaped(
    freeze, make_partner, make_org, add_events, make_user, client
):
    freeze(NOW)
    partner = make_partner("xss", pool=1000)
    org = make_org(
        partner, "<b>Bold</b> & <a href=x>co</a></script>", created_at=datetime(2025, 1, 1)
    )
    add_events(
        partner,
        [
            {
                "eventId": "1",
                "organizationId": org.id,
                "type": "identification",
                "quantity": 1,
                "occurredAt": "2025-11-19T08:00:00Z",
            }
        ],
    )
    make_user(partner, "xss@acme.test", PASSWORD)
    login(client, "xss@acme.test")
    page = text(client.get("/"))
    assert "</script></script>" not in page and "<b>Bold</b>" not in page
    top = figures(page)["top"]
    # The tick label is cut to 23 characters plus "…" ("<b>Bold</b> & <a href=x"), then escaped.
    assert top["layout"]["yaxis"]["ticktext"] == ["&lt;b&gt;Bold&lt;/b&gt; &amp; &lt;a href=x…"]
    assert top["data"][0]["customdata"][0][0] == (
        "&lt;b&gt;Bold&lt;/b&gt; &amp; &lt;a href=x&gt;co&lt;/a&gt;&lt;/script&gt;"
    )


def test_pages_carry_the_content_security_policy(signed_in, client):
    response = client.get("/")
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-eval" not in policy
    page = text(response)
    scripts = re.findall(r"<script([^>]*)>", page)
    # Only three external scripts (tables.js, plotly.js and charts.js) and JSON data blocks.
    assert all('type="application/json"' in s or "src=" in s for s in scripts)
    # (each by its versioned URL: ?v=<content hash>, see tests/test_static.py)
    assert re.findall(r'<script src="([^"?]+)\?v=[0-9a-f]{12}"', page) == [
        "/static/js/tables.js",
        "/static/vendor/plotly-bar-scatter-4.1.1.min.js",
        "/static/js/charts.js",
    ]
    assert not re.search(r"\son[a-z]+=", page)  # no inline event handlers


# --- organizations -----------------------------------------------------------------------


def org_names(page: str) -> list[str]:
    import html

    return [html.unescape(n) for n in re.findall(r"data-org-link>([^<]*)</a>", page)]


def test_organization_table_with_figures_for_the_period(signed_in, client):
    page = text(client.get("/organizations?preset=last_7_days"))
    # Sorted by identifications, most first: Bluebird 15, Cobalt 3, the formula org 0.
    assert org_names(page) == ["Bluebird Bakery", "Cobalt Legal", FORMULA_NAME]
    assert [number(c) for c in cells(page, "identifications")] == [15, 3, 0]
    assert [number(c) for c in cells(page, "events")] == [3, 2, 0]
    assert [number(c) for c in cells(page, "quantity")] == [45, 5, 0]
    assert [number(c) for c in cells(page, "creditsAllocated")] == [400, 300, 10]
    # Used this billing period (Nov 1..30): 15, 7 + 3, 9.
    assert [number(c) for c in cells(page, "creditsUsedThisBillingPeriod")] == [15, 10, 9]
    assert [number(c) for c in cells(page, "creditsAvailable")] == [385, 290, 1]
    assert "Showing 1–3 of 3" in page


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("search=COBALT", ["Cobalt Legal"]),
        ("search=e", ["Bluebird Bakery", "Cobalt Legal"]),
        ("externalId=crm-1", ["Bluebird Bakery"]),
        ("externalId=crm", []),  # exact match only
        ("status=active&sort=name&order=asc", [FORMULA_NAME, "Bluebird Bakery", "Cobalt Legal"]),
        ("sort=name&order=desc", ["Cobalt Legal", "Bluebird Bakery", FORMULA_NAME]),
        ("sort=credits&order=asc", [FORMULA_NAME, "Cobalt Legal", "Bluebird Bakery"]),
        (
            "pageSize=10&page=1&sort=identifications&order=asc",
            [FORMULA_NAME, "Cobalt Legal", "Bluebird Bakery"],
        ),
    ],
)
def test_organization_filters_and_sorting(signed_in, client, query, names):
    page = text(client.get("/organizations?preset=last_7_days&" + query))
    assert org_names(page) == names


def test_organization_status_filter_and_empty_result(signed_in, client):
    accounts.set_status(signed_in["partner"], signed_in["cobalt"], "suspended")
    page = text(client.get("/organizations?status=suspended"))
    assert org_names(page) == ["Cobalt Legal"]
    page = text(client.get("/organizations?status=canceled"))
    assert org_names(page) == [] and "No organization matches these filters" in page


def test_organization_pagination(signed_in, client):
    page = text(client.get("/organizations?preset=last_7_days&pageSize=1&page=2"))
    assert org_names(page) == ["Cobalt Legal"]
    assert "Showing 2–2 of 3" in page
    assert 'rel="prev"' in page and 'rel="next"' in page
    # Links keep the period and the filters.
    assert 'href="/organizations?preset=last_7_days&amp;pageSize=1&amp;page=3"' in page


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("page=0", "page", "Page: page must be a whole number of at least 1"),
        ("page=abc", "page", "Page: page must be a whole number of at least 1"),
        ("pageSize=500", "pageSize", "rows per page must be between 1 and 100"),
        # Other scripts' digits are not whole numbers here, as in the API (issue 12):
        # Arabic-Indic 1 and full-width 20 were read as page 1 and 20 rows.
        ("page=%D9%A1", "page", "Page: page must be a whole number of at least 1"),
        ("pageSize=%EF%BC%92%EF%BC%90", "pageSize", "rows per page must be between 1 and 100"),
        ("status=gone", "status", "status must be one of active, suspended, canceled"),
        ("sort=password", "sort", "Sort by: unknown sort column"),
        ("order=sideways", "order", "Order: order must be asc or desc"),
    ],
)
def test_organization_bad_filters_are_explained_and_ignored(
    signed_in, client, query, field, message
):
    response = client.get("/organizations?" + query)
    assert response.status_code == 200
    page = text(response)
    assert field_error(page, field) == message
    assert len(org_names(page)) == 3  # the page still lists everything


def test_organization_csv_is_exactly_the_table(signed_in, client):
    response = client.get("/organizations.csv?preset=last_7_days&pageSize=2&page=1")
    assert response.mimetype == "text/csv"
    # The partner, the table (this page of it) and the period, Nov 14 .. Nov 20.
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="acme-organizations-page1-2025-11-14_2025-11-20.csv"'
    )
    rows = list(csv.reader(io.StringIO(text(response))))
    assert rows[0] == [
        "organizationId",
        "name",
        "externalId",
        "status",
        "tier",
        "identifications",
        "creditsUsed",
        "events",
        "quantity",
        "creditsAllocated",
        "creditsUsedThisBillingPeriod",
        "creditsAvailable",
    ]
    assert rows[1] == [
        signed_in["bluebird"].id,
        "Bluebird Bakery",
        "crm-1",
        "active",
        "paid",
        "15",
        "15",
        "3",
        "45",
        "400",
        "15",
        "385",
    ]
    assert [r[1] for r in rows[1:]] == ["Bluebird Bakery", "Cobalt Legal"]  # this page only
    page = text(client.get("/organizations?preset=last_7_days&pageSize=2&page=1"))
    assert org_names(page) == [r[1] for r in rows[1:]]


def test_organization_csv_of_all_pages_guards_against_formulas(signed_in, client):
    response = client.get("/organizations.csv?preset=last_7_days&pageSize=1&all=1")
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="acme-organizations-2025-11-14_2025-11-20.csv"'
    )
    rows = list(csv.reader(io.StringIO(text(response))))
    assert len(rows) == 4  # header + all three organizations
    formula = rows[3]
    assert formula[1] == "'" + FORMULA_NAME  # a spreadsheet shows it as text
    assert formula[2] == "'@risk"
    assert formula[-1] == "1"  # numbers are left alone


def test_organization_list_for_a_partner_without_organizations(
    freeze, make_partner, make_user, client
):
    freeze(NOW)
    make_user(make_partner("empty", pool=0), "empty@acme.test", PASSWORD)
    login(client, "empty@acme.test")
    page = text(client.get("/organizations"))
    assert "No organizations yet" in page


# --- one organization ----------------------------------------------------------------------


def test_organization_page(signed_in, client):
    org = signed_in["cobalt"]
    page = text(client.get(f"/organizations/{org.id}?preset=last_7_days"))
    # Cobalt, Nov 14..20: c2 3 identifications, c3 session 2; previous Nov 7..13: c1 7.
    assert kpis(page) == {
        "totalIdentifications": 3,
        "creditsUsed": 3,
        "totalQuantity": 5,
        "totalEvents": 2,
    }
    changes = kpi_changes(page)
    assert changes["totalIdentifications"] == pytest.approx(-0.5714)  # (3 - 7) / 7
    assert changes["totalEvents"] == pytest.approx(1.0)  # (2 - 1) / 1
    assert cells(page, "creditsAllocated") == ["300 credits"]
    assert cells(page, "creditsUsedThisBillingPeriod") == ["10 (3.3 %)"]  # 7 + 3 of 300
    assert cells(page, "creditsAvailable") == ["290"]
    figs = figures(page)
    assert figs["identifications"]["data"][0]["y"] == [0, 0, 0, 0, 3, 0, 0]
    assert "initial allocation" in page
    assert 'href="/organizations?preset=last_7_days" data-back' in page
    assert f"/api/v1/partner/organizations/{org.id}/analytics?compare=previous" in page


def test_organization_page_of_another_partner_is_not_found(
    signed_in, client, make_partner, make_org
):
    other = make_partner("rival", pool=100)
    theirs = make_org(other, "Their Client")
    assert client.get(f"/organizations/{theirs.id}").status_code == 404
    page = text(client.get(f"/organizations/{theirs.id}"))
    assert "Their Client" not in page and "Back to the overview" in page
    token = csrf_token(text(client.get("/")))
    response = client.post(
        f"/organizations/{theirs.id}/allocation", data={"credits": "1", "csrf_token": token}
    )
    assert response.status_code == 404
    db.session.refresh(theirs)
    assert theirs.credits_allocated == 0


def test_unknown_organization_is_not_found(signed_in, client):
    assert client.get("/organizations/not-an-id").status_code == 404
    assert client.get("/organizations/" + "x" * 300).status_code == 404


def allocate(client, org, credits, notes="", query=""):
    token = csrf_token(text(client.get(f"/organizations/{org.id}")))
    return client.post(
        f"/organizations/{org.id}/allocation{query}",
        data={"credits": credits, "notes": notes, "csrf_token": token},
    )


def test_allocation_change(signed_in, client):
    org = signed_in["bluebird"]
    response = allocate(client, org, "450", "more for December", "?preset=last_7_days")
    assert response.status_code == 302
    # Back to the same view, scrolled to the allocation card, the confirmation inside it.
    assert response.headers["Location"] == f"/organizations/{org.id}?preset=last_7_days#allocation"
    page = text(client.get(response.headers["Location"]))
    card = page.split('id="allocation"')[1].split("</section>")[0]
    assert "Allocation of Bluebird Bakery set to 450 credits." in card
    assert 'class="flashes"' not in page  # not also at the top, out of view
    assert cells(page, "creditsAllocated") == ["450 credits"]
    assert "more for December" in page
    history = accounts.allocation_history(org)
    assert (history[0].previous_credits, history[0].credits_allocated) == (400, 450)


NOT_A_NUMBER = (
    "Enter a whole number of credits, such as 1000 or 1,000 (commas or spaces only between "
    "groups of three digits)"
)


@pytest.mark.parametrize(
    ("credits", "status", "message"),
    [
        # Pool 1000; the others hold 300 + 10 = 310, so 690 can go to Bluebird.
        (
            "800",
            422,
            "800 credits requested, but at most 690 can be allocated here: the pool "
            "holds 1,000 and other organizations hold 310",
        ),
        # written as the page writes numbers, and refused with the numbers formatted
        (
            "1,500",
            422,
            "1,500 credits requested, but at most 690 can be allocated here: the pool "
            "holds 1,000 and other organizations hold 310",
        ),
        ("-5", 400, "credits must be between 0 and 1,000,000,000,000"),
        ("12.5", 400, NOT_A_NUMBER),
        ("lots", 400, NOT_A_NUMBER),
        ("1,00", 400, NOT_A_NUMBER),
        ("1.000", 400, NOT_A_NUMBER),
        ("1,000 000", 400, NOT_A_NUMBER),
        ("", 400, "credits is required"),
    ],
)
def test_allocation_refusals_are_shown_beside_the_field(
    signed_in, client, credits, status, message
):
    org = signed_in["bluebird"]
    response = allocate(client, org, credits)
    assert response.status_code == status
    assert field_error(text(response), "credits") == message
    db.session.refresh(org)
    assert org.credits_allocated == 400
    assert len(accounts.allocation_history(org)) == 1


def test_trial_allocation_is_capped(signed_in, client):
    response = allocate(client, signed_in["cobalt"], "600")
    assert response.status_code == 422
    assert (
        field_error(text(response), "credits")
        == "a trial organization can hold at most 500 credits"
    )


def test_allocation_without_csrf_token_is_refused(signed_in, client):
    org = signed_in["bluebird"]
    response = client.post(f"/organizations/{org.id}/allocation", data={"credits": "5"})
    assert response.status_code == 400
    db.session.refresh(org)
    assert org.credits_allocated == 400


# --- credits and billing -------------------------------------------------------------------


def test_credits_page(signed_in, client):
    page = text(client.get("/credits"))
    assert kpis(page) == {
        "creditPoolTotal": 1000,
        "creditPoolAllocated": 710,  # 400 + 300 + 10
        "creditPoolUsed": 34,  # used Nov 1..20
        "creditPoolAvailable": 966,
    }
    # Nov 20 has 19 complete days: the last 7 (Nov 13..19) used 10 (Nov 14) + 3 (Nov 18) =
    # 13, a rate of 13/7 = 1.857... -> 1.86 a day. Complete days used 9 + 7 + 10 + 3 = 29;
    # today's 5 so far beats the rate; 10 days after today at 13/7:
    # 29 + 5 + 130/7 = 52.57 -> 53 by Nov 30, and 1,000 - 53 = 947 unused on Dec 1.
    assert "1.86 credits per day" in page
    assert "53 credits by 30 Nov 2025" in page
    assert "The pool lasts this period: about 947 credits will go unused on 1 Dec 2025" in page
    assert "run out on" not in page
    assert "Projected from the average of the last 7 complete days (13 Nov – 19 Nov 2025)." in page
    # The chart's projection: the last complete day (29), today (29 + 5), Nov 30 (53).
    (pace,) = [t for t in figures(page)["burn"]["data"] if t["name"].startswith("Projected")]
    assert pace["x"] == ["2025-11-19", "2025-11-20", "2025-11-30"]
    assert pace["y"] == [29, 34, 53]
    assert pace["name"] == "Projected (1.86 per day)"
    # Driving the burn over the same Nov 13..19: Bluebird 10 of 13 (76.9 %), Cobalt 3
    # (23.1 %); each links to its organization for those days, not the page's period.
    assert re.search(
        r"Bluebird Bakery</a></td>\s*<td class=\"num\">10</td>\s*"
        r"<td class=\"num\">76.9 %</td>",
        page,
    )
    assert re.search(r"Cobalt Legal</a></td>\s*<td class=\"num\">3</td>\s*", page)
    window = "startDate=2025-11-13&amp;endDate=2025-11-19"
    assert f'href="/organizations/{signed_in["bluebird"].id}?{window}" data-org-link' in page
    assert f'href="/organizations/{signed_in["cobalt"].id}?{window}" data-org-link' in page
    # 80 % or more: only the formula org, 9 of 10.
    over = re.findall(r'<tr data-org-id="([^"]+)">', page)
    assert over == [signed_in["formula"].id]
    assert "90.0 %" in page


def test_credits_page_for_a_partner_without_events(freeze, make_partner, make_user, client):
    freeze(NOW)
    make_user(make_partner("empty", pool=500), "empty@acme.test", PASSWORD)
    login(client, "empty@acme.test")
    page = text(client.get("/credits"))
    # Nothing used in the last 7 complete days: a rate of 0, the whole pool unused.
    assert "0.00 credits per day" in page
    assert "about 500 credits will go unused on 1 Dec 2025" in page
    assert "No credits used in these days." in page
    assert "No organization has used 80 % or more" in page
    assert figures(page) == {}


def test_credits_page_shows_a_run_out_before_the_reset(signed_in, client):
    signed_in["partner"].credit_pool_total = 45
    db.session.commit()
    page = text(client.get("/credits"))
    # Through today 29 + 5 = 34 of 45; 11 more at 13/7 a day take 11 x 7 / 13 = 5.9 -> 6
    # days: Nov 26 (34 + 6 x 13/7 = 45.1 >= 45; Nov 25 has 43.3).
    assert "Projected to run out on 26 Nov 2025" in page
    assert "before the pool resets on 1 Dec 2025" in page
    assert "will go unused" not in page


def test_credits_page_for_a_used_up_pool(signed_in, client):
    signed_in["partner"].credit_pool_total = 30
    db.session.commit()
    page = text(client.get("/credits"))
    assert "The pool is used up" in page and "(4 over)" in page  # 34 used of 30
    assert "run out on" not in page and "will go unused" not in page


def test_credits_and_billing_on_the_period_s_first_day(signed_in, client, freeze):
    freeze(datetime(2025, 11, 1, 12))
    page = text(client.get("/credits"))
    first_day = "the billing period began today, so it has no complete day to average"
    assert first_day in page
    assert "Not projected yet: the billing period began today" in page
    assert "No complete day in this billing period yet" in page
    assert "Projected (" not in page  # no projection line on the chart
    page = text(client.get("/billing"))
    assert first_day in page
    assert "projectedIdentifications" not in kpis(page)
    assert cells(page, "projectedAmount") == ["—", "—", "—"]


def test_billing_page_names_the_period_average(signed_in, client, freeze):
    freeze(datetime(2025, 11, 4, 12))
    page = text(client.get("/billing"))
    # Complete days Nov 1..3 used f1's 9: 3 a day; today and the 26 days after count 3
    # each: 9 + 27 x 3 = 90 identifications, 9.00 USD.
    assert kpis(page)["projectedIdentifications"] == 90
    assert cells(page, "projectedAmount") == ["9.00 USD", "0.00 USD", "0.00 USD"]
    assert (
        "Projected from the average of this billing period's 3 complete days (1 Nov – 3 Nov 2025)"
        in page
    )


def test_billing_page(signed_in, client):
    page = text(client.get("/billing"))
    # Nov 1..30, day 20 of 30: 34 identifications at Starter's 0.10 = 3.40 USD;
    # projected as on Credits: 29 + 5 + 10 x 13/7 = 52.57 -> 53 identifications = 5.30 USD.
    assert kpis(page)["identifications"] == 34
    assert kpis(page)["projectedIdentifications"] == 53
    assert "3.40 USD" in page and "5.30 USD" in page
    assert cells(page, "amount") == ["3.40 USD", "0.00 USD", "0.00 USD"]
    assert cells(page, "projectedAmount") == ["5.30 USD", "0.00 USD", "0.00 USD"]
    assert "Projected from the average of the last 7 complete days (13 Nov – 19 Nov 2025)." in page
    # Periods since the partner was created (Sep 1), newest first.
    assert re.findall(r'<tr data-period-start="([^"]+)">', page) == [
        "2025-11-01",
        "2025-10-01",
        "2025-09-01",
    ]
    assert cells(page, "estimatedCost") == ["3.40 USD", "0.00 USD", "0.00 USD"]
    assert set(figures(page)) == {"tiers", "periods"}
    # The default tiers' bands (0-10000, 10000-100000, 100000 up; the upper bound exclusive)
    # by the units each holds.
    assert cells(page, "band") == ["0–9,999", "10,000–99,999", "100,000+"]
    # The cost-by-tier chart names each tier with the same band: name, then band below it.
    tiers_axis = figures(page)["tiers"]["layout"]["xaxis"]
    assert tiers_axis["ticktext"] == [
        "Starter<br>0–9,999",
        "Growth<br>10,000–99,999",
        "Scale<br>100,000+",
    ]
    assert [t["x"] for t in figures(page)["tiers"]["data"]] == [
        ["Starter (0–9,999)", "Growth (10,000–99,999)", "Scale (100,000+)"]
    ] * 2


def test_billing_csv(signed_in, client):
    response = client.get("/billing.csv")
    rows = list(csv.reader(io.StringIO(text(response))))
    assert rows[0] == [
        "billingPeriodStart",
        "billingPeriodEnd",
        "isCurrent",
        "identifications",
        "creditsUsed",
        "totalQuantity",
        "totalEvents",
        "estimatedCost",
        "currency",
    ]
    # November: 34 identifications, quantity 34 + 30 + 2 = 66, seven events.
    assert rows[1] == ["2025-11-01", "2025-11-30", "true", "34", "34", "66", "7", "3.4", "USD"]
    assert rows[2][:4] == ["2025-10-01", "2025-10-31", "false", "0"]
    assert len(rows) == 4
    # Named by the partner and the days it covers: Sep 1 (the partner's start) .. Nov 30.
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="acme-billing-2025-09-01_2025-11-30.csv"'
    )


def test_billing_page_for_a_partner_without_events(freeze, make_partner, make_user, client):
    freeze(NOW)
    make_user(make_partner("empty", pool=500), "empty@acme.test", PASSWORD)
    login(client, "empty@acme.test")
    page = text(client.get("/billing"))
    assert "No usage received yet" in page and figures(page) == {}


def test_pages_without_a_form_keep_the_period_in_links(signed_in, client):
    page = text(client.get("/credits?preset=last_90_days"))
    assert 'href="/?preset=last_90_days"' in page
    assert 'href="/billing?preset=last_90_days"' in page


@pytest.mark.parametrize("path", ["/", "/organizations", "/credits", "/billing"])
def test_every_page_shows_freshness_and_a_json_link(signed_in, client, path):
    page = text(client.get(path))
    assert "Data as of the newest event received" in page
    assert re.search(r'<a href="/api/v1/partner/[^"]*" data-json-link', page)


def test_error_page_links_back(signed_in, client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert 'href="/"' in text(response) and "404" in text(response)


# --- formatting helpers -------------------------------------------------------------------


def test_formatting_helpers():
    from datetime import date

    from app.periods import Period
    from app.views.filters import fmt_change, fmt_price, fmt_span

    assert fmt_change(None) == "n/a"
    assert fmt_change(1.5714) == "+157.1 %"
    assert fmt_change(-0.0183) == "−1.8 %"
    assert fmt_change(0.0) == "±0 %"
    assert fmt_span(Period(date(2025, 11, 7), date(2025, 11, 13))) == "7 Nov – 13 Nov 2025"
    assert fmt_span(Period(date(2024, 12, 30), date(2025, 1, 5))) == "30 Dec 2024 – 5 Jan 2025"
    assert fmt_span("2025-11-01", "2025-11-30") == "1 Nov – 30 Nov 2025"
    assert fmt_span(Period(date(2025, 1, 2), date(2025, 1, 2))) == "2 Jan 2025"
    assert (fmt_price(0.1), fmt_price(0.0125), fmt_price(2)) == ("0.10", "0.0125", "2.00")


def test_allocation_form_refuses_non_ascii_digits(signed_in, client):
    # "٣٠٠" is 300 in Arabic-Indic digits; the API takes ASCII digits only, so must the form.
    org = signed_in["bluebird"]
    response = allocate(client, org, "٣٠٠", "", "")
    assert response.status_code == 400
    assert NOT_A_NUMBER in html.unescape(text(response))


@pytest.mark.parametrize(
    ("written", "value"),
    [
        ("1000", 1000),
        ("1,000", 1000),
        ("1 000", 1000),
        ("1\u00a0000", 1000),  # no-break space
        ("1\u202f000", 1000),  # narrow no-break space
        ("12,345,678", 12_345_678),
        (" 2,500 ", 2500),
        ("1,00", None),
        ("1.000", None),
        ("1,000 000", None),  # two kinds of separator
        ("1,0000", None),
        (",000", None),
        ("1,", None),
        ("", None),
    ],
)
def test_whole_numbers_are_read_as_the_pages_write_them(written, value):
    assert forms.grouped_whole_number(written) == value
