"""The Alembic migrations build exactly the schema the models describe (SQLite and PostgreSQL)."""

import os
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect

from app import create_app
from app.database import scratch_postgres_database
from app.extensions import db

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
    assert diff == [], "the migrations and the models differ:\n" + "\n".join(map(str, diff))
    assert {t.name for t in db.metadata.sorted_tables} | {"alembic_version"} == tables


def test_migrations_match_the_models_on_sqlite(empty_sqlite):
    check(empty_sqlite)


def test_migrations_match_the_models_on_postgresql(empty_postgres):
    check(empty_postgres)
