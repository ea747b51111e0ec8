"""The command line of spec §5, through the Flask CLI runner and one real subprocess run."""

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import date, datetime
from pathlib import Path

import pytest
from sqlalchemy import delete, func, inspect, select, text, update

from app import auth, create_app, ingest, metrics, rollups
from app.extensions import db
from app.ingest import pipeline
from app.models import (
    ApiKey,
    AuditEntry,
    Organization,
    OrgBucketUsage,
    OrgDailyUsage,
    Partner,
    PartnerDailyUsage,
    UsageEvent,
    User,
)
from app.periods import Period

# The tests read back what the commands stored.
pytestmark = pytest.mark.usefixtures("app_ctx")

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2025, 11, 14, 12, 0)
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
OCT = Period(date(2025, 10, 1), date(2025, 10, 31))


def ok(result, code=0):
    assert result.exit_code == code, (result.output, result.exception)
    return result


def one(model, *where):
    db.session.expire_all()
    return db.session.execute(select(model).where(*where)).scalar_one()


def count(model, *where):
    db.session.expire_all()
    return db.session.execute(select(func.count()).select_from(model).where(*where)).scalar()


@pytest.fixture
def acme(runner, freeze):
    """A partner and two organizations made through the CLI; returns the partner."""
    freeze(NOW)
    ok(runner.invoke(args=["create-partner", "--name", "Acme", "--slug", "acme", "--pool", "1000"]))
    ok(
        runner.invoke(
            args=[
                "create-org",
                "--partner",
                "acme",
                "--name",
                "Alpha",
                "--external-id",
                "a-1",
                "--created-at",
                "2025-01-01",
            ]
        )
    )
    ok(
        runner.invoke(
            args=[
                "create-org",
                "--partner",
                "acme",
                "--name",
                "Bravo",
                "--external-id",
                "b-1",
                "--created-at",
                "2025-01-01",
            ]
        )
    )
    return one(Partner, Partner.slug == "acme")


def jsonl(*events):
    return "".join(json.dumps(e) + "\n" for e in events)


def ev(event_id, ext, etype, quantity, at):
    return {
        "eventId": event_id,
        "externalId": ext,
        "type": etype,
        "quantity": quantity,
        "occurredAt": at,
    }


EVENTS = [
    ev("e1", "a-1", "identification", 5, "2025-10-01T10:00:00Z"),
    ev("e2", "b-1", "identification", 2, "2025-10-02T10:00:00Z"),
    ev("e3", "a-1", "page_view", 9, "2025-10-02T11:00:00Z"),
]


# --- init-db ---------------------------------------------------------------------------------


def test_init_db_is_idempotent(tmp_path):
    fresh = create_app(
        {"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'new.db'}", "SECRET_KEY": "x"}
    )
    runner = fresh.test_cli_runner()
    # The real `flask` pushes an app context for every command; the test runner does not.
    with fresh.app_context():
        ok(runner.invoke(args=["init-db"]))
        tables = set(inspect(db.engine).get_table_names())
        version = (
            db.session.execute(db.text("SELECT version_num FROM alembic_version")).scalars().all()
        )
        assert {
            "partner",
            "organization",
            "usage_event",
            "org_daily_usage",
            "partner_daily_usage",
            "alembic_version",
        } <= tables
        assert len(version) == 1
        ok(runner.invoke(args=["init-db"]))
        ok(runner.invoke(args=["create-partner", "--name", "P", "--slug", "p", "--pool", "1"]))
        ok(runner.invoke(args=["init-db"]))  # data survives a re-run
        assert db.session.execute(db.text("SELECT slug FROM partner")).scalars().all() == ["p"]
        again = (
            db.session.execute(db.text("SELECT version_num FROM alembic_version")).scalars().all()
        )
        assert again == version
        db.session.remove()
        db.engine.dispose()


# --- create-* ---------------------------------------------------------------------------------


