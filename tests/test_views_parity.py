"""Parity: page numbers equal metrics/billing and the JSON API's, for one partner and period.

Two data sets: the hand-worked "acme" (UTC), and a generated partner in Asia/Kathmandu
(+05:45), whose day boundaries differ from UTC's, with events around local midnights.
"""

from __future__ import annotations

import random
import re
from dataclasses import asdict
from datetime import date, datetime, timedelta

import pytest
from pydantic.alias_generators import to_camel, to_snake
from views_support import (
    NOW,
    PASSWORD,
    build_acme,
    cells,
    kpi_changes,
    kpis,
    login,
    number,
)

from app import billing, metrics
from app.periods import Period, local_today, preset_period

QUERIES = [
    "",
    "preset=last_7_days",
    "preset=month_to_date",
    "preset=last_90_days",
    "startDate=2025-11-01&endDate=2025-11-15",
]


@pytest.fixture(params=["acme", "kathmandu"])
def dataset(request, freeze, make_partner, make_org, add_events, make_user, api_key):
    if request.param == "acme":
        data = build_acme(freeze, make_partner, make_org, add_events, make_user)
        partner, orgs = data["partner"], [data["bluebird"], data["cobalt"], data["formula"]]
        email = "ops@acme.test"
    else:
        freeze(NOW)
        partner = make_partner(
            "ktm", pool=5000, tz="Asia/Kathmandu", billing_day=15, created_at=datetime(2025, 6, 1)
        )
        rng = random.Random(7)
        orgs = [
            make_org(
                partner,
                f"Org {i}",
                initial_credits=200,
                tier="paid",
                created_at=datetime(2025, 6, 1) + timedelta(days=20 * i),
            )
            for i in range(5)
        ]
        events = []
        for n in range(400):
            org = rng.choice(orgs)
            # Minutes around 18:15 UTC, which is local midnight at +05:45.
            moment = datetime(2025, 8, 1) + timedelta(
                days=rng.randrange(111), minutes=18 * 60 + rng.randrange(-20, 20)
            )
            if moment < org.created_at:
                continue
            events.append(
                {
                    "eventId": f"k{n}",
                    "organizationId": org.id,
                    "type": rng.choice(
                        ["identification", "identification", "page_view", "session"]
                    ),
                    "quantity": rng.randrange(0, 9),
                    "occurredAt": moment.isoformat() + "Z",
                }
            )
        assert add_events(partner, events).rejected == []
        email = "ops@ktm.test"
        make_user(partner, email, PASSWORD)
    return {"partner": partner, "orgs": orgs, "email": email, "key": api_key(partner, ["read"])}


@pytest.fixture
def browser(dataset, client):
    assert login(client, dataset["email"]).status_code == 302
    return client


def api(client, key, path):
    response = client.get(path, headers={"X-Partner-API-Key": key})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def json_link(page, name):
    found = re.search(rf'<a href="([^"]+)" data-json-link[^>]*>{re.escape(name)}</a>', page)
    assert found, name
    return found.group(1).replace("&amp;", "&")


def period_of(partner, query):
    """Return the period a query names, worked out independently of the views."""
    today = local_today(partner.timezone)  # Nov 20 in UTC and in Kathmandu (17:45)
    if query.startswith("preset="):
        return preset_period(query.split("=")[1], today)
    if query.startswith("startDate"):
        return Period(date(2025, 11, 1), date(2025, 11, 15))
    return preset_period("last_30_days", today)  # a page without a period: the landing preset


