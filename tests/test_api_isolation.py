"""Tenant isolation: two partners, every endpoint, each key against the other's ids.

Another partner's id must answer exactly what an id that does not exist answers (404),
lists and totals must hold only the caller's data, and nothing of the other partner may
change or show up in any answer.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest

from app import auth

NOW = datetime(2025, 10, 20, 12)
ORGS = "/api/v1/partner/organizations"


@pytest.fixture
def tenants(app, client, freeze, make_partner, make_org, add_events, api_key):
    freeze(NOW)
    made = {}
    for slug, name, identifications in (
        ("alpha-agency", "Apple Secret", 3),
        ("bravo-agency", "Banana Secret", 5),
    ):
        partner = make_partner(slug, pool=1000)
        # Both partners use the same externalId for their own client.
        shared = make_org(partner, f"{name} One", external_id="crm-1", initial_credits=100)
        own = make_org(partner, f"{name} Two", external_id=f"only-{slug}")
        add_events(
            partner,
            [
                {
                    "eventId": "same-id",
                    "organizationId": shared.id,
                    "type": "identification",
                    "quantity": identifications,
                    "occurredAt": "2025-10-10T10:00:00Z",
                }
            ],
        )
        key = api_key(partner)
        spare_row, spare = auth.create_api_key(partner, "spare", ["read"])
        made[slug] = {
            "partner": partner,
            "orgs": [shared, own],
            "key": key,
            "spare_id": spare_row.id,
            "spare": spare,
            "name": name,
            "identifications": identifications,
        }
    return made["alpha-agency"], made["bravo-agency"]


def _call(client, key, method, url, body=None):
    return client.open(url, method=method, headers={"X-Partner-API-Key": key}, json=body)


def _secrets(tenant):
    """Strings that only the tenant's own answers may contain."""
    values = {
        tenant["partner"].id,
        tenant["partner"].slug,
        tenant["name"],
        tenant["spare_id"],
        tenant["spare"][:12],
    }
    for org in tenant["orgs"]:
        values |= {org.id, org.name}
    return values


ID_OPERATIONS = [
    ("GET", "{id}", None),
    ("PATCH", "{id}", {"name": "Stolen"}),
    ("DELETE", "{id}", None),
    ("GET", "{id}/analytics", None),
    ("PUT", "{id}/status", {"status": "suspended"}),
    ("PUT", "{id}/tier", {"tier": "paid"}),
    ("PUT", "{id}/credits", {"credits": 1}),
    ("GET", "{id}/credits/history", None),
]


def _snapshot(client, tenant):
    """What the tenant itself sees of its data.

    Its keys' lastUsedAt is left out: the snapshot's own calls use the tenant's key.
    """
    key = tenant["key"]
    keys = _call(client, key, "GET", "/api/v1/partner/api-keys").get_json()
    for item in keys["apiKeys"]:
        item.pop("lastUsedAt")
    return {
        "orgs": _call(client, key, "GET", ORGS).get_json(),
        "history": [
            _call(client, key, "GET", f"{ORGS}/{o.id}/credits/history").get_json()
            for o in tenant["orgs"]
        ],
        "usage": _call(client, key, "GET", "/api/v1/partner/usage").get_json(),
        "keys": keys,
    }


