"""The JSON API: exact answers of every endpoint on small data computed by hand.

The clock is frozen at 2025-10-20 12:00 UTC (a Monday). The partner "acme" (UTC, pool
1,000 credits, monthly billing from the 1st, default tiers) was created 2025-08-15 and has:

  Alpha  created 2025-09-01, externalId a-1, trial, 300 credits, metadata {"crm": 42}
  Beta   created 2025-10-05, externalId b-2, paid, B2C, 400 credits
  Gamma  created 2025-10-10, trial, no credits, suspended on 2025-10-15

  event  org    type            qty  occurredAt (UTC)
  e6     Alpha  identification    7  2025-09-05 12:00
  e1     Alpha  identification   10  2025-09-25 08:00
  e2     Alpha  identification    5  2025-10-02 09:00
  e3     Alpha  page_view         3  2025-10-02 10:00
  e4     Beta   identification   20  2025-10-06 23:30
  e5     Beta   session           1  2025-10-07 00:15  (quantity left out: 1)
  e7     Gamma  identification    2  2025-10-20 11:00

Every expected number below is worked out from this table in the comments next to it.
"""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace

import pytest

from app import accounts

NOW = datetime(2025, 10, 20, 12)
STAMP = "2025-10-20T12:00:00Z"

EVENTS = [
    ("e6", "alpha", "identification", 7, "2025-09-05T12:00:00Z"),
    ("e1", "alpha", "identification", 10, "2025-09-25T08:00:00Z"),
    ("e2", "alpha", "identification", 5, "2025-10-02T09:00:00Z"),
    ("e3", "alpha", "page_view", 3, "2025-10-02T10:00:00Z"),
    ("e4", "beta", "identification", 20, "2025-10-06T23:30:00Z"),
    ("e5", "beta", "session", None, "2025-10-07T00:15:00Z"),
    ("e7", "gamma", "identification", 2, "2025-10-20T11:00:00Z"),
]


@pytest.fixture
def world(app, client, freeze, make_partner, make_org, add_events, api_key):
    freeze(NOW)
    partner = make_partner("acme", pool=1000, created_at=datetime(2025, 8, 15))
    alpha = make_org(
        partner,
        "Alpha",
        external_id="a-1",
        initial_credits=300,
        created_at=datetime(2025, 9, 1),
        metadata={"crm": 42},
    )
    beta = make_org(
        partner,
        "Beta",
        external_id="b-2",
        initial_credits=400,
        tier="paid",
        product_type="B2C",
        created_at=datetime(2025, 10, 5),
    )
    gamma = make_org(partner, "Gamma", created_at=datetime(2025, 10, 10))
    accounts.set_status(partner, gamma, "suspended", at=datetime(2025, 10, 15))
    orgs = {"alpha": alpha, "beta": beta, "gamma": gamma}
    batch = []
    for event_id, org, etype, quantity, occurred in EVENTS:
        event = {
            "eventId": event_id,
            "organizationId": orgs[org].id,
            "type": etype,
            "occurredAt": occurred,
        }
        if quantity is not None:
            event["quantity"] = quantity
        batch.append(event)
    result = add_events(partner, batch)
    assert (result.accepted, result.rejected) == (7, [])
    key = api_key(partner)

    def call(method, url, **kwargs):
        headers = {"X-Partner-API-Key": kwargs.pop("key", key)}
        return client.open(url, method=method, headers=headers, **kwargs)

    def get(url, **kwargs):
        response = call("GET", url, **kwargs)
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    return SimpleNamespace(
        partner=partner,
        alpha=alpha,
        beta=beta,
        gamma=gamma,
        key=key,
        call=call,
        get=get,
        client=client,
    )


def _pid(w):
    return w.partner.id


# --- analytics --------------------------------------------------------------------------


def test_analytics_defaults_to_the_last_30_days(world):
    body = world.get("/api/v1/partner/analytics")
    # Default period: 2025-10-20 - 30 days = 2025-09-20 .. 2025-10-20.
    assert body == {
        "partnerId": _pid(world),
        "startDate": "2025-09-20",
        "endDate": "2025-10-20",
        # Alpha, Beta and Gamma were all created by the end of 2025-10-20.
        "totalOrganizations": 3,
        # Gamma is suspended since 2025-10-15: Alpha and Beta are active.
        "activeOrganizations": 2,
        # e1 10 + e2 5 + e4 20 + e7 2 = 37 (e6 on 09-05 is before the period).
        "totalIdentifications": 37,
        "creditsUsed": 37,
        # Billing period 10-01..10-31; used 10-01..10-20: e2 5 + e4 20 + e7 2 = 27.
        # 1000 - 27 = 973.
        "creditsRemaining": 973,
        # All three had an event in the period.
        "organizationsWithActivity": 3,
    }


def test_analytics_compare_previous(world):
    body = world.get("/api/v1/partner/analytics?compare=previous")
    # The previous equally long (31-day) period is 2025-08-20 .. 2025-09-19.
    assert body["previous"] == {
        "startDate": "2025-08-20",
        "endDate": "2025-09-19",
        "totalOrganizations": 1,  # only Alpha (created 09-01)
        "activeOrganizations": 1,
        "totalIdentifications": 7,  # e6
        "creditsUsed": 7,
        "creditsRemaining": 993,  # period 09-01..09-30, used to 09-19: 7
        "organizationsWithActivity": 1,
    }
    assert body["change"] == {
        "totalOrganizations": 2.0,  # (3 - 1) / 1
        "activeOrganizations": 1.0,  # (2 - 1) / 1
        "totalIdentifications": 4.2857,  # (37 - 7) / 7 = 4.285714...
        "creditsUsed": 4.2857,
        "creditsRemaining": -0.0201,  # (973 - 993) / 993 = -0.020141...
        "organizationsWithActivity": 2.0,  # (3 - 1) / 1
    }
    assert body["totalIdentifications"] == 37