@pytest.mark.parametrize("query", QUERIES)
def test_overview_equals_metrics_and_api(dataset, browser, query):
    partner, key = dataset["partner"], dataset["key"]
    page = browser.get("/?" + query).get_data(as_text=True)
    shown = kpis(page)
    assert shown["totalEvents"] > 0  # every query covers some of the data: nothing vacuous
    expected = metrics.summary_with_comparison(partner, period_of(partner, query))
    assert shown == {to_camel(k): v for k, v in asdict(expected.current).items()}
    assert kpi_changes(page) == {to_camel(k): v for k, v in expected.change.items()}
    # The page's own JSON link answers the same numbers.
    answer = api(browser, key, json_link(page, "analytics"))
    for field in (
        "totalOrganizations",
        "activeOrganizations",
        "totalIdentifications",
        "creditsUsed",
        "creditsRemaining",
        "organizationsWithActivity",
    ):
        assert answer[field] == shown[field], field
        assert answer["change"][field] == kpi_changes(page)[field], field
    usage = api(browser, key, json_link(page, "usage"))
    assert (usage["totalQuantity"], usage["totalEvents"]) == (
        shown["totalQuantity"],
        shown["totalEvents"],
    )
    series = api(browser, key, json_link(page, "timeseries"))
    assert sum(p["identifications"] for p in series["points"]) == shown["totalIdentifications"]


@pytest.mark.parametrize("query", QUERIES)
def test_organization_pages_equal_metrics_and_api(dataset, browser, query):
    partner, key = dataset["partner"], dataset["key"]
    period = period_of(partner, query)
    for org in dataset["orgs"]:
        page = browser.get(f"/organizations/{org.id}?{query}").get_data(as_text=True)
        expected = metrics.organization_summary(partner, org, period)
        answer = api(browser, key, json_link(page, "analytics"))
        for field, value in kpis(page).items():
            assert value == getattr(expected, to_snake(field)) == answer[field], (org.name, field)
        assert kpi_changes(page) == {f: answer["change"][f] for f in kpi_changes(page)}
        assert (
            number(cells(page, "creditsAvailable")[0])
            == expected.credits_available
            == answer["creditsAvailable"]
        )


@pytest.mark.parametrize("query", QUERIES[:3])
def test_organization_table_equals_api(dataset, browser, query):
    partner, key = dataset["partner"], dataset["key"]
    page = browser.get("/organizations?" + query).get_data(as_text=True)
    answer = api(browser, key, json_link(page, "analytics/organizations"))
    items, total = metrics.organization_breakdown(partner, period_of(partner, query))
    assert answer["total"] == total == int(re.search(r'data-total="(\d+)"', page).group(1))
    for field in (
        "identifications",
        "creditsUsed",
        "events",
        "quantity",
        "creditsAllocated",
        "creditsAvailable",
    ):
        shown = [number(c) for c in cells(page, field)]
        assert (
            shown
            == [getattr(i, to_snake(field)) for i in items]
            == [i[field] for i in answer["organizations"]]
        )


def test_billing_page_equals_billing_and_api(dataset, browser):
    partner, key = dataset["partner"], dataset["key"]
    page = browser.get("/billing").get_data(as_text=True)
    usage = billing.current_usage(partner)
    answer = api(browser, key, json_link(page, "billing/usage"))
    shown = kpis(page)
    assert shown["identifications"] == usage.identifications == answer["identifications"]
    assert (
        shown["projectedIdentifications"]
        == usage.projected_identifications
        == answer["projectedIdentifications"]
    )
    assert (
        float(re.search(r'data-metric="estimatedCost" data-value="([\d.]+)"', page).group(1))
        == float(usage.estimated_cost)
        == answer["estimatedCost"]
    )
    assert cells(page, "amount") == [
        f"{b['amount']:,.2f} {answer['currency']}" for b in answer["costBreakdown"]
    ]
    periods = api(browser, key, json_link(page, "billing/periods"))["periods"]
    starts = re.findall(r'<tr data-period-start="([^"]+)">', page)
    assert starts == [p["billingPeriodStart"] for p in periods]
    assert [number(c) for c in cells(page, "identifications")] == [
        p["identifications"] for p in periods
    ]


def test_credits_page_equals_api(dataset, browser):
    key = dataset["key"]
    page = browser.get("/credits").get_data(as_text=True)
    answer = api(browser, key, json_link(page, "billing"))
    for field, value in kpis(page).items():
        assert value == answer[field], field