def test_create_partner_prints_its_id(runner):
    result = ok(
        runner.invoke(
            args=[
                "create-partner",
                "--name",
                "Acme Agency",
                "--slug",
                "acme",
                "--pool",
                "50000",
                "--billing-day",
                "15",
                "--billing-period",
                "annual",
                "--timezone",
                "Europe/Paris",
                "--billing-mode",
                "pooled",
                "--max-organizations",
                "10",
            ]
        )
    )
    partner_id = result.stdout.strip()
    assert UUID_RE.match(partner_id)
    p = one(Partner, Partner.id == partner_id)
    assert (
        p.name,
        p.slug,
        p.credit_pool_total,
        p.billing_day_of_month,
        p.billing_period,
        p.timezone,
        p.billing_mode,
        p.max_organizations,
    ) == ("Acme Agency", "acme", 50000, 15, "annual", "Europe/Paris", "credit_pool", 10)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--billing-day", "29"], "billingDayOfMonth"),
        (["--timezone", "Mars/Olympus"], "timezone"),
        (["--billing-period", "weekly"], "weekly"),
        (["--pool", "-5"], "creditPoolTotal"),
    ],
)
def test_create_partner_refuses_bad_settings(runner, args, words):
    base = {"--name": "Acme", "--slug": "acme", "--pool": "100"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    argv = ["create-partner"] + [x for kv in base.items() for x in kv]
    result = runner.invoke(args=argv)
    assert result.exit_code != 0
    assert words in result.output
    assert count(Partner) == 0


def test_create_partner_duplicate_slug(runner):
    ok(runner.invoke(args=["create-partner", "--name", "A", "--slug", "acme", "--pool", "1"]))
    result = runner.invoke(args=["create-partner", "--name", "B", "--slug", "acme", "--pool", "1"])
    assert result.exit_code == 1
    assert "already exists" in result.output
    assert count(Partner) == 1


def test_create_org(runner, freeze):
    freeze(NOW)
    ok(
        runner.invoke(
            args=[
                "create-partner",
                "--name",
                "NY",
                "--slug",
                "ny",
                "--pool",
                "1000",
                "--timezone",
                "America/New_York",
            ]
        )
    )
    result = ok(
        runner.invoke(
            args=[
                "create-org",
                "--partner",
                "ny",
                "--name",
                "Bluebird Bakery",
                "--external-id",
                "crm-42",
                "--credits",
                "400",
                "--tier",
                "paid",
                "--product-type",
                "B2C",
                "--created-at",
                "2025-10-01",
            ]
        )
    )
    org_id = result.stdout.strip()
    assert UUID_RE.match(org_id)
    org = one(Organization, Organization.id == org_id)
    assert (
        org.name,
        org.external_id,
        org.credits_allocated,
        org.tier,
        org.product_type,
        org.status,
    ) == ("Bluebird Bakery", "crm-42", 400, "paid", "B2C", "active")
    # The start of Oct 1 in New York (EDT, -04:00) is 04:00 UTC...
    assert org.created_at == datetime(2025, 10, 1, 4)
    # ...so the organization exists on Oct 1 of the partner's calendar, not on Sep 30.
    partner = one(Partner, Partner.slug == "ny")
    assert metrics.organization_counts(partner, date(2025, 9, 30)).total_organizations == 0
    assert metrics.organization_counts(partner, date(2025, 10, 1)).total_organizations == 1
    # A timestamp is taken as the moment it names, as the API's createdAt:
    # 2025-10-02T09:30:00+02:00 is 07:30 UTC.
    result = ok(
        runner.invoke(
            args=[
                "create-org",
                "--partner",
                "ny",
                "--name",
                "Cardinal Café",
                "--created-at",
                "2025-10-02T09:30:00+02:00",
            ]
        )
    )
    assert one(Organization, Organization.id == result.stdout.strip()).created_at == datetime(
        2025, 10, 2, 7, 30
    )


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["--created-at", "01/10/2025"], 2, "--created-at"),
        (["--created-at", "1969-12-31"], 2, "between 1970-01-01 and 2999-12-31"),
        (["--created-at", "2025-11-15"], 1, "future"),
        (["--credits", "600"], 1, "trial"),  # a trial organization holds at most 500
        (["--credits", "2000", "--tier", "paid"], 1, "at most 1,000 can be allocated"),  # pool 1000
        (["--external-id", "a-1"], 1, "exists"),
    ],
)
def test_create_org_refusals(acme, runner, args, code, words):
    before = count(Organization)
    result = runner.invoke(args=["create-org", "--partner", "acme", "--name", "X", *args])
    assert result.exit_code == code, result.output
    assert words in result.output
    assert count(Organization) == before


def test_unknown_partner(runner):
    for command in (
        ["create-org", "--name", "X"],
        ["create-api-key"],
        ["create-user", "--email", "a@b.c", "--password", "long-enough"],
        ["ingest", "-"],
        ["set-timezone", "--timezone", "UTC"],
    ):
        result = runner.invoke(args=[command[0], "--partner", "ghost", *command[1:]])
        assert result.exit_code == 1, command
        assert "ghost" in result.output


def test_create_api_key_prints_only_the_key(acme, runner):
    result = ok(
        runner.invoke(
            args=["create-api-key", "--partner", "acme", "--name", "ci", "--scopes", "read,write"]
        )
    )
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    plain = lines[0]
    assert re.fullmatch(r"pk_live_[A-Za-z0-9_-]{20,}", plain)
    key = auth.find_api_key(plain)
    assert key is not None
    assert (key.partner_id, key.name, key.scope_list) == (acme.id, "ci", ["read", "write"])
    # Only the digest is stored.
    stored = one(ApiKey, ApiKey.id == key.id)
    assert plain not in (stored.key_hash, stored.prefix)
    assert stored.key_hash == auth.key_digest(plain)
    bad = runner.invoke(args=["create-api-key", "--partner", "acme", "--scopes", "root"])
    assert bad.exit_code == 1
    assert "root" in bad.output


def test_create_user(acme, runner):
    ok(
        runner.invoke(
            args=[
                "create-user",
                "--partner",
                "acme",
                "--email",
                "Ops@Acme.test",
                "--password",
                "correct horse",
            ]
        )
    )
    user = auth.authenticate("ops@acme.test", "correct horse")
    assert user is not None and user.partner_id == acme.id
    # Without --password it prompts twice, hidden.
    ok(
        runner.invoke(
            args=[
                "create-user",
                "--partner",
                "acme",
                "--email",
                "fin@acme.test",
                "--role",
                "admin",
            ],
            input="another secret\nanother secret\n",
        )
    )
    assert auth.authenticate("fin@acme.test", "another secret") is not None
    assert (
        "another secret"
        not in runner.invoke(
            args=[
                "create-user",
                "--partner",
                "acme",
                "--email",
                "x@acme.test",
                "--role",
                "analyst",
            ],
            input="another secret\nanother secret\n",
        ).stdout
    )
    short = runner.invoke(
        args=[
            "create-user",
            "--partner",
            "acme",
            "--email",
            "s@acme.test",
            "--password",
            "short",
            "--role",
            "admin",
        ]
    )
    assert short.exit_code == 1 and "8 characters" in short.output
    dup = runner.invoke(
        args=[
            "create-user",
            "--partner",
            "acme",
            "--email",
            "ops@acme.test",
            "--password",
            "correct horse",
            "--role",
            "owner",
        ]
    )
    assert dup.exit_code == 1 and "already exists" in dup.output
    assert count(User) == 3