def test_analytics_change_is_null_where_previous_is_zero(world):
    # 2025-10-01..2025-10-08, a month to date, against the same dates a month earlier:
    # 2025-09-01..2025-09-08 (spec §4, compare=previous, case 3).
    body = world.get(
        "/api/v1/partner/analytics?startDate=2025-10-01&endDate=2025-10-08&compare=previous"
    )
    # Now: ident e2 5 + e4 20 = 25; orgs created by 10-08: Alpha, Beta; both active.
    # Remaining: 1000 - 25 = 975. With activity: Alpha, Beta.
    # Before: ident e6 7 (Sep 5); orgs: Alpha; remaining: 09-01..09-08 used e6 7 -> 993.
    assert body["previous"] == {
        "startDate": "2025-09-01",
        "endDate": "2025-09-08",
        "totalOrganizations": 1,
        "activeOrganizations": 1,
        "totalIdentifications": 7,
        "creditsUsed": 7,
        "creditsRemaining": 993,
        "organizationsWithActivity": 1,
    }
    assert body["change"] == {
        "totalOrganizations": 1.0,
        "activeOrganizations": 1.0,
        "totalIdentifications": 2.5714,  # (25 - 7) / 7 = 2.571428...
        "creditsUsed": 2.5714,
        "creditsRemaining": -0.0181,  # (975 - 993) / 993 = -0.018127...
        "organizationsWithActivity": 1.0,
    }
    # A period before any usage: previous is all zeros where usage is concerned.
    quiet = world.get(
        "/api/v1/partner/analytics?startDate=2025-08-20&endDate=2025-08-31&compare=previous"
    )
    assert quiet["change"]["totalIdentifications"] is None
    assert quiet["change"]["totalOrganizations"] is None


def test_analytics_timestamps_count_by_their_date(world):
    # 2025-10-02T23:30:00-02:00 is 2025-10-03 01:30 UTC: the period starts on 10-03.
    body = world.get(
        "/api/v1/partner/analytics?startDate=2025-10-02T23:30:00-02:00&endDate=2025-10-06"
    )
    assert body == {
        "partnerId": _pid(world),
        "startDate": "2025-10-03",
        "endDate": "2025-10-06",
        "totalOrganizations": 2,  # Alpha, Beta (10-05)
        "activeOrganizations": 2,
        "totalIdentifications": 20,  # e4 (10-06 23:30)
        "creditsUsed": 20,
        "creditsRemaining": 975,  # 1000 - (e2 5 + e4 20)
        "organizationsWithActivity": 1,  # Beta
    }


def test_analytics_with_one_date_keeps_the_default_length(world):
    # Only endDate: 31 days ending there. Only startDate: through today.
    body = world.get("/api/v1/partner/analytics?endDate=2025-09-30")
    assert (body["startDate"], body["endDate"]) == ("2025-08-31", "2025-09-30")
    assert body["totalIdentifications"] == 17  # e6 7 + e1 10
    body = world.get("/api/v1/partner/analytics?startDate=2025-10-15")
    assert (body["startDate"], body["endDate"]) == ("2025-10-15", "2025-10-20")
    assert body["totalIdentifications"] == 2  # e7


def test_analytics_days_are_local_to_the_partner(
    app, client, freeze, make_partner, make_org, add_events, api_key
):
    freeze(NOW)
    partner = make_partner("ny", tz="America/New_York")
    org = make_org(partner, "Local", created_at=datetime(2025, 9, 1))
    add_events(
        partner,
        [
            # 2025-10-07 00:15 UTC is 2025-10-06 20:15 in New York (EDT, UTC-4).
            {
                "eventId": "late",
                "organizationId": org.id,
                "type": "identification",
                "quantity": 4,
                "occurredAt": "2025-10-07T00:15:00Z",
            },
        ],
    )
    headers = {"X-Partner-API-Key": api_key(partner)}
    day = client.get(
        "/api/v1/partner/analytics?startDate=2025-10-06&endDate=2025-10-06", headers=headers
    ).get_json()
    assert day["totalIdentifications"] == 4
    nxt = client.get(
        "/api/v1/partner/analytics?startDate=2025-10-07&endDate=2025-10-07", headers=headers
    ).get_json()
    assert nxt["totalIdentifications"] == 0


# --- usage ------------------------------------------------------------------------------


def test_usage_defaults_to_the_month_so_far(world):
    body = world.get("/api/v1/partner/usage")
    # 2025-10-01 .. 2025-10-20: e2, e3, e4, e5, e7.
    assert body == {
        "partnerId": _pid(world),
        "startDate": "2025-10-01",
        "endDate": "2025-10-20",
        "type": None,
        "organizationId": None,
        "totalQuantity": 31,  # 5 + 3 + 20 + 1 + 2
        "totalEvents": 5,
        "byType": {
            "identification": {"quantity": 27, "events": 3},  # e2 5 + e4 20 + e7 2
            "page_view": {"quantity": 3, "events": 1},  # e3
            "session": {"quantity": 1, "events": 1},  # e5, quantity defaulted to 1
        },
    }


def test_usage_by_type_and_organization_with_compare(world):
    alpha = world.alpha.id
    body = world.get(
        f"/api/v1/partner/usage?type=identification&organizationId={alpha}&compare=previous"
    )
    # Alpha's identifications 10-01..10-20 (the default, month to date): e2 5. Before: the
    # same dates a month earlier, 09-01..09-20: e6 7 (e1 on 09-25 is outside).
    assert body == {
        "partnerId": _pid(world),
        "startDate": "2025-10-01",
        "endDate": "2025-10-20",
        "type": "identification",
        "organizationId": alpha,
        "totalQuantity": 5,
        "totalEvents": 1,
        "byType": {"identification": {"quantity": 5, "events": 1}},
        "previous": {
            "startDate": "2025-09-01",
            "endDate": "2025-09-20",
            "totalQuantity": 7,
            "totalEvents": 1,
            "byType": {"identification": {"quantity": 7, "events": 1}},
        },
        "change": {
            "totalQuantity": -0.2857,  # (5 - 7) / 7 = -0.285714...
            "totalEvents": 0.0,
        },  # (1 - 1) / 1
    }


def test_usage_of_a_type_nobody_sent_is_zero(world):
    body = world.get("/api/v1/partner/usage?type=download")
    assert (body["totalQuantity"], body["totalEvents"], body["byType"]) == (0, 0, {})


# --- timeseries -------------------------------------------------------------------------


def _point(day, ident=0, events=0, quantity=0, orgs=0, days=1, partial=False):
    return {
        "date": day,
        "identifications": ident,
        "creditsUsed": ident,
        "events": events,
        "quantity": quantity,
        "organizationsWithActivity": orgs,
        "days": days,
        "partial": partial,
    }


