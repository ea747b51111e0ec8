"""One comparison rule everywhere: the overview, the organization page, the reports, and the
API answer the same change, against the same comparable period, for every preset and for
custom ranges, on "today"s that stress the rule (a 1st, mid-January, February of a leap
year, the last day of a month and of a year).

The comparable periods themselves are pinned by hand in test_periods.py; here each one
that a page states is checked against the dates written out below.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

import pytest
from views_support import PASSWORD, kpi_changes, login

from app.periods import PRESETS

TZ = "America/New_York"
FIRST = date(2025, 1, 1)

# today -> {query: (the comparable period's first day, its last day)}, written by hand
# from the rule of spec §4 ("compare=previous").
CASES: dict[date, dict[str, tuple[str, str]]] = {
    date(2026, 12, 1): {
        "preset=last_7_days": ("2026-11-18", "2026-11-24"),  # 25 Nov-1 Dec: 7 days before
        "preset=last_30_days": ("2026-10-03", "2026-11-01"),
        "preset=last_90_days": ("2026-06-05", "2026-09-02"),  # 3 Sep-1 Dec, 90 days
        "preset=month_to_date": ("2026-11-01", "2026-11-01"),  # 1 Dec -> 1 Nov
        "preset=last_month": ("2026-10-01", "2026-10-31"),  # November -> October
        "preset=quarter_to_date": ("2026-07-01", "2026-09-01"),  # 1 Oct-1 Dec: Q4 to date
        "preset=year_to_date": ("2025-01-01", "2025-12-01"),
        "preset=last_12_months": ("2024-12-02", "2025-12-01"),  # 2 Dec 2025-1 Dec 2026
        "startDate=2026-11-15&endDate=2026-11-30": ("2026-10-30", "2026-11-14"),
        "startDate=2026-09-01&endDate=2026-11-30": ("2026-06-01", "2026-08-31"),  # 3 months
        "startDate=2026-12-01&endDate=2026-12-31": ("2026-11-01", "2026-11-01"),  # to today
    },
    date(2027, 1, 15): {
        "preset=month_to_date": ("2026-12-01", "2026-12-15"),
        "preset=last_month": ("2026-11-01", "2026-11-30"),
        "preset=quarter_to_date": ("2026-12-01", "2026-12-15"),  # 1-15 Jan: a month to date
        "preset=year_to_date": ("2026-12-01", "2026-12-15"),  # ends in January: case 3
        "preset=last_30_days": ("2026-11-17", "2026-12-16"),
        "startDate=2026-01-01&endDate=2026-12-31": ("2025-01-01", "2025-12-31"),  # a year
        "startDate=2026-10-01&endDate=2026-12-31": ("2026-07-01", "2026-09-30"),  # Q4 -> Q3
    },
    date(2027, 2, 10): {
        "preset=month_to_date": ("2027-01-01", "2027-01-10"),
        "preset=year_to_date": ("2026-01-01", "2026-02-10"),
        "preset=quarter_to_date": ("2026-01-01", "2026-02-10"),  # 1 Jan-10 Feb: year first
        "preset=last_month": ("2026-12-01", "2026-12-31"),
        "startDate=2027-01-01&endDate=2027-01-31": ("2026-12-01", "2026-12-31"),
        "startDate=2026-12-20&endDate=2027-01-19": ("2026-11-19", "2026-12-19"),  # 31 days
    },
    date(2028, 2, 29): {
        "preset=month_to_date": ("2028-01-01", "2028-01-31"),  # ends on its month's last day
        "preset=last_month": ("2027-12-01", "2027-12-31"),
        "preset=year_to_date": ("2027-01-01", "2027-02-28"),
        "preset=quarter_to_date": ("2027-01-01", "2027-02-28"),  # as year to date
        "preset=last_7_days": ("2028-02-16", "2028-02-22"),
        "startDate=2028-02-01&endDate=2028-02-15": ("2028-01-01", "2028-01-15"),
        "startDate=2027-02-01&endDate=2027-03-15": ("2026-12-20", "2027-01-31"),  # 43 days
    },
    date(2026, 11, 30): {
        "preset=month_to_date": ("2026-10-01", "2026-10-31"),  # 1-30 Nov -> all of October
        "preset=last_month": ("2026-09-01", "2026-09-30"),
        "preset=quarter_to_date": ("2026-07-01", "2026-08-31"),  # 1 Oct-30 Nov: 2 months
        "preset=year_to_date": ("2025-01-01", "2025-11-30"),
        "preset=last_90_days": ("2026-06-04", "2026-09-01"),  # 2 Sep-30 Nov, 90 days
        "startDate=2026-11-01&endDate=2026-11-29": ("2026-10-01", "2026-10-29"),
    },
    date(2026, 12, 31): {
        "preset=month_to_date": ("2026-11-01", "2026-11-30"),
        "preset=year_to_date": ("2025-01-01", "2025-12-31"),
        "preset=quarter_to_date": ("2026-07-01", "2026-09-30"),
        "preset=last_12_months": ("2025-01-01", "2025-12-31"),  # 1 Jan-31 Dec: a year to date
        "preset=last_month": ("2026-10-01", "2026-10-31"),
        "startDate=2026-03-01&endDate=2026-03-31": ("2026-02-01", "2026-02-28"),
    },
}
# Every preset is checked on every today; the ones without a hand-written row above are
# still checked for agreement between the pages and the API.
ANALYTICS_FIELDS = (
    "totalOrganizations",
    "activeOrganizations",
    "totalIdentifications",
    "creditsUsed",
    "creditsRemaining",
    "organizationsWithActivity",
)


def _events(alpha_id: str, bravo_id: str, last: date) -> list[dict[str, object]]:
    """Every day from FIRST to last: Alpha 1-7 identifications; Bravo page views every
    second day and 2-5 identifications every fifth, all at 11:00 in New York."""
    out: list[dict[str, object]] = []
    day, n = FIRST, 0
    while day <= last:
        noon = f"{day.isoformat()}T16:00:00Z"
        out.append(_event(f"a{n}", alpha_id, "identification", n % 7 + 1, noon))
        if n % 2 == 0:
            out.append(_event(f"p{n}", bravo_id, "page_view", 3, noon))
        if n % 5 == 0:
            out.append(_event(f"b{n}", bravo_id, "identification", n % 4 + 2, noon))
        day, n = day + timedelta(days=1), n + 1
    return out


def _event(event_id: str, org_id: str, kind: str, quantity: int, at: str) -> dict[str, object]:
    return {
        "eventId": event_id,
        "organizationId": org_id,
        "type": kind,
        "quantity": quantity,
        "occurredAt": at,
    }


@pytest.fixture
def years(request, freeze, make_partner, make_org, add_events, make_user, api_key, client):
    """Events from FIRST through today (the test's parameter), today at noon in New York."""
    today = request.node.callspec.params["today"]
    freeze(datetime.combine(today, datetime.min.time()) + timedelta(hours=17))
    partner = make_partner("years", pool=50_000, tz=TZ, created_at=datetime(2024, 12, 1))
    alpha = make_org(
        partner, "Alpha", initial_credits=20_000, tier="paid", created_at=datetime(2024, 12, 1)
    )
    bravo = make_org(
        partner, "Bravo", initial_credits=20_000, tier="paid", created_at=datetime(2024, 12, 1)
    )
    assert add_events(partner, _events(alpha.id, bravo.id, today)).rejected == []
    make_user(partner, "ops@years.test", PASSWORD)
    key = api_key(partner, ["read"])
    assert login(client, "ops@years.test").status_code == 302
    return {"partner": partner, "alpha": alpha, "key": key, "client": client}


def _api(years, path: str) -> dict:
    response = years["client"].get(path, headers={"X-Partner-API-Key": years["key"]})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def _page(years, path: str) -> str:
    response = years["client"].get(path)
    assert response.status_code == 200, path
    return response.get_data(as_text=True)


def _stated(page: str) -> tuple[str, str]:
    found = re.search(r'data-previous-start="([\d-]+)" data-previous-end="([\d-]+)"', page)
    assert found, "the page states the period it compares with"
    return found.group(1), found.group(2)


def _month_of(query: str, today: date) -> str | None:
    """Return YYYY-MM when the query names a whole month or a month to date, else None."""
    if query == "preset=month_to_date":
        return today.strftime("%Y-%m")
    if query == "preset=last_month":
        return (today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    found = re.fullmatch(r"startDate=(\d{4}-\d{2})-01&endDate=(\d{4}-\d{2}-\d{2})", query)
    if not found or not found.group(2).startswith(found.group(1)):
        return None
    end = date.fromisoformat(found.group(2))
    if end >= today or (end + timedelta(days=1)).day == 1:  # to date, or the whole month
        return found.group(1)
    return None


@pytest.mark.parametrize("today", list(CASES), ids=str)
def test_every_page_and_the_api_compare_alike(years, today):
    written = CASES[today]
    queries = list(written) + [f"preset={p}" for p in PRESETS if f"preset={p}" not in written]
    alpha = years["alpha"].id
    reports_list = {
        m["month"]: m for m in _api(years, "/api/v1/partner/reports?pageSize=100")["months"]
    }
    for query in queries:
        overview = _page(years, f"/?{query}")
        # The API names a period by its dates: those of the overview's own JSON link.
        link = re.search(
            r'href="[^"]*analytics\?[^"]*?(startDate=[\d-]+)&amp;(endDate=[\d-]+)', overview
        )
        assert link, query
        dates = f"{link.group(1)}&{link.group(2)}"
        answer = _api(years, f"/api/v1/partner/analytics?{dates}&compare=previous")
        previous = (answer["previous"]["startDate"], answer["previous"]["endDate"])
        if query in written:
            assert previous == written[query], query
        assert answer["change"]["totalIdentifications"] is not None, query  # not vacuous

        assert _stated(overview) == previous, query
        shown = kpi_changes(overview)
        for field in ANALYTICS_FIELDS:
            assert shown[field] == answer["change"][field], (query, field)
        usage = _api(years, f"/api/v1/partner/usage?{dates}&compare=previous")
        assert (usage["previous"]["startDate"], usage["previous"]["endDate"]) == previous
        assert usage["change"]["totalQuantity"] == shown["totalQuantity"], query
        series = _api(years, f"/api/v1/partner/analytics/timeseries?{dates}&compare=previous")
        assert (series["previous"]["startDate"], series["previous"]["endDate"]) == previous
        assert series["change"]["identifications"] == shown["totalIdentifications"], query
        breakdown = _api(years, f"/api/v1/partner/analytics/organizations?{dates}&compare=previous")
        assert (breakdown["previousStartDate"], breakdown["previousEndDate"]) == previous

        org_page = _page(years, f"/organizations/{alpha}?{query}")
        org_answer = _api(
            years, f"/api/v1/partner/organizations/{alpha}/analytics?{dates}&compare=previous"
        )
        assert (
            _stated(org_page)
            == previous
            == (
                org_answer["previous"]["startDate"],
                org_answer["previous"]["endDate"],
            )
        ), query
        org_shown = kpi_changes(org_page)
        assert org_shown["totalIdentifications"] == org_answer["change"]["totalIdentifications"]
        assert org_shown["totalEvents"] == org_answer["change"]["totalEvents"], query

        month = _month_of(query, today)
        if month is None:
            continue
        report = _api(years, f"/api/v1/partner/reports/{month}")
        assert (report["previousStartDate"], report["previousEndDate"]) == previous, query
        for field in ANALYTICS_FIELDS:
            assert report["change"][field] == answer["change"][field], (query, field)
        report_page = _page(years, f"/reports/{month}")
        assert _stated(report_page) == previous, query
        assert kpi_changes(report_page)["totalIdentifications"] == shown["totalIdentifications"]
        listed = reports_list[month]
        assert (listed["previousStartDate"], listed["previousEndDate"]) == previous, query
        assert listed["change"]["totalIdentifications"] == shown["totalIdentifications"], query
