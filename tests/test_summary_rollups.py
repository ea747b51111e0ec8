"""The uncached summary's two organization figures without a look-up per organization.

organizationsWithActivity ORs partner_activity's bitmaps over the whole months, weeks and
days that cover the period; activeOrganizations reads each organization's latest status
entry and asks the history only when it changed after the end. Every expectation below is
worked out by hand from the events and status changes the test makes.
"""

from datetime import date, datetime

from sqlalchemy import select, update

from app import accounts, metrics, rollups
from app.extensions import db
from app.models import Organization, PartnerActivity, PartnerBucketUsage
from app.periods import Period
from tests import views_support

D = date
NOW = datetime(2025, 11, 15, 12, 0)  # a Saturday; the partner's today (UTC)
OCTOBER = Period(D(2025, 10, 1), D(2025, 10, 31))


def ev(event_id, org, at, etype="identification", quantity=1):
    """Build one raw event for org (an Organization) at an ISO timestamp."""
    return views_support.ev(event_id, org, etype, quantity, at)


def store(add_events, partner, events):
    result = add_events(partner, events)
    assert result.rejected == [], [r.as_json() for r in result.rejected]


def activity(partner, start, end):
    return metrics.summary(partner, Period(start, end)).organizations_with_activity


def test_activity_at_the_edges_of_a_range_is_counted_once_and_only_inside(
    app, freeze, make_partner, make_org, add_events
):
    """Jan 3 (a Friday) .. Oct 29 (a Wednesday) is covered by days Jan 3-5, weeks Jan 6-26,
    days Jan 27-31, months Feb-Sep, days Oct 1-5, weeks Oct 6-26 and days Oct 27-29."""
    app.config["CACHE_CLOSED_PERIODS"] = False
    freeze(NOW)
    partner = make_partner("edges")
    orgs = {n: make_org(partner, n, created_at=datetime(2024, 6, 1)) for n in "ABCDEFGH"}
    store(
        add_events,
        partner,
        [
            ev("a1", orgs["A"], "2025-01-03T00:00:00Z"),  # the first day of the range
            ev("b1", orgs["B"], "2025-10-29T23:59:59Z"),  # the last moment of the range
            ev("c1", orgs["C"], "2025-01-02T23:59:59Z"),  # the day before it
            ev("c2", orgs["C"], "2025-10-30T00:00:00Z"),  # and the day after it
            ev("d1", orgs["D"], "2025-06-15T10:00:00Z"),  # inside a whole month
            ev("d2", orgs["D"], "2025-06-16T10:00:00Z", "page_view", 4),  # twice: one org
            ev("e1", orgs["E"], "2025-01-06T10:00:00Z"),  # the first whole week (Monday)
            ev("f1", orgs["F"], "2025-01-31T10:00:00Z"),  # a day after the last whole week
            ev("g1", orgs["G"], "2025-10-30T10:00:00Z"),  # only after the range
            # H: no event at all.
        ],
    )
    assert activity(partner, D(2025, 1, 3), D(2025, 10, 29)) == 5  # A, B, D, E, F
    # The totals of the same covering: a1, b1, d1, e1, f1 (identifications of 1) and d2.
    inside = metrics.summary(partner, Period(D(2025, 1, 3), D(2025, 10, 29)))
    assert (inside.total_identifications, inside.total_quantity, inside.total_events) == (5, 9, 6)
    year = metrics.summary(partner, Period(D(2025, 1, 1), D(2025, 12, 31)))
    assert (year.total_identifications, year.total_quantity, year.total_events) == (8, 12, 9)
    assert activity(partner, D(2025, 1, 2), D(2025, 1, 2)) == 1  # C
    assert activity(partner, D(2025, 10, 30), D(2025, 10, 30)) == 2  # C, G
    assert activity(partner, D(2025, 1, 4), D(2025, 10, 28)) == 3  # D, E, F
    assert activity(partner, D(2025, 1, 1), D(2025, 12, 31)) == 7  # all but H
    assert activity(partner, D(2025, 2, 1), D(2025, 5, 31)) == 0
    assert activity(partner, D(2025, 6, 16), D(2025, 6, 16)) == 1  # D's page view
    # One organization's figure (its own EXISTS probe) agrees.
    one = [
        metrics.organizations_with_activity(partner, Period(D(2025, 1, 3), D(2025, 10, 29)), o.id)
        for o in orgs.values()
    ]
    assert one == [1, 1, 0, 1, 1, 1, 0, 0]
    assert rollups.verify(partner.id) == []