# --- ingest ----------------------------------------------------------------------------------


def test_ingest_jsonl_twice_changes_nothing(acme, runner, tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text(jsonl(*EVENTS, EVENTS[0]))  # e1 twice inside the file
    first = ok(runner.invoke(args=["ingest", str(path), "--partner", "acme"]))
    assert first.stdout.splitlines() == ["accepted: 3", "duplicates: 1", "rejected: 0"]
    figures = metrics.summary(acme, OCT)
    # e1 5 + e2 2 identifications; + e3 9 page views.
    assert (
        figures.total_identifications,
        figures.total_quantity,
        figures.total_events,
        figures.credits_remaining,
    ) == (7, 16, 3, 993)
    second = ok(runner.invoke(args=["ingest", str(path), "--partner", "acme"]))
    assert second.stdout.splitlines() == ["accepted: 0", "duplicates: 4", "rejected: 0"]
    db.session.expire_all()
    assert metrics.summary(acme, OCT) == figures
    assert count(UsageEvent) == 3


def test_ingest_csv(acme, runner, tmp_path):
    path = tmp_path / "events.csv"
    path.write_text(
        "eventId,organizationId,externalId,type,quantity,occurredAt\n"
        "c1,,a-1,identification,4,2025-10-01T10:00:00Z\n"
        "c2,,b-1,page_view,,2025-10-01T23:30:00-02:00\n"  # = Oct 2 01:30 UTC, quantity 1
    )
    result = ok(runner.invoke(args=["ingest", str(path), "--partner", "acme"]))
    assert result.stdout.splitlines() == ["accepted: 2", "duplicates: 0", "rejected: 0"]
    days = metrics.timeseries(acme, Period(date(2025, 10, 1), date(2025, 10, 2)), "day")
    assert [(p.identifications, p.quantity) for p in days] == [(4, 4), (0, 1)]


def test_ingest_from_stdin(acme, runner):
    result = ok(runner.invoke(args=["ingest", "-", "--partner", "acme"], input=jsonl(*EVENTS)))
    assert result.stdout.splitlines() == ["accepted: 3", "duplicates: 0", "rejected: 0"]
    csv_text = (
        "eventId,externalId,type,quantity,occurredAt\n"
        "s1,a-1,identification,10,2025-10-03T10:00:00Z\n"
    )
    result = ok(
        runner.invoke(args=["ingest", "-", "--partner", "acme", "--format", "csv"], input=csv_text)
    )
    assert result.stdout.splitlines() == ["accepted: 1", "duplicates: 0", "rejected: 0"]
    assert metrics.summary(acme, OCT).total_identifications == 17  # 5 + 2 + 10


def test_ingest_bad_lines(acme, runner, tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        "\n".join(
            [
                json.dumps(EVENTS[0]),  # 1 good
                "{oops",  # 2
                json.dumps(ev("x1", "a-1", "identification", -2, "2025-10-01T10:00:00Z")),  # 3
                "",  # 4 blank
                json.dumps(ev("x2", "zz-9", "identification", 1, "2025-10-01T10:00:00Z")),  # 5
                json.dumps(EVENTS[1]),  # 6 good
                json.dumps(ev("x3", "a-1", "identification", 1, "2025-10-01")),  # 7
                '{"eventId": "x4", "externalId": "a-1", "type": "page_view", "quantity": NaN, '
                '"occurredAt": "2025-10-01T10:00:00Z"}',  # 8
                json.dumps(EVENTS[2]),  # 9 good
            ]
        )
        + "\n"
    )
    result = runner.invoke(args=["ingest", str(path), "--partner", "acme", "--batch-size", "2"])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[-3:] == ["accepted: 3", "duplicates: 0", "rejected: 5"]
    rejected = [re.match(r"line (\d+): (\w+): ", line) for line in lines[:-3]]
    assert all(rejected), lines
    assert [(int(m.group(1)), m.group(2)) for m in rejected] == [
        (2, "invalid_json"),
        (3, "invalid_quantity"),
        (5, "unknown_organization"),
        (7, "invalid_occurred_at"),
        (8, "invalid_json"),
    ]
    assert "zz-9" in lines[2]
    # The good lines are stored.
    assert metrics.summary(acme, OCT).total_events == 3
    # Fixing nothing and running again: the good ones are duplicates now.
    again = runner.invoke(args=["ingest", str(path), "--partner", "acme"])
    assert again.exit_code == 1
    assert again.stdout.splitlines()[-3:] == ["accepted: 0", "duplicates: 3", "rejected: 5"]


def test_ingest_bad_csv_lines_and_header(acme, runner, tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text(
        "eventId,organizationId,externalId,type,quantity,occurredAt\n"
        "g1,,a-1,identification,1,2025-10-01T10:00:00Z\n"
        "g2,,a-1,identification\n"
        "g3,,a-1,identification,1.5,2025-10-01T10:00:00Z\n"
        "g4,,a-1,Bad Type,1,2025-10-01T10:00:00Z\n"
    )
    result = runner.invoke(args=["ingest", str(path), "--partner", "acme"])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "line 3: invalid_csv: expected 6 fields, found 4",
        "line 4: invalid_quantity: quantity must be a whole number written with the "
        "digits 0-9 only (no sign, spaces or other numerals)",
        "line 5: invalid_type: type must be [a-z][a-z0-9_]{0,63}, nothing before or after "
        "(for example identification, page_view)",
        "accepted: 1",
        "duplicates: 0",
        "rejected: 3",
    ]
    header = tmp_path / "header.csv"
    header.write_text("id,org,kind\n1,2,3\n")
    bad = runner.invoke(args=["ingest", str(header), "--partner", "acme"])
    assert bad.exit_code == 1
    assert "line 1" in bad.output and "eventId" in bad.output
    missing = runner.invoke(args=["ingest", str(tmp_path / "nope.jsonl"), "--partner", "acme"])
    assert missing.exit_code == 1 and "cannot read" in missing.output
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b"\xff\xfe\x00garbage\n")
    result = runner.invoke(args=["ingest", str(binary), "--partner", "acme"])
    assert result.exit_code == 1 and "UTF-8" in result.output
    assert count(UsageEvent) == 1