def test_timeseries_by_day_is_zero_filled_and_compares(world):
    body = world.get(
        "/api/v1/partner/analytics/timeseries?startDate=2025-10-01"
        "&endDate=2025-10-08&compare=previous"
    )
    assert body == {
        "partnerId": _pid(world),
        "organizationId": None,
        "startDate": "2025-10-01",
        "endDate": "2025-10-08",
        "granularity": "day",
        # ident 5 + 20 = 25; events e2 e3 e4 e5 = 4; quantity 5 + 3 + 20 + 1 = 29;
        # organizations Alpha and Beta.
        "totals": {
            "identifications": 25,
            "creditsUsed": 25,
            "events": 4,
            "quantity": 29,
            "organizationsWithActivity": 2,
        },
        "points": [
            _point("2025-10-01"),
            _point("2025-10-02", 5, 2, 8, 1),  # e2 (5 ident) + e3 (3 page views)
            _point("2025-10-03"),
            _point("2025-10-04"),
            _point("2025-10-05"),
            _point("2025-10-06", 20, 1, 20, 1),  # e4
            _point("2025-10-07", 0, 1, 1, 1),  # e5 (session)
            _point("2025-10-08"),
        ],
        # A month to date: the same dates a month earlier.
        "previous": {
            "startDate": "2025-09-01",
            "endDate": "2025-09-08",
            "totals": {
                "identifications": 7,
                "creditsUsed": 7,
                "events": 1,
                "quantity": 7,
                "organizationsWithActivity": 1,
            },
            "points": [
                _point("2025-09-01"),
                _point("2025-09-02"),
                _point("2025-09-03"),
                _point("2025-09-04"),
                _point("2025-09-05", 7, 1, 7, 1),  # e6
                _point("2025-09-06"),
                _point("2025-09-07"),
                _point("2025-09-08"),
            ],
        },
        "change": {
            "identifications": 2.5714,  # (25 - 7) / 7
            "creditsUsed": 2.5714,
            "events": 3.0,  # (4 - 1) / 1
            "quantity": 3.1429,  # (29 - 7) / 7 = 3.142857...
            "organizationsWithActivity": 1.0,
        },  # (2 - 1) / 1
    }


def test_timeseries_by_week_starts_on_monday_clipped_to_the_period(world):
    body = world.get(
        "/api/v1/partner/analytics/timeseries?startDate=2025-09-24"
        "&endDate=2025-10-08&granularity=week"
    )
    # Mondays: 09-22, 09-29, 10-06. The first bucket is clipped to start on 09-24 (Wed-Sun,
    # 5 days) and the last to end on 10-08 (3 days): both partial.
    assert body["points"] == [
        _point("2025-09-24", 10, 1, 10, 1, days=5, partial=True),  # e1 (09-25)
        _point("2025-09-29", 5, 2, 8, 1, days=7),  # e2 + e3 (10-02)
        _point("2025-10-06", 20, 2, 21, 1, days=3, partial=True),  # e4 + e5 (Beta)
    ]


def test_timeseries_by_month_for_one_organization(world):
    beta = world.beta.id
    body = world.get(
        "/api/v1/partner/analytics/timeseries?startDate=2025-08-15"
        f"&endDate=2025-10-20&granularity=month&organizationId={beta}"
    )
    assert body["organizationId"] == beta
    assert body["points"] == [
        _point("2025-08-15", days=17, partial=True),  # clipped to the period's start
        _point("2025-09-01", days=30),
        # e4 20 ident + e5 1 session; October through today (the 20th) is still running.
        _point("2025-10-01", 20, 2, 21, 1, days=20, partial=True),
    ]
    assert body["totals"] == {
        "identifications": 20,
        "creditsUsed": 20,
        "events": 2,
        "quantity": 21,
        "organizationsWithActivity": 1,
    }


# --- per-organization analytics ---------------------------------------------------------


def _row(org, status, tier, ident, events, quantity, allocated, used_this_period):
    return {
        "organizationId": org.id,
        "name": org.name,
        "externalId": org.external_id,
        "status": status,
        "tier": tier,
        "identifications": ident,
        "creditsUsed": ident,
        "events": events,
        "quantity": quantity,
        "creditsAllocated": allocated,
        "creditsUsedThisBillingPeriod": used_this_period,
        "creditsAvailable": allocated - used_this_period,
    }


def test_organization_breakdown_sorted_by_identifications(world):
    body = world.get("/api/v1/partner/analytics/organizations")
    # Period 2025-09-20..2025-10-20; "this billing period" is October.
    assert body == {
        "partnerId": _pid(world),
        "startDate": "2025-09-20",
        "endDate": "2025-10-20",
        "sort": "identifications",
        "order": "desc",
        "organizations": [
            # Beta: e4 20 ident; events e4 e5 = 2; quantity 21; October use 20 of 400.
            _row(world.beta, "active", "paid", 20, 2, 21, 400, 20),
            # Alpha: e1 10 + e2 5 = 15; events e1 e2 e3 = 3; quantity 18; October use 5.
            _row(world.alpha, "active", "trial", 15, 3, 18, 300, 5),
            # Gamma: e7 2; no allocation, so available is 0 - 2 = -2.
            _row(world.gamma, "suspended", "trial", 2, 1, 2, 0, 2),
        ],
        "total": 3,
        "page": 1,
        "pageSize": 20,
    }


def test_organization_breakdown_by_name_paginated(world):
    body = world.get("/api/v1/partner/analytics/organizations?sort=name&pageSize=2&page=2")
    # By name ascending (the default order for name): Alpha, Beta | Gamma.
    assert body["order"] == "asc"
    assert [o["name"] for o in body["organizations"]] == ["Gamma"]
    assert (body["total"], body["page"], body["pageSize"]) == (3, 2, 2)
    body = world.get("/api/v1/partner/analytics/organizations?sort=quantity&order=asc")
    # quantity: Gamma 2 < Alpha 18 < Beta 21.
    assert [o["name"] for o in body["organizations"]] == ["Gamma", "Alpha", "Beta"]
    body = world.get("/api/v1/partner/analytics/organizations?sort=createdAt")
    # Newest first: Gamma (10-10), Beta (10-05), Alpha (09-01).
    assert [o["name"] for o in body["organizations"]] == ["Gamma", "Beta", "Alpha"]


