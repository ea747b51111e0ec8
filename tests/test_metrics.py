"""The aggregation module: every figure checked against numbers worked out by hand."""

from dataclasses import asdict
from datetime import date, datetime

import pytest

from app import accounts, metrics, periods, rollups
from app.metrics import SeriesPoint
from app.periods import Period

D = date
NOW = datetime(2025, 11, 14, 12, 0)  # a Friday


def ev(event_id, org, etype, quantity, at):
    """Build one raw event for org (an Organization) at an ISO timestamp."""
    return {
        "eventId": event_id,
        "organizationId": org.id,
        "type": etype,
        "quantity": quantity,
        "occurredAt": at,
    }


def P(start, end):  # noqa: N802 (reads like a constructor)
    return Period(start, end)


def store(add_events, partner, events):
    result = add_events(partner, events)
    assert result.rejected == [], [r.as_json() for r in result.rejected]
    return result


@pytest.fixture
def base(freeze, make_partner, make_org, add_events):
    """UTC partner, pool 1000, billing day 1; three organizations and six events."""
    freeze(NOW)
    partner = make_partner("base", pool=1000)
    a = make_org(partner, "Alpha", created_at=datetime(2025, 1, 1))
    b = make_org(partner, "Bravo", created_at=datetime(2025, 6, 15))
    c = make_org(partner, "Charlie", created_at=datetime(2025, 10, 10, 12))
    store(
        add_events,
        partner,
        [
            ev("e1", a, "identification", 5, "2025-09-30T23:59:59Z"),
            ev("e2", a, "identification", 3, "2025-10-01T00:00:00Z"),
            ev("e3", b, "page_view", 10, "2025-10-15T12:00:00Z"),
            ev("e4", b, "identification", 2, "2025-10-31T23:59:59Z"),
            ev("e5", a, "session", 0, "2025-11-01T00:00:00Z"),
            ev("e6", c, "identification", 7, "2025-11-01T08:00:00Z"),
        ],
    )
    return partner, (a, b, c)


def test_inclusive_start_and_end(base):
    partner, _ = base
    s = metrics.summary(partner, P(D(2025, 10, 1), D(2025, 10, 31)))
    # e2 (00:00:00 on the first day) and e4 (23:59:59 on the last day) are both inside;
    # e1 (one second before) and e5/e6 (Nov 1) are not.
    assert asdict(s) == {
        "total_organizations": 3,  # Alpha, Bravo, Charlie (Oct 10) by Oct 31
        "active_organizations": 3,
        "total_identifications": 5,  # e2 3 + e4 2
        "credits_used": 5,
        "credits_remaining": 995,  # billing period Oct 1..31: 1000 - 5
        "organizations_with_activity": 2,  # Alpha (e2), Bravo (e3, e4)
        "total_quantity": 15,  # 3 + 10 + 2
        "total_events": 3,
    }


def test_single_day(base):
    partner, _ = base
    s = metrics.summary(partner, P(D(2025, 9, 30), D(2025, 9, 30)))
    assert (s.total_identifications, s.total_events, s.organizations_with_activity) == (
        5,
        1,
        1,
    )  # e1 only
    # Sep 30 is in the billing period Sep 1..30, which used only e1's 5 credits.
    assert s.credits_remaining == 995
    # Only Alpha and Bravo existed on Sep 30.
    assert s.total_organizations == 2
    s = metrics.summary(partner, P(D(2025, 11, 1), D(2025, 11, 1)))
    # e5 (session, quantity 0: still an event and activity) and e6 (7 identifications).
    assert (
        s.total_identifications,
        s.total_quantity,
        s.total_events,
        s.organizations_with_activity,
    ) == (7, 7, 2, 2)


def test_empty_range_between_events(base):
    partner, _ = base
    s = metrics.summary(partner, P(D(2025, 10, 2), D(2025, 10, 9)))
    assert asdict(s) == {
        "total_organizations": 2,  # Charlie only arrives on Oct 10
        "active_organizations": 2,
        "total_identifications": 0,
        "credits_used": 0,
        "credits_remaining": 997,  # Oct 1..9 of the billing period used e2's 3
        "organizations_with_activity": 0,
        "total_quantity": 0,
        "total_events": 0,
    }


def test_range_before_any_data(base):
    partner, _ = base
    s = metrics.summary(partner, P(D(2024, 1, 1), D(2024, 12, 31)))
    assert asdict(s) == {
        "total_organizations": 0,
        "active_organizations": 0,
        "total_identifications": 0,
        "credits_used": 0,
        "credits_remaining": 1000,
        "organizations_with_activity": 0,
        "total_quantity": 0,
        "total_events": 0,
    }
    assert asdict(metrics.usage(partner, P(D(2024, 1, 1), D(2024, 12, 31)))) == {
        "total_quantity": 0,
        "total_events": 0,
        "by_type": {},
    }