# --- rollups ----------------------------------------------------------------------------------


def test_rollups_verify_detects_tampering_and_rebuild_fixes_it(acme, runner, tmp_path):
    ok(runner.invoke(args=["ingest", "-", "--partner", "acme"], input=jsonl(*EVENTS)))
    result = ok(runner.invoke(args=["rollups", "verify"]))
    assert result.stdout.splitlines() == ["acme: OK"]
    good_figures = metrics.summary(acme, OCT)

    # Corrupt one organization-day row and one partner-day row.
    db.session.execute(
        update(OrgDailyUsage)
        .where(OrgDailyUsage.day == date(2025, 10, 1), OrgDailyUsage.type == "identification")
        .values(quantity=OrgDailyUsage.quantity + 100)
    )
    db.session.execute(
        update(PartnerDailyUsage)
        .where(PartnerDailyUsage.day == date(2025, 10, 2), PartnerDailyUsage.type == "page_view")
        .values(events=7)
    )
    db.session.commit()
    # The page reads rollups: Oct 1-2 (no whole week or month) reads the daily rows.
    first_days = Period(date(2025, 10, 1), date(2025, 10, 2))
    assert metrics.summary(acme, first_days).total_events == 3 - 1 + 7
    result = runner.invoke(args=["rollups", "verify", "--partner", "acme"])
    assert result.exit_code == 1
    out = result.stdout
    assert "2025-10-01 identification" in out and "(5, 1)" in out and "(105, 1)" in out
    assert "partner total 2025-10-02 page_view" in out and "(9, 7)" in out
    assert out.splitlines()[-1] == "acme: 2 mismatches"

    ok(runner.invoke(args=["rollups", "rebuild", "--partner", "acme"]))
    ok(runner.invoke(args=["rollups", "verify"]))
    db.session.expire_all()
    assert metrics.summary(acme, OCT) == good_figures

    # A rollup row without any raw event behind it is caught too.
    db.session.execute(
        PartnerDailyUsage.__table__.insert().values(
            partner_id=acme.id, day=date(2025, 10, 9), type="session", quantity=1, events=1
        )
    )
    db.session.commit()
    assert runner.invoke(args=["rollups", "verify"]).exit_code == 1
    ok(runner.invoke(args=["rollups", "rebuild"]))
    ok(runner.invoke(args=["rollups", "verify"]))

    # The weekly and monthly rows are recounted from the raw events too.
    db.session.execute(
        update(OrgBucketUsage)
        .where(OrgBucketUsage.grain == "month")
        .values(identifications=OrgBucketUsage.identifications + 1)
    )
    db.session.commit()
    result = runner.invoke(args=["rollups", "verify", "--partner", "acme"])
    assert result.exit_code == 1
    assert (
        "month of 2025-10-01: raw events give identifications/quantity/events "
        "(5, 14, 2), rollup holds (6, 14, 2)" in result.stdout
    )  # a-1: e1, and e3's 9
    assert result.stdout.splitlines()[-1] == "acme: 2 mismatches"  # a-1 and b-1's Octobers
    ok(runner.invoke(args=["rollups", "rebuild", "--partner", "acme"]))
    ok(runner.invoke(args=["rollups", "verify"]))
    db.session.expire_all()
    assert metrics.summary(acme, OCT) == good_figures

    # An event naming another partner's organization (usage_event has no foreign keys;
    # ingestion refuses this, so only a direct write can do it) is reported.
    ok(runner.invoke(args=["create-partner", "--name", "Other", "--slug", "other", "--pool", "10"]))
    ok(
        runner.invoke(
            args=[
                "create-org",
                "--partner",
                "other",
                "--name",
                "Theirs",
                "--external-id",
                "t-1",
                "--created-at",
                "2025-01-01",
            ]
        )
    )
    theirs = one(Organization, Organization.external_id == "t-1")
    db.session.execute(
        UsageEvent.__table__.insert().values(
            partner_id=acme.id,
            organization_id=theirs.id,
            event_id="stray",
            type="session",
            quantity=1,
            occurred_at=datetime(2025, 10, 9, 10),
            local_date=date(2025, 10, 9),
            received_at=NOW,
        )
    )
    db.session.commit()
    result = runner.invoke(args=["rollups", "verify", "--partner", "acme"])
    assert result.exit_code == 1
    assert f"1 event(s) name organization {theirs.id}, which is not this partner's" in result.stdout


# --- seed-demo -------------------------------------------------------------------------------


