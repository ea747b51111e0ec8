"""API keys' last use (issue 12, item 8): written at most once a minute per key, in a
short transaction of its own that never waits for a lock and never fails the request, and
listed as lastUsedAt.

Each request has a session of its own, as on a server; `stored()` reads what was
committed through a connection of its own.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, text

from app import auth
from app.extensions import db
from app.models import ApiKey

T0 = datetime(2025, 10, 20, 12, 0, 0)
ME = "/api/v1/partner/me"
KEYS = "/api/v1/partner/api-keys"
# Long enough for any request of these tests; a write that waited for the lock would see
# it released and write (the test then fails on the value, never on a duration).
LOCK_HELD_SECONDS = 5.0


def stored(key_id: str) -> datetime | None:
    """Return the last use committed for a key, read outside the test's session."""
    with db.engine.connect() as conn:
        return conn.execute(select(ApiKey.last_used_at).where(ApiKey.id == key_id)).scalar()


@pytest.fixture
def keys(app, freeze, make_partner):
    freeze(T0)
    partner = make_partner("acme", created_at=datetime(2025, 1, 1))
    admin, admin_plain = auth.create_api_key(partner, "admin", ["admin"])
    reader, reader_plain = auth.create_api_key(partner, "reader", ["read"])
    return {
        "admin": (admin.id, {"X-Partner-API-Key": admin_plain}),
        "reader": (reader.id, {"X-Partner-API-Key": reader_plain}),
    }


def listed(client, headers) -> dict[str, str | None]:
    response = client.get(KEYS, headers=headers)
    assert response.status_code == 200
    return {k["name"]: k["lastUsedAt"] for k in response.get_json()["apiKeys"]}


def test_last_use_is_written_at_most_once_a_minute_and_listed(keys, client, freeze):
    admin_id, admin = keys["admin"]
    reader_id, reader = keys["reader"]
    assert (stored(admin_id), stored(reader_id)) == (None, None)

    # 12:00:00 the admin key lists the keys: its own use is this request.
    assert listed(client, admin) == {"admin": "2025-10-20T12:00:00Z", "reader": None}
    assert stored(admin_id) == T0

    freeze(T0 + timedelta(seconds=30))
    assert client.get(ME, headers=reader).status_code == 200
    assert stored(reader_id) == T0 + timedelta(seconds=30)

    # 12:00:59: 29 s after the reader's last use and 59 s after the admin's: no write.
    freeze(T0 + timedelta(seconds=59))
    assert client.get(ME, headers=reader).status_code == 200
    assert listed(client, admin) == {
        "admin": "2025-10-20T12:00:00Z",
        "reader": "2025-10-20T12:00:30Z",
    }
    assert (stored(admin_id), stored(reader_id)) == (T0, T0 + timedelta(seconds=30))

    # 12:01:30: a minute after the reader's last use (due) and 90 s after the admin's.
    freeze(T0 + timedelta(seconds=90))
    assert client.get(ME, headers=reader).status_code == 200
    assert listed(client, admin) == {
        "admin": "2025-10-20T12:01:30Z",
        "reader": "2025-10-20T12:01:30Z",
    }
    assert (stored(admin_id), stored(reader_id)) == (T0 + timedelta(seconds=90),) * 2


def test_a_refused_request_still_counts_as_a_use_but_a_dead_key_does_not(keys, client, freeze):
    reader_id, reader = keys["reader"]
    # A key that authenticates is used even when its scope is too small (403).
    response = client.post("/api/v1/partner/organizations", json={"name": "X"}, headers=reader)
    assert response.status_code == 403
    assert stored(reader_id) == T0
    auth.revoke_api_key(db.session.get(ApiKey, reader_id))
    freeze(T0 + timedelta(minutes=5))
    assert client.get(ME, headers=reader).status_code == 401
    assert stored(reader_id) == T0  # a revoked key is not "used"


def _hold_lock(key_id: str):
    """Start a transaction that blocks the write of key_id's last use: SQLite's write lock,
    or PostgreSQL's row lock. Return the connection; a timer releases it later."""
    holder = db.engine.raw_connection()
    cursor = holder.cursor()
    if db.engine.dialect.name == "sqlite":
        cursor.execute("BEGIN IMMEDIATE")
    else:
        cursor.execute("SELECT id FROM api_key WHERE id = %s FOR UPDATE", (key_id,))
    return holder


def test_a_locked_write_is_skipped_without_waiting(keys, client, freeze):
    reader_id, reader = keys["reader"]
    holder = _hold_lock(reader_id)
    release = threading.Timer(LOCK_HELD_SECONDS, holder.rollback)
    release.start()
    try:
        response = client.get(ME, headers=reader)
    finally:
        release.cancel()
        holder.rollback()
        holder.close()
    assert response.status_code == 200
    assert response.get_json()["apiKey"]["lastUsedAt"] is None  # skipped
    assert stored(reader_id) is None  # did not wait for the lock to go away
    # Free again: the next request writes it.
    freeze(T0 + timedelta(seconds=1))
    assert client.get(ME, headers=reader).status_code == 200
    assert stored(reader_id) == T0 + timedelta(seconds=1)


@pytest.fixture
def refusing_trigger(app_ctx):
    """Make every update of api_key.last_used_at fail in the database."""
    with db.engine.begin() as conn:
        if db.engine.dialect.name == "sqlite":
            conn.execute(
                text(
                    "CREATE TRIGGER refuse_last_use BEFORE UPDATE OF last_used_at ON api_key "
                    "BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE FUNCTION refuse_last_use() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'refused'; END $$"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER refuse_last_use BEFORE UPDATE OF last_used_at ON api_key "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_last_use()"
                )
            )
    yield
    with db.engine.begin() as conn:
        if db.engine.dialect.name == "sqlite":
            conn.execute(text("DROP TRIGGER refuse_last_use"))
        else:
            conn.execute(text("DROP TRIGGER refuse_last_use ON api_key"))
            conn.execute(text("DROP FUNCTION refuse_last_use()"))


def test_a_failed_write_never_fails_the_request(keys, client, refusing_trigger):
    reader_id, reader = keys["reader"]
    response = client.get(ME, headers=reader)
    assert response.status_code == 200
    assert response.get_json()["apiKey"]["lastUsedAt"] is None
    assert stored(reader_id) is None
    # The request's own work is untouched: another call answers normally.
    assert client.get("/api/v1/partner/analytics", headers=reader).status_code == 200