def test_month_boundary(base):
    partner, _ = base
    sept = metrics.summary(partner, P(D(2025, 9, 1), D(2025, 9, 30)))
    octo = metrics.summary(partner, P(D(2025, 10, 1), D(2025, 10, 31)))
    nov = metrics.summary(partner, P(D(2025, 11, 1), D(2025, 11, 30)))
    assert [m.total_identifications for m in (sept, octo, nov)] == [5, 5, 7]
    assert [m.total_events for m in (sept, octo, nov)] == [1, 3, 2]
    # Nov 30 is after today; the pool for Nov 1..30 has lost 7 (e6).
    assert nov.credits_remaining == 993


def test_year_boundary(freeze, make_partner, make_org, add_events):
    freeze(NOW)
    partner = make_partner("yb", pool=50)
    a = make_org(partner, "A", created_at=datetime(2024, 6, 1))
    store(
        add_events,
        partner,
        [
            ev("y1", a, "identification", 4, "2024-12-31T23:59:59Z"),
            ev("y2", a, "identification", 6, "2025-01-01T00:00:00Z"),
            ev("y3", a, "page_view", 1, "2025-01-01T00:00:01+00:00"),
        ],
    )
    dec = metrics.summary(partner, P(D(2024, 12, 1), D(2024, 12, 31)))
    jan = metrics.summary(partner, P(D(2025, 1, 1), D(2025, 1, 31)))
    both = metrics.summary(partner, P(D(2024, 12, 31), D(2025, 1, 1)))
    assert (dec.total_identifications, dec.credits_remaining) == (4, 46)  # 50 - 4
    assert (jan.total_identifications, jan.total_quantity, jan.credits_remaining) == (
        6,
        7,
        44,
    )  # 50 - 6: the pool does not roll over
    assert (both.total_identifications, both.total_events) == (10, 3)
    series = metrics.timeseries(partner, P(D(2024, 12, 30), D(2025, 1, 2)), "day")
    assert [(p.date.isoformat(), p.identifications, p.events) for p in series] == [
        ("2024-12-30", 0, 0),
        ("2024-12-31", 4, 1),
        ("2025-01-01", 6, 2),
        ("2025-01-02", 0, 0),
    ]


def test_dst_changes_in_berlin(freeze, make_partner, make_org, add_events):
    freeze(NOW)
    partner = make_partner("berlin", tz="Europe/Berlin")
    a = make_org(partner, "A", created_at=datetime(2025, 1, 1))
    store(
        add_events,
        partner,
        [
            # Spring forward on Mar 30 (CET +01:00 until 02:00, then CEST +02:00).
            ev("s1", a, "identification", 1, "2025-03-29T22:59:59Z"),  # Mar 29 23:59:59 CET
            ev("s2", a, "identification", 10, "2025-03-29T23:30:00Z"),  # Mar 30 00:30 CET
            ev("s3", a, "identification", 100, "2025-03-30T21:59:59Z"),  # Mar 30 23:59:59 CEST
            ev("s4", a, "identification", 1000, "2025-03-31T00:00:00+02:00"),  # Mar 31 00:00
            # Fall back on Oct 26 (CEST until 03:00, then CET).
            ev("f1", a, "page_view", 1, "2025-10-25T21:59:59Z"),  # Oct 25 23:59:59 CEST
            ev("f2", a, "page_view", 10, "2025-10-25T22:00:00Z"),  # Oct 26 00:00 CEST
            ev("f3", a, "page_view", 100, "2025-10-26T02:30:00+02:00"),  # first 02:30 (CEST)
            ev("f4", a, "page_view", 1000, "2025-10-26T02:30:00+01:00"),  # second 02:30 (CET)
            ev("f5", a, "page_view", 10000, "2025-10-26T22:59:59Z"),  # Oct 26 23:59:59 CET
            ev("f6", a, "page_view", 100000, "2025-10-26T23:00:00Z"),  # Oct 27 00:00 CET
        ],
    )
    series = metrics.timeseries(partner, P(D(2025, 3, 29), D(2025, 3, 31)), "day")
    assert [p.identifications for p in series] == [1, 110, 1000]
    series = metrics.timeseries(partner, P(D(2025, 10, 25), D(2025, 10, 27)), "day")
    # Oct 26 holds f2 + f3 + f4 + f5 = 10 + 100 + 1000 + 10000 over its 25 hours.
    assert [p.quantity for p in series] == [1, 11110, 100000]
    assert metrics.summary(partner, P(D(2025, 10, 26), D(2025, 10, 26))).total_events == 4
    assert rollups.verify(partner.id) == []


def test_new_york_local_days(freeze, make_partner, make_org, add_events):
    freeze(NOW)
    partner = make_partner("nyc", tz="America/New_York")
    a = make_org(partner, "A", created_at=datetime(2025, 1, 1))
    store(
        add_events,
        partner,
        [
            # 2025-11-02 falls back at 02:00 EDT (-04) to 01:00 EST (-05).
            ev("n1", a, "identification", 1, "2025-11-02T03:59:59Z"),  # Nov 1 23:59:59 EDT
            ev("n2", a, "identification", 2, "2025-11-02T04:00:00Z"),  # Nov 2 00:00 EDT
            ev("n3", a, "identification", 4, "2025-11-03T04:59:59Z"),  # Nov 2 23:59:59 EST
            ev("n4", a, "identification", 8, "2025-11-03T05:00:00Z"),  # Nov 3 00:00 EST
        ],
    )
    series = metrics.timeseries(partner, P(D(2025, 11, 1), D(2025, 11, 3)), "day")
    assert [p.identifications for p in series] == [1, 6, 8]