def test_seed_demo_is_idempotent(runner, freeze):
    freeze(NOW)
    first = ok(runner.invoke(args=["seed-demo"]))
    assert "demo partner created: 40 organizations" in first.stdout
    assert "demo@example.com / demo-password" in first.stdout
    key1 = re.search(r"(pk_live_\S+)", first.stdout).group(1)
    demo = one(Partner, Partner.slug == "demo")
    events = count(UsageEvent, UsageEvent.partner_id == demo.id)
    orgs = count(Organization, Organization.partner_id == demo.id)
    assert orgs == 40
    assert events > 10_000
    # Nothing is dated after the (frozen) clock.
    latest = db.session.execute(select(func.max(UsageEvent.occurred_at))).scalar()
    assert latest <= NOW
    # ~13 months of history.
    first_day = metrics.first_activity_day(demo)
    assert date(2024, 10, 1) <= first_day <= date(2024, 10, 31)
    # Churn: some organizations are canceled, one is suspended.
    statuses = db.session.execute(
        select(Organization.status, func.count())
        .where(Organization.partner_id == demo.id)
        .group_by(Organization.status)
    ).all()
    assert dict(statuses) == {"active": 36, "canceled": 3, "suspended": 1}
    assert rollups.verify(demo.id) == []
    figures = metrics.summary(demo, Period(date(2025, 10, 1), date(2025, 10, 31)))
    assert figures.total_identifications > 0

    second = ok(runner.invoke(args=["seed-demo"]))
    assert "already present; no data added" in second.stdout
    key2 = re.search(r"(pk_live_\S+)", second.stdout).group(1)
    assert key1 != key2
    assert count(UsageEvent, UsageEvent.partner_id == demo.id) == events
    assert count(Organization, Organization.partner_id == demo.id) == orgs
    assert count(User) == 1
    db.session.expire_all()
    assert metrics.summary(demo, Period(date(2025, 10, 1), date(2025, 10, 31))) == figures
    # The previous demo key is revoked, the new one works.
    assert auth.find_api_key(key1) is None
    assert auth.find_api_key(key2) is not None


# --- set-timezone ----------------------------------------------------------------------------


def test_set_timezone(acme, runner):
    ok(
        runner.invoke(
            args=["ingest", "-", "--partner", "acme"],
            input=jsonl(ev("t1", "a-1", "identification", 1, "2025-10-01T23:30:00Z")),
        )
    )
    day2 = Period(date(2025, 10, 2), date(2025, 10, 2))
    assert metrics.summary(acme, day2).total_identifications == 0
    result = ok(
        runner.invoke(args=["set-timezone", "--partner", "acme", "--timezone", "Asia/Kathmandu"])
    )
    assert "Asia/Kathmandu" in result.stdout
    db.session.expire_all()
    acme = one(Partner, Partner.slug == "acme")
    assert acme.timezone == "Asia/Kathmandu"
    # 23:30 UTC on Oct 1 is 05:15 on Oct 2 in Kathmandu.
    assert metrics.summary(acme, day2).total_identifications == 1
    bad = runner.invoke(args=["set-timezone", "--partner", "acme", "--timezone", "Nowhere"])
    assert bad.exit_code == 2 and "--timezone" in bad.output
    assert one(Partner, Partner.slug == "acme").timezone == "Asia/Kathmandu"


# --- a real process -----------------------------------------------------------------------------


def flask_process(database: Path) -> tuple[Path, dict[str, str]]:
    """Return the flask executable and an environment bound to a SQLite file."""
    flask = ROOT / ".venv" / "bin" / "flask"
    if not flask.exists():
        flask = Path(sys.executable).parent / "flask"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "DATABASE_"))}
    env["DATABASE_URL"] = f"sqlite:///{database}"
    return flask, env