def test_organization_breakdown_compare_previous(world):
    body = world.get("/api/v1/partner/analytics/organizations?sort=name&compare=previous")
    assert (body["previousStartDate"], body["previousEndDate"]) == ("2025-08-20", "2025-09-19")
    alpha, beta, _gamma = body["organizations"]
    # Alpha before: e6 7 ident, 1 event, quantity 7.
    assert alpha["previous"] == {"identifications": 7, "creditsUsed": 7, "events": 1, "quantity": 7}
    assert alpha["change"] == {
        "identifications": 1.1429,  # (15 - 7) / 7 = 1.142857
        "creditsUsed": 1.1429,
        "events": 2.0,  # (3 - 1) / 1
        "quantity": 1.5714,
    }  # (18 - 7) / 7 = 1.571428
    assert beta["previous"] == {"identifications": 0, "creditsUsed": 0, "events": 0, "quantity": 0}
    assert beta["change"] == {
        "identifications": None,
        "creditsUsed": None,
        "events": None,
        "quantity": None,
    }


def test_one_organizations_analytics(world):
    body = world.get(f"/api/v1/partner/organizations/{world.alpha.id}/analytics")
    assert body == {
        "partnerId": _pid(world),
        "organizationId": world.alpha.id,
        "startDate": "2025-09-20",
        "endDate": "2025-10-20",
        "totalIdentifications": 15,  # e1 10 + e2 5
        "creditsUsed": 15,
        "totalQuantity": 18,  # 10 + 5 + 3
        "totalEvents": 3,
        "byType": {
            "identification": {"quantity": 15, "events": 2},
            "page_view": {"quantity": 3, "events": 1},
        },
        "statusAtEnd": "active",
        "creditsAllocated": 300,
        "creditsUsedThisBillingPeriod": 5,  # October: e2
        "creditsAvailable": 295,
    }


def test_one_organizations_status_as_it_was(world):
    url = f"/api/v1/partner/organizations/{world.gamma.id}/analytics"
    # Suspended on 10-15; created on 10-10.
    assert world.get(url + "?startDate=2025-10-01&endDate=2025-10-12")["statusAtEnd"] == "active"
    assert world.get(url + "?startDate=2025-10-01&endDate=2025-10-16")["statusAtEnd"] == "suspended"
    assert world.get(url + "?startDate=2025-10-01&endDate=2025-10-09")["statusAtEnd"] is None


def test_one_organizations_analytics_compare_previous(world):
    body = world.get(f"/api/v1/partner/organizations/{world.alpha.id}/analytics?compare=previous")
    assert body["previous"] == {
        "startDate": "2025-08-20",
        "endDate": "2025-09-19",
        "totalIdentifications": 7,
        "creditsUsed": 7,
        "totalQuantity": 7,
        "totalEvents": 1,
        "byType": {"identification": {"quantity": 7, "events": 1}},
    }
    assert body["change"] == {
        "totalIdentifications": 1.1429,  # (15 - 7) / 7
        "creditsUsed": 1.1429,
        "totalQuantity": 1.5714,  # (18 - 7) / 7
        "totalEvents": 2.0,
    }  # (3 - 1) / 1


# --- billing ----------------------------------------------------------------------------

TIERS = [
    {"tier": "Starter", "pricePerIdentification": 0.1, "minUsage": 0, "maxUsage": 10000},
    {"tier": "Growth", "pricePerIdentification": 0.08, "minUsage": 10000, "maxUsage": 100000},
    {"tier": "Scale", "pricePerIdentification": 0.05, "minUsage": 100000, "maxUsage": None},
]
# The partner's terms never changed: the partner row's, with no date they apply from.
TERMS = {
    "effectiveFrom": None,
    "creditPoolTotal": 1000,
    "billingDayOfMonth": 1,
    "pricingTiers": TIERS,
}


def test_billing(world):
    assert world.get("/api/v1/partner/billing") == {
        "partnerId": _pid(world),
        "billingMode": "credit_pool",
        "billingPeriod": "monthly",
        "billingDayOfMonth": 1,
        "billingPeriodStart": "2025-10-01",
        "nextBillingDate": "2025-11-01",
        "pricingTiers": TIERS,
        "currency": "USD",
        "creditPoolTotal": 1000,
        "creditPoolUsed": 27,  # October: e2 5 + e4 20 + e7 2
        "creditPoolAvailable": 973,
        "creditPoolAllocated": 700,  # Alpha 300 + Beta 400 + Gamma 0
        "terms": TERMS,
        "nextTerms": None,
    }


def test_billing_usage_estimates_and_projects(world):
    assert world.get("/api/v1/partner/billing/usage") == {
        "partnerId": _pid(world),
        "billingPeriodStart": "2025-10-01",
        "billingPeriodEnd": "2025-10-31",
        "identifications": 27,
        "creditsUsed": 27,
        "totalQuantity": 31,
        "totalEvents": 5,
        "estimatedCost": 2.7,  # 27 x 0.10
        "currency": "USD",
        "costBreakdown": [
            {"tier": "Starter", "units": 27, "pricePerIdentification": 0.1, "amount": 2.7},
            {"tier": "Growth", "units": 0, "pricePerIdentification": 0.08, "amount": 0.0},
            {"tier": "Scale", "units": 0, "pricePerIdentification": 0.05, "amount": 0.0},
        ],
        "daysElapsed": 20,
        "daysInPeriod": 31,
        # 19 complete days (Oct 1..19): the last 7 (Oct 13..19) used nothing, a rate of 0.
        # Complete days used 5 + 20 = 25; today (2 so far) counts the larger of 2 and 0;
        # the 11 days after today count 0 each: 25 + 2 + 0 = 27.
        "projectedIdentifications": 27,
        "projectedCost": 2.7,  # 27 x 0.10
        "projectionMethod": "last_7_complete_days",
        "terms": TERMS,
    }


def test_billing_usage_projects_from_the_period_average_before_7_complete_days(world, freeze):
    freeze(datetime(2025, 10, 4, 12))
    answer = world.get("/api/v1/partner/billing/usage")
    # Complete days Oct 1..3 used e2's 5: a rate of 5/3 a day. Today (nothing yet) and the
    # 27 days after it (Oct 5..31) count 5/3 each: 5 + 28 x 5/3 = 51.67 -> 52.
    assert answer["identifications"] == 5
    assert answer["projectionMethod"] == "period_average"
    assert (answer["projectedIdentifications"], answer["projectedCost"]) == (52, 5.2)