def test_organizations_past_the_first_63_share_other_bitmap_rows(
    app, freeze, make_partner, add_events
):
    """Organizations are numbered 0, 1, 2... in order of creation, 63 to a bitmap row."""
    app.config["CACHE_CLOSED_PERIODS"] = False
    freeze(NOW)
    partner = make_partner("many", max_organizations=None)
    created = accounts.create_organizations(
        partner,
        [{"name": f"Org {i:02}", "created_at": datetime(2025, 1, 1)} for i in range(66)],
    )
    assert [o.seq for o in created] == list(range(66))
    # Numbers 0 and 62 are bits 0 and 62 of chunk 0; 63 and 65 are bits 0 and 2 of chunk 1.
    store(
        add_events,
        partner,
        [
            ev("x0", created[0], "2025-10-02T10:00:00Z"),
            ev("x62", created[62], "2025-10-02T11:00:00Z"),
            ev("x63", created[63], "2025-10-02T12:00:00Z"),
            ev("x65", created[65], "2025-10-09T12:00:00Z"),
        ],
    )
    pa = PartnerActivity
    days = {
        (r.start, r.chunk): r.organizations
        for r in db.session.execute(
            select(pa.start, pa.chunk, pa.organizations).where(
                pa.partner_id == partner.id, pa.grain == "day"
            )
        )
    }
    assert days == {
        (D(2025, 10, 2), 0): (1 << 0) | (1 << 62),
        (D(2025, 10, 2), 1): 1 << 0,
        (D(2025, 10, 9), 1): 1 << 2,
    }
    assert metrics.summary(partner, OCTOBER).organizations_with_activity == 4
    assert activity(partner, D(2025, 10, 2), D(2025, 10, 2)) == 3
    assert rollups.verify(partner.id) == []


def test_verify_reports_a_wrong_partner_bucket_and_rebuild_restores_it(
    app, freeze, make_partner, make_org, add_events
):
    app.config["CACHE_CLOSED_PERIODS"] = False
    freeze(NOW)
    partner = make_partner("weeks")
    a = make_org(partner, "A", created_at=datetime(2025, 1, 1))
    # Oct 6 is a Monday: Oct 6-12 is a whole week, read from its weekly row.
    store(
        add_events,
        partner,
        [ev("w1", a, "2025-10-07T10:00:00Z", quantity=3), ev("w2", a, "2025-10-13T10:00:00Z")],
    )
    week = Period(D(2025, 10, 6), D(2025, 10, 13))
    assert metrics.summary(partner, week).total_quantity == 4
    pbu = PartnerBucketUsage
    db.session.execute(
        update(pbu)
        .where(pbu.partner_id == partner.id, pbu.grain == "week")
        .values(quantity=pbu.quantity + 10)
    )
    db.session.commit()
    assert metrics.summary(partner, week).total_quantity == 14  # the weekly row is read
    assert set(rollups.verify(partner.id)) == {
        "partner total week of 2025-10-06 identification: raw events give quantity/events "
        "(3, 1), rollup holds (13, 1)",
        "partner total week of 2025-10-13 identification: raw events give quantity/events "
        "(1, 1), rollup holds (11, 1)",
    }
    rollups.rebuild(partner.id)
    assert rollups.verify(partner.id) == []
    assert metrics.summary(partner, week).total_quantity == 4


def test_verify_reports_a_wrong_activity_bit_and_rebuild_restores_it(
    app, freeze, make_partner, make_org, add_events
):
    app.config["CACHE_CLOSED_PERIODS"] = False
    freeze(NOW)
    partner = make_partner("tamper")
    a = make_org(partner, "A", created_at=datetime(2025, 1, 1))
    store(add_events, partner, [ev("t1", a, "2025-10-02T10:00:00Z")])
    pa = PartnerActivity
    db.session.execute(
        update(pa)
        .where(pa.partner_id == partner.id, pa.grain == "month")
        .values(organizations=0b10)
    )
    db.session.commit()
    assert metrics.summary(partner, OCTOBER).organizations_with_activity == 1  # a bit of nobody
    problems = rollups.verify(partner.id)
    assert problems == [
        "active organizations month of 2025-10-01 (chunk 0): raw events give bits 0x1, "
        "rollup holds 0x2"
    ]
    rollups.rebuild(partner.id)
    assert rollups.verify(partner.id) == []
    assert metrics.summary(partner, OCTOBER).organizations_with_activity == 1
    assert activity(partner, D(2025, 10, 2), D(2025, 10, 2)) == 1