def test_kathmandu_partner(freeze, make_partner, make_org, add_events):
    freeze(NOW)
    partner = make_partner("ktm", tz="Asia/Kathmandu")  # +05:45, no DST
    a = make_org(partner, "A", created_at=datetime(2025, 1, 1))
    store(
        add_events,
        partner,
        [
            ev("k1", a, "identification", 1, "2025-10-01T18:14:59Z"),  # Oct 1 23:59:59 local
            ev("k2", a, "identification", 2, "2025-10-01T18:15:00Z"),  # Oct 2 00:00 local
            ev("k3", a, "identification", 4, "2025-10-02T00:10:00+05:45"),  # Oct 2 00:10 local
            ev("k4", a, "identification", 8, "2025-09-30T18:15:00"),  # no offset = UTC: Oct 1
        ],
    )
    series = metrics.timeseries(partner, P(D(2025, 10, 1), D(2025, 10, 2)), "day")
    assert [p.identifications for p in series] == [9, 6]  # 1 + 8, 2 + 4
    # Re-bucketed to UTC: Sep 30 holds k4 (18:15 UTC); Oct 1 holds k1, k2 and k3
    # (k3 is 18:25 UTC on Oct 1): 1 + 2 + 4 = 7.
    rollups.set_timezone(partner, "UTC")
    series = metrics.timeseries(partner, P(D(2025, 9, 30), D(2025, 10, 2)), "day")
    assert [p.identifications for p in series] == [8, 7, 0]
    assert rollups.verify(partner.id) == []


def test_partner_local_day_for_organizations_and_status(freeze, make_partner, make_org):
    freeze(NOW)
    partner = make_partner("nyc2", tz="America/New_York")
    # Created 03:00 UTC Oct 1 = 23:00 EDT Sep 30: it exists at the end of Sep 30 (local).
    org = make_org(partner, "A", created_at=datetime(2025, 10, 1, 3))
    # Canceled 02:00 UTC Nov 1 = 22:00 EDT Oct 31.
    accounts.set_status(partner, org, "canceled", at=datetime(2025, 11, 1, 2))
    assert asdict(metrics.organization_counts(partner, D(2025, 9, 29))) == {
        "total_organizations": 0,
        "active_organizations": 0,
    }
    assert asdict(metrics.organization_counts(partner, D(2025, 9, 30))) == {
        "total_organizations": 1,
        "active_organizations": 1,
    }
    assert asdict(metrics.organization_counts(partner, D(2025, 10, 30))) == {
        "total_organizations": 1,
        "active_organizations": 1,
    }
    assert asdict(metrics.organization_counts(partner, D(2025, 10, 31))) == {
        "total_organizations": 1,
        "active_organizations": 0,
    }


def test_late_events_change_the_old_day(base, add_events, freeze):
    partner, (a, b, _c) = base
    october = P(D(2025, 10, 1), D(2025, 10, 31))
    before = metrics.summary(partner, october)
    assert before.total_identifications == 5
    freeze(datetime(2025, 11, 20, 9))  # six days later, an event for Oct 5 arrives
    store(add_events, partner, [ev("late1", b, "identification", 40, "2025-10-05T10:00:00Z")])
    after = metrics.summary(partner, october)
    assert after.total_identifications == 45  # 5 + 40
    assert after.credits_remaining == 955  # 1000 - 45
    assert after.total_events == 4
    assert after.organizations_with_activity == 2  # Bravo was already active
    day = metrics.timeseries(partner, P(D(2025, 10, 5), D(2025, 10, 5)), "day")
    assert day[0].identifications == 40
    # Other days are untouched.
    assert metrics.summary(partner, P(D(2025, 11, 1), D(2025, 11, 14))).total_identifications == 7
    assert rollups.verify(partner.id) == []


def test_duplicates_inside_one_batch_and_across_runs(freeze, make_partner, make_org, add_events):
    freeze(NOW)
    partner = make_partner("dup")
    a = make_org(partner, "A", created_at=datetime(2025, 1, 1))
    batch = [
        ev("d1", a, "identification", 5, "2025-10-01T10:00:00Z"),
        ev("d1", a, "identification", 5, "2025-10-01T10:00:00Z"),
        # Same eventId, different content: still the same event, the first one wins.
        ev("d1", a, "identification", 99, "2025-10-02T10:00:00Z"),
        ev("d2", a, "page_view", 2, "2025-10-01T11:00:00Z"),
    ]
    first = add_events(partner, batch)
    assert (first.accepted, first.duplicates, len(first.rejected)) == (2, 2, 0)
    oct1 = P(D(2025, 10, 1), D(2025, 10, 2))
    figures = metrics.summary(partner, oct1)
    assert (figures.total_identifications, figures.total_quantity, figures.total_events) == (
        5,
        7,
        2,
    )
    second = add_events(partner, batch)
    assert (second.accepted, second.duplicates) == (0, 4)
    assert metrics.summary(partner, oct1) == figures
    assert rollups.verify(partner.id) == []