def test_billing_usage_on_the_period_s_first_day_does_not_project(world, freeze):
    freeze(datetime(2025, 10, 1, 12))
    answer = world.get("/api/v1/partner/billing/usage")
    assert answer["identifications"] == 0
    assert answer["projectionMethod"] == "insufficient_data"
    assert answer["projectedIdentifications"] is None
    assert answer["projectedCost"] is None


@pytest.mark.parametrize(
    ("usage", "starter", "growth", "scale", "total"),
    [
        (0, 0, 0, 0, 0.0),
        # The first tier's edge: 10,000 x 0.10 = 1,000.00, nothing in Growth yet.
        (10_000, 10_000, 0, 0, 1000.0),
        # One more unit falls in Growth: 1,000.00 + 1 x 0.08 = 1,000.08.
        (10_001, 10_000, 1, 0, 1000.08),
        # Growth full: 1,000 + 90,000 x 0.08 = 1,000 + 7,200 = 8,200.00.
        (100_000, 10_000, 90_000, 0, 8200.0),
        # One unit in Scale: 8,200.00 + 0.05 = 8,200.05.
        (100_001, 10_000, 90_000, 1, 8200.05),
    ],
)
def test_calculate_prices_each_unit_in_its_band(world, usage, starter, growth, scale, total):
    body = world.get(f"/api/v1/partner/billing/calculate?usage={usage}")
    assert body == {
        "usage": usage,
        "totalCost": total,
        "currency": "USD",
        "breakdown": [
            {
                "tier": "Starter",
                "units": starter,
                "pricePerIdentification": 0.1,
                "amount": round(starter * 0.10, 2),
            },
            {
                "tier": "Growth",
                "units": growth,
                "pricePerIdentification": 0.08,
                "amount": round(growth * 0.08, 2),
            },
            {
                "tier": "Scale",
                "units": scale,
                "pricePerIdentification": 0.05,
                "amount": round(scale * 0.05, 2),
            },
        ],
        "terms": TERMS,
    }


def test_billing_periods_newest_first(world):
    body = world.get("/api/v1/partner/billing/periods")

    def period(start, end, ident, quantity, events, is_current):
        cost = round(ident * 0.10, 2)
        return {
            "billingPeriodStart": start,
            "billingPeriodEnd": end,
            "identifications": ident,
            "creditsUsed": ident,
            "totalQuantity": quantity,
            "totalEvents": events,
            "estimatedCost": cost,
            "currency": "USD",
            "costBreakdown": [
                {"tier": "Starter", "units": ident, "pricePerIdentification": 0.1, "amount": cost},
                {"tier": "Growth", "units": 0, "pricePerIdentification": 0.08, "amount": 0.0},
                {"tier": "Scale", "units": 0, "pricePerIdentification": 0.05, "amount": 0.0},
            ],
            "isCurrent": is_current,
            "terms": TERMS,
        }

    # From the partner's creation (2025-08-15) to today: August, September, October.
    assert body == {
        "partnerId": _pid(world),
        "periods": [
            period("2025-10-01", "2025-10-31", 27, 31, 5, True),  # as in billing/usage
            period("2025-09-01", "2025-09-30", 17, 17, 2, False),  # e6 7 + e1 10
            period("2025-08-01", "2025-08-31", 0, 0, 0, False),
        ],
        "total": 3,
        "page": 1,
        "pageSize": 20,
    }
    second = world.get("/api/v1/partner/billing/periods?pageSize=2&page=2")
    assert [p["billingPeriodStart"] for p in second["periods"]] == ["2025-08-01"]
    assert second["total"] == 3


# --- organizations ----------------------------------------------------------------------


def _org(org, status, tier, product, credits, used, metadata, created, external):
    return {
        "id": org.id,
        "name": org.name,
        "externalId": external,
        "status": status,
        "tier": tier,
        "productType": product,
        "credits": credits,
        "creditsUsed": used,
        "creditsAvailable": credits - used,
        "metadata": metadata,
        "createdAt": created,
        "updatedAt": STAMP,
    }


def test_organization_list_and_filters(world):
    alpha = _org(
        world.alpha, "active", "trial", "B2B", 300, 5, {"crm": 42}, "2025-09-01T00:00:00Z", "a-1"
    )
    beta = _org(world.beta, "active", "paid", "B2C", 400, 20, {}, "2025-10-05T00:00:00Z", "b-2")
    gamma = _org(world.gamma, "suspended", "trial", "B2B", 0, 2, {}, "2025-10-10T00:00:00Z", None)
    assert world.get("/api/v1/partner/organizations") == {
        "organizations": [alpha, beta, gamma],
        "total": 3,
        "page": 1,
        "pageSize": 20,
    }
    assert world.get("/api/v1/partner/organizations?status=suspended")["organizations"] == [gamma]
    # "ET" matches "Beta" only, case-insensitively; "a" matches all three names.
    assert world.get("/api/v1/partner/organizations?search=ET")["organizations"] == [beta]
    assert world.get("/api/v1/partner/organizations?search=a")["total"] == 3
    assert world.get("/api/v1/partner/organizations?externalId=a-1")["organizations"] == [alpha]
    # externalId is exact: "a-" matches nothing.
    assert world.get("/api/v1/partner/organizations?externalId=a-")["total"] == 0
    # search treats % and _ as plain characters.
    assert world.get("/api/v1/partner/organizations?search=%25")["total"] == 0
    page = world.get("/api/v1/partner/organizations?pageSize=1&page=3")
    assert (page["organizations"], page["total"], page["pageSize"]) == ([gamma], 3, 1)


