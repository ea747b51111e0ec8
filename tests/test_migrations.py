"""The Alembic migrations build exactly the schema the models describe (SQLite and PostgreSQL)."""

import os
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect

from app import create_app
from app.extensions import db
from tests.support import scratch_postgres_database

PG_URL = os.environ.get("TEST_DATABASE_URL", "").strip()


@pytest.fixture
def empty_sqlite(tmp_path) -> Iterator[str]:
    yield f"sqlite:///{tmp_path / 'migrated.sqlite3'}"


@pytest.fixture
def empty_postgres() -> Iterator[str]:
    """Create a throwaway PostgreSQL database of our own and drop it afterwards."""
    if not PG_URL:
        pytest.skip("TEST_DATABASE_URL is not set: no PostgreSQL server to migrate")
    with scratch_postgres_database(PG_URL, "pa_mig") as url:
        yield url


def schema_diff(url: str) -> tuple[list, set[str]]:
    """Upgrade an empty database to head; return the differences to the models, and tables."""
    app = create_app({"TESTING": True, "DATABASE_URL": url, "SECRET_KEY": "x"})
    with app.app_context():
        try:
            upgrade()
            with db.engine.connect() as conn:
                context = MigrationContext.configure(conn, opts={"compare_type": True})
                diff = compare_metadata(context, db.metadata)
                tables = set(inspect(conn).get_table_names())
            # Down to nothing and back up again: both directions work.
            downgrade(revision="base")
            with db.engine.connect() as conn:
                assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
            upgrade()
            with db.engine.connect() as conn:
                assert set(inspect(conn).get_table_names()) == tables
        finally:
            db.session.remove()
            db.engine.dispose()
    return diff, tables


def check(url: str) -> None:
    diff, tables = schema_diff(url)
    app = create_app({"TESTING": True, "DATABASE_URL": url, "SECRET_KEY": "x"})
    with app.app_context():
        with db.engine.connect() as conn:
            # 0006: the event table checks no foreign keys (ingestion checks them itself);
            # the rollups still do.
            assert inspect(conn).get_foreign_keys("usage_event") == []
            assert {
                fk["referred_table"] for fk in inspect(conn).get_foreign_keys("org_daily_usage")
            } == {"organization", "partner"}
        db.engine.dispose()
    assert diff == [], "the migrations and the models differ:\n" + "\n".join(map(str, diff))
    assert {t.name for t in db.metadata.sorted_tables} | {"alembic_version"} == tables


def test_migrations_match_the_models_on_sqlite(empty_sqlite):
    check(empty_sqlite)


def test_migrations_match_the_models_on_postgresql(empty_postgres):
    check(empty_postgres)