def test_active_organizations_as_of_end_date(freeze, make_partner, make_org):
    freeze(NOW)
    partner = make_partner("status")
    a = make_org(partner, "A", created_at=datetime(2025, 1, 1))
    b = make_org(partner, "B", created_at=datetime(2025, 2, 1))
    c = make_org(partner, "C", created_at=datetime(2025, 3, 1))
    make_org(partner, "D", created_at=datetime(2025, 10, 16))
    accounts.set_status(partner, a, "suspended", at=datetime(2025, 10, 10, 12))
    accounts.set_status(partner, a, "active", at=datetime(2025, 10, 20))
    accounts.set_status(partner, b, "canceled", at=datetime(2025, 10, 31, 23, 59, 59))
    accounts.set_status(partner, c, "canceled", at=datetime(2025, 11, 1))

    def counts(end):
        s = metrics.summary(partner, P(D(2025, 10, 1), end))
        return s.total_organizations, s.active_organizations

    assert counts(D(2025, 10, 9)) == (3, 3)  # A, B, C all active
    assert counts(D(2025, 10, 10)) == (3, 2)  # A suspended at noon
    assert counts(D(2025, 10, 15)) == (3, 2)  # D does not exist yet
    assert counts(D(2025, 10, 16)) == (4, 3)  # D created; A still suspended
    assert counts(D(2025, 10, 20)) == (4, 4)  # A active again from 00:00
    assert counts(D(2025, 10, 31)) == (4, 3)  # B canceled at 23:59:59 on the last day
    assert counts(D(2025, 11, 1)) == (4, 2)  # C canceled at 00:00 Nov 1
    # The current status does not leak into the past: today A and D are active.
    assert (a.status, b.status, c.status) == ("active", "canceled", "canceled")


def test_credits_remaining_in_a_past_billing_period(freeze, make_partner, make_org, add_events):
    freeze(NOW)  # today Nov 14: the current billing period is Oct 15..Nov 14
    partner = make_partner("bd15", pool=1000, billing_day=15)
    a = make_org(partner, "A", created_at=datetime(2025, 1, 1))
    store(
        add_events,
        partner,
        [
            ev("c1", a, "identification", 100, "2025-09-14T12:00:00Z"),  # Aug 15..Sep 14
            ev("c2", a, "identification", 40, "2025-09-15T00:00:00Z"),  # Sep 15..Oct 14
            ev("c3", a, "identification", 10, "2025-10-01T12:00:00Z"),
            ev("c4", a, "page_view", 999, "2025-10-01T12:00:00Z"),  # no credits
            ev("c5", a, "identification", 5, "2025-10-14T23:59:59Z"),
            ev("c6", a, "identification", 200, "2025-10-15T00:00:00Z"),  # Oct 15..Nov 14
            ev("c7", a, "identification", 1, "2025-11-10T12:00:00Z"),
        ],
    )
    rem = metrics.credits_remaining
    assert rem(partner, D(2025, 9, 14)) == 900  # 1000 - 100
    assert rem(partner, D(2025, 9, 15)) == 960  # 1000 - 40
    assert rem(partner, D(2025, 10, 1)) == 950  # 1000 - (40 + 10)
    assert rem(partner, D(2025, 10, 14)) == 945  # 1000 - (40 + 10 + 5)
    assert rem(partner, D(2025, 10, 15)) == 800  # 1000 - 200
    assert rem(partner, D(2025, 11, 14)) == 799  # 1000 - (200 + 1): what is left now
    s = metrics.summary(partner, P(D(2025, 10, 1), D(2025, 10, 20)))
    assert (s.credits_used, s.credits_remaining) == (215, 800)  # 10 + 5 + 200
    assert metrics.pool_status(partner).credit_pool_used == 201


def test_credits_remaining_with_annual_billing(freeze, make_partner, make_org, add_events):
    freeze(NOW)
    # Created in March: annual periods run Mar 10 .. Mar 9.
    partner = make_partner(
        "annual", pool=100, billing_day=10, billing_period="annual", created_at=datetime(2024, 3, 5)
    )
    a = make_org(partner, "A", created_at=datetime(2024, 1, 1))
    store(
        add_events,
        partner,
        [
            ev("a1", a, "identification", 1, "2024-03-09T12:00:00Z"),
            ev("a2", a, "identification", 2, "2024-03-10T12:00:00Z"),
            ev("a3", a, "identification", 4, "2025-03-09T12:00:00Z"),
            ev("a4", a, "identification", 8, "2025-03-10T12:00:00Z"),
        ],
    )
    assert metrics.credits_remaining(partner, D(2024, 3, 9)) == 99  # 100 - 1
    assert metrics.credits_remaining(partner, D(2025, 3, 9)) == 94  # 100 - (2 + 4)
    assert metrics.credits_remaining(partner, D(2025, 3, 10)) == 92  # 100 - 8
    assert periods.billing_period(partner, D(2025, 11, 14)) == P(D(2025, 3, 10), D(2026, 3, 9))