def test_organization_lifecycle(world, freeze):
    created = world.call(
        "POST",
        "/api/v1/partner/organizations",
        json={
            "name": "Delta",
            "externalId": "d-4",
            "initialCredits": 100,
            "metadata": {"plan": "x"},
            "createdAt": "2025-10-01",
        },
    )
    assert created.status_code == 201
    body = created.get_json()
    org_id = body["id"]
    assert created.headers["Location"] == f"/api/v1/partner/organizations/{org_id}"
    assert body == {
        "id": org_id,
        "name": "Delta",
        "externalId": "d-4",
        "status": "active",
        "tier": "trial",
        "productType": "B2B",
        "credits": 100,
        "creditsUsed": 0,
        "creditsAvailable": 100,
        "metadata": {"plan": "x"},
        # a bare date is the start of that day in the partner's timezone (UTC)
        "createdAt": "2025-10-01T00:00:00Z",
        "updatedAt": STAMP,
    }
    assert world.get(f"/api/v1/partner/organizations/{org_id}") == body

    freeze(datetime(2025, 10, 20, 13))
    patched = world.call(
        "PATCH",
        f"/api/v1/partner/organizations/{org_id}",
        json={"name": "Delta Two", "externalId": None, "productType": "B2C"},
    )
    assert patched.status_code == 200
    assert patched.get_json() == {
        **body,
        "name": "Delta Two",
        "externalId": None,
        "productType": "B2C",
        "updatedAt": "2025-10-20T13:00:00Z",
    }

    status = world.call(
        "PUT", f"/api/v1/partner/organizations/{org_id}/status", json={"status": "suspended"}
    )
    assert status.get_json()["status"] == "suspended"
    tier = world.call("PUT", f"/api/v1/partner/organizations/{org_id}/tier", json={"tier": "paid"})
    assert tier.get_json()["tier"] == "paid"

    deleted = world.call("DELETE", f"/api/v1/partner/organizations/{org_id}")
    assert (deleted.status_code, deleted.data) == (204, b"")
    # A soft delete: still readable, canceled, its 100 credits back in the pool.
    after = world.get(f"/api/v1/partner/organizations/{org_id}")
    assert (after["status"], after["credits"]) == ("canceled", 0)
    assert world.get("/api/v1/partner/billing")["creditPoolAllocated"] == 700
    history = world.get(f"/api/v1/partner/organizations/{org_id}/credits/history")
    assert [
        (h["creditsAllocated"], h["previousCredits"], h["notes"]) for h in history["history"]
    ] == [(0, 100, "released: organization canceled"), (100, 0, "initial allocation")]


def test_organization_created_at_in_a_local_timezone(app, client, freeze, make_partner, api_key):
    freeze(NOW)
    partner = make_partner("paris", tz="Europe/Paris")
    response = client.post(
        "/api/v1/partner/organizations",
        headers={"X-Partner-API-Key": api_key(partner)},
        json={"name": "Local", "createdAt": "2025-10-01"},
    )
    # Midnight in Paris on 2025-10-01 (CEST, UTC+2) is 2025-09-30 22:00 UTC.
    assert response.get_json()["createdAt"] == "2025-09-30T22:00:00Z"


def test_allocation_sets_the_amount_and_keeps_the_trail(world, freeze):
    freeze(datetime(2025, 10, 20, 14))
    response = world.call(
        "PUT",
        f"/api/v1/partner/organizations/{world.beta.id}/credits",
        json={"credits": 600, "notes": "more for Q4"},
    )
    assert response.status_code == 200
    allocation = response.get_json()["allocation"]
    assert allocation == {
        "id": allocation["id"],
        "partnerId": _pid(world),
        "organizationId": world.beta.id,
        "creditsAllocated": 600,
        "creditsUsed": 20,  # Beta's October use (e4)
        "creditsAvailable": 580,  # 600 - 20
        "allocatedAt": "2025-10-20T14:00:00Z",
        "notes": "more for Q4",
    }
    # Alpha 300 + Beta 600 = 900 of 1,000.
    assert world.get("/api/v1/partner/billing")["creditPoolAllocated"] == 900
    history = world.get(f"/api/v1/partner/organizations/{world.beta.id}/credits/history")
    assert history == {
        "organizationId": world.beta.id,
        "history": [
            {
                "id": allocation["id"],
                "organizationId": world.beta.id,
                "creditsAllocated": 600,
                "previousCredits": 400,
                "notes": "more for Q4",
                "allocatedAt": "2025-10-20T14:00:00Z",
            },
            {
                "id": history["history"][1]["id"],
                "organizationId": world.beta.id,
                "creditsAllocated": 400,
                "previousCredits": 0,
                "notes": "initial allocation",
                # an initial allocation is dated at the organization's createdAt
                "allocatedAt": "2025-10-05T00:00:00Z",
            },
        ],
        "total": 2,
        "page": 1,
        "pageSize": 20,
    }
    # Exactly what is left (1,000 - 300 for Alpha = 700) is allowed.
    assert (
        world.call(
            "PUT", f"/api/v1/partner/organizations/{world.beta.id}/credits", json={"credits": 700}
        ).status_code
        == 200
    )


def _unchanged(world):
    return (
        world.get(f"/api/v1/partner/organizations/{world.beta.id}")["credits"],
        world.get(f"/api/v1/partner/organizations/{world.alpha.id}")["credits"],
        world.get(f"/api/v1/partner/organizations/{world.beta.id}/credits/history")["total"],
        world.get(f"/api/v1/partner/organizations/{world.alpha.id}/credits/history")["total"],
        world.get("/api/v1/partner/billing")["creditPoolAllocated"],
    )


def test_allocation_beyond_the_pool_is_refused_and_changes_nothing(world):
    before = _unchanged(world)
    assert before == (400, 300, 1, 1, 700)
    response = world.call(
        "PUT",
        f"/api/v1/partner/organizations/{world.beta.id}/credits",
        json={"credits": 701, "notes": "too much"},
    )
    assert response.status_code == 422
    # Others hold 300 (Alpha), so 1,000 - 300 = 700 is available to Beta.
    assert response.get_json() == {
        "code": "InsufficientCredits",
        # 701 requested; pool 1,000, Alpha (the only other) holds 300, so at most 700.
        "message": "701 credits requested, but at most 700 can be allocated here: the pool "
        "holds 1,000 and other organizations hold 300",
        "details": {
            "field": "credits",
            "requested": 701,
            "available": 700,
            "creditPoolTotal": 1000,
            "creditPoolAllocated": 300,
        },
    }
    assert _unchanged(world) == before


def test_allocation_beyond_the_trial_cap_is_refused_and_changes_nothing(world):
    before = _unchanged(world)
    response = world.call(
        "PUT", f"/api/v1/partner/organizations/{world.alpha.id}/credits", json={"credits": 501}
    )
    assert response.status_code == 422
    assert response.get_json() == {
        "code": "InsufficientCredits",
        "message": "a trial organization can hold at most 500 credits",
        "details": {"field": "credits", "requested": 501, "trialCap": 500, "available": 500},
    }
    assert _unchanged(world) == before
    # The cap itself is allowed: 500 + Beta 400 = 900 <= 1,000.
    assert (
        world.call(
            "PUT", f"/api/v1/partner/organizations/{world.alpha.id}/credits", json={"credits": 500}
        ).status_code
        == 200
    )