def backfill_check(url: str) -> None:
    """0005 moves the newest receipt of each partner's events into partner_data_version."""
    from sqlalchemy import text

    app = create_app({"TESTING": True, "DATABASE_URL": url, "SECRET_KEY": "x"})
    with app.app_context():
        try:
            upgrade(revision="0004")
            with db.engine.begin() as conn:
                for pid in ("p-1", "p-2", "p-3"):
                    conn.execute(
                        text(
                            "INSERT INTO partner (id, name, slug, status, billing_mode, "
                            "billing_period, billing_day_of_month, credit_pool_total, "
                            "pricing_tiers, currency, timezone, created_at) "
                            "VALUES (:p, :p, :p, 'active', "
                            "'credit_pool', 'monthly', 1, 0, '[]', 'USD', 'UTC', "
                            "'2025-01-01 00:00:00.000000')"
                        ),
                        {"p": pid},
                    )
                conn.execute(
                    text(
                        "INSERT INTO organization (id, partner_id, name, status, tier, "
                        "product_type, metadata, credits_allocated, created_at, updated_at) "
                        "VALUES ('o-1', 'p-1', "
                        "'A', 'active', 'paid', 'B2B', '{}', 0, '2025-01-01 00:00:00.000000', "
                        "'2025-01-01 00:00:00.000000')"
                    )
                )
                conn.execute(
                    text(
                        "INSERT INTO organization (id, partner_id, name, status, tier, "
                        "product_type, metadata, credits_allocated, created_at, updated_at) "
                        "VALUES ('o-2', 'p-2', "
                        "'B', 'active', 'paid', 'B2B', '{}', 0, '2025-01-01 00:00:00.000000', "
                        "'2025-01-01 00:00:00.000000')"
                    )
                )
                # p-1 already has a version row (as after any write); p-2 has none yet.
                conn.execute(text("INSERT INTO partner_data_version VALUES ('p-1', 7)"))
                for eid, pid, oid, received in (
                    ("e1", "p-1", "o-1", "2025-03-01 10:00:00.000000"),
                    ("e2", "p-1", "o-1", "2025-03-02 09:30:00.000000"),
                    ("e3", "p-1", "o-1", "2025-02-27 23:00:00.000000"),
                    ("e4", "p-2", "o-2", "2025-01-05 08:00:00.000000"),
                ):
                    conn.execute(
                        text(
                            "INSERT INTO usage_event (partner_id, organization_id, event_id, type, "
                            "quantity, occurred_at, local_date, received_at) VALUES (:p, :o, :e, "
                            "'identification', 1, '2025-01-01 00:00:00.000000', '2025-01-01', "
                            ":r)"
                        ),
                        {"p": pid, "o": oid, "e": eid, "r": received},
                    )
            upgrade()
            with db.engine.connect() as conn:
                rows = {
                    r[0]: (r[1], str(r[2]) if r[2] is not None else None)
                    for r in conn.execute(
                        text(
                            "SELECT partner_id, version, last_received_at FROM partner_data_version"
                        )
                    )
                }
        finally:
            db.session.remove()
            db.engine.dispose()
    # p-1: version 7 bumped to 8, newest of its three receipts; p-2: a new row; p-3 has no
    # events and gets none.
    assert rows["p-1"][0] == 8 and rows["p-1"][1].startswith("2025-03-02 09:30:00")
    assert rows["p-2"][0] == 1 and rows["p-2"][1].startswith("2025-01-05 08:00:00")
    assert "p-3" not in rows


def test_migration_0005_keeps_the_newest_receipt_on_sqlite(empty_sqlite):
    backfill_check(empty_sqlite)


def test_migration_0005_keeps_the_newest_receipt_on_postgresql(empty_postgres):
    backfill_check(empty_postgres)


def bucket_backfill_check(url: str) -> None:
    """0007 sums the daily rollup rows already stored into weeks (from Monday) and months."""
    from sqlalchemy import text

    app = create_app({"TESTING": True, "DATABASE_URL": url, "SECRET_KEY": "x"})
    with app.app_context():
        try:
            upgrade(revision="0006")
            with db.engine.begin() as conn:
                conn.execute(
                    text(
                        "INSERT INTO partner (id, name, slug, status, billing_mode, "
                        "billing_period, billing_day_of_month, credit_pool_total, pricing_tiers, "
                        "currency, timezone, created_at) VALUES ('p-1', 'P', 'p', 'active', "
                        "'credit_pool', 'monthly', 1, 0, '[]', 'USD', 'UTC', "
                        "'2025-01-01 00:00:00.000000')"
                    )
                )
                for oid in ("o-1", "o-2"):
                    conn.execute(
                        text(
                            "INSERT INTO organization (id, partner_id, name, status, tier, "
                            "product_type, metadata, credits_allocated, created_at, updated_at) "
                            "VALUES (:o, 'p-1', :o, 'active', 'paid', 'B2B', '{}', 0, "
                            "'2025-01-01 00:00:00.000000', '2025-01-01 00:00:00.000000')"
                        ),
                        {"o": oid},
                    )
                # 2025-03-30 is a Sunday, 03-31 a Monday; 2025-04-02 a Wednesday.
                for oid, day, etype, quantity, events in (
                    ("o-1", "2025-03-30", "identification", 5, 2),
                    ("o-1", "2025-03-31", "identification", 7, 3),
                    ("o-1", "2025-04-02", "identification", 11, 4),
                    ("o-1", "2025-04-02", "page_view", 1, 1),
                    ("o-2", "2025-03-31", "identification", 100, 10),
                ):
                    conn.execute(
                        text(
                            "INSERT INTO org_daily_usage (organization_id, day, type, partner_id, "
                            "quantity, events) VALUES (:o, :d, :t, 'p-1', :q, :n)"
                        ),
                        {"o": oid, "d": day, "t": etype, "q": quantity, "n": events},
                    )
            upgrade()
            with db.engine.connect() as conn:
                rows = {
                    (r[0], r[1], str(r[2])[:10]): (int(r[3]), int(r[4]), int(r[5]))
                    for r in conn.execute(
                        text(
                            "SELECT organization_id, grain, bucket_start, identifications, "
                            "quantity, events FROM org_bucket_usage WHERE partner_id = 'p-1'"
                        )
                    )
                }
        finally:
            db.session.remove()
            db.engine.dispose()
    # (identifications, quantity of every type, events) per organization and bucket.
    assert rows == {
        ("o-1", "week", "2025-03-24"): (5, 5, 2),
        ("o-1", "week", "2025-03-31"): (18, 19, 8),
        ("o-1", "month", "2025-03-01"): (12, 12, 5),
        ("o-1", "month", "2025-04-01"): (11, 12, 5),
        ("o-2", "week", "2025-03-31"): (100, 100, 10),
        ("o-2", "month", "2025-03-01"): (100, 100, 10),
    }