def test_real_flask_processes(tmp_path):
    flask, env = flask_process(tmp_path / "cli.sqlite3")

    def run(*args, stdin=None, code=0):
        proc = subprocess.run(  # noqa: S603 (our own executable, fixed arguments)
            [str(flask), *args],
            cwd=ROOT,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == code, (args, proc.stdout, proc.stderr)
        return proc

    run("init-db")
    run("init-db")
    partner_id = run(
        "create-partner", "--name", "Real", "--slug", "real", "--pool", "100"
    ).stdout.strip()
    assert UUID_RE.match(partner_id)
    org_id = run(
        "create-org",
        "--partner",
        "real",
        "--name",
        "One",
        "--external-id",
        "o-1",
        "--created-at",
        "2024-01-01",
    ).stdout.strip()
    assert UUID_RE.match(org_id)
    key = run("create-api-key", "--partner", "real").stdout
    assert re.fullmatch(r"pk_live_\S+\n", key)
    events = tmp_path / "real.jsonl"
    events.write_text(
        jsonl(
            {
                "eventId": "r1",
                "organizationId": org_id,
                "type": "identification",
                "quantity": 3,
                "occurredAt": "2025-01-05T10:00:00Z",
            },
            {
                "eventId": "r2",
                "externalId": "o-1",
                "type": "page_view",
                "occurredAt": "2025-01-05T10:00:00Z",
            },
            {
                "eventId": "r3",
                "externalId": "o-1",
                "type": "identification",
                "quantity": -1,
                "occurredAt": "2025-01-05T10:00:00Z",
            },
        )
    )
    out = run("ingest", str(events), "--partner", "real", code=1).stdout.splitlines()
    assert out == [
        "line 3: invalid_quantity: quantity must not be negative",
        "accepted: 2",
        "duplicates: 0",
        "rejected: 1",
    ]
    out = run(
        "ingest", "-", "--partner", "real", stdin=events.read_text()[:-1].rsplit("\n", 1)[0] + "\n"
    ).stdout.splitlines()
    assert out == ["accepted: 0", "duplicates: 2", "rejected: 0"]
    assert run("rollups", "verify").stdout.splitlines() == ["real: OK"]
    # Read the figures back through the aggregation module on the same file.
    real = create_app({"DATABASE_URL": env["DATABASE_URL"], "SECRET_KEY": "x"})
    with real.app_context():
        partner = db.session.execute(select(Partner)).scalar_one()
        s = metrics.summary(partner, Period(date(2025, 1, 1), date(2025, 1, 31)))
        db.engine.dispose()
    assert (
        s.total_identifications,
        s.total_quantity,
        s.total_events,
        s.credits_remaining,
    ) == (3, 4, 2, 97)


# --- ingest: the reader process (--pipeline) gives what the single process gives ------------


def _mixed_lines(n: int) -> list[str]:
    """n JSON lines: good events, repeats (in and across batches) and bad lines."""
    lines = []
    for i in range(n):
        if i % 11 == 3:
            lines.append("{oops")
        elif i % 13 == 5:
            lines.append(
                json.dumps(ev(f"m{i}", "zz-9", "identification", 1, "2025-10-01T10:00:00Z"))
            )
        elif i % 7 == 2:
            lines.append(
                json.dumps(ev(f"m{i - 1}", "a-1", "page_view", 1, "2025-10-03T10:00:00Z"))
            )  # repeats an earlier id
        else:
            lines.append(
                json.dumps(
                    ev(
                        f"m{i}",
                        ("a-1", "b-1")[i % 2],
                        "identification",
                        1 + i % 4,
                        f"2025-10-{1 + i % 28:02d}T{i % 24:02d}:00:00Z",
                    )
                )
            )
    return lines


@pytest.mark.parametrize("batch", ["1", "7", "64", "5000"])
def test_ingest_with_a_reader_process_matches_a_single_process(
    acme, runner, tmp_path, batch, monkeypatch
):
    # The reader hands a batch over in chunks of 5 lines here: a batch of 64 or 5,000
    # lines spans many, with repeats of an earlier chunk's line among them.
    monkeypatch.setattr(pipeline, "CHUNK_LINES", 5)
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(_mixed_lines(300)) + "\n")
    ok(runner.invoke(args=["create-partner", "--name", "Twin", "--slug", "twin", "--pool", "1000"]))
    for name, ext in (("Alpha", "a-1"), ("Bravo", "b-1")):
        ok(
            runner.invoke(
                args=[
                    "create-org",
                    "--partner",
                    "twin",
                    "--name",
                    name,
                    "--external-id",
                    ext,
                    "--created-at",
                    "2025-01-01",
                ]
            )
        )
    single = runner.invoke(
        args=["ingest", str(path), "--partner", "acme", "--batch-size", batch, "--no-pipeline"]
    )
    piped = runner.invoke(
        args=["ingest", str(path), "--partner", "twin", "--batch-size", batch, "--pipeline"]
    )
    assert (single.exit_code, piped.exit_code) == (1, 1)
    assert piped.stdout == single.stdout, piped.output
    # Hand count of _mixed_lines(300): 28 bad JSON (i % 11 == 3), the i % 13 == 5 lines
    # among the rest name an unknown organization, the i % 7 == 2 lines repeat m(i-1).
    bad_json = [i for i in range(300) if i % 11 == 3]
    unknown = [i for i in range(300) if i % 11 != 3 and i % 13 == 5]
    repeats = [i for i in range(300) if i % 11 != 3 and i % 13 != 5 and i % 7 == 2]
    good = 300 - len(bad_json) - len(unknown) - len(repeats)
    # A repeat of a line that was itself rejected is new: m(i-1) was never stored.
    stored_ids = {i for i in range(300) if i % 11 != 3 and i % 13 != 5 and i % 7 != 2}
    fresh_repeats = [i for i in repeats if i - 1 not in stored_ids]
    assert single.stdout.splitlines()[-3:] == [
        f"accepted: {good + len(fresh_repeats)}",
        f"duplicates: {len(repeats) - len(fresh_repeats)}",
        f"rejected: {len(bad_json) + len(unknown)}",
    ]
    twin = one(Partner, Partner.slug == "twin")

    def stored(partner):
        db.session.expire_all()
        return sorted(
            db.session.execute(
                select(
                    UsageEvent.event_id,
                    Organization.external_id,
                    UsageEvent.type,
                    UsageEvent.quantity,
                    UsageEvent.occurred_at,
                    UsageEvent.local_date,
                )
                .join(Organization, Organization.id == UsageEvent.organization_id)
                .where(UsageEvent.partner_id == partner.id)
            ).all()
        )

    assert stored(twin) == stored(acme) and len(stored(acme)) == good + len(fresh_repeats)
    assert metrics.summary(twin, OCT) == metrics.summary(acme, OCT)
    assert ok(runner.invoke(args=["rollups", "verify"])).stdout.splitlines() == [
        "acme: OK",
        "twin: OK",
    ]
    # Again: every good line is now a duplicate, in both modes alike.
    again = [
        runner.invoke(
            args=["ingest", str(path), "--partner", slug, "--batch-size", batch, mode]
        ).stdout
        for slug, mode in (("acme", "--no-pipeline"), ("twin", "--pipeline"))
    ]
    assert again[0] == again[1]
    assert again[1].splitlines()[-3:] == [
        "accepted: 0",
        f"duplicates: {len(repeats) + good}",
        f"rejected: {len(bad_json) + len(unknown)}",
    ]
    assert metrics.summary(twin, OCT) == metrics.summary(acme, OCT)


def test_a_reader_process_error_stops_the_import_after_the_stored_batches(
    acme, runner, tmp_path, monkeypatch
):
    # 2,000 good lines (~190 kB), then a byte that is not UTF-8, then more good lines. The
    # file is decoded in chunks, so the error surfaces some way before the bad line; the
    # whole batches read before it are stored, the same in both modes. The reader hands
    # each batch of 100 over in chunks of 30: the chunks of the batch the error cuts
    # short, already stored in its open transaction, are rolled back with it.
    monkeypatch.setattr(pipeline, "CHUNK_LINES", 30)
    good_lines = [
        json.dumps(ev(f"u{i}", "a-1", "identification", 1, "2025-10-01T10:00:00Z"))
        for i in range(2100)
    ]
    raw = (
        ("\n".join(good_lines[:2000]) + "\n").encode()
        + b'{"eventId": "\xff"}\n'
        + ("\n".join(good_lines[2000:]) + "\n").encode()
    )
    path = tmp_path / "broken.jsonl"
    path.write_bytes(raw)
    stored = {}
    for mode in ("--no-pipeline", "--pipeline"):
        db.session.execute(delete(UsageEvent))
        db.session.commit()
        result = runner.invoke(
            args=["ingest", str(path), "--partner", "acme", "--batch-size", "100", mode]
        )
        assert result.exit_code == 1 and "is not UTF-8 text" in result.output, result.output
        stored[mode] = count(UsageEvent)
    assert stored["--pipeline"] == stored["--no-pipeline"]
    assert 0 < stored["--pipeline"] <= 2000 and stored["--pipeline"] % 100 == 0


