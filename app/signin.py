"""Dashboard sign-in: the password check behind a per-account throttle that spares the owner.

Beside the per-address limit on the login view (LOGIN_RATE_LIMIT), failed sign-ins are
counted per email in Flask-Limiter's storage (LOGIN_ACCOUNT_RATE_LIMIT, 20 an hour): one
attacker spreading guesses over many addresses is slowed down too. Once an email is over
its limit, sign-ins to it are refused with the answer of a wrong password, whatever the
password, except the right password from an address that already signed in to that
account: the owner is not locked out by someone else's guesses. An unknown email is
counted and refused the same way, so the throttle tells nothing about which accounts exist.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

from flask import current_app
from limits import parse
from limits.limits import RateLimitItem
from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from .auth import authenticate
from .database import dialect_name, write_transaction
from .extensions import db
from .models import KnownAddress, User
from .timeutil import utcnow
from .web_extensions import limiter

_SCOPE = "login-account"
# An address not used for this long is forgotten (the table cannot grow without end).
KNOWN_ADDRESS_DAYS = 180


def _digest(kind: str, value: str) -> str:
    """Return HMAC(SECRET_KEY, kind:value): an email or address no one can read back."""
    key = current_app.secret_key
    key_bytes = key.encode("utf-8") if isinstance(key, str) else bytes(key or b"")
    return hmac.new(key_bytes, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def _account_limit() -> RateLimitItem:
    return parse(str(current_app.config["LOGIN_ACCOUNT_RATE_LIMIT"]))


def address_known(user_id: int, address: str) -> bool:
    """Tell whether this user has signed in from this address in the last 180 days."""
    return (
        db.session.execute(
            select(KnownAddress.user_id).where(
                KnownAddress.user_id == user_id,
                KnownAddress.address_digest == _digest("address", address),
                KnownAddress.last_seen_at >= utcnow() - timedelta(days=KNOWN_ADDRESS_DAYS),
            )
        ).first()
        is not None
    )


def remember_address(user_id: int, address: str) -> None:
    """Record (or refresh) an address the user signed in from, and when; forget the stale ones."""
    insert = pg_insert if dialect_name() == "postgresql" else sqlite_insert
    statement = insert(KnownAddress).values(
        user_id=user_id, address_digest=_digest("address", address), last_seen_at=utcnow()
    )
    statement = statement.on_conflict_do_update(
        index_elements=["user_id", "address_digest"],
        set_={"last_seen_at": statement.excluded.last_seen_at},
    )
    with write_transaction():
        db.session.execute(statement)
        db.session.execute(update(User).where(User.id == user_id).values(last_sign_in_at=utcnow()))
        db.session.execute(
            delete(KnownAddress).where(
                KnownAddress.user_id == user_id,
                KnownAddress.last_seen_at < utcnow() - timedelta(days=KNOWN_ADDRESS_DAYS),
            )
        )


def sign_in(email: str, password: str, address: str) -> User | None:
    """Return the user when the credentials are right and the throttle lets them through."""
    limit = _account_limit()
    account = _digest("email", email.strip().lower())
    # With rate limiting turned off (Flask-Limiter's RATELIMIT_ENABLED = False) there is no
    # storage to count in, and no throttle.
    counting = limiter.enabled
    under_limit = limiter.limiter.test(limit, _SCOPE, account) if counting else True
    # The password is checked either way: a throttled answer takes as long as any other.
    user = authenticate(email, password)
    user_id = user.id if user is not None else None
    if user_id is not None and (under_limit or address_known(user_id, address)):
        remember_address(user_id, address)
        return db.session.get(User, user_id)
    if counting:
        limiter.limiter.hit(limit, _SCOPE, account)
    return None
