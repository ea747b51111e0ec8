"""Properties (hypothesis) of the promises partners rely on.

- Replaying any batch, any number of times, in any order, later, changes nothing: not a
  stored row (not even when it was received), not a rollup, and the answer says so.
- No sequence of allocation, tier and status changes ever allocates more than the pool or
  gives a trial organization more than 500 credits; a refused change (422) changes nothing.
- The graduated cost equals a unit-by-unit sum and never falls as usage grows.

Range additivity and rollups-equal-a-raw-recount are in test_properties.py.
"""

from __future__ import annotations

import itertools
import random
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from app import accounts, billing, ingest, models, rollups
from app.errors import AppError
from app.extensions import db
from app.timeutil import set_frozen_now

NOW = datetime(2026, 1, 10, 12)
TYPES = ["identification", "page_view", "session"]
PROFILE = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_slugs = itertools.count()


def new_partner(pool: int = 10**9, tz: str = "Europe/Paris") -> models.Partner:
    set_frozen_now(NOW)
    return accounts.create_partner("P", f"rel-{next(_slugs)}", pool, 1, "monthly", tz)


# --- replaying batches -------------------------------------------------------------------

event_st = st.fixed_dictionaries(
    {
        "id": st.integers(0, 30),  # a small pool of ids: repeats are common
        "org": st.integers(0, 2),  # 2 is another partner's organization
        "type": st.sampled_from(TYPES + ["Bad-Type"]),
        "quantity": st.integers(-2, 50),
        "minute": st.integers(0, 370 * 24 * 60),  # minutes after 2025-01-01 00:00 UTC
    }
)


def snapshot(partner_id: str) -> dict[str, list[tuple[Any, ...]]]:
    """Return every row the partner has in the event and rollup tables, sorted."""
    tables = [models.UsageEvent, models.OrgDailyUsage, models.PartnerDailyUsage]
    receipts = getattr(models, "PartnerDailyReceipt", None)
    if receipts is not None:
        tables.append(receipts)
    out = {}
    for model in tables:
        table = model.__table__
        cols = [c for c in table.columns if c.name != "id"]
        rows = db.session.execute(select(*cols).where(table.c.partner_id == partner_id))
        out[table.name] = sorted(tuple(r) for r in rows)
    return out


@PROFILE
@given(
    events=st.lists(event_st, min_size=1, max_size=40),
    cuts=st.lists(st.integers(0, 40), max_size=5),
    replays=st.lists(st.integers(0, 5), min_size=1, max_size=8),
    later=st.integers(0, 3),
)
def test_replaying_any_batch_changes_nothing(app_ctx, events, cuts, replays, later):
    partner = new_partner()
    mine = [
        accounts.create_organization(partner, f"O{i}", created_at=datetime(2024, 1, 1))
        for i in range(2)
    ]
    other = accounts.create_organization(new_partner(), "Theirs")
    set_frozen_now(NOW)
    org_ids = [mine[0].id, mine[1].id, other.id]

    def as_json(ev: dict[str, Any]) -> dict[str, Any]:
        at = datetime(2025, 1, 1) + timedelta(minutes=ev["minute"])
        return {
            "eventId": f"ev-{ev['id']}",
            "organizationId": org_ids[ev["org"]],
            "type": ev["type"],
            "quantity": ev["quantity"],
            "occurredAt": at.isoformat() + "Z",
        }

    bounds = sorted({0, len(events), *(c for c in cuts if c < len(events))})
    batches = [[as_json(e) for e in events[a:b]] for a, b in itertools.pairwise(bounds)]
    first = [ingest.ingest_batch(partner, list(enumerate(b))) for b in batches]
    before = snapshot(partner.id)

    # Independently: the first valid occurrence of each id is stored, nothing else.
    stored: dict[str, dict[str, Any]] = {}
    for ev in events:
        valid = ev["org"] < 2 and ev["type"] in TYPES and ev["quantity"] >= 0
        if valid:
            stored.setdefault(f"ev-{ev['id']}", ev)
    assert sum(r.accepted for r in first) == len(stored)
    assert {r[2]: r[4] for r in before["usage_event"]} == {
        k: v["quantity"] for k, v in stored.items()
    }
    assert rollups.verify(partner.id) == []

    # Replays arrive later (the clock moved on), in any order, any number of times.
    set_frozen_now(NOW + timedelta(days=later, hours=later))
    for pick in replays:
        index = pick % len(batches)
        again = ingest.ingest_batch(partner, list(enumerate(batches[index])))
        assert again.accepted == 0
        valid = len(batches[index]) - len(first[index].rejected)
        assert again.duplicates == valid
        assert [(r.index, r.code) for r in again.rejected] == [
            (r.index, r.code) for r in first[index].rejected
        ]
    assert snapshot(partner.id) == before
    assert rollups.verify(partner.id) == []