def test_a_reader_process_that_dies_is_reported_not_waited_for(acme):
    import multiprocessing

    # The reader dies once the importer has stored its first two batches (lines 1-4), so
    # what is stored is known: exactly those four events.
    stored_two = multiprocessing.get_context("fork").Event()

    def pairs():
        for i in range(10):
            if i == 4:
                assert stored_two.wait(60)
                os._exit(3)  # runs in the reader process: it vanishes mid-file
            yield i + 1, ev(f"d{i}", "a-1", "identification", 1, "2025-10-01T10:00:00Z")

    def on_batch(lines, _result):
        if lines == 4:
            stored_two.set()

    with pytest.raises(RuntimeError, match="exit code 3"):
        ingest.ingest_stream_pipelined(acme, pairs(), batch_size=2, on_batch=on_batch)
    assert count(UsageEvent) == 4


def _importer_world(tmp_path, lines: int) -> tuple[Path, dict[str, str], Path]:
    """A SQLite database with partner k and organization o-1, and a CSV of lines events."""
    flask, env = flask_process(tmp_path / "kill.sqlite3")
    for args in (
        ["init-db"],
        ["create-partner", "--name", "K", "--slug", "k", "--pool", "1000"],
        [
            "create-org",
            "--partner",
            "k",
            "--name",
            "One",
            "--external-id",
            "o-1",
            "--created-at",
            "2024-01-01",
        ],
    ):
        subprocess.run(  # noqa: S603
            [str(flask), *args],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
    events = tmp_path / "many.csv"
    events.write_text(
        "eventId,externalId,type,quantity,occurredAt\n"
        + "".join(f"k{i},o-1,identification,1,2025-01-05T10:00:00Z\n" for i in range(lines))
    )
    return flask, env, events


def _reader_of(proc: subprocess.Popen[bytes]) -> list[int]:
    """Wait for the importer's reader process to start; return its pid in a list."""
    children: list[int] = []
    deadline = time.monotonic() + 60
    while not children and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
        path = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
        children = [int(p) for p in path.read_text().split()] if path.exists() else []
    assert children, "the importer never started its reader process"
    return children


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited


def _all_gone(pids: list[int], seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not any(_alive(pid) for pid in pids)


def test_a_killed_import_takes_its_reader_process_with_it(tmp_path):
    """SIGKILL the importer mid-file: its reader process exits within seconds."""
    flask, env, events = _importer_world(tmp_path, 400_000)
    proc = subprocess.Popen(  # noqa: S603
        [str(flask), "ingest", str(events), "--partner", "k", "--batch-size", "500", "--pipeline"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    children = _reader_of(proc)
    # Mid-file: some batches are stored, and the import is still running.
    deadline = time.monotonic() + 60
    database = sqlite3.connect(tmp_path / "kill.sqlite3")
    while database.execute("SELECT count(*) FROM usage_event").fetchone()[0] == 0:
        assert time.monotonic() < deadline and proc.poll() is None, "nothing was stored"
        time.sleep(0.01)
    database.close()
    assert proc.poll() is None, "the import finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert _all_gone(children)


def test_a_reader_that_read_the_whole_file_dies_with_its_importer(tmp_path):
    """The importer is killed before it has read the reader's one batch: the reader, done
    reading and waiting to hand it over, exits too (it kept the importer's database
    connection open, and with it the importer's locks, until it did)."""
    flask, env, events = _importer_world(tmp_path, 3_000)
    proc = subprocess.Popen(  # noqa: S603
        [str(flask), "ingest", str(events), "--partner", "k", "--batch-size", "5000", "--pipeline"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    reader = _reader_of(proc)[0]
    proc.send_signal(signal.SIGSTOP)  # the importer reads nothing more
    try:
        # The reader's queue thread blocks writing the batch the stopped importer does not
        # read: the reader has read the file and is handing it over.
        deadline = time.monotonic() + 60
        while not any(
            "pipe_write" in (task / "wchan").read_text()
            for task in Path(f"/proc/{reader}/task").iterdir()
        ):
            assert time.monotonic() < deadline and _alive(reader), "the reader sent nothing"
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert _all_gone([reader])


def test_a_file_import_uses_a_smaller_sqlite_page_cache(acme, runner):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("a SQLite setting")
    from app import cli
    from app.database import SQLITE_CACHE_KB

    with db.engine.connect() as fresh:
        app_cache = fresh.exec_driver_sql("PRAGMA cache_size").scalar()
    assert app_cache == -SQLITE_CACHE_KB
    ok(runner.invoke(args=["ingest", "-", "--partner", "acme"], input=jsonl(*EVENTS)))
    import_cache = db.session.execute(text("PRAGMA cache_size")).scalar()
    assert import_cache == -cli.SQLITE_IMPORT_CACHE_KB
    assert -import_cache < -app_cache  # negative sizes are KiB: the import's is smaller


# --- flask create-orgs: many organizations from one CSV, all or none -------------------


def create_orgs(runner, tmp_path, text, slug="acme"):
    path = tmp_path / "orgs.csv"
    path.write_text(text, encoding="utf-8")
    return runner.invoke(args=["create-orgs", str(path), "--partner", slug])


def org_audit_count():
    return count(AuditEntry, AuditEntry.object_type == "organization")


def test_create_orgs_creates_every_row_in_one_go(acme, runner, tmp_path):
    audits = org_audit_count()
    result = ok(
        create_orgs(
            runner,
            tmp_path,
            "name,externalId,credits,tier,productType,createdAt\n"
            "Charlie,c-1,300,paid,B2C,2025-10-02\n"
            '"Delta, Inc.",,200,,,\n'
            "\n"  # a blank line is skipped
            "Echo,e-1,,,,\n",
        )
    )
    assert result.stdout == "created 3 organization(s)\n"
    charlie = one(Organization, Organization.external_id == "c-1")
    assert (charlie.name, charlie.credits_allocated, charlie.tier, charlie.product_type) == (
        "Charlie",
        300,
        "paid",
        "B2C",
    )
    assert charlie.created_at == datetime(2025, 10, 2)  # midnight in acme's UTC
    delta = one(Organization, Organization.name == "Delta, Inc.")
    assert (delta.external_id, delta.credits_allocated, delta.tier, delta.product_type) == (
        None,
        200,
        "trial",
        "B2B",
    )
    echo = one(Organization, Organization.external_id == "e-1")
    assert (echo.credits_allocated, echo.created_at) == (0, NOW)
    # One "create" entry per organization, by the CLI (plus the two initial allocations).
    entries = (
        db.session.execute(
            select(AuditEntry)
            .where(AuditEntry.object_type == "organization")
            .order_by(AuditEntry.id)
        )
        .scalars()
        .all()[audits:]
    )
    assert [(e.action, e.object_label, e.actor_kind) for e in entries] == [
        ("create", "Charlie", "cli"),
        ("create", "Delta, Inc.", "cli"),
        ("create", "Echo", "cli"),
    ]


def test_create_orgs_reports_every_bad_row_and_creates_nothing(acme, runner, tmp_path):
    orgs, audits = count(Organization), count(AuditEntry)
    result = create_orgs(
        runner,
        tmp_path,
        "name,externalId,credits,tier,productType,createdAt\n"
        "Foxtrot,a-1,,,,\n"  # 2: Alpha has a-1 already
        "Golf,g-1,600,trial,,\n"  # 3: a trial holds at most 500
        "Hotel,g-1,,,,\n"  # 4: g-1 twice in the file
        "India,,ten,,,\n"  # 5
        "Juliet,,,gold,,\n"  # 6
        "Kilo,,,,,2025-11-15\n"  # 7: tomorrow
        "Lima,,900,paid,,\n"  # 8: fits the pool of 1,000 on its own ...
        "Mike,,200,paid,,\n"  # 9: ... leaving 100 for this one
        "November,,\n"  # 10
        ",,,,,\n"  # 11: empty cells only: a blank line
        "   ,o-1,,,,\n",  # 12: no name
    )
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert [line.split(":", 2)[:2] for line in lines] == [
        ["line 2", " externalId"],
        ["line 3", " credits"],
        ["line 4", " externalId"],
        ["line 5", " credits"],
        ["line 6", " tier"],
        ["line 7", " createdAt"],
        ["line 9", " credits"],
        ["line 10", " row"],
        ["line 12", " name"],
    ]
    assert "exists" in lines[0]
    assert "at most 500" in lines[1]
    assert "earlier row" in lines[2]
    assert "whole number" in lines[3]
    assert "trial, paid" in lines[4]
    assert "future" in lines[5]
    assert "at most 100 can be allocated" in lines[6]
    assert "3 cells where the header has 6" in lines[7]
    assert "9 row(s) rejected; no organization created" in result.output
    assert (count(Organization), count(AuditEntry)) == (orgs, audits)


def test_create_orgs_one_row_over_the_limit_refuses_the_file(runner, tmp_path, freeze):
    freeze(NOW)
    ok(
        runner.invoke(
            args=[
                "create-partner",
                *("--name", "Small", "--slug", "small", "--pool", "10"),
                *("--max-organizations", "2"),
            ]
        )
    )
    result = create_orgs(runner, tmp_path, "name\nOne\nTwo\nThree\n", slug="small")
    assert result.exit_code == 1
    assert result.stdout.startswith("line 4: maxOrganizations: ")
    assert "at most 2 organizations" in result.stdout
    assert len(result.stdout.splitlines()) == 1
    assert count(Organization) == 0
    # Within the limit the same file's first two rows go in.
    ok(create_orgs(runner, tmp_path, "name\nOne\nTwo\n", slug="small"))
    assert count(Organization) == 2


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "line 1: header: the file is empty"),
        ("Alpha,a-9\n", "line 1: header: "),  # no header row: its cells are not columns
        ("externalId,credits\nx,1\n", "name is required"),
        ("name,colour\nA,red\n", "unknown: colour"),
        ("name,name\nA,B\n", "each once"),
    ],
)
def test_create_orgs_needs_a_header_row(acme, runner, tmp_path, text, words):
    orgs = count(Organization)
    result = create_orgs(runner, tmp_path, text)
    assert result.exit_code == 1
    assert words in result.stdout
    assert count(Organization) == orgs


def test_create_orgs_unknown_partner_and_missing_file(acme, runner, tmp_path):
    result = create_orgs(runner, tmp_path, "name\nA\n", slug="ghost")
    assert result.exit_code == 1 and "ghost" in result.output
    result = runner.invoke(args=["create-orgs", str(tmp_path / "nope.csv"), "--partner", "acme"])
    assert result.exit_code == 1 and "cannot read" in result.output
