"""Versioned terms: a pool, price or billing-day change applies from the next billing period.

Every expected figure and date below is worked out by hand from the events and the rule
of docs/billing-terms.md: past and current periods keep the pool, prices and dates they
had; with a new billing day, the first period of the new terms runs from the old
schedule's boundary to the day before the new day's next date.
"""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import select

from app import billing, metrics, periods, settings
from app.errors import AppError
from app.extensions import db
from app.models import AuditEntry, PartnerTerms
from app.periods import Period

D = date
P = Period
TWO_TIERS = [
    {"tier": "Starter", "pricePerIdentification": "0.20", "minUsage": 0, "maxUsage": 1000},
    {"tier": "Bulk", "pricePerIdentification": "0.05", "minUsage": 1000, "maxUsage": None},
]


def ident(event_id: str, org, quantity: int, at: str) -> dict:
    return {
        "eventId": event_id,
        "organizationId": org.id,
        "type": "identification",
        "quantity": quantity,
        "occurredAt": at,
    }


def change(partner, **values):
    """Save settings, keeping what values does not name."""
    current = {
        "name": partner.name,
        "credit_pool_total": partner.credit_pool_total,
        "billing_day_of_month": partner.billing_day_of_month,
        "pricing_tiers": partner.pricing_tiers,
    }
    return settings.update_settings(partner, **(current | values))


@pytest.fixture
def acme(freeze, make_partner, make_org, add_events):
    """Pool 1,000, billing day 1, the default tiers (0.10 up to 10,000); created 15 Aug 2025;
    100 identifications on 5 Sep; an organization holding 300 credits."""
    freeze(datetime(2025, 9, 10, 12))
    partner = make_partner("acme", pool=1000, created_at=datetime(2025, 8, 15))
    org = make_org(
        partner, "Alpha", initial_credits=300, tier="paid", created_at=datetime(2025, 8, 15)
    )
    assert add_events(partner, [ident("s1", org, 100, "2025-09-05T10:00:00Z")]).rejected == []
    return partner, org


def test_a_partner_without_versions_uses_its_row(acme):
    partner, _org = acme
    terms = billing.terms_for(partner, D(2025, 9, 1))
    assert (terms.effective_from, terms.credit_pool_total, terms.billing_day_of_month) == (
        None,
        1000,
        1,
    )
    assert db.session.execute(select(PartnerTerms)).all() == []


def test_a_pool_and_price_change_applies_from_the_next_period(
    acme, freeze, add_events, client, api_key
):
    partner, org = acme
    done = change(partner, credit_pool_total=2500, pricing_tiers=TWO_TIERS)
    # Made on 10 Sep, in the period 1-30 Sep: from 1 Oct on.
    assert done.effective_from == D(2025, 10, 1)
    key = api_key(partner, ["read"])
    headers = {"X-Partner-API-Key": key}
    now = client.get("/api/v1/partner/billing", headers=headers).get_json()
    # September keeps its pool of 1,000 and the 0.10 tier: 100 used, 900 available.
    assert (now["creditPoolTotal"], now["creditPoolUsed"], now["creditPoolAvailable"]) == (
        1000,
        100,
        900,
    )
    # The terms so far became the first version, from the first period (1 Aug, holding
    # the creation on 15 Aug).
    assert now["terms"]["effectiveFrom"] == "2025-08-01"
    assert now["terms"]["creditPoolTotal"] == 1000
    assert now["nextTerms"]["effectiveFrom"] == "2025-10-01"
    assert now["nextTerms"]["creditPoolTotal"] == 2500
    # The calculator prices with the current period's tiers: 1,500 x 0.10 = 150.00.
    calc = client.get("/api/v1/partner/billing/calculate?usage=1500", headers=headers).get_json()
    assert calc["totalCost"] == 150.0
    assert calc["terms"]["effectiveFrom"] == "2025-08-01"
    # /me shows the newest values (the partner row).
    me = client.get("/api/v1/partner/me", headers=headers).get_json()
    assert me["billingDayOfMonth"] == 1
    assert [t["pricePerIdentification"] for t in me["pricingTiers"]] == [0.2, 0.05]

    # October: 1,200 identifications on 2 Oct.
    freeze(datetime(2025, 10, 5, 12))
    assert add_events(partner, [ident("o1", org, 1200, "2025-10-02T10:00:00Z")]).rejected == []
    db.session.expire_all()
    pool = metrics.pool_status(partner)
    assert (pool.credit_pool_total, pool.credit_pool_used, pool.credit_pool_available) == (
        2500,
        1200,
        1300,
    )
    rows = client.get("/api/v1/partner/billing/periods", headers=headers).get_json()["periods"]
    summary = [
        (
            r["billingPeriodStart"],
            r["identifications"],
            r["estimatedCost"],
            r["terms"]["creditPoolTotal"],
        )
        for r in rows
    ]
    assert summary == [
        # 1,000 x 0.20 + 200 x 0.05 = 200 + 10 = 210.00 under the new tiers.
        ("2025-10-01", 1200, 210.0, 2500),
        # September as it was billed: 100 x 0.10 = 10.00, pool 1,000.
        ("2025-09-01", 100, 10.0, 1000),
        ("2025-08-01", 0, 0.0, 1000),
    ]
    # What was left in September's pool at its end: 1,000 - 100; October's: 2,500 - 1,200.
    assert metrics.credits_remaining(partner, D(2025, 9, 30)) == 900
    assert metrics.credits_remaining(partner, D(2025, 10, 5)) == 1300
    # Now the calculator uses October's tiers: 1,000 x 0.20 + 500 x 0.05 = 225.00.
    calc = client.get("/api/v1/partner/billing/calculate?usage=1500", headers=headers).get_json()
    assert calc["totalCost"] == 225.0
    assert calc["terms"]["effectiveFrom"] == "2025-10-01"
    usage = client.get("/api/v1/partner/billing/usage", headers=headers).get_json()
    assert (usage["estimatedCost"], usage["terms"]["creditPoolTotal"]) == (210.0, 2500)
    # October's month report: one billing period, the month itself, priced at 210.00.
    report = client.get("/api/v1/partner/reports/2025-10", headers=headers).get_json()
    assert report["estimatedCost"] == 210.0
    assert [b["creditPoolTotal"] for b in report["billingPeriods"]] == [2500]
    september = client.get("/api/v1/partner/reports/2025-09", headers=headers).get_json()
    assert (september["estimatedCost"], september["billingPeriods"][0]["creditPoolTotal"]) == (
        10.0,
        1000,
    )