# --- allocations --------------------------------------------------------------------------

TRIAL_CAP = 500  # spec §1: trial allocations are capped at 500 credits

op_st = st.one_of(
    st.tuples(st.just("credits"), st.integers(0, 3), st.integers(0, 2500)),
    st.tuples(st.just("tier"), st.integers(0, 3), st.sampled_from(["trial", "paid"])),
    st.tuples(
        st.just("status"), st.integers(0, 3), st.sampled_from(["active", "suspended", "canceled"])
    ),
)


class Model:
    """The allocation rules of the spec, written out plainly."""

    def __init__(self, pool: int, tiers: list[str]) -> None:
        self.pool = pool
        self.orgs = [{"tier": t, "status": "active", "credits": 0} for t in tiers]

    def apply(self, op: str, i: int, value: Any) -> bool:
        """Apply one change; return False when it must be refused (and change nothing)."""
        org = self.orgs[i]
        if op == "credits":
            others = sum(
                o["credits"]
                for j, o in enumerate(self.orgs)
                if j != i and o["status"] != "canceled"
            )
            if org["status"] == "canceled" and value > 0:
                return False
            if org["tier"] == "trial" and value > TRIAL_CAP:
                return False
            if others + value > self.pool:
                return False
            org["credits"] = value
        elif op == "tier":
            if value == "trial" and org["credits"] > TRIAL_CAP:
                return False
            org["tier"] = value
        else:
            if value == "canceled":
                org["credits"] = 0  # canceling releases the allocation to the pool
            org["status"] = value
        return True


def org_state(partner_id: str) -> list[tuple[Any, ...]]:
    db.session.expire_all()
    return [
        (o.tier, o.status, o.credits_allocated)
        for o in db.session.execute(
            select(models.Organization)
            .where(models.Organization.partner_id == partner_id)
            .order_by(models.Organization.name)
        ).scalars()
    ]


def history_count(partner_id: str) -> int:
    return len(
        db.session.execute(
            select(models.CreditAllocation.id).where(
                models.CreditAllocation.partner_id == partner_id
            )
        ).all()
    )


@PROFILE
@given(
    pool=st.integers(0, 3000),
    tiers=st.lists(st.sampled_from(["trial", "paid"]), min_size=4, max_size=4),
    ops=st.lists(op_st, min_size=1, max_size=25),
)
def test_allocations_never_exceed_the_pool(app_ctx, pool, tiers, ops):
    partner = new_partner(pool=pool)
    orgs = [accounts.create_organization(partner, f"O{i}", tier=t) for i, t in enumerate(tiers)]
    model = Model(pool, tiers)
    for step, (op, i, value) in enumerate(ops):
        set_frozen_now(NOW + timedelta(seconds=step + 1))  # one change a second
        state, trail = org_state(partner.id), history_count(partner.id)
        allowed = model.apply(op, i, value)
        try:
            if op == "credits":
                accounts.set_allocation(partner, orgs[i], value, notes="property")
            elif op == "tier":
                accounts.set_tier(partner, orgs[i], value)
            else:
                accounts.set_status(partner, orgs[i], value)
        except AppError as exc:
            assert not allowed, f"{op} {i} {value} refused: {exc.message}"
            assert exc.status == 422
            assert org_state(partner.id) == state, "a refused change changed something"
            assert history_count(partner.id) == trail
        else:
            assert allowed, f"{op} {i} {value} should have been refused"
        now = org_state(partner.id)
        assert now == [(o["tier"], o["status"], o["credits"]) for o in model.orgs]
        assert sum(c for _t, s, c in now if s != "canceled") <= pool
        assert all(c <= TRIAL_CAP for t, _s, c in now if t == "trial")
    # The audit trail ends at each organization's current allocation.
    db.session.expire_all()
    for org in orgs:
        trail = accounts.allocation_history(org)
        assert (trail[0].credits_allocated if trail else 0) == org.credits_allocated


