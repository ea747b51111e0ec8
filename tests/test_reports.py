"""Month-end reports: hand-computed figures, late data, CSV/JSON output and the CLI."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from datetime import date, datetime
from typing import Any

import pytest

from app import accounts, exports, reports, rollups
from app.errors import AppError
from app.extensions import db
from app.metrics import TypeUsage
from app.models import PartnerDailyReceipt
from app.periods import Period

NY = "America/New_York"


def ident(
    event_id: str, org: Any, quantity: int, occurred: str, etype: str = "identification"
) -> dict[str, Any]:
    return {
        "eventId": event_id,
        "organizationId": org.id,
        "type": etype,
        "quantity": quantity,
        "occurredAt": occurred,
    }


@pytest.fixture
def october(make_partner, make_org, add_events, freeze):
    return build_october(make_partner, make_org, add_events, freeze)


def build_october(make_partner, make_org, add_events, freeze):
    """A New York partner whose October 2025 has every kind of change (see the comments).

    New York is on EDT (UTC-4) all October, so local October runs from
    2025-10-01T04:00Z to 2025-11-01T04:00Z (the close).
    """
    freeze(datetime(2025, 10, 31, 12))
    partner = make_partner(
        "acme",
        name="Acme Agency",
        pool=1000,
        tz=NY,
        billing_day=15,
        created_at=datetime(2025, 7, 1),
    )
    alpha = make_org(
        partner,
        "Alpha",
        external_id="a",
        initial_credits=300,
        tier="paid",
        created_at=datetime(2025, 8, 15, 12),
    )
    bravo = make_org(
        partner, "Bravo", initial_credits=200, tier="paid", created_at=datetime(2025, 9, 1, 12)
    )
    charlie = make_org(
        partner, "Charlie", initial_credits=100, created_at=datetime(2025, 10, 10, 12)
    )  # new in October
    delta = make_org(partner, "Delta", created_at=datetime(2025, 8, 1, 12))
    echo = make_org(partner, "Echo", created_at=datetime(2025, 8, 1, 12))
    make_org(partner, "Foxtrot", initial_credits=50, created_at=datetime(2025, 8, 1, 12))
    accounts.set_status(partner, bravo, "canceled", at=datetime(2025, 10, 20, 15))  # churned
    accounts.set_status(partner, delta, "suspended", at=datetime(2025, 9, 10, 12))
    accounts.set_status(partner, delta, "active", at=datetime(2025, 10, 5, 12))  # reactivated
    accounts.set_status(partner, echo, "canceled", at=datetime(2025, 9, 15, 12))  # long gone
    result = add_events(
        partner,
        [
            ident("sep-a", alpha, 5, "2025-10-01T03:30:00Z"),  # local Sep 30 23:30: September
            ident("sep-b", bravo, 10, "2025-09-20T12:00:00Z"),  # September
            ident("e2", alpha, 7, "2025-10-01T04:30:00Z"),  # local Oct 1 00:30: October
            ident("e4", alpha, 10, "2025-10-15T12:00:00Z", "page_view"),
            ident("e5", bravo, 4, "2025-10-10T12:00:00Z"),
            ident("e6", charlie, 6, "2025-10-20T12:00:00Z"),
            ident("e7", delta, 2, "2025-10-25T12:00:00Z", "page_view"),
        ],
    )
    assert result.accepted == 7
    # Local Oct 31 23:59, received one second before the close: on time.
    freeze(datetime(2025, 11, 1, 3, 59, 59))
    assert add_events(partner, [ident("e3", alpha, 3, "2025-11-01T03:59:00Z")]).accepted == 1
    # Received exactly at the close: late.
    freeze(datetime(2025, 11, 1, 4, 0, 0))
    assert add_events(partner, [ident("late1", alpha, 2, "2025-10-31T20:00:00Z")]).accepted == 1
    freeze(datetime(2025, 11, 3, 15))
    assert (
        add_events(
            partner,
            [
                ident("late2", charlie, 4, "2025-10-31T23:00:00Z"),  # local Oct 31 19:00
                ident("late3", delta, 1, "2025-10-02T12:00:00Z", "page_view"),
                ident("nov-b", bravo, 100, "2025-11-01T05:00:00Z"),  # local Nov 1: November
            ],
        ).accepted
        == 3
    )
    # An allocation change after the month closed does not change its report.
    accounts.set_allocation(partner, alpha, 400)
    freeze(datetime(2025, 11, 5, 12))
    return partner


def test_october_headline_figures(october):
    report = reports.report_for(october, "2025-10")
    assert report.month == "2025-10"
    assert report.timezone == NY
    assert (report.start_date, report.end_date, report.through_date) == (
        date(2025, 10, 1),
        date(2025, 10, 31),
        date(2025, 10, 31),
    )
    assert report.complete is True
    assert report.closed_at == datetime(2025, 11, 1, 4)  # local midnight, EDT
    assert report.generated_at == datetime(2025, 11, 5, 12)
    s = report.summary
    # Identifications: Alpha 7 + 3 + 2, Bravo 4, Charlie 6 + 4 = 26
    assert s.total_identifications == 26
    assert s.credits_used == 26
    # Events: Alpha e2 e3 e4 late1 (4), Bravo e5 (1), Charlie e6 late2 (2), Delta e7 late3 (2)
    assert s.total_events == 9
    # Quantity: Alpha 7+3+10+2=22, Bravo 4, Charlie 10, Delta 2+1=3 -> 39
    assert s.total_quantity == 39
    assert s.organizations_with_activity == 4
    # Created before the close: all six; active then: Alpha, Charlie, Delta, Foxtrot.
    assert (s.total_organizations, s.active_organizations) == (6, 4)
    # Billing day 15: the period Oct 15 - Nov 14 used 3 + 2 + 6 + 4 = 15 by Oct 31.
    assert s.credits_remaining == 1000 - 15
    # September: sep-a 5 + sep-b 10 = 15, in 2 events by 2 organizations.
    assert report.previous_month == "2025-09"
    assert report.previous.total_identifications == 15
    assert report.previous.total_events == 2
    # (26 - 15) / 15 = 0.73333 -> 0.7333
    assert report.change["total_identifications"] == 0.7333
    # (4 - 2) / 2 = 1.0
    assert report.change["organizations_with_activity"] == 1.0


def test_october_organization_table(october):
    report = reports.report_for(october, "2025-10")
    rows = {r.name: r for r in report.organizations}
    # Echo was canceled all month and had no events: left out.
    assert [r.name for r in report.organizations] == [
        "Alpha",
        "Charlie",
        "Bravo",
        "Delta",
        "Foxtrot",
    ]
    got = {
        name: (
            r.identifications,
            r.credits_used,
            r.events,
            r.quantity,
            r.share,
            r.credits_allocated,
            r.status_at_end,
            r.new,
            r.churned,
            r.reactivated,
        )
        for name, r in rows.items()
    }
    assert got == {
        # 12/26 = 0.46154; the allocation became 400 only in November.
        "Alpha": (12, 12, 4, 22, 0.4615, 300, "active", False, False, False),
        # 10/26 = 0.38462; created Oct 10.
        "Charlie": (10, 10, 2, 10, 0.3846, 100, "active", True, False, False),
        # 4/26 = 0.15385; canceled Oct 20, which released its 200 credits.
        "Bravo": (4, 4, 1, 4, 0.1538, 0, "canceled", False, True, False),
        # suspended in September, active again on Oct 5.
        "Delta": (0, 0, 2, 3, 0.0, 0, "active", False, False, True),
        "Foxtrot": (0, 0, 0, 0, 0.0, 50, "active", False, False, False),
    }
    assert asdict(report.totals) == {
        "organizations": 5,
        "identifications": 26,
        "credits_used": 26,
        "events": 9,
        "quantity": 39,
        "share": 1.0,
        "share_percent": 100.0,
        "credits_allocated": 300 + 100 + 50,
        "new": 1,
        "churned": 1,
        "reactivated": 1,
    }
    assert [i.name for i in report.active_without_identifications] == ["Delta", "Foxtrot"]


def test_october_late_data(october):
    late = reports.report_for(october, "2025-10").late_data
    assert asdict(late) == {
        "closed": True,
        "closed_at": datetime(2025, 11, 1, 4),
        # late1 (received at the close), late2 and late3 (Nov 3); e3 came a second early
        # and nov-b belongs to November.
        "late_events": 3,
        "late_quantity": 2 + 4 + 1,
        "identifications_added": 2 + 4,
        "credits_added": 6,
        "identifications_at_close": 26 - 6,
        "credits_used_at_close": 20,
        "identifications_change": 0.3,  # (26 - 20) / 20
        "first_received_date": date(2025, 11, 1),  # 04:00Z = 00:00 EDT
        "last_received_date": date(2025, 11, 3),
        "by_type": {
            "identification": {"quantity": 6, "events": 2},
            "page_view": {"quantity": 1, "events": 1},
        },
    }


def test_billing_day_15_splits_the_month(october):
    assert [asdict(b) for b in reports.report_for(october, "2025-10").billing_periods] == [
        # Oct 1-14: e2 7 + e5 4 = 11; Oct 15-31: e3 3 + late1 2 + e6 6 + late2 4 = 15
        {
            "billing_period_start": date(2025, 9, 15),
            "billing_period_end": date(2025, 10, 14),
            "start_date": date(2025, 10, 1),
            "end_date": date(2025, 10, 14),
            "days": 14,
            "identifications": 11,
            "credits_used": 11,
            "credit_pool_total": 1000,  # the partner's pool (its terms never changed)
        },
        {
            "billing_period_start": date(2025, 10, 15),
            "billing_period_end": date(2025, 11, 14),
            "start_date": date(2025, 10, 15),
            "end_date": date(2025, 10, 31),
            "days": 17,
            "identifications": 15,
            "credits_used": 15,
            "credit_pool_total": 1000,
        },
    ]


def test_daily_series_follows_local_days(october):
    daily = {
        p.date.isoformat(): p.identifications for p in reports.report_for(october, "2025-10").daily
    }
    assert len(daily) == 31
    # e2 at 04:30Z is Oct 1 in New York; sep-a at 03:30Z is still Sep 30 there.
    assert daily["2025-10-01"] == 7
    # e3 (23:59 local), late1 (16:00 local) and late2 (19:00 local): 3 + 2 + 4
    assert daily["2025-10-31"] == 9
    assert sum(daily.values()) == 26


def test_month_list_newest_first_with_changes(october):
    rows = reports.month_index(october)
    assert [r.month for r in rows] == ["2025-11", "2025-10", "2025-09"]
    nov, oct_, sep = rows
    assert nov.complete is False and nov.through_date == date(2025, 11, 5)
    # November so far: nov-b 100 (Bravo, canceled but its usage counts)
    assert nov.total_identifications == 100
    # The open month compares its days so far with the same days a month earlier:
    # 1-5 Nov against 1-5 Oct, when Alpha's e2 (7) was the only identification.
    assert (nov.previous_start_date, nov.previous_end_date) == (
        date(2025, 10, 1),
        date(2025, 10, 5),
    )
    assert nov.change["total_identifications"] == 13.2857  # (100 - 7) / 7
    # 1-5 Oct had two events (e2, and late3 on Oct 2); November so far one.
    assert nov.change["total_events"] == -0.5
    assert (oct_.previous_start_date, oct_.previous_end_date) == (
        date(2025, 9, 1),
        date(2025, 9, 30),
    )
    assert (oct_.total_identifications, oct_.total_events, oct_.active_organizations) == (
        26,
        9,
        4,
    )
    assert sep.total_identifications == 15
    assert sep.change["total_identifications"] is None  # August had none
    assert reports.available_months(october) == ["2025-11", "2025-10", "2025-09"]


def test_current_month_is_reported_to_date_and_not_closed(october):
    report = reports.report_for(october, "2025-11")
    assert report.complete is False
    assert report.through_date == date(2025, 11, 5)
    assert len(report.daily) == 5
    assert report.summary.total_identifications == 100
    assert report.late_data.closed is False
    assert report.late_data.late_events == 0
    # November 2025 ends in EST (UTC-5): it closes at 05:00Z on Dec 1.
    assert report.late_data.closed_at == datetime(2025, 12, 1, 5)


@pytest.mark.parametrize(
    "text, reason",
    [
        ("2025-13", "not a calendar month"),
        ("2025-00", "not a calendar month"),
        ("abc", "YYYY-MM"),
        ("2025-1", "YYYY-MM"),
        ("", "YYYY-MM"),
        ("2025-12", "has not started yet"),
        ("2025-08", "first month with data is 2025-09"),
    ],
)
def test_invalid_months_are_not_found(october, text, reason):
    with pytest.raises(AppError) as caught:
        reports.report_for(october, text)
    assert caught.value.status == 404
    assert reason in caught.value.message
    assert caught.value.details["field"] == "month"


def test_partner_without_data_has_no_months(make_partner, freeze):
    freeze(datetime(2025, 11, 5, 12))
    partner = make_partner("empty")
    assert reports.available_months(partner) == []
    assert reports.month_index(partner) == []
    with pytest.raises(AppError, match="no usage data yet"):
        reports.report_for(partner, "2025-11")


def test_csv_header_table_and_totals(october):
    report = reports.report_for(october, "2025-10")
    rows = list(csv.reader(io.StringIO(exports.report_csv(report))))
    block = {r[0]: r[1] for r in rows[:12]}
    assert block["Partner"] == "Acme Agency"
    assert block["Month"] == "2025-10"
    assert block["Timezone"] == NY
    assert block["Generated at"] == "2025-11-05T12:00:00Z"
    assert block["Month closed at"] == "2025-11-01T04:00:00Z"
    assert block["Late events (received after the month closed)"] == "3"
    assert rows[12] == []
    header = rows[13]
    assert header[:4] == ["Organization", "External ID", "Organization ID", "Identifications"]
    body = rows[14:-1]
    assert [r[0] for r in body] == ["Alpha", "Charlie", "Bravo", "Delta", "Foxtrot"]
    alpha = dict(zip(header, body[0], strict=True))
    assert alpha["Share of identifications (%)"] == "46.15"  # 12/26
    assert alpha["Allocation at month end"] == "300"
    assert alpha["Status at month end"] == "active"
    # Booleans as in every CSV: Charlie is new in October, neither churned nor reactivated.
    charlie = dict(zip(header, body[1], strict=True))
    assert (charlie["New"], charlie["Churned"], charlie["Reactivated"]) == (
        "true",
        "false",
        "false",
    )
    total = dict(zip(header, rows[-1], strict=True))
    assert total["Organization"] == "Total"
    assert (
        total["Identifications"],
        total["Credits used"],
        total["Events"],
        total["Quantity"],
    ) == ("26", "26", "9", "39")
    assert (total["New"], total["Churned"], total["Reactivated"]) == ("1", "1", "1")
    # The totals row equals the sum of the rows above it.
    assert sum(int(r[3]) for r in body) == 26


def test_csv_neutralises_formulas(make_partner, make_org, add_events, freeze):
    freeze(datetime(2025, 10, 20, 12))
    partner = make_partner("evil", name="=cmd|' /C calc'!A0")
    org = make_org(partner, "+SUM(A1:A9)", external_id="@evil")
    add_events(partner, [ident("x", org, 1, "2025-10-02T12:00:00Z")])
    text = exports.report_text(reports.report_for(partner, "2025-10"), "csv")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["Partner", "'=cmd|' /C calc'!A0"]
    assert rows[14][:2] == ["'+SUM(A1:A9)", "'@evil"]
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell


def test_json_output_is_the_report(october):
    data = json.loads(exports.report_text(reports.report_for(october, "2025-10"), "json"))
    assert data["summary"]["totalIdentifications"] == 26
    assert data["lateData"]["lateEvents"] == 3
    assert data["totals"]["quantity"] == 39


def test_cli_report_csv_and_json(october, runner):
    out = runner.invoke(
        args=["report", "--partner", "acme", "--month", "2025-10", "--format", "json"]
    )
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["summary"]["totalIdentifications"] == 26
    out = runner.invoke(
        args=["report", "--partner", "acme", "--month", "2025-10", "--format", "csv"]
    )
    assert out.exit_code == 0, out.output
    assert out.stdout.splitlines()[0] == "Partner,Acme Agency"
    assert out.stdout.splitlines()[-1].startswith("Total,,,26,26,9,39,100.0,")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--month", "2025-13"], "2025-13 is not a calendar month"),
        (["--month", "2025-12"], "has not started yet"),
        (["--month", "abc"], "YYYY-MM"),
        (["--month", "2025-10", "--format", "xml"], "xml"),
    ],
)
def test_cli_report_errors_name_the_option(october, runner, args, message):
    out = runner.invoke(args=["report", "--partner", "acme", "--format", "csv", *args])
    assert out.exit_code != 0
    assert message in out.output
    assert "Traceback" not in out.output


def test_cli_report_unknown_partner(october, runner):
    out = runner.invoke(args=["report", "--partner", "nobody", "--month", "2025-10"])
    assert out.exit_code == 1
    assert "no partner with slug 'nobody'" in out.output


# --- the receipt rollup -----------------------------------------------------------------


def test_receipt_rollup_rows(october):
    pdr = PartnerDailyReceipt
    rows = db.session.execute(
        db.select(pdr.day, pdr.received_day, pdr.type, pdr.quantity, pdr.events)
        .where(pdr.partner_id == october.id, pdr.day == date(2025, 10, 31))
        .order_by(pdr.received_day)
    ).all()
    # e3 received Oct 31 local; late1 Nov 1 (00:00 EDT); late2 Nov 3.
    assert [tuple(r) for r in rows] == [
        (date(2025, 10, 31), date(2025, 10, 31), "identification", 3, 1),
        (date(2025, 10, 31), date(2025, 11, 1), "identification", 2, 1),
        (date(2025, 10, 31), date(2025, 11, 3), "identification", 4, 1),
    ]


def test_receipt_rollup_verify_and_rebuild(october):
    assert rollups.verify(october.id) == []
    db.session.execute(
        db.delete(PartnerDailyReceipt).where(PartnerDailyReceipt.day == date(2025, 10, 2))
    )
    db.session.commit()
    problems = rollups.verify(october.id)
    assert problems == [
        "received 2025-11-03 for 2025-10-02 page_view: raw events give "
        "quantity/events (1, 1), rollup holds (0, 0)"
    ]
    rollups.rebuild(october.id)
    assert rollups.verify(october.id) == []
    assert reports.report_for(october, "2025-10").late_data.late_events == 3


def test_timezone_change_rebuckets_received_days(october):
    rollups.set_timezone(october, "UTC")
    assert rollups.verify(october.id) == []
    late = reports.report_for(october, "2025-10").late_data
    # In UTC October closes at 2025-11-01T00:00Z. e3 (Nov 1 03:59Z) is now a November
    # event; late1, late2 and late3 still arrived after the close.
    assert late.closed_at == datetime(2025, 11, 1)
    assert (late.late_events, late.identifications_added) == (3, 6)
    # sep-a (Oct 1 03:30Z) now belongs to October: 26 - 3 (e3) + 5 = 28
    assert reports.report_for(october, "2025-10").summary.total_identifications == 28


def test_late_data_metric_counts_by_received_day(october):
    late = reports.late_receipts(
        october, Period(date(2025, 10, 1), date(2025, 10, 31)), date(2025, 11, 2)
    )
    # Only what arrived from Nov 2 on: late2 (4 identifications) and late3 (1 page view).
    assert late.by_type == {
        "identification": TypeUsage(quantity=4, events=1),
        "page_view": TypeUsage(quantity=1, events=1),
    }


def test_migration_0002_fills_the_receipt_rollup_from_stored_events(tmp_path):
    """Upgrading a database that already holds events counts them by local day received."""
    from flask_migrate import upgrade
    from sqlalchemy import text

    from app import create_app

    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "x",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'old.sqlite3'}",
        }
    )
    with app.app_context():
        try:
            upgrade(revision="0001")
            now = "2025-11-05 12:00:00"
            db.session.execute(
                text(
                    "INSERT INTO partner (id, name, slug, status, billing_mode, billing_period, "
                    "billing_day_of_month, credit_pool_total, pricing_tiers, currency, timezone, "
                    "created_at) VALUES ('p1', 'P', 'p', 'active', 'credit_pool', 'monthly', 1, "
                    f"100, '[]', 'USD', '{NY}', '{now}')"
                )
            )
            db.session.execute(
                text(
                    "INSERT INTO organization (id, partner_id, name, status, tier, product_type, "
                    "metadata, credits_allocated, created_at, updated_at) VALUES ('o1', 'p1', "
                    f"'O', 'active', 'paid', 'B2B', '{{}}', 0, '{now}', '{now}')"
                )
            )
            # (event id, type, quantity, local day, received_at UTC)
            for eid, etype, qty, day, received in [
                ("a", "identification", 3, "2025-10-31", "2025-11-01 03:59:59"),  # Oct 31 NY
                ("b", "identification", 2, "2025-10-31", "2025-11-01 04:00:00"),  # Nov 1 NY
                ("c", "identification", 4, "2025-10-31", "2025-11-03 15:00:00"),  # Nov 3 NY
                ("d", "identification", 1, "2025-10-31", "2025-11-03 15:00:00"),  # Nov 3 NY
            ]:
                db.session.execute(
                    text(
                        "INSERT INTO usage_event (partner_id, organization_id, event_id, type, "
                        "quantity, occurred_at, local_date, received_at) VALUES ('p1', 'o1', "
                        f"'{eid}', '{etype}', {qty}, '{day} 12:00:00', '{day}', '{received}')"
                    )
                )
            db.session.commit()
            upgrade()
            pdr = PartnerDailyReceipt
            rows = db.session.execute(
                db.select(pdr.received_day, pdr.quantity, pdr.events)
                .where(pdr.partner_id == "p1")
                .order_by(pdr.received_day)
            ).all()
            assert [tuple(r) for r in rows] == [
                (date(2025, 10, 31), 3, 1),
                (date(2025, 11, 1), 2, 1),
                (date(2025, 11, 3), 4 + 1, 2),
            ]
        finally:
            db.session.remove()
            db.engine.dispose()