def test_cumulative_credits_use_each_period_s_pool(acme, freeze):
    partner, _org = acme
    change(partner, credit_pool_total=2500)
    freeze(datetime(2025, 10, 2, 12))
    db.session.expire_all()
    points = metrics.cumulative_credits(partner, P(D(2025, 9, 30), D(2025, 10, 1)))
    # 30 Sep: 100 used of September's 1,000; 1 Oct: a new period, nothing used of 2,500.
    assert [(p.credit_pool_total, p.credits_remaining) for p in points] == [
        (1000, 900),
        (2500, 2500),
    ]


def test_a_billing_day_change_keeps_the_current_period_and_starts_on_the_old_boundary(
    freeze, make_partner, make_org, add_events
):
    freeze(datetime(2025, 3, 10, 12))
    partner = make_partner("dayco", pool=1000, billing_day=1, created_at=datetime(2025, 1, 10))
    org = make_org(partner, "A", tier="paid", created_at=datetime(2025, 1, 10))
    done = change(partner, billing_day_of_month=15)
    assert done.effective_from == D(2025, 4, 1)  # the day after the current period, 1-31 Mar
    # The current period keeps its dates.
    assert periods.current_billing_period(partner) == P(D(2025, 3, 1), D(2025, 3, 31))
    assert billing.billing_info(partner).next_billing_date == D(2025, 4, 1)
    # 1 Apr starts on the old schedule's boundary and runs to the day before the new
    # day's next date (15 Apr); from then on every period starts on the 15th.
    assert periods.billing_periods(partner, D(2025, 1, 10), D(2025, 6, 20)) == [
        P(D(2025, 1, 1), D(2025, 1, 31)),
        P(D(2025, 2, 1), D(2025, 2, 28)),
        P(D(2025, 3, 1), D(2025, 3, 31)),
        P(D(2025, 4, 1), D(2025, 4, 14)),
        P(D(2025, 4, 15), D(2025, 5, 14)),
        P(D(2025, 5, 15), D(2025, 6, 14)),
        P(D(2025, 6, 15), D(2025, 7, 14)),
    ]
    freeze(datetime(2025, 4, 5, 12))
    db.session.expire_all()
    usage = billing.current_usage(partner)
    assert (usage.billing_period_start, usage.billing_period_end, usage.days_in_period) == (
        D(2025, 4, 1),
        D(2025, 4, 14),
        14,
    )
    assert billing.billing_info(partner).next_billing_date == D(2025, 4, 15)
    freeze(datetime(2025, 4, 20, 12))
    add_events(
        partner,
        [
            ident("a", org, 50, "2025-04-10T10:00:00Z"),
            ident("b", org, 7, "2025-04-14T23:00:00Z"),
            ident("c", org, 20, "2025-04-15T00:30:00Z"),
        ],
    )
    db.session.expire_all()
    # 1-14 Apr used 50 + 7; 15 Apr starts a fresh pool: 20 used.
    assert metrics.credits_remaining(partner, D(2025, 4, 14)) == 1000 - 57
    assert metrics.credits_remaining(partner, D(2025, 4, 15)) == 1000 - 20
    rows = billing.past_periods(partner)
    assert [
        (r.billing_period_start, r.billing_period_end, r.identifications) for r in rows[:3]
    ] == [
        (D(2025, 4, 15), D(2025, 5, 14), 20),
        (D(2025, 4, 1), D(2025, 4, 14), 57),
        (D(2025, 3, 1), D(2025, 3, 31), 0),
    ]
    assert rows[0].is_current and not rows[1].is_current


