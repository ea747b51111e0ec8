"""The per-account sign-in throttle (issue 12, item 6): failed sign-ins counted per email in
Flask-Limiter's storage, from any address; the owner's known addresses are not locked out."""

from __future__ import annotations

import re
import uuid
from datetime import datetime

import pytest
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter
from sqlalchemy import select

from app import create_app, signin
from app.extensions import db
from app.models import KnownAddress
from app.serving import LOCAL_REDIS, storage_answers
from app.web_extensions import limiter

PASSWORD = "correct horse battery"
EMAIL = "ops@acme.test"
INCORRECT = "email or password is incorrect"


@pytest.fixture
def world(app, make_partner, make_user):
    partner = make_partner("acme", created_at=datetime(2025, 1, 1))
    make_user(partner, EMAIL, PASSWORD)
    return app


def attempt(app, address: str, email: str = EMAIL, password: str = PASSWORD):
    """Sign in with a fresh browser from address; return (status, page, signed in?)."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    response = client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token}
    )
    signed_in = client.get("/").status_code == 200
    return response.status_code, response.get_data(as_text=True), signed_in


def fail(app, address: str, email: str = EMAIL) -> None:
    status, page, signed_in = attempt(app, address, email, "wrong password!")
    assert (status, signed_in) == (401, False)
    assert INCORRECT in page


def test_the_default_is_20_failures_an_hour_per_email_from_any_address(world):
    assert world.config["LOGIN_ACCOUNT_RATE_LIMIT"] == "20 per hour"
    # 19 failures, each from an address of its own (the per-address limit never trips).
    for n in range(19):
        fail(world, f"10.1.0.{n + 1}")
    status, _page, signed_in = attempt(world, "10.1.1.1")
    assert (status, signed_in) == (302, True)  # 19 < 20: the right password still works
    fail(world, "10.1.0.20")  # the 20th failure: the account is closed
    status, page, signed_in = attempt(world, "10.1.1.2")
    # The right password from a new address gets exactly the answer of a wrong one.
    assert (status, signed_in) == (401, False)
    assert INCORRECT in page


def test_the_owner_is_not_locked_out_from_an_address_it_used(world):
    world.config["LOGIN_ACCOUNT_RATE_LIMIT"] = "3 per hour"
    assert attempt(world, "192.0.2.10")[::2] == (302, True)  # the owner, once
    for n in range(5):  # an attacker elsewhere
        fail(world, f"198.51.100.{n + 1}")
    assert attempt(world, "192.0.2.10")[::2] == (302, True)  # the owner again: let in
    assert attempt(world, "192.0.2.99")[::2] == (401, False)  # a new address: not
    # A known address helps only with the right password.
    assert attempt(world, "192.0.2.10", password="wrong password!")[::2] == (401, False)
    # The attacker's own earlier address is not known: it never signed in.
    assert attempt(world, "198.51.100.1")[::2] == (401, False)


def test_the_throttle_counts_the_email_however_it_is_typed(world):
    world.config["LOGIN_ACCOUNT_RATE_LIMIT"] = "3 per hour"
    for n, typed in enumerate(("OPS@ACME.TEST", "  ops@acme.test", "Ops@Acme.Test ")):
        fail(world, f"10.3.0.{n + 1}", typed)
    assert attempt(world, "10.3.1.1")[::2] == (401, False)


def test_an_unknown_email_is_throttled_the_same_way(world):
    world.config["LOGIN_ACCOUNT_RATE_LIMIT"] = "3 per hour"
    nobody = "nobody@acme.test"
    strip = re.compile(r'name="csrf_token"[^>]*value="[^"]+"|value="[^"]*@[^"]*"')
    for n in range(5):
        known = attempt(world, f"10.4.0.{n + 1}", EMAIL, "wrong password!")
        unknown = attempt(world, f"10.4.1.{n + 1}", nobody, "wrong password!")
        assert known[0] == unknown[0] == 401
        assert strip.sub("", known[1]) == strip.sub("", unknown[1])
    # Both emails are over their limit in the limiter's storage after 3 failures.
    limit = parse("3 per hour")
    with world.test_request_context():
        for email in (EMAIL, nobody):
            assert not limiter.limiter.test(limit, "login-account", signin._digest("email", email))


def test_known_addresses_are_kept_as_keyed_digests(world):
    assert attempt(world, "203.0.113.5")[::2] == (302, True)
    rows = db.session.execute(select(KnownAddress)).scalars().all()
    assert len(rows) == 1
    assert re.fullmatch(r"[0-9a-f]{64}", rows[0].address_digest)
    assert "203.0.113.5" not in rows[0].address_digest
    # A second sign-in from it refreshes the row; another address adds one.
    assert attempt(world, "203.0.113.5")[::2] == (302, True)
    assert attempt(world, "203.0.113.6")[::2] == (302, True)
    db.session.expire_all()
    assert len(db.session.execute(select(KnownAddress)).scalars().all()) == 2


def test_an_address_unused_for_180_days_is_forgotten(world, freeze):
    world.config["LOGIN_ACCOUNT_RATE_LIMIT"] = "3 per hour"
    freeze(datetime(2025, 1, 1, 12))
    assert attempt(world, "192.0.2.20")[::2] == (302, True)
    assert attempt(world, "192.0.2.21")[::2] == (302, True)
    freeze(datetime(2025, 6, 30, 12))  # 180 days later: .21 is still known
    assert attempt(world, "192.0.2.21")[::2] == (302, True)
    freeze(datetime(2025, 7, 1, 12))  # 181 days after .20's sign-in
    for n in range(3):
        fail(world, f"198.51.100.{n + 1}")
    assert attempt(world, "192.0.2.20")[::2] == (401, False)
    assert attempt(world, "192.0.2.21")[::2] == (302, True)  # seen 1 day ago
    # That sign-in pruned .20's row: one row is left.
    db.session.expire_all()
    assert len(db.session.execute(select(KnownAddress)).scalars().all()) == 1


def test_the_count_lives_in_the_shared_storage(app, make_partner, make_user):
    if not storage_answers(LOCAL_REDIS):
        pytest.skip("no Redis answers on 127.0.0.1:6379")
    partner = make_partner("acme")
    email = f"ops-{uuid.uuid4().hex[:10]}@acme.test"  # a count of its own in a shared Redis
    make_user(partner, email, PASSWORD)
    settings = {k: app.config[k] for k in ("DATABASE_URL", "SECRET_KEY", "TESTING")}
    settings.update(
        {
            "RATELIMIT_STORAGE_URI": LOCAL_REDIS,
            "LOGIN_RATE_LIMIT": "1000/minute",
            "LOGIN_ACCOUNT_RATE_LIMIT": "3 per hour",
        }
    )
    worker = create_app(settings)
    for n in range(3):
        fail(worker, f"10.5.0.{n + 1}", email)
    # Another client of the same Redis (another worker, another server) sees the count.
    other = FixedWindowRateLimiter(storage_from_string(LOCAL_REDIS))
    with worker.test_request_context():
        account = signin._digest("email", email)
    assert not other.test(parse("3 per hour"), "login-account", account)
    assert other.test(parse("4 per hour"), "login-account", account)
    with worker.app_context():
        db.engine.dispose()


def test_with_rate_limits_turned_off_sign_in_works_and_nothing_is_counted(
    app, make_partner, make_user
):
    partner = make_partner("acme")
    make_user(partner, EMAIL, PASSWORD)
    settings = {k: app.config[k] for k in ("DATABASE_URL", "SECRET_KEY", "TESTING")}
    settings.update({"RATELIMIT_ENABLED": False, "LOGIN_ACCOUNT_RATE_LIMIT": "2 per hour"})
    try:
        unlimited = create_app(settings)
        # Three failures would close the account under a limit of 2; with none, the right
        # password still signs in (it answered 500 before: no storage to count in).
        for n in range(3):
            fail(unlimited, f"10.6.0.{n + 1}")
        status, _page, signed_in = attempt(unlimited, "10.6.1.1")
        assert (status, signed_in) == (302, True)
        with unlimited.app_context():
            db.engine.dispose()
    finally:
        # The limiter is one object per process: Flask-Limiter keeps `enabled` from the
        # last app it was bound to as the default of the next one (tests build many apps).
        limiter.enabled = True