def test_usage_by_type_and_filters(base):
    partner, (a, b, c) = base
    period = P(D(2025, 9, 1), D(2025, 11, 14))
    assert asdict(metrics.usage(partner, period)) == {
        "total_quantity": 27,  # 5 + 3 + 10 + 2 + 0 + 7
        "total_events": 6,
        "by_type": {
            "identification": {"quantity": 17, "events": 4},
            "page_view": {"quantity": 10, "events": 1},
            "session": {"quantity": 0, "events": 1},
        },
    }
    assert asdict(metrics.usage(partner, period, event_type="identification")) == {
        "total_quantity": 17,
        "total_events": 4,
        "by_type": {"identification": {"quantity": 17, "events": 4}},
    }
    assert asdict(metrics.usage(partner, period, organization_id=b.id)) == {
        "total_quantity": 12,
        "total_events": 2,
        "by_type": {
            "identification": {"quantity": 2, "events": 1},
            "page_view": {"quantity": 10, "events": 1},
        },
    }
    assert asdict(metrics.usage(partner, period, event_type="nothing")) == {
        "total_quantity": 0,
        "total_events": 0,
        "by_type": {},
    }


def test_partners_do_not_see_each_other(base, make_partner, make_org, add_events):
    partner, _ = base
    other = make_partner("other", pool=10)
    x = make_org(other, "X", created_at=datetime(2025, 1, 1))
    store(add_events, other, [ev("e1", x, "identification", 1000, "2025-10-10T10:00:00Z")])
    s = metrics.summary(partner, P(D(2025, 10, 1), D(2025, 10, 31)))
    assert (s.total_identifications, s.total_organizations) == (5, 3)
    o = metrics.summary(other, P(D(2025, 10, 1), D(2025, 10, 31)))
    assert (o.total_identifications, o.total_organizations, o.credits_remaining) == (
        1000,
        1,
        -990,
    )  # the pool can be overdrawn: 10 - 1000


# --- time series ------------------------------------------------------------------------------


@pytest.fixture
def series_data(freeze, make_partner, make_org, add_events):
    freeze(NOW)
    partner = make_partner("series")
    a = make_org(partner, "A", created_at=datetime(2025, 1, 1))
    b = make_org(partner, "B", created_at=datetime(2025, 1, 1))
    c = make_org(partner, "C", created_at=datetime(2025, 1, 1))
    store(
        add_events,
        partner,
        [
            ev("t0", c, "identification", 100, "2025-09-30T12:00:00Z"),  # Tue, before the period
            ev("t1", a, "identification", 2, "2025-10-01T09:00:00Z"),  # Wed
            ev("t2", b, "identification", 3, "2025-10-01T10:00:00Z"),
            ev("t3", a, "page_view", 5, "2025-10-06T10:00:00Z"),  # Mon
            ev("t4", a, "identification", 1, "2025-10-20T10:00:00Z"),  # Mon
            ev("t5", b, "identification", 4, "2025-11-02T10:00:00Z"),
        ],
    )
    return partner, (a, b, c)


def point(day, ident, events, quantity, orgs, days=1, partial=False):
    return SeriesPoint(
        date=D.fromisoformat(day),
        identifications=ident,
        credits_used=ident,
        events=events,
        quantity=quantity,
        organizations_with_activity=orgs,
        days=days,
        partial=partial,
    )


def test_timeseries_by_day_is_zero_filled(series_data):
    partner, _ = series_data
    assert metrics.timeseries(partner, P(D(2025, 10, 1), D(2025, 10, 3)), "day") == [
        point("2025-10-01", 5, 2, 5, 2),
        point("2025-10-02", 0, 0, 0, 0),
        point("2025-10-03", 0, 0, 0, 0),
    ]


def test_timeseries_by_week_starts_on_monday_clipped(series_data):
    partner, _ = series_data
    # Oct 1 (Wed) .. Oct 20 (Mon). The first week's Monday (Sep 29) is clipped to Oct 1, and
    # t0 on Tue Sep 30 (same week, before the period) must not leak in. The first week
    # (Wed-Sun, 5 days) and the last (Monday alone) are clipped: partial.
    assert metrics.timeseries(partner, P(D(2025, 10, 1), D(2025, 10, 20)), "week") == [
        point("2025-10-01", 5, 2, 5, 2, days=5, partial=True),
        point("2025-10-06", 0, 1, 5, 1, days=7),
        point("2025-10-13", 0, 0, 0, 0, days=7),
        point("2025-10-20", 1, 1, 1, 1, days=1, partial=True),
    ]