def test_a_later_billing_day_moves_back_to_an_earlier_one(freeze, make_partner):
    # Day 15 becomes day 1 on 20 Mar, in the period 15 Mar - 14 Apr.
    freeze(datetime(2025, 3, 20, 12))
    partner = make_partner("later", pool=1000, billing_day=15, created_at=datetime(2025, 2, 20))
    assert change(partner, billing_day_of_month=1).effective_from == D(2025, 4, 15)
    assert periods.billing_periods(partner, D(2025, 3, 20), D(2025, 5, 2)) == [
        P(D(2025, 3, 15), D(2025, 4, 14)),
        P(D(2025, 4, 15), D(2025, 4, 30)),
        P(D(2025, 5, 1), D(2025, 5, 31)),
    ]


def test_a_second_change_in_a_period_replaces_the_first_and_a_revert_removes_it(acme):
    partner, _org = acme
    change(partner, credit_pool_total=2000)
    change(partner, credit_pool_total=3000)
    versions = db.session.execute(
        select(PartnerTerms.effective_from, PartnerTerms.credit_pool_total).order_by(
            PartnerTerms.effective_from
        )
    ).all()
    assert [tuple(v) for v in versions] == [(D(2025, 8, 1), 1000), (D(2025, 10, 1), 3000)]
    assert billing.billing_info(partner).next_terms.credit_pool_total == 3000
    change(partner, credit_pool_total=1000)
    versions = db.session.execute(select(PartnerTerms.effective_from)).scalars().all()
    assert versions == [D(2025, 8, 1)]
    assert billing.billing_info(partner).next_terms is None
    assert partner.credit_pool_total == 1000


def test_a_pool_below_the_allocations_is_refused_with_the_shortfall(acme, make_org):
    partner, _org = acme
    make_org(partner, "Beta", initial_credits=400, tier="paid")
    with pytest.raises(AppError) as refused:
        change(partner, credit_pool_total=600)
    assert refused.value.status == 422
    assert refused.value.field == "creditPoolTotal"
    # Allocated: 300 + 400 = 700; 700 - 600 = 100 short.
    assert (
        "A pool of 600 credits is 100 short of the 700 credits allocated" in refused.value.message
    )
    assert refused.value.details["shortfall"] == 100
    db.session.expire_all()
    assert partner.credit_pool_total == 1000
    assert db.session.execute(select(PartnerTerms)).all() == []
    assert (
        db.session.execute(select(AuditEntry).where(AuditEntry.object_type == "partner")).all()
        == []
    )
    # Exactly the allocations is enough.
    assert change(partner, credit_pool_total=700).effective_from == D(2025, 10, 1)


def test_allocations_must_fit_the_scheduled_pool_too(acme):
    from app import accounts

    partner, org = acme
    change(partner, credit_pool_total=500)  # from 1 Oct; September keeps 1,000
    with pytest.raises(AppError) as refused:
        accounts.set_allocation(partner, org, 600, None)
    assert refused.value.details["creditPoolTotal"] == 500
    accounts.set_allocation(partner, org, 500, None)


def test_a_settings_change_is_audited_with_before_and_after(acme):
    partner, _org = acme
    change(partner, name="Acme Agency", credit_pool_total=2500, pricing_tiers=TWO_TIERS)
    entry = db.session.execute(
        select(AuditEntry).where(AuditEntry.object_type == "partner")
    ).scalar_one()
    assert (entry.object_type, entry.action, entry.actor_kind, entry.actor) == (
        "partner",
        "update",
        "cli",
        "cli",
    )
    assert entry.before == {
        "name": "Acme",
        "creditPoolTotal": 1000,
        "pricingTiers": [
            {"tier": "Starter", "pricePerIdentification": "0.10", "minUsage": 0, "maxUsage": 10000},
            {
                "tier": "Growth",
                "pricePerIdentification": "0.08",
                "minUsage": 10000,
                "maxUsage": 100000,
            },
            {
                "tier": "Scale",
                "pricePerIdentification": "0.05",
                "minUsage": 100000,
                "maxUsage": None,
            },
        ],
    }
    assert entry.after == {
        "name": "Acme Agency",
        "creditPoolTotal": 2500,
        "pricingTiers": TWO_TIERS,
        "effectiveFrom": "2025-10-01",
    }
    # Saving the same values again changes nothing and records nothing.
    change(partner)
    assert (
        len(db.session.execute(select(AuditEntry).where(AuditEntry.object_type == "partner")).all())
        == 1
    )