def test_migration_0007_sums_daily_rollups_into_weeks_and_months_on_sqlite(empty_sqlite):
    bucket_backfill_check(empty_sqlite)


def test_migration_0007_sums_daily_rollups_into_weeks_and_months_on_postgresql(empty_postgres):
    bucket_backfill_check(empty_postgres)


def activity_backfill_check(url: str) -> None:
    """0012 numbers each partner's organizations by creation, copies each one's newest
    status entry (by time, then id) and sets the activity bits of the stored days."""
    from sqlalchemy import text

    app = create_app({"TESTING": True, "DATABASE_URL": url, "SECRET_KEY": "x"})
    with app.app_context():
        try:
            upgrade(revision="0011")
            with db.engine.begin() as conn:
                for pid in ("p-1", "p-2"):
                    conn.execute(
                        text(
                            "INSERT INTO partner (id, name, slug, status, billing_mode, "
                            "billing_period, billing_day_of_month, credit_pool_total, "
                            "pricing_tiers, currency, timezone, created_at) VALUES (:p, :p, :p, "
                            "'active', 'credit_pool', 'monthly', 1, 0, '[]', 'USD', 'UTC', "
                            "'2025-01-01 00:00:00.000000')"
                        ),
                        {"p": pid},
                    )
                # Created out of id order: o-3 first, then o-1, then o-2 (and q-1 elsewhere).
                for oid, pid, created, status in (
                    ("o-1", "p-1", "2025-02-01", "active"),
                    ("o-2", "p-1", "2025-03-01", "canceled"),
                    ("o-3", "p-1", "2025-01-01", "active"),
                    ("q-1", "p-2", "2025-05-01", "active"),
                ):
                    conn.execute(
                        text(
                            "INSERT INTO organization (id, partner_id, name, status, tier, "
                            "product_type, metadata, credits_allocated, created_at, updated_at) "
                            "VALUES (:o, :p, :o, :s, 'paid', 'B2B', '{}', 0, :c, :c)"
                        ),
                        {"o": oid, "p": pid, "s": status, "c": created + " 00:00:00.000000"},
                    )
                # o-1 was suspended on Apr 1, then reactivated with a change dated Mar 15:
                # its newest entry by time is the suspension.
                for oid, pid, status, at in (
                    ("o-1", "p-1", "active", "2025-02-01 00:00:00.000000"),
                    ("o-2", "p-1", "active", "2025-03-01 00:00:00.000000"),
                    ("o-3", "p-1", "active", "2025-01-01 00:00:00.000000"),
                    ("q-1", "p-2", "active", "2025-05-01 00:00:00.000000"),
                    ("o-1", "p-1", "suspended", "2025-04-01 00:00:00.000000"),
                    ("o-2", "p-1", "canceled", "2025-06-01 12:00:00.000000"),
                    ("o-1", "p-1", "active", "2025-03-15 00:00:00.000000"),
                ):
                    conn.execute(
                        text(
                            "INSERT INTO organization_status_change (organization_id, "
                            "partner_id, status, changed_at) VALUES (:o, :p, :s, :t)"
                        ),
                        {"o": oid, "p": pid, "s": status, "t": at},
                    )
                # 2025-03-30 is a Sunday, 03-31 a Monday.
                for oid, pid, day, etype in (
                    ("o-1", "p-1", "2025-03-30", "identification"),
                    ("o-1", "p-1", "2025-03-31", "identification"),
                    ("o-1", "p-1", "2025-03-31", "page_view"),
                    ("o-3", "p-1", "2025-03-31", "identification"),
                    ("q-1", "p-2", "2025-05-02", "identification"),
                ):
                    conn.execute(
                        text(
                            "INSERT INTO org_daily_usage (organization_id, day, type, partner_id, "
                            "quantity, events) VALUES (:o, :d, :t, :p, 1, 1)"
                        ),
                        {"o": oid, "d": day, "t": etype, "p": pid},
                    )
                for day, etype, quantity in (
                    ("2025-03-30", "identification", 2),
                    ("2025-03-31", "identification", 3),
                    ("2025-04-01", "identification", 5),
                    ("2025-04-01", "page_view", 7),
                ):
                    conn.execute(
                        text(
                            "INSERT INTO partner_daily_usage (partner_id, day, type, quantity, "
                            "events) VALUES ('p-1', :d, :t, :q, 1)"
                        ),
                        {"d": day, "t": etype, "q": quantity},
                    )
            upgrade()
            with db.engine.connect() as conn:
                totals = {
                    (r[0], str(r[1])[:10], r[2]): (int(r[3]), int(r[4]))
                    for r in conn.execute(
                        text(
                            "SELECT grain, bucket_start, type, quantity, events "
                            "FROM partner_bucket_usage"
                        )
                    )
                }
                orgs = {
                    r[0]: (r[1], r[2], str(r[3])[:19])
                    for r in conn.execute(
                        text("SELECT id, seq, latest_status, latest_status_at FROM organization")
                    )
                }
                bits = {
                    (r[0], r[1], str(r[2])[:10], r[3]): int(r[4])
                    for r in conn.execute(
                        text(
                            "SELECT partner_id, grain, start, chunk, organizations "
                            "FROM partner_activity"
                        )
                    )
                }
        finally:
            db.session.remove()
            db.engine.dispose()
    assert orgs == {
        "o-3": (0, "active", "2025-01-01 00:00:00"),
        "o-1": (1, "suspended", "2025-04-01 00:00:00"),
        "o-2": (2, "canceled", "2025-06-01 12:00:00"),
        "q-1": (0, "active", "2025-05-01 00:00:00"),
    }
    # p-1's days summed by week (Mar 30 is a Sunday) and month.
    assert totals == {
        ("week", "2025-03-24", "identification"): (2, 1),
        ("week", "2025-03-31", "identification"): (8, 2),
        ("week", "2025-03-31", "page_view"): (7, 1),
        ("month", "2025-03-01", "identification"): (5, 2),
        ("month", "2025-04-01", "identification"): (5, 1),
        ("month", "2025-04-01", "page_view"): (7, 1),
    }
    # o-3 is bit 0 and o-1 bit 1 of p-1's rows; q-1 bit 0 of p-2's.
    assert bits == {
        ("p-1", "day", "2025-03-30", 0): 0b10,
        ("p-1", "day", "2025-03-31", 0): 0b11,
        ("p-1", "week", "2025-03-24", 0): 0b10,
        ("p-1", "week", "2025-03-31", 0): 0b11,
        ("p-1", "month", "2025-03-01", 0): 0b11,
        ("p-2", "day", "2025-05-02", 0): 0b1,
        ("p-2", "week", "2025-04-28", 0): 0b1,
        ("p-2", "month", "2025-05-01", 0): 0b1,
    }


def test_migration_0012_numbers_organizations_and_fills_activity_on_sqlite(empty_sqlite):
    activity_backfill_check(empty_sqlite)


def test_migration_0012_numbers_organizations_and_fills_activity_on_postgresql(empty_postgres):
    activity_backfill_check(empty_postgres)


def test_the_migrations_have_a_single_head():
    """Two migrations written on parallel branches would both claim to follow the same one:
    `flask db upgrade` then refuses to run. One head, and it is the newest file's."""
    from pathlib import Path

    from alembic.config import Config
    from alembic.script import ScriptDirectory

    folder = Path(__file__).resolve().parent.parent / "migrations"
    config = Config()
    config.set_main_option("script_location", str(folder))
    script = ScriptDirectory.from_config(config)
    heads = script.get_heads()
    assert len(heads) == 1, heads
    newest = max((folder / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))
    assert script.get_revision(heads[0]).path == str(newest)