def test_create_with_initial_credits_beyond_the_pool_is_refused(world):
    response = world.call(
        "POST",
        "/api/v1/partner/organizations",
        json={"name": "Big", "tier": "paid", "initialCredits": 301},
    )
    # 1,000 - (300 + 400) = 300 available.
    assert response.status_code == 422
    assert response.get_json()["details"]["available"] == 300
    assert world.get("/api/v1/partner/organizations?search=Big")["total"] == 0


# --- account and keys -------------------------------------------------------------------


def test_me(world):
    body = world.get("/api/v1/partner/me")
    assert (
        body
        == {
            "id": _pid(world),
            "name": "Acme",
            "slug": "acme",
            "status": "active",
            "billingMode": "credit_pool",
            "billingPeriod": "monthly",
            "billingDayOfMonth": 1,
            "creditPoolTotal": 1000,
            "creditPoolUsed": 27,
            "creditPoolAvailable": 973,
            "creditPoolAllocated": 700,
            "billingPeriodStart": "2025-10-01",
            "billingPeriodEnd": "2025-10-31",
            "pricingTiers": TIERS,
            "currency": "USD",
            "maxOrganizations": None,
            "timezone": "UTC",
            "createdAt": "2025-08-15T00:00:00Z",
            "dataFreshness": STAMP,  # the events were received at the frozen now
            "apiKey": {
                "id": body["apiKey"]["id"],
                "name": "test",
                "prefix": world.key[:12],
                "scopes": [],
                "createdAt": STAMP,
                "expiresAt": None,
                "revokedAt": None,
                "lastUsedAt": STAMP,  # this very request, at the frozen now
                "status": "active",
            },
        }
    )


def test_api_keys_create_list_revoke(world, freeze):
    created = world.call(
        "POST",
        "/api/v1/partner/api-keys",
        json={"name": "reporting", "scopes": ["read"], "expiresAt": "2026-01-01T00:00:00+01:00"},
    )
    assert created.status_code == 201
    body = created.get_json()
    plain = body["plainKey"]
    assert plain.startswith("pk_live_") and len(plain) > 40
    assert body["apiKey"] == {
        "id": body["apiKey"]["id"],
        "name": "reporting",
        "prefix": plain[:12],
        "scopes": ["read"],
        "createdAt": STAMP,
        # 2026-01-01 00:00 at +01:00 is 2025-12-31 23:00 UTC
        "expiresAt": "2025-12-31T23:00:00Z",
        "revokedAt": None,
        "lastUsedAt": None,
        "status": "active",
    }
    # The new key reads but does not write.
    assert world.call("GET", "/api/v1/partner/me", key=plain).status_code == 200
    assert (
        world.call("POST", "/api/v1/partner/events", key=plain, json={"events": []}).status_code
        == 403
    )

    listed = world.get("/api/v1/partner/api-keys")
    assert listed["total"] == 2
    assert {k["name"] for k in listed["apiKeys"]} == {"test", "reporting"}
    assert all("plainKey" not in k and plain not in str(k) for k in listed["apiKeys"])

    freeze(datetime(2025, 10, 20, 15))
    revoked = world.call("DELETE", f"/api/v1/partner/api-keys/{body['apiKey']['id']}")
    assert (revoked.status_code, revoked.data) == (204, b"")
    assert world.call("GET", "/api/v1/partner/me", key=plain).status_code == 401
    row = [k for k in world.get("/api/v1/partner/api-keys")["apiKeys"] if k["name"] == "reporting"][
        0
    ]
    assert (row["status"], row["revokedAt"]) == ("revoked", "2025-10-20T15:00:00Z")


# --- events -----------------------------------------------------------------------------


def test_events_posted_twice_are_stored_once(world):
    batch = {
        "events": [
            {
                "eventId": "n1",
                "organizationId": world.alpha.id,
                "type": "identification",
                "quantity": 4,
                "occurredAt": "2025-10-19T10:00:00Z",
            },
            {
                "eventId": "n2",
                "externalId": "b-2",
                "type": "page_view",
                "occurredAt": "2025-10-19T11:00:00+02:00",
            },
            {
                "eventId": "n1",
                "organizationId": world.alpha.id,
                "type": "identification",
                "quantity": 4,
                "occurredAt": "2025-10-19T10:00:00Z",
            },
        ]
    }
    first = world.call("POST", "/api/v1/partner/events", json=batch)
    # n1 and n2 are new; the second n1 in the same call is a duplicate.
    assert (first.status_code, first.get_json()) == (
        200,
        {"accepted": 2, "duplicates": 1, "rejected": []},
    )
    second = world.call("POST", "/api/v1/partner/events", json=batch)
    assert second.get_json() == {"accepted": 0, "duplicates": 3, "rejected": []}
    usage = world.get("/api/v1/partner/usage?startDate=2025-10-19&endDate=2025-10-19")
    # n1 4 identifications + n2 1 page view, once each.
    assert usage["byType"] == {
        "identification": {"quantity": 4, "events": 1},
        "page_view": {"quantity": 1, "events": 1},
    }


def test_events_rejected_one_by_one(world):
    response = world.call(
        "POST",
        "/api/v1/partner/events",
        json={
            "events": [
                {
                    "eventId": "ok",
                    "organizationId": world.alpha.id,
                    "type": "identification",
                    "occurredAt": "2025-10-19T10:00:00Z",
                },
                {
                    "eventId": "r1",
                    "organizationId": "nope",
                    "type": "identification",
                    "occurredAt": "2025-10-19T10:00:00Z",
                },
                {
                    "eventId": "r2",
                    "organizationId": world.alpha.id,
                    "type": "Page View",
                    "occurredAt": "2025-10-19T10:00:00Z",
                },
                {
                    "eventId": "r3",
                    "organizationId": world.alpha.id,
                    "type": "identification",
                    "quantity": -1,
                    "occurredAt": "2025-10-19T10:00:00Z",
                },
                {
                    "eventId": "r4",
                    "organizationId": world.alpha.id,
                    "type": "identification",
                    "occurredAt": "yesterday",
                },
                "not an object",
            ]
        },
    )
    assert response.status_code == 200
    body = response.get_json()
    assert (body["accepted"], body["duplicates"]) == (1, 0)
    assert [(r["index"], r["eventId"], r["code"], r.get("field")) for r in body["rejected"]] == [
        (1, "r1", "unknown_organization", "organizationId"),
        (2, "r2", "invalid_type", "type"),
        (3, "r3", "invalid_quantity", "quantity"),
        (4, "r4", "invalid_occurred_at", "occurredAt"),
        (5, None, "invalid_event", "event"),
    ]
    assert all(r["message"] for r in body["rejected"])


