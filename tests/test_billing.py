"""The one projection (billing.projection): each method, the run-out, the unused credits.

The partner "acme" (UTC, monthly billing from the 1st, default tiers: 0.10 a unit up to
10,000) has one organization whose identifications in November 2025 (30 days) are:

  Nov 1: 4   Nov 2: 6   Nov 5: 7   Nov 8: 3   Nov 10: 14   Nov 12: 2

and a page_view of 50 on Nov 9, which uses no credit. Every expected number below is
worked out by hand from this table in the comment next to it.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from app import billing
from app.periods import Period

D = date
NOVEMBER = Period(D(2025, 11, 1), D(2025, 11, 30))
USES = [(1, 4), (2, 6), (5, 7), (8, 3), (10, 14), (12, 2)]


def event(event_id, org, etype, quantity, day, month=11):
    return {
        "eventId": event_id,
        "organizationId": org.id,
        "type": etype,
        "quantity": quantity,
        "occurredAt": f"2025-{month:02d}-{day:02d}T10:00:00Z",
    }


@pytest.fixture
def acme(make_partner, make_org, add_events):
    def build(pool=100):
        partner = make_partner("acme", pool=pool, created_at=datetime(2025, 9, 1))
        org = make_org(partner, "Org", created_at=datetime(2025, 9, 1))
        events = [event(f"i{day}", org, "identification", q, day) for day, q in USES]
        events.append(event("pv", org, "page_view", 50, 9))
        assert add_events(partner, events).rejected == []
        return partner

    return build


def test_the_period_s_first_day_has_no_projection(acme):
    p = billing.projection(acme(), D(2025, 11, 1))
    assert p.method == "insufficient_data"
    assert p.window is None and p.rate is None and p.daily_rate is None
    assert p.used == 4  # today so far
    assert (p.projected_identifications, p.projected_cost) == (None, None)
    assert (p.runout_date, p.unused_at_reset) == (None, None)
    assert p.line() == []
    assert not p.exhausted and p.remaining == 96


def test_the_second_day_averages_its_one_complete_day(acme):
    p = billing.projection(acme(), D(2025, 11, 2))
    assert p.method == "period_average"
    assert p.window == Period(D(2025, 11, 1), D(2025, 11, 1))
    assert p.daily_rate == Decimal("4.00")
    # Nov 1 used 4; today has used 6 already, more than the rate of 4, so it counts 6;
    # the 28 days after it (Nov 3..30) count 4 each: 4 + 6 + 112 = 122.
    assert (p.complete_credits, p.used) == (4, 10)
    assert p.projected_identifications == 122
    assert p.projected_cost == Decimal("12.20")
    # 10 through today; 90 more at 4 a day take 22.5 -> 23 days: Nov 25 (102 >= 100;
    # Nov 24 has 98).
    assert p.runout_date == D(2025, 11, 25)
    assert p.unused_at_reset is None
    assert p.line() == [(D(2025, 11, 1), 4), (D(2025, 11, 2), 10), (D(2025, 11, 30), 122)]


@pytest.mark.parametrize(
    ("today", "method", "window", "window_credits"),
    [
        # 6 complete days (Nov 1..6): their average; Nov 1 4 + Nov 2 6 + Nov 5 7 = 17.
        (D(2025, 11, 7), "period_average", (D(2025, 11, 1), D(2025, 11, 6)), 17),
        # 7 complete days: the last 7 are all of them, Nov 1..7: 17 again.
        (D(2025, 11, 8), "last_7_complete_days", (D(2025, 11, 1), D(2025, 11, 7)), 17),
        # 8 complete days: the last 7 are Nov 2..8: 6 + 7 + 3 = 16.
        (D(2025, 11, 9), "last_7_complete_days", (D(2025, 11, 2), D(2025, 11, 8)), 16),
    ],
)
def test_the_method_switches_at_7_complete_days(acme, today, method, window, window_credits):
    p = billing.projection(acme(), today)
    assert (p.method, p.window, p.window_credits) == (method, Period(*window), window_credits)


@pytest.mark.parametrize(
    ("pool", "runout", "unused"),
    [
        # 99.14 projected (below): the pool outlasts the period, 100 - 99 = 1 left unused.
        (100, None, 1),
        # 99 is reached: 37.43 through today, 61.57 more at 24/7 take 17.96 -> 18 days:
        # Nov 30, the period's last day, still before the reset on Dec 1.
        (99, D(2025, 11, 30), None),
        # 90: 52.57 more at 24/7 take 15.33 -> 16 days: Nov 28 (92.29 >= 90; Nov 27 88.86).
        (90, D(2025, 11, 28), None),
    ],
)
def test_the_last_7_complete_days_project_the_run_out(acme, pool, runout, unused):
    p = billing.projection(acme(pool), D(2025, 11, 12))
    assert p.method == "last_7_complete_days"
    # Nov 5..11 used 7 + 3 + 14 = 24: 24/7 = 3.4285... a day, shown 3.43.
    assert p.window == Period(D(2025, 11, 5), D(2025, 11, 11))
    assert (p.window_credits, p.daily_rate) == (24, Decimal("3.43"))
    # Complete days Nov 1..11 used 34; today's 2 is less than the rate, so today counts
    # 24/7, as do the 18 days after it: 34 + 19 x 24/7 = 99.14 -> 99, at 0.10 = 9.90.
    assert (p.complete_credits, p.used) == (34, 36)
    assert (p.projected_identifications, p.projected_cost) == (99, Decimal("9.90"))
    assert (p.runout_date, p.unused_at_reset) == (runout, unused)
    assert p.reset_date == D(2025, 12, 1)
    assert p.line() == [(D(2025, 11, 11), 34), (D(2025, 11, 12), 37), (D(2025, 11, 30), 99)]


@pytest.mark.parametrize(
    ("pool", "runout", "unused"), [(100, D(2025, 11, 30), None), (101, None, 1)]
)
def test_a_projection_that_ends_exactly_at_the_pool_runs_out_on_the_last_day(
    acme, pool, runout, unused
):
    p = billing.projection(acme(pool), D(2025, 11, 4))
    # Nov 1..3 used 10: 10/3 a day for today and the 26 days after it:
    # 10 + 27 x 10/3 = 100 exactly.
    assert (p.method, p.projected_identifications) == ("period_average", 100)
    assert (p.runout_date, p.unused_at_reset) == (runout, unused)


def test_a_used_up_pool_has_neither_run_out_date_nor_unused_credits(acme):
    p = billing.projection(acme(30), D(2025, 11, 12))
    assert p.exhausted and p.remaining == -6  # 36 used of 30
    assert (p.runout_date, p.unused_at_reset) == (None, None)
    assert p.projected_identifications == 99  # the period is still projected


def test_the_projection_rounds_half_up_once(make_partner, make_org, add_events):
    partner = make_partner("half", pool=1000, created_at=datetime(2025, 9, 1))
    org = make_org(partner, "Org", created_at=datetime(2025, 9, 1))
    assert add_events(partner, [event("o1", org, "identification", 3, 1, month=10)]).rejected == []
    p = billing.projection(partner, D(2025, 10, 3))
    # Oct 1..2 used 3: 1.5 a day for today and the 28 days after it (Oct 31 ends the
    # period): 3 + 29 x 1.5 = 46.5 -> 47 (half up; half to even would give 46).
    assert p.daily_rate == Decimal("1.50")
    assert p.projected_identifications == 47
    assert p.projected_cost == Decimal("4.70")
    assert p.unused_at_reset == 953


def test_today_is_the_partner_s_local_day(freeze, make_partner):
    # 12:00 UTC on Nov 30 is already 01:00 on Dec 1 in Auckland (UTC+13): a new period.
    freeze(datetime(2025, 11, 30, 12))
    partner = make_partner("kiwi", tz="Pacific/Auckland", created_at=datetime(2025, 9, 1))
    p = billing.projection(partner)
    assert (p.today, p.period.start, p.method) == (
        D(2025, 12, 1),
        D(2025, 12, 1),
        "insufficient_data",
    )


def test_current_usage_answers_the_same_projection(acme, freeze):
    freeze(datetime(2025, 11, 12, 12))
    usage = billing.current_usage(acme())
    assert usage.identifications == 36
    assert usage.projection_method == "last_7_complete_days"
    assert (usage.projected_identifications, usage.projected_cost) == (99, Decimal("9.90"))