def test_timeseries_by_month(series_data):
    partner, _ = series_data
    # Today is Nov 14: November counts 14 days and is still running (partial).
    assert metrics.timeseries(partner, P(D(2025, 9, 15), D(2025, 11, 30)), "month") == [
        point("2025-09-15", 100, 1, 100, 1, days=16, partial=True),  # t0 only; clipped
        point("2025-10-01", 6, 4, 11, 2, days=31),  # 2 + 3 + 1 identifications; +5 views
        point("2025-11-01", 4, 1, 4, 1, days=14, partial=True),
    ]
    # Months that start before the period are clipped; an empty month is still there.
    assert metrics.timeseries(partner, P(D(2025, 7, 20), D(2025, 8, 31)), "month") == [
        point("2025-07-20", 0, 0, 0, 0, days=12, partial=True),
        point("2025-08-01", 0, 0, 0, 0, days=31),
    ]


def test_timeseries_for_one_organization(series_data):
    partner, (a, _b, _c) = series_data
    assert metrics.timeseries(
        partner, P(D(2025, 10, 1), D(2025, 10, 20)), "week", organization_id=a.id
    ) == [
        point("2025-10-01", 2, 1, 2, 1, days=5, partial=True),
        point("2025-10-06", 0, 1, 5, 1, days=7),
        point("2025-10-13", 0, 0, 0, 0, days=7),
        point("2025-10-20", 1, 1, 1, 1, days=1, partial=True),
    ]


def test_timeseries_today_and_the_future_are_partial(series_data):
    partner, _ = series_data
    # Today is Fri Nov 14: its day is still running; a day after it counts no day yet.
    points = metrics.timeseries(partner, P(D(2025, 11, 13), D(2025, 11, 15)), "day")
    assert [(p.days, p.partial) for p in points] == [(1, False), (1, True), (0, True)]
    # The week of Mon Nov 10 counts 5 days (Mon-Fri) and is partial, though not clipped.
    points = metrics.timeseries(partner, P(D(2025, 11, 3), D(2025, 11, 16)), "week")
    assert [(p.date, p.days, p.partial) for p in points] == [
        (D(2025, 11, 3), 7, False),
        (D(2025, 11, 10), 5, True),
    ]


def test_timeseries_totals_match_summary(series_data):
    partner, _ = series_data
    period = P(D(2025, 9, 1), D(2025, 11, 14))
    s = metrics.summary(partner, period)
    for granularity in ("day", "week", "month"):
        points = metrics.timeseries(partner, period, granularity)
        assert sum(p.identifications for p in points) == s.total_identifications == 110
        assert sum(p.events for p in points) == s.total_events == 6
        assert sum(p.quantity for p in points) == s.total_quantity == 115


# --- per organization --------------------------------------------------------------------------


@pytest.fixture
def breakdown_data(freeze, make_partner, make_org, add_events):
    freeze(NOW)  # current billing period (billing day 1): Nov 1..30
    partner = make_partner("bd", pool=10_000)
    alpha = make_org(
        partner,
        "Alpha",
        external_id="x-alpha",
        initial_credits=400,
        tier="paid",
        created_at=datetime(2025, 1, 1),
    )
    bravo = make_org(
        partner, "Bravo", external_id="x-bravo", initial_credits=50, created_at=datetime(2025, 1, 1)
    )
    charlie = make_org(partner, "Charlie", created_at=datetime(2025, 1, 1))
    delta = make_org(partner, "Delta", created_at=datetime(2025, 1, 1))
    accounts.set_status(partner, delta, "suspended", at=datetime(2025, 11, 10))
    store(
        add_events,
        partner,
        [
            ev("b0", alpha, "identification", 100, "2025-10-31T12:00:00Z"),  # outside both
            ev("b1", alpha, "identification", 10, "2025-11-03T12:00:00Z"),
            ev("b2", bravo, "identification", 3, "2025-11-04T12:00:00Z"),
            ev("b3", bravo, "page_view", 20, "2025-11-04T12:00:00Z"),
            ev("b4", delta, "identification", 5, "2025-11-05T12:00:00Z"),
        ],
    )
    return partner, {"Alpha": alpha, "Bravo": bravo, "Charlie": charlie, "Delta": delta}


NOV = Period(D(2025, 11, 1), D(2025, 11, 14))


def names(items):
    return [i.name for i in items]


def test_breakdown_figures(breakdown_data):
    partner, orgs = breakdown_data
    items, total = metrics.organization_breakdown(partner, NOV)
    assert total == 4
    assert asdict(items[0]) == {
        "organization_id": orgs["Alpha"].id,
        "name": "Alpha",
        "external_id": "x-alpha",
        "status": "active",
        "tier": "paid",
        "identifications": 10,
        "credits_used": 10,
        "events": 1,
        "quantity": 10,
        "credits_allocated": 400,
        "credits_used_this_billing_period": 10,
        "credits_available": 390,  # 400 - 10 (b0 was in October's billing period)
    }
    bravo = next(i for i in items if i.name == "Bravo")
    assert (
        bravo.identifications,
        bravo.events,
        bravo.quantity,
        bravo.credits_available,
    ) == (3, 2, 23, 47)
    charlie = next(i for i in items if i.name == "Charlie")
    assert (
        charlie.identifications,
        charlie.events,
        charlie.quantity,
        charlie.credits_allocated,
    ) == (0, 0, 0, 0)