def test_events_of_a_call_commit_together_or_not_at_all(world, monkeypatch):
    from app import rollups

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    batch = {
        "events": [
            {
                "eventId": f"t{i}",
                "organizationId": world.alpha.id,
                "type": "identification",
                "occurredAt": "2025-10-19T10:00:00Z",
            }
            for i in range(3)
        ]
    }
    monkeypatch.setattr(rollups, "add_counts", broken)
    failed = world.call("POST", "/api/v1/partner/events", json=batch)
    assert failed.status_code == 500
    assert failed.get_json()["code"] == "InternalError"
    monkeypatch.undo()
    # Nothing of the failed call was kept: the retry stores all three.
    retry = world.call("POST", "/api/v1/partner/events", json=batch)
    assert retry.get_json() == {"accepted": 3, "duplicates": 0, "rejected": []}


def test_late_events_update_past_figures(world):
    before = world.get("/api/v1/partner/analytics?startDate=2025-09-01&endDate=2025-09-30")
    world.call(
        "POST",
        "/api/v1/partner/events",
        json={
            "events": [
                {
                    "eventId": "late",
                    "organizationId": world.alpha.id,
                    "type": "identification",
                    "quantity": 3,
                    "occurredAt": "2025-09-10T10:00:00Z",
                }
            ]
        },
    )
    after = world.get("/api/v1/partner/analytics?startDate=2025-09-01&endDate=2025-09-30")
    # September: e6 7 + e1 10 = 17, then + 3 = 20.
    assert (before["totalIdentifications"], after["totalIdentifications"]) == (17, 20)


def test_openapi_document_lists_every_endpoint(client):
    document = client.get("/api/v1/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    expected = {
        ("get", "/api/v1/partner/analytics"),
        ("get", "/api/v1/partner/usage"),
        ("get", "/api/v1/partner/analytics/timeseries"),
        ("get", "/api/v1/partner/analytics/organizations"),
        ("get", "/api/v1/partner/organizations/{id}/analytics"),
        ("get", "/api/v1/partner/billing"),
        ("get", "/api/v1/partner/billing/usage"),
        ("get", "/api/v1/partner/billing/calculate"),
        ("get", "/api/v1/partner/billing/periods"),
        ("get", "/api/v1/partner/organizations"),
        ("post", "/api/v1/partner/organizations"),
        ("get", "/api/v1/partner/organizations/{id}"),
        ("patch", "/api/v1/partner/organizations/{id}"),
        ("delete", "/api/v1/partner/organizations/{id}"),
        ("put", "/api/v1/partner/organizations/{id}/status"),
        ("put", "/api/v1/partner/organizations/{id}/tier"),
        ("put", "/api/v1/partner/organizations/{id}/credits"),
        ("get", "/api/v1/partner/organizations/{id}/credits/history"),
        ("get", "/api/v1/partner/me"),
        ("get", "/api/v1/partner/api-keys"),
        ("post", "/api/v1/partner/api-keys"),
        ("delete", "/api/v1/partner/api-keys/{id}"),
        ("post", "/api/v1/partner/events"),
    }
    listed = {(method, path) for path, ops in document["paths"].items() for method in ops}
    assert expected <= listed
    scheme = document["components"]["securitySchemes"]["PartnerApiKey"]
    assert scheme == {
        "type": "apiKey",
        "name": "X-Partner-API-Key",
        "in": "header",
        "description": scheme["description"],
    }
    # The cross-field date rules are documented on the 400 of analytics calls.
    analytics_400 = document["paths"]["/api/v1/partner/analytics"]["get"]["responses"]["400"]
    assert "startDate after endDate" in analytics_400["description"]
    assert "3,660 days" in analytics_400["description"]


def test_breakdown_filters_by_external_id_and_sorts_by_status_and_credits(
    make_partner, make_org, api_key, client
):
    partner = make_partner(pool=5000)
    make_org(partner, "Zeta", external_id="z-1", tier="paid", initial_credits=300)
    beta = make_org(partner, "Beta", external_id="b-1", tier="paid", initial_credits=900)
    accounts.set_status(partner, beta, "suspended")
    make_org(partner, "Alpha", external_id="a-1", tier="paid", initial_credits=100)
    headers = {"X-Partner-API-Key": api_key(partner, ["read"])}
    url = "/api/v1/partner/analytics/organizations"
    one = client.get(f"{url}?externalId=b-1", headers=headers).get_json()
    assert (one["total"], [i["name"] for i in one["organizations"]]) == (1, ["Beta"])
    # status ascending: active (Alpha, Zeta by name) before suspended (Beta)
    by_status = client.get(f"{url}?sort=status", headers=headers).get_json()
    assert [i["name"] for i in by_status["organizations"]] == ["Alpha", "Zeta", "Beta"]
    # credits descending by default: 900, 300, 100
    by_credits = client.get(f"{url}?sort=credits", headers=headers).get_json()
    assert [i["name"] for i in by_credits["organizations"]] == ["Beta", "Zeta", "Alpha"]


def test_a_signed_in_dashboard_user_may_read_the_json(world, make_user):
    import re

    make_user(world.partner, "ops@example.com", "correct horse battery")
    page = world.client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    signed_in = world.client.post(
        "/login",
        data={"email": "ops@example.com", "password": "correct horse battery", "csrf_token": token},
    )
    assert signed_in.status_code == 302
    # The dashboard's JSON links work in the browser: same numbers as with the key.
    via_session = world.client.get("/api/v1/partner/analytics")
    assert via_session.status_code == 200
    assert via_session.get_json() == world.get("/api/v1/partner/analytics")
    me = world.client.get("/api/v1/partner/me").get_json()
    assert (me["id"], me["apiKey"]) == (_pid(world), None)
    # Reading only: changing data still needs a key (no cross-site writes with a cookie).
    refused = world.client.post("/api/v1/partner/events", json={"events": []})
    assert (refused.status_code, refused.get_json()["code"]) == (403, "Forbidden")
    # A key that is sent is checked, session or not.
    bad = world.client.get("/api/v1/partner/me", headers={"X-Partner-API-Key": "pk_live_x"})
    assert bad.status_code == 401