# --- graduated cost ----------------------------------------------------------------------

price_st = st.decimals(min_value=0, max_value=5, places=4, allow_nan=False, allow_infinity=False)


@st.composite
def tiers_st(draw: Any) -> list[dict[str, Any]]:
    """Contiguous bands from 0 with an open top, given in any order."""
    edges = sorted(draw(st.sets(st.integers(1, 400), max_size=4)))
    lows = [0, *edges]
    highs: list[int | None] = [*edges, None]
    prices = [draw(price_st) for _ in lows]
    tiers = [
        {"tier": f"T{i}", "pricePerIdentification": str(p), "minUsage": lo, "maxUsage": hi}
        for i, (lo, hi, p) in enumerate(zip(lows, highs, prices, strict=True))
    ]
    random.Random(draw(st.integers(0, 99))).shuffle(tiers)
    return tiers


def unit_by_unit(usage: int, tiers: list[dict[str, Any]]) -> Decimal:
    """Price identification number 0, 1, ..., usage-1 at the band holding it, and add."""
    total = Decimal(0)
    for unit in range(usage):
        band = [
            t
            for t in tiers
            if t["minUsage"] <= unit and (t["maxUsage"] is None or unit < t["maxUsage"])
        ]
        assert len(band) == 1
        total += Decimal(band[0]["pricePerIdentification"])
    return total


@settings(max_examples=200, deadline=None)
@given(tiers=tiers_st(), usage=st.integers(0, 700), more=st.integers(0, 700))
def test_graduated_cost_is_the_unit_by_unit_sum_and_monotonic(tiers, usage, more):
    total, breakdown = billing.graduated_cost(usage, tiers)
    assert total == unit_by_unit(usage, tiers)
    assert sum(b.units for b in breakdown) == usage
    assert all(b.amount == b.units * b.price_per_identification for b in breakdown)
    bigger, _ = billing.graduated_cost(usage + more, tiers)
    assert bigger >= total
    # A unit more costs exactly the price of the band the next unit falls in.
    step, _ = billing.graduated_cost(usage + 1, tiers)
    assert step - total == unit_by_unit(usage + 1, tiers) - unit_by_unit(usage, tiers)


@settings(max_examples=100, deadline=None)
@given(tiers=tiers_st(), usage=st.integers(10**6, 10**12))
def test_graduated_cost_of_huge_usage_is_exact(tiers, usage):
    # Beyond the last edge every unit is priced at the top band: the cost grows linearly.
    top = max(tiers, key=lambda t: t["minUsage"])
    assume(usage > top["minUsage"])
    total, _ = billing.graduated_cost(usage, tiers)
    base, _ = billing.graduated_cost(top["minUsage"], tiers)
    assert total == base + (usage - top["minUsage"]) * Decimal(top["pricePerIdentification"])
    assert isinstance(total, Decimal)


@pytest.mark.parametrize(
    "bad",
    [
        [],
        [{"tier": "A", "pricePerIdentification": "0.1", "minUsage": 5, "maxUsage": None}],
        [
            {"tier": "A", "pricePerIdentification": "0.1", "minUsage": 0, "maxUsage": 10},
            {"tier": "B", "pricePerIdentification": "0.1", "minUsage": 11, "maxUsage": None},
        ],
        [{"tier": "A", "pricePerIdentification": "-0.1", "minUsage": 0, "maxUsage": None}],
        [{"tier": "A", "pricePerIdentification": "NaN", "minUsage": 0, "maxUsage": None}],
        [{"tier": "A", "pricePerIdentification": "0.1", "minUsage": 0, "maxUsage": 10}],
    ],
)
def test_tiers_that_leave_a_unit_unpriced_are_refused(bad):
    with pytest.raises(billing.TierError):
        billing.graduated_cost(10, bad)
