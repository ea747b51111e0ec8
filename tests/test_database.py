"""Engine behaviour: closed PostgreSQL connections are replaced at checkout, without a ping."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url

from app.extensions import db


@pytest.fixture
def postgresql_only(app_ctx):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("a PostgreSQL behaviour (set TEST_DATABASE_URL)")
    return app_ctx


def terminate_other_connections(url) -> int:
    """End every server process of url's database but the caller's own; return how many."""
    admin = create_engine(make_url(str(url)).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            return len(
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :n AND pid <> pg_backend_pid()"
                    ),
                    {"n": make_url(str(url)).database},
                ).all()
            )
    finally:
        admin.dispose()


def wait_until_gone(url, seconds: float = 10) -> None:
    """Wait until the server lists no other backend on the database (a terminated backend
    leaves the list once it has exited, after sending its goodbye)."""
    admin = create_engine(make_url(str(url)).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            deadline = time.monotonic() + seconds
            while conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = :n "
                    "AND pid <> pg_backend_pid()"
                ),
                {"n": make_url(str(url)).database},
            ).scalar():
                assert time.monotonic() < deadline, "the terminated backends never exited"
                time.sleep(0.01)
    finally:
        admin.dispose()


def test_a_connection_the_server_closed_is_replaced_not_failed(
    postgresql_only, client, make_partner, api_key
):
    headers = {"X-Partner-API-Key": api_key(make_partner("acme"))}
    assert client.get("/api/v1/partner/me", headers=headers).status_code == 200
    # The request's connection is back in the pool, idle.
    assert db.engine.pool.checkedin() >= 1
    assert terminate_other_connections(db.engine.url) >= 1
    wait_until_gone(db.engine.url)  # the server has ended them: its goodbye was sent
    statements = []
    event.listen(db.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    response = client.get("/api/v1/partner/me", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    # No ping: the first statement on the new connection is the request's own query.
    assert statements and "api_key" in statements[0]


def test_a_live_idle_connection_is_reused(postgresql_only, client, make_partner, api_key):
    headers = {"X-Partner-API-Key": api_key(make_partner("acme"))}
    connects = []
    event.listen(db.engine, "connect", lambda *args: connects.append(1))
    for _ in range(3):
        assert client.get("/api/v1/partner/me", headers=headers).status_code == 200
    assert len(connects) <= 1
