"""Report pages, downloads and the API route; parity of page, CSV, JSON, API and CLI.

The data set is test_reports.build_october (New York partner, "today" 2025-11-05 12:00 UTC);
the expected numbers are worked out by hand in test_reports.py and repeated here.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re

import pytest
from test_reports import NY, build_october
from views_support import PASSWORD, cells, kpi_changes, kpis, login, number

MONTH = "2025-10"


@pytest.fixture
def october(make_partner, make_org, add_events, freeze, make_user):
    partner = build_october(make_partner, make_org, add_events, freeze)
    make_user(partner, "ops@acme.test", PASSWORD)
    return partner


@pytest.fixture
def signed_in(october, client):
    assert login(client).status_code == 302
    return october


def text(response) -> str:
    return response.get_data(as_text=True)


@pytest.mark.parametrize(
    "path", ["/reports", f"/reports/{MONTH}", f"/reports/{MONTH}.csv", f"/reports/{MONTH}.json"]
)
def test_report_pages_require_login(october, client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_month_list(signed_in, client):
    page = text(client.get("/reports"))
    assert re.findall(r'<tr data-month="([\d-]+)">', page) == ["2025-11", "2025-10", "2025-09"]
    # November to date 100, October 26, September 15 (see test_reports)
    assert [number(c) for c in cells(page, "totalIdentifications")] == [100, 26, 15]
    assert [number(c) for c in cells(page, "totalEvents")] == [1, 9, 2]
    # Active at each month's end: Alpha, Charlie, Delta, Foxtrot in Oct and Nov; at the end
    # of September Alpha, Bravo, Foxtrot (Delta suspended, Echo canceled, Charlie not yet).
    assert [number(c) for c in cells(page, "activeOrganizations")] == [4, 4, 3]
    # November so far (1-5 Nov) against 1-5 Oct: (100 - 7) / 7 = +1,328.6 %; October
    # against September: (26 - 15) / 15 = +73.3 %; September: August had none.
    assert "▲ +1,328.6 %" in page and "▲ +73.3 %" in page and ">n/a<" in page
    assert "<span data-open-comparison>1 Nov – 5 Nov 2025 against 1 Oct – 5 Oct 2025</span>" in page
    assert f'href="/reports/{MONTH}.csv"' in page


def test_month_page_figures(signed_in, client):
    response = client.get(f"/reports/{MONTH}")
    assert response.status_code == 200
    page = text(response)
    assert "Month-end report: October 2025" in page
    assert 'data-field="partnerName">Acme Agency<' in page
    assert f'data-field="timezone">{NY}<' in page
    assert '<time datetime="2025-11-05T12:00:00Z">' in page
    assert kpis(page) == {
        "totalIdentifications": 26,
        "creditsUsed": 26,
        "creditsRemaining": 985,
        "totalEvents": 9,
        "totalQuantity": 39,
        "organizationsWithActivity": 4,
        "totalOrganizations": 6,
        "activeOrganizations": 4,
    }
    assert kpi_changes(page)["totalIdentifications"] == 0.7333  # (26 - 15) / 15
    # Organization rows, then the totals row.
    assert [number(c) for c in cells(page, "identifications")] == [12, 10, 4, 0, 0, 26]
    assert [number(c) for c in cells(page, "quantity")] == [22, 10, 4, 3, 0, 39]
    assert cells(page, "sharePercent") == ["46.15 %", "38.46 %", "15.38 %", "0.00 %", "0.00 %"]
    assert [number(c) for c in cells(page, "creditsAllocated")] == [300, 100, 0, 0, 50, 450]
    assert "1 new · 1 churned · 1 reactivated" in page
    # The late-data notice: 3 events, +6 identifications and credits, 20 at the close.
    assert 'data-late="3"' in page
    assert 'data-field="identificationsAdded">6<' in page
    assert 'data-field="creditsAdded">6<' in page
    assert "at the close the month had 20; now 26, +30.0 %" in html.unescape(page)
    # Billing day 15: two billing periods, 11 and 15 credits.
    assert "this month touches 2 of them" in page
    billing = re.search(r'<table class="report-billing">(.*?)</table>', page, re.S).group(1)
    assert [number(c) for c in cells(billing, "creditsUsed")] == [11, 15]
    idle = re.search(r'data-section="idle">(.*?)</section>', page, re.S).group(1)
    assert re.findall(r"<li[^>]*>([^<]+?)\s*<", idle) == ["Delta", "Foxtrot"]
    assert 'data-download="csv"' in page and f'href="/reports/{MONTH}.json"' in page
    assert 'class="js-figure" data-target="chart-daily"' in page
    assert "css/print.css" in page


def test_open_month_says_so(signed_in, client):
    page = text(client.get("/reports/2025-11"))
    assert 'data-late="open"' in page
    # November 2025 closes at 00:00 EST on Dec 1 (05:00 UTC), written in words in the
    # partner's timezone; the exact moment stays in the <time> element.
    assert "1 Dec 2025 at 00:00 EST (America/New_York)" in page
    assert '<time datetime="2025-12-01T05:00:00Z">' in page
    assert not re.search(r">[^<]*2025-12-01T05:00", page)  # never as text


@pytest.mark.parametrize(
    "month, reason, api_reason",
    [
        ("2025-13", "2025-13 is not a calendar month", None),
        ("abc", "a report month is written YYYY-MM, for example 2025-10", None),
        # The page writes dates as pages do; the JSON keeps the API's message, ISO dates.
        (
            "2025-12",
            "December 2025 has not started yet (today is 5 Nov 2025 in America/New_York)",
            "December 2025 has not started yet (today is 2025-11-05 in America/New_York)",
        ),
        (
            "2024-01",
            "there is no data for January 2024: the first month with data is September 2025",
            "there is no data for January 2024: the first month with data is 2025-09",
        ),
    ],
)
def test_invalid_month_pages_are_404_with_a_way_back(
    signed_in, client, api_key, month, reason, api_reason
):
    for path in (f"/reports/{month}", f"/reports/{month}.csv"):
        response = client.get(path)
        assert response.status_code == 404, path
        page = html.unescape(text(response))
        assert f"{reason[0].upper()}{reason[1:]}." in page  # the reason, as a sentence
        assert not re.search(r"\d{4}-\d\d-\d\d", page.split("<main", 1)[1]), path
        assert 'href="/reports"' in page
    expected = {
        "code": "NotFound",
        "message": api_reason or reason,
        "details": {"field": "month", "value": month},
    }
    response = client.get(f"/reports/{month}.json")
    assert response.status_code == 404
    assert response.get_json() == expected
    # The API answers the very same.
    headers = {"X-Partner-API-Key": api_key(signed_in)}
    response = client.get(f"/api/v1/partner/reports/{month}", headers=headers)
    assert response.status_code == 404
    assert response.get_json() == expected


def test_csv_download(signed_in, client):
    response = client.get(f"/reports/{MONTH}.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert (
        response.headers["Content-Disposition"] == 'attachment; filename="acme-report-2025-10.csv"'
    )
    rows = list(csv.reader(io.StringIO(text(response))))
    assert rows[0] == ["Partner", "Acme Agency"]
    assert rows[-1][:7] == ["Total", "", "", "26", "26", "9", "39"]


def test_api_report_needs_a_key_and_sees_its_own_partner(october, client, api_key, make_partner):
    assert client.get(f"/api/v1/partner/reports/{MONTH}").status_code == 401
    other = make_partner("other")
    key = api_key(other, ["read"])
    response = client.get(f"/api/v1/partner/reports/{MONTH}", headers={"X-Partner-API-Key": key})
    # The other partner has no data: its October has no report.
    assert response.status_code == 404
    assert response.get_json()["details"] == {"field": "month", "value": MONTH}
    listing = client.get("/api/v1/partner/reports", headers={"X-Partner-API-Key": key})
    assert listing.get_json() == {
        "partnerId": other.id,
        "timezone": "UTC",
        "months": [],
        "total": 0,
        "page": 1,
        "pageSize": 20,
    }


@pytest.mark.parametrize("month", ["2025-13", "abc", "2025-12", "0000-01"])
def test_api_invalid_month_is_json_404(october, client, api_key, month):
    response = client.get(
        f"/api/v1/partner/reports/{month}",
        headers={"X-Partner-API-Key": api_key(october, ["read"])},
    )
    assert response.status_code == 404
    body = response.get_json()
    assert body["code"] == "NotFound"
    assert body["details"]["field"] == "month"


def test_api_month_list(october, client, api_key):
    body = client.get(
        "/api/v1/partner/reports", headers={"X-Partner-API-Key": api_key(october, ["read"])}
    ).get_json()
    assert [(m["month"], m["totalIdentifications"], m["complete"]) for m in body["months"]] == [
        ("2025-11", 100, False),
        ("2025-10", 26, True),
        ("2025-09", 15, True),
    ]
    assert (body["total"], body["page"], body["pageSize"]) == (3, 1, 20)
    # Page 2 of size 2 holds only the third-newest month.
    second = client.get(
        "/api/v1/partner/reports?page=2&pageSize=2",
        headers={"X-Partner-API-Key": api_key(october, ["read"])},
    ).get_json()
    assert [m["month"] for m in second["months"]] == ["2025-09"]
    assert (second["total"], second["page"], second["pageSize"]) == (3, 2, 2)


# --- parity ------------------------------------------------------------------------------


def _page_numbers(page: str) -> dict[str, int]:
    figures = kpis(page)
    names = re.findall(r'<tr data-org-id="([^"]+)">', page)
    org_idents = [number(c) for c in cells(page, "identifications")]
    return {
        "totalIdentifications": figures["totalIdentifications"],
        "creditsUsed": figures["creditsUsed"],
        "totalEvents": figures["totalEvents"],
        "totalQuantity": figures["totalQuantity"],
        "activeOrganizations": figures["activeOrganizations"],
        "tableIdentifications": org_idents[-1],
        "tableEvents": [number(c) for c in cells(page, "events")][-1],
        "tableQuantity": [number(c) for c in cells(page, "quantity")][-1],
        "rows": len(names),
        "late": int(re.search(r'data-late="(\d+)"', page).group(1)),
    }


def _json_numbers(data: dict) -> dict[str, int]:
    return {
        "totalIdentifications": data["summary"]["totalIdentifications"],
        "creditsUsed": data["summary"]["creditsUsed"],
        "totalEvents": data["summary"]["totalEvents"],
        "totalQuantity": data["summary"]["totalQuantity"],
        "activeOrganizations": data["summary"]["activeOrganizations"],
        "tableIdentifications": data["totals"]["identifications"],
        "tableEvents": data["totals"]["events"],
        "tableQuantity": data["totals"]["quantity"],
        "rows": len(data["organizations"]),
        "late": data["lateData"]["lateEvents"],
    }


def _csv_numbers(body: str) -> dict[str, int]:
    rows = list(csv.reader(io.StringIO(body)))
    block = {r[0]: r[1] for r in rows[:12]}
    header = rows[13]
    total = dict(zip(header, rows[-1], strict=True))
    return {
        "totalIdentifications": int(total["Identifications"]),
        "creditsUsed": int(total["Credits used"]),
        "totalEvents": int(total["Events"]),
        "totalQuantity": int(total["Quantity"]),
        "activeOrganizations": int(block["Active organizations at month end"]),
        "tableIdentifications": int(total["Identifications"]),
        "tableEvents": int(total["Events"]),
        "tableQuantity": int(total["Quantity"]),
        "rows": len(rows) - 15,
        "late": int(block["Late events (received after the month closed)"]),
    }


def test_page_csv_json_api_and_cli_agree(signed_in, client, api_key, runner):
    expected = {
        "totalIdentifications": 26,
        "creditsUsed": 26,
        "totalEvents": 9,
        "totalQuantity": 39,
        "activeOrganizations": 4,
        "tableIdentifications": 26,
        "tableEvents": 9,
        "tableQuantity": 39,
        "rows": 5,
        "late": 3,
    }
    page = _page_numbers(text(client.get(f"/reports/{MONTH}")))
    csv_download = _csv_numbers(text(client.get(f"/reports/{MONTH}.csv")))
    dashboard_json = client.get(f"/reports/{MONTH}.json").get_json()
    api_json = client.get(
        f"/api/v1/partner/reports/{MONTH}",
        headers={"X-Partner-API-Key": api_key(signed_in, ["read"])},
    ).get_json()
    cli_json = json.loads(
        runner.invoke(
            args=["report", "--partner", "acme", "--month", MONTH, "--format", "json"]
        ).stdout
    )
    cli_csv = _csv_numbers(
        runner.invoke(
            args=["report", "--partner", "acme", "--month", MONTH, "--format", "csv"]
        ).stdout
    )
    assert page == expected
    assert csv_download == expected
    assert cli_csv == expected
    for data in (dashboard_json, api_json, cli_json):
        assert _json_numbers(data) == expected
    # Beyond the headline: the three JSON answers are the same report, row for row.
    assert dashboard_json["organizations"] == api_json["organizations"] == cli_json["organizations"]
    assert dashboard_json["lateData"] == api_json["lateData"] == cli_json["lateData"]
    assert dashboard_json["daily"] == api_json["daily"] == cli_json["daily"]


def test_an_organization_opens_for_the_reports_month(signed_in, client):
    """A drill-down keeps the period: Alpha from the October report opens on 1-31 Oct."""
    page = text(client.get(f"/reports/{MONTH}"))
    link = re.search(r'<a href="([^"]+)" data-org-link>Alpha</a>', page)
    assert link, "Alpha links to its page"
    href = html.unescape(link.group(1))
    assert href.endswith("?startDate=2025-10-01&endDate=2025-10-31")
    org_page = text(client.get(href))
    # Alpha's October identifications: e2 7 + e3 3 + late1 2 (e4 is a page view).
    assert kpis(org_page)["totalIdentifications"] == 12
    assert 'class="pill is-active"' not in org_page  # a custom period: no preset is lit