def test_breakdown_sorting(breakdown_data):
    partner, _ = breakdown_data

    def order(**kw):
        return names(metrics.organization_breakdown(partner, NOV, **kw)[0])

    assert order() == ["Alpha", "Delta", "Bravo", "Charlie"]  # 10, 5, 3, 0
    assert order(order="asc") == ["Charlie", "Bravo", "Delta", "Alpha"]
    assert order(sort="quantity") == ["Bravo", "Alpha", "Delta", "Charlie"]  # 23, 10, 5, 0
    # Ties (Alpha, Delta both 1 event) break by name.
    assert order(sort="events") == ["Bravo", "Alpha", "Delta", "Charlie"]
    assert order(sort="name", order="asc") == ["Alpha", "Bravo", "Charlie", "Delta"]
    assert order(sort="name", order="desc") == ["Delta", "Charlie", "Bravo", "Alpha"]
    assert order(sort="credits") == ["Alpha", "Bravo", "Charlie", "Delta"]  # 400, 50, 0, 0


def test_breakdown_filters_and_pagination(breakdown_data):
    partner, _ = breakdown_data
    page2, total = metrics.organization_breakdown(partner, NOV, page=2, page_size=2)
    assert (names(page2), total) == (["Bravo", "Charlie"], 4)
    page3, total = metrics.organization_breakdown(partner, NOV, page=3, page_size=2)
    assert (page3, total) == ([], 4)
    items, total = metrics.organization_breakdown(partner, NOV, status="suspended")
    assert (names(items), total) == (["Delta"], 1)
    items, total = metrics.organization_breakdown(partner, NOV, search="HA")
    assert (names(items), total) == (["Alpha", "Charlie"], 2)  # case-insensitive substring
    items, total = metrics.organization_breakdown(partner, NOV, search="%")
    assert (items, total) == ([], 0)  # a literal percent sign, not a wildcard
    items, total = metrics.organization_breakdown(partner, NOV, search="_")
    assert (items, total) == ([], 0)
    items, total = metrics.organization_breakdown(partner, NOV, external_id="x-bravo")
    assert (names(items), total) == (["Bravo"], 1)


def test_organization_summary(breakdown_data):
    partner, orgs = breakdown_data
    s = metrics.organization_summary(partner, orgs["Delta"], NOV)
    assert (s.total_identifications, s.credits_used, s.total_events) == (5, 5, 1)
    assert s.status_at_end == "suspended"
    early = metrics.organization_summary(partner, orgs["Delta"], P(D(2025, 11, 1), D(2025, 11, 4)))
    # b4 (Nov 5) is after this period; Delta was suspended only on Nov 10.
    assert (early.total_identifications, early.status_at_end) == (0, "active")
    before = metrics.organization_summary(partner, orgs["Delta"], P(D(2024, 1, 1), D(2024, 1, 2)))
    assert before.status_at_end is None  # it did not exist yet


def test_top_organizations_skip_zero(breakdown_data):
    partner, _ = breakdown_data
    assert names(metrics.top_organizations(partner, NOV)) == ["Alpha", "Delta", "Bravo"]
    assert names(metrics.top_organizations(partner, NOV, limit=1)) == ["Alpha"]


# --- comparison ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "previous", "expected"),
    [
        (3, 2, 0.5),
        (1, 3, -0.6667),  # -2/3 rounded to 4 places
        (0, 4, -1.0),
        (5, 0, None),
        (0, 0, None),
        (7, 7, 0.0),
    ],
)
def test_relative_change(current, previous, expected):
    assert metrics.relative_change(current, previous) == expected


def test_summary_with_comparison(breakdown_data, add_events):
    partner, orgs = breakdown_data
    # Nov 2..14 (13 days, not a month to date) is compared with the 13 days before,
    # Oct 20..Nov 1, which hold b0 (100 identifications on Oct 31).
    out = metrics.summary_with_comparison(partner, P(D(2025, 11, 2), D(2025, 11, 14)))
    assert out.previous_period == P(D(2025, 10, 20), D(2025, 11, 1))
    assert out.compared.rule == "days"
    cur, prev, change = out.current, out.previous, out.change
    assert (cur.total_identifications, prev.total_identifications) == (18, 100)
    assert change["total_identifications"] == -0.82  # (18 - 100) / 100
    assert (cur.total_events, prev.total_events) == (4, 1)
    assert change["total_events"] == 3.0  # (4 - 1) / 1
    assert (cur.total_quantity, prev.total_quantity) == (38, 100)
    assert change["total_quantity"] == -0.62
    assert (cur.organizations_with_activity, prev.organizations_with_activity) == (3, 1)
    assert change["organizations_with_activity"] == 2.0
    # Previous pool: the billing period Nov 1..30 had used nothing by the end of Nov 1
    # (b0 is October's) -> 10,000 left; now 10,000 - 18 = 9,982.
    assert (cur.credits_remaining, prev.credits_remaining) == (9982, 10_000)
    assert change["credits_remaining"] == -0.0018  # -18 / 10,000
    # At the end of Nov 1 Delta was still active; at the end of Nov 14 it is suspended.
    assert (cur.active_organizations, prev.active_organizations) == (3, 4)
    assert change["active_organizations"] == -0.25