@pytest.mark.parametrize("direction", ["alpha reads bravo", "bravo reads alpha"])
def test_each_key_against_the_other_partners_ids(client, tenants, direction):
    me, other = tenants if direction == "alpha reads bravo" else tenants[::-1]
    before = _snapshot(client, other)
    hidden = _secrets(other)

    def assert_like_missing(method, template, body, target_id, missing_id):
        theirs = _call(client, me["key"], method, template.format(id=target_id), body)
        nobody = _call(client, me["key"], method, template.format(id=missing_id), body)
        assert theirs.status_code == 404, (method, template)
        # Byte for byte what a missing id gives, but for the echoed id itself.
        assert theirs.get_json() == {
            **nobody.get_json(),
            "details": {**nobody.get_json()["details"], "value": target_id},
        }, (method, template)
        text = theirs.get_data(as_text=True).replace(target_id, "")
        assert not any(secret in text for secret in hidden), (method, template)

    for org in other["orgs"]:
        for method, suffix, body in ID_OPERATIONS:
            assert_like_missing(method, f"{ORGS}/{suffix}", body, org.id, str(uuid.uuid4()))
        for path in ("/api/v1/partner/usage", "/api/v1/partner/analytics/timeseries"):
            assert_like_missing(
                "GET", path + "?organizationId={id}", None, org.id, str(uuid.uuid4())
            )
    assert_like_missing(
        "DELETE", "/api/v1/partner/api-keys/{id}", None, other["spare_id"], str(uuid.uuid4())
    )

    # Events naming the other partner's organizations are rejected, one by one.
    posted = _call(
        client,
        me["key"],
        "POST",
        "/api/v1/partner/events",
        {
            "events": [
                {
                    "eventId": "x1",
                    "organizationId": other["orgs"][0].id,
                    "type": "identification",
                    "occurredAt": "2025-10-11T10:00:00Z",
                },
                {
                    "eventId": "x2",
                    "externalId": f"only-{other['partner'].slug}",
                    "type": "identification",
                    "occurredAt": "2025-10-11T10:00:00Z",
                },
            ]
        },
    ).get_json()
    assert posted["accepted"] == 0
    assert [r["code"] for r in posted["rejected"]] == ["unknown_organization"] * 2

    # Nothing of the other partner changed; its spare key still works.
    assert _snapshot(client, other) == before
    assert _call(client, other["spare"], "GET", "/api/v1/partner/me").status_code == 200


@pytest.mark.parametrize("direction", ["alpha", "bravo"])
def test_every_answer_holds_only_the_callers_data(client, tenants, direction):
    me, other = tenants if direction == "alpha" else tenants[::-1]
    hidden = _secrets(other)
    own_ids = {o.id for o in me["orgs"]}
    urls = [
        "/api/v1/partner/me",
        "/api/v1/partner/analytics",
        "/api/v1/partner/usage",
        "/api/v1/partner/analytics/timeseries",
        "/api/v1/partner/analytics/organizations",
        "/api/v1/partner/billing",
        "/api/v1/partner/billing/usage",
        "/api/v1/partner/billing/calculate?usage=5",
        "/api/v1/partner/billing/periods",
        ORGS,
        f"{ORGS}?externalId=crm-1",
        "/api/v1/partner/api-keys",
        f"{ORGS}/{me['orgs'][0].id}",
        f"{ORGS}/{me['orgs'][0].id}/analytics",
        f"{ORGS}/{me['orgs'][0].id}/credits/history",
    ]
    for url in urls:
        response = _call(client, me["key"], "GET", url)
        assert response.status_code == 200, url
        text = response.get_data(as_text=True)
        assert not any(secret in text for secret in hidden), url

    orgs = _call(client, me["key"], "GET", ORGS).get_json()
    assert {o["id"] for o in orgs["organizations"]} == own_ids and orgs["total"] == 2
    # The shared externalId finds the caller's own organization only.
    by_ext = _call(client, me["key"], "GET", f"{ORGS}?externalId=crm-1").get_json()
    assert [o["id"] for o in by_ext["organizations"]] == [me["orgs"][0].id]
    assert (
        _call(client, me["key"], "GET", f"{ORGS}?search={other['name'].split()[0]}").get_json()[
            "total"
        ]
        == 0
    )
    breakdown = _call(
        client, me["key"], "GET", "/api/v1/partner/analytics/organizations"
    ).get_json()
    assert {o["organizationId"] for o in breakdown["organizations"]} == own_ids
    # Both partners used the eventId "same-id"; each counts only its own event.
    analytics = _call(client, me["key"], "GET", "/api/v1/partner/analytics").get_json()
    assert (
        analytics["partnerId"],
        analytics["totalIdentifications"],
        analytics["totalOrganizations"],
    ) == (me["partner"].id, me["identifications"], 2)
    keys = _call(client, me["key"], "GET", "/api/v1/partner/api-keys").get_json()
    assert keys["total"] == 2 and {k["name"] for k in keys["apiKeys"]} == {"test", "spare"}
    assert (
        _call(client, me["key"], "GET", "/api/v1/partner/me").get_json()["id"] == me["partner"].id
    )