def test_active_organizations_at_the_end_of_past_and_current_periods(
    app, freeze, make_partner, make_org
):
    app.config["CACHE_CLOSED_PERIODS"] = False
    freeze(NOW)
    partner = make_partner("states")
    a = make_org(partner, "A", created_at=datetime(2025, 1, 1))
    b = make_org(partner, "B", created_at=datetime(2025, 1, 1))
    c = make_org(partner, "C", created_at=datetime(2025, 1, 1))
    d = make_org(partner, "D", created_at=datetime(2025, 1, 1))
    make_org(partner, "E", created_at=datetime(2025, 11, 3))
    # A: suspended on Oct 10, then an "active" entry backdated to Oct 5 (before it): its
    # newest entry by time is still the suspension, though its current status is active.
    accounts.set_status(partner, a, "suspended", at=datetime(2025, 10, 10, 12))
    accounts.set_status(partner, a, "active", at=datetime(2025, 10, 5))
    # B: canceled in the period. C: suspended after it. D: canceled on Dec 1 (ahead).
    accounts.set_status(partner, b, "canceled", at=datetime(2025, 10, 20))
    accounts.set_status(partner, c, "suspended", at=datetime(2025, 11, 5, 8))
    accounts.set_status(partner, d, "canceled", at=datetime(2025, 12, 1))
    assert (a.status, a.latest_status, a.latest_status_at) == (
        "active",
        "suspended",
        datetime(2025, 10, 10, 12),
    )

    def counts(start, end):
        s = metrics.summary(partner, Period(start, end))
        return s.total_organizations, s.active_organizations

    assert counts(D(2025, 10, 1), D(2025, 10, 7)) == (4, 4)  # A active from Oct 5 again
    assert counts(D(2025, 10, 1), D(2025, 10, 10)) == (4, 3)  # A suspended at noon
    assert counts(D(2025, 10, 1), D(2025, 10, 31)) == (4, 2)  # C, D (A suspended, B canceled)
    assert counts(D(2025, 11, 1), D(2025, 11, 4)) == (5, 3)  # C, D, E
    assert counts(D(2025, 11, 1), D(2025, 11, 15)) == (5, 2)  # today: D, E
    assert counts(D(2025, 11, 1), D(2025, 11, 30)) == (5, 2)  # D canceled only on Dec 1
    assert counts(D(2025, 12, 1), D(2025, 12, 31)) == (5, 1)  # E
    assert rollups.verify(partner.id) == []


def test_verify_reports_a_stale_latest_status_and_rebuild_restores_it(
    app, freeze, make_partner, make_org
):
    app.config["CACHE_CLOSED_PERIODS"] = False
    freeze(NOW)
    partner = make_partner("stale")
    a = make_org(partner, "A", created_at=datetime(2025, 1, 1))
    accounts.set_status(partner, a, "suspended", at=datetime(2025, 10, 10))
    updated_at = a.updated_at
    db.session.execute(
        update(Organization)
        .where(Organization.id == a.id)
        .values(latest_status="active", updated_at=updated_at)
    )
    db.session.commit()
    assert metrics.summary(partner, OCTOBER).active_organizations == 1  # wrong: it was suspended
    (problem,) = rollups.verify(partner.id)
    assert problem.startswith(f"organization {a.id}: its status history ends with ('suspended'")
    rollups.rebuild(partner.id)
    assert rollups.verify(partner.id) == []
    assert metrics.summary(partner, OCTOBER).active_organizations == 0
    db.session.refresh(a)
    assert a.updated_at == updated_at  # a rebuild is not a change the partner made


def test_later_batches_add_bits_to_a_day_without_clearing_earlier_ones(
    app, freeze, make_partner, make_org, add_events
):
    app.config["CACHE_CLOSED_PERIODS"] = False
    freeze(NOW)
    partner = make_partner("batches")
    a = make_org(partner, "A", created_at=datetime(2025, 1, 1))
    b = make_org(partner, "B", created_at=datetime(2025, 1, 1))
    c = make_org(partner, "C", created_at=datetime(2025, 1, 1))
    store(add_events, partner, [ev("1", a, "2025-10-02T10:00:00Z")])
    store(add_events, partner, [ev("2", b, "2025-10-02T11:00:00Z")])
    store(add_events, partner, [ev("3", a, "2025-10-02T12:00:00Z")])  # A's bit again
    store(add_events, partner, [ev("4", c, "2025-10-03T12:00:00Z")])
    assert activity(partner, D(2025, 10, 2), D(2025, 10, 2)) == 2  # A, B
    assert metrics.summary(partner, OCTOBER).organizations_with_activity == 3
    pa = PartnerActivity
    month = db.session.execute(
        select(pa.organizations).where(pa.partner_id == partner.id, pa.grain == "month")
    ).scalar_one()
    assert month == 0b111  # A, B and C are numbers 0, 1 and 2
    assert rollups.verify(partner.id) == []


def test_every_period_fits_the_summarys_fixed_range_slots():
    """The summary's statements have a fixed number of ranges per grain; every period's
    covering (periods.decompose) fits them, and the ranges given cover each day once."""
    from datetime import timedelta

    from app.periods import bucket_end

    first = D(2024, 12, 20)
    for offset in range(0, 40, 3):
        start = first + timedelta(days=offset)
        for length in range(1, 420, 7):
            period = Period(start, start + timedelta(days=length - 1))
            params = metrics._range_params("p", period)
            days = set()
            for grain in ("day", "week", "month"):
                i = 0
                while f"{grain}{i}_from" in params:
                    bucket = params[f"{grain}{i}_from"]
                    while bucket <= params[f"{grain}{i}_to"]:
                        last = bucket_end(bucket, grain)
                        span = {bucket + timedelta(days=n) for n in range((last - bucket).days + 1)}
                        assert not span & days
                        days |= span
                        bucket = last + timedelta(days=1)
                    i += 1
            assert days == {period.start + timedelta(days=n) for n in range(length)}