def test_month_to_date_is_compared_with_the_same_days_a_month_earlier(breakdown_data):
    partner, _ = breakdown_data
    # Nov 1..14 is a month to date: against Oct 1..14, which holds no event (b0 is Oct 31).
    out = metrics.summary_with_comparison(partner, NOV)
    assert out.previous_period == P(D(2025, 10, 1), D(2025, 10, 14))
    assert out.compared.rule == "month"
    assert out.previous.total_identifications == 0
    assert out.change["total_identifications"] is None  # nothing to compare with
    # Oct 14: the October billing period had used nothing; Delta was active.
    assert (out.previous.credits_remaining, out.previous.active_organizations) == (10_000, 4)
    # The whole month, running past today (Nov 14), is compared through today.
    whole = metrics.summary_with_comparison(partner, P(D(2025, 11, 1), D(2025, 11, 30)))
    assert whole.compared.current == NOV
    assert whole.previous_period == P(D(2025, 10, 1), D(2025, 10, 14))


def test_comparison_is_null_where_previous_is_zero(series_data):
    partner, _ = series_data
    # Oct 2..4 against Sep 29..Oct 1: t0 (100, Sep 30), t1 (2) and t2 (3) on Oct 1.
    out = metrics.summary_with_comparison(partner, P(D(2025, 10, 2), D(2025, 10, 4)))
    assert out.previous.total_identifications == 105
    # Sep 1..29 against Aug 1..29, which had nothing.
    out = metrics.summary_with_comparison(partner, P(D(2025, 9, 1), D(2025, 9, 29)))
    assert out.previous.total_identifications == 0
    assert out.change["total_identifications"] is None
    assert out.change["total_events"] is None


# --- timezone change -----------------------------------------------------------------


def test_set_partner_timezone_rebuckets_history(freeze, make_partner, make_org, add_events):
    freeze(NOW)
    partner = make_partner("tzchange")
    a = make_org(partner, "A", created_at=datetime(2025, 1, 1))
    store(
        add_events,
        partner,
        [
            ev("z1", a, "identification", 1, "2025-10-01T23:30:00Z"),
            ev("z2", a, "identification", 10, "2025-10-01T02:00:00Z"),
        ],
    )
    days = P(D(2025, 9, 30), D(2025, 10, 2))

    def idents():
        return [p.identifications for p in metrics.timeseries(partner, days, "day")]

    assert idents() == [0, 11, 0]  # UTC: both on Oct 1
    rollups.set_timezone(partner, "Asia/Kathmandu")
    # z1 is 05:15 Oct 2 in Kathmandu; z2 is 07:45 Oct 1.
    assert idents() == [0, 10, 1]
    rollups.set_timezone(partner, "America/New_York")
    # z1 is 19:30 Oct 1 EDT; z2 is 22:00 Sep 30 EDT.
    assert idents() == [10, 1, 0]
    assert partner.timezone == "America/New_York"
    assert rollups.verify(partner.id) == []
    # Events ingested after the change are bucketed in the new timezone too.
    store(
        add_events, partner, [ev("z3", a, "identification", 100, "2025-10-02T03:00:00Z")]
    )  # 23:00 Oct 1 EDT
    assert idents() == [10, 101, 0]
    with pytest.raises(ValueError):
        rollups.set_timezone(partner, "Mars/Olympus")


def test_breakdown_lists_organizations_that_existed_or_were_active(
    make_partner, make_org, add_events, freeze
):
    from datetime import datetime as _dt

    freeze(_dt(2025, 10, 20, 12))
    partner = make_partner()
    make_org(partner, "Old", created_at=_dt(2025, 9, 1))
    make_org(partner, "Later", created_at=_dt(2025, 10, 10))  # after the period
    busy = make_org(partner, "Imported", created_at=_dt(2025, 10, 12))  # after, but active
    add_events(
        partner,
        [
            {
                "eventId": "x",
                "organizationId": busy.id,
                "type": "identification",
                "quantity": 2,
                "occurredAt": "2025-09-15T08:00:00Z",
            }
        ],
    )
    items, total = metrics.organization_breakdown(
        partner, Period(date(2025, 9, 1), date(2025, 9, 30)), sort="name", order="asc"
    )
    # September: "Old" existed; "Later" did not exist and had no events; "Imported" had 2.
    assert total == 2
    assert [(i.name, i.identifications) for i in items] == [("Imported", 2), ("Old", 0)]
