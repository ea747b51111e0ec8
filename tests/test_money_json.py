"""Money in the JSON API: Decimal in the domain, a JSON number (not a string) in the answer.

Prices of 0.0125 and 0.335 make every amount a fraction of a cent, so each one shows that
it is rounded once, half up, to cents, at the edge: 7 units of 0.0125 cost 0.0875 (0.09),
and 12 identifications cost 0.0875 + 5 x 0.335 = 1.7625 (1.76, not 0.09 + 1.68 = 1.77).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

TIERS = [
    {"tier": "A", "pricePerIdentification": "0.0125", "minUsage": 0, "maxUsage": 7},
    {"tier": "B", "pricePerIdentification": "0.335", "minUsage": 7, "maxUsage": None},
]
MONEY_FIELDS = {"pricePerIdentification", "amount", "estimatedCost", "projectedCost", "totalCost"}
PRICES = [("A", 0.0125), ("B", 0.335)]


@pytest.fixture
def money(client, freeze, make_partner, make_org, add_events, api_key):
    """Nov 20 2025; 12 identifications on Nov 3; billing periods are calendar months."""
    freeze(datetime(2025, 11, 20, 12))
    partner = make_partner("cents", pricing_tiers=TIERS, created_at=datetime(2025, 10, 1))
    org = make_org(partner, "Org", created_at=datetime(2025, 10, 1))
    result = add_events(
        partner,
        [
            {
                "eventId": "e1",
                "organizationId": org.id,
                "type": "identification",
                "quantity": 12,
                "occurredAt": "2025-11-03T10:00:00Z",
            }
        ],
    )
    assert result.accepted == 1
    key = api_key(partner)

    def get(url: str) -> Any:
        response = client.get(url, headers={"X-Partner-API-Key": key})
        assert response.status_code == 200, response.get_json()
        return json.loads(response.get_data(as_text=True))

    return get


def money_values(answer: Any, path: str = "") -> dict[str, Any]:
    """Return {path: value} of every money field anywhere in an answer."""
    found: dict[str, Any] = {}
    if isinstance(answer, dict):
        for key, value in answer.items():
            where = f"{path}.{key}" if path else key
            if key in MONEY_FIELDS:
                found[where] = value
            found.update(money_values(value, where))
    elif isinstance(answer, list):
        for i, value in enumerate(answer):
            found.update(money_values(value, f"{path}[{i}]"))
    return found


def assert_numbers(answer: Any, expected: dict[str, float]) -> None:
    """Every money field is a JSON number (never a string) with exactly the expected value."""
    found = money_values(answer)
    assert found == expected
    for where, value in found.items():
        assert type(value) in (int, float), (where, value)


def cost_lines(units: tuple[int, int], amounts: tuple[float, float], at: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, ((_tier, price), amount) in enumerate(zip(PRICES, amounts, strict=True)):
        out[f"{at}[{i}].pricePerIdentification"] = price
        out[f"{at}[{i}].amount"] = amount
    return out


def term_prices(at: str) -> dict[str, float]:
    """The prices of the terms an answer names (its `terms` object), numbers as well."""
    return {
        f"{at}.pricingTiers[0].pricePerIdentification": 0.0125,
        f"{at}.pricingTiers[1].pricePerIdentification": 0.335,
    }


def test_billing_prices_are_numbers(money):
    assert_numbers(
        money("/api/v1/partner/billing"),
        {
            "pricingTiers[0].pricePerIdentification": 0.0125,
            "pricingTiers[1].pricePerIdentification": 0.335,
            **term_prices("terms"),
        },
    )


@pytest.mark.parametrize(
    ("usage", "total", "amounts"),
    [
        (0, 0.0, (0.0, 0.0)),
        (1, 0.01, (0.01, 0.0)),  # 0.0125
        (7, 0.09, (0.09, 0.0)),  # 0.0875
        (12, 1.76, (0.09, 1.68)),  # 0.0875 + 1.675 = 1.7625
        (18, 3.77, (0.09, 3.69)),  # 0.0875 + 3.685 = 3.7725
    ],
)
def test_calculate_rounds_the_exact_total_once(money, usage, total, amounts):
    answer = money(f"/api/v1/partner/billing/calculate?usage={usage}")
    assert_numbers(
        answer,
        {"totalCost": total, **cost_lines((0, 0), amounts, "breakdown"), **term_prices("terms")},
    )


def test_billing_usage_costs_are_numbers(money):
    answer = money("/api/v1/partner/billing/usage")
    # 12 identifications on Nov 3; the last 7 complete days (Nov 13..19) used none, so
    # the rest of the period adds nothing: projected 12, costing 1.7625 -> 1.76 as well.
    assert (answer["identifications"], answer["projectedIdentifications"]) == (12, 12)
    assert_numbers(
        answer,
        {
            "estimatedCost": 1.76,
            "projectedCost": 1.76,
            **cost_lines((7, 5), (0.09, 1.68), "costBreakdown"),
            **term_prices("terms"),
        },
    )


def test_billing_periods_costs_are_numbers(money):
    answer = money("/api/v1/partner/billing/periods")
    assert [p["billingPeriodStart"] for p in answer["periods"]] == ["2025-11-01", "2025-10-01"]
    assert_numbers(
        answer,
        {
            "periods[0].estimatedCost": 1.76,
            **cost_lines((7, 5), (0.09, 1.68), "periods[0].costBreakdown"),
            **term_prices("periods[0].terms"),
            "periods[1].estimatedCost": 0.0,
            **cost_lines((0, 0), (0.0, 0.0), "periods[1].costBreakdown"),
            **term_prices("periods[1].terms"),
        },
    )


def test_report_money_is_the_billing_periods_number(money):
    """The month's cost (billing day 1: the month is the billing period) is a number, the
    same 1.76 as November's billing period above; the list of months carries no money."""
    assert money_values(money("/api/v1/partner/reports")) == {}
    assert_numbers(money("/api/v1/partner/reports/2025-11"), {"estimatedCost": 1.76})


def test_the_document_says_money_is_a_number(client):
    schemas = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    money_properties = {
        (name, prop): spec
        for name, schema in schemas.items()
        for prop, spec in schema.get("properties", {}).items()
        if prop in MONEY_FIELDS
    }
    assert {name for name, _prop in money_properties} >= {
        "PricingTier",
        "CostLine",
        "BillingPeriodRow",
        "BillingUsageOut",
        "CalculateOut",
    }
    for where, spec in money_properties.items():
        # A number, or a number or null where the figure may be missing (projectedCost).
        types = [s["type"] for s in spec["anyOf"]] if "anyOf" in spec else [spec["type"]]
        assert types in (["number"], ["number", "null"]), where
