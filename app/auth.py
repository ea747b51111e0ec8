"""Dashboard passwords (argon2id) and API keys (random, stored as SHA-256 digests)."""

from __future__ import annotations

import functools
import hashlib
import logging
import secrets
import unicodedata
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, Update, bindparam, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm.attributes import set_committed_value

from . import audit
from .accounts import check_name, visible
from .choices import ROLES
from .database import write_transaction
from .errors import AppError
from .extensions import db, login_manager
from .ingest import storable_text
from .models import ApiKey, Partner, PartnerDataVersion, User, new_uuid
from .timeutil import utcnow

KEY_PREFIX = "pk_live_"
SCOPES = ("read", "write", "admin")
_hasher = PasswordHasher()
log = logging.getLogger(__name__)

# A key's last use is written at most this often, so most requests only read.
LAST_USED_EVERY = timedelta(minutes=1)
# The longest the write of a key's last use may wait for a table lock on PostgreSQL (row
# locks are skipped without waiting); SQLite's wait is 0 while it writes.
LAST_USED_LOCK_TIMEOUT = "10ms"


@functools.cache
def _dummy_hash() -> str:
    """A real hash to verify against when the email is unknown, so timing does not tell.

    Made on the first sign-in, not at import: an argon2 hash takes 64 MB for a moment,
    which every process (the CLI, each worker) would otherwise pay at start-up.
    """
    return _hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    """Return an argon2id hash of password."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Tell whether password matches the stored hash."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def validate_password(password: str) -> None:
    """Refuse passwords too short to be safe."""
    if len(password) < 8:
        raise AppError(
            "BadRequest", "the password must have at least 8 characters", {"field": "password"}
        )


def check_email(value: str) -> str:
    """Return the email stripped and lowercased: something visible on both sides of an @,
    no whitespace, control or format character inside, at most 254 characters."""
    email = value.strip().lower()
    local, at, domain = email.partition("@")
    if (
        not at
        or len(email) > 254
        or not storable_text(email)
        or not any(visible(c) for c in local)
        or not any(visible(c) for c in domain)
        or any(c.isspace() or unicodedata.category(c) in ("Cc", "Cf") for c in email)
    ):
        raise AppError("BadRequest", "a valid email address is required", {"field": "email"})
    return email


def check_role(role: str) -> str:
    """Return role when it is one of ROLES, else raise a 400 naming the field."""
    if role not in ROLES:
        raise AppError(
            "BadRequest",
            f"role must be one of {', '.join(ROLES)}",
            {"field": "role", "value": str(role)[:20]},
        )
    return role


def new_user(partner: Partner, email: str, password_hash: str, role: str) -> User:
    """Add a dashboard login to the current transaction (the caller commits and audits).

    The email is checked (check_email) and must belong to no user of any partner; the
    role is one of ROLES (app/roles.py says what each may do).
    """
    email = check_email(email)
    check_role(role)
    if db.session.execute(select(User.id).where(User.email == email)).first():
        raise AppError(
            "Conflict",
            f"a user with email {email} already exists",
            {"field": "email", "value": email},
        )
    user = User(partner_id=partner.id, email=email, password_hash=password_hash, role=role)
    db.session.add(user)
    db.session.flush()
    return user


def create_user(partner: Partner, email: str, password: str, role: str = "owner") -> User:
    """Create a dashboard login for one partner, with its role (app/roles.py); audited."""
    check_email(email)
    check_role(role)
    validate_password(password)
    hashed = hash_password(password)  # before the write lock: argon2 takes a moment
    with write_transaction():
        user = new_user(partner, email, hashed, role)
        audit.record(
            partner.id,
            "member",
            "create",
            object_id=user.id,
            label=user.email,
            after={"email": user.email, "role": user.role},
        )
    return user


def set_password(user: User, password: str) -> None:
    """Set a user's password and end every session the user had; audited."""
    validate_password(password)
    hashed = hash_password(password)
    with write_transaction():
        user.password_hash = hashed
        user.session_token = secrets.token_hex(16)
        audit.record(
            user.partner_id, "member", "password_change", object_id=user.id, label=user.email
        )


def end_sessions(user: User) -> None:
    """Replace the user's session token: every session cookie issued before stops working."""
    user.session_token = secrets.token_hex(16)
    db.session.commit()


def authenticate(email: str, password: str) -> User | None:
    """Return the user whose email and password match, else None (in constant-ish time)."""
    dummy = _dummy_hash()  # before the look-up, so the first sign-in costs the same either way
    user = db.session.execute(
        select(User).where(User.email == email.strip().lower())
    ).scalar_one_or_none()
    if user is None:
        verify_password(dummy, password)
        return None
    if not verify_password(user.password_hash, password):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        db.session.commit()
    return user


@login_manager.user_loader
def load_user(identity: str) -> User | None:
    """Load the session's user; a session from before logout or a password change is refused."""
    user_id, _, token = identity.partition(":")
    if not (user_id.isascii() and user_id.isdigit()):
        return None
    user = db.session.get(User, int(user_id))
    if user is None or not secrets.compare_digest(user.session_token, token):
        return None
    return user


def key_digest(plain: str) -> str:
    """Return the stored digest of a plain API key."""
    return hashlib.sha256(plain.encode("utf-8")).hexdigest()


def parse_scopes(scopes: str | list[str] | None) -> list[str]:
    """Return a clean, ordered scope list; raise for unknown scopes."""
    if scopes is None:
        return []
    items = scopes.split(",") if isinstance(scopes, str) else list(scopes)
    clean = []
    for item in items:
        if not isinstance(item, str):
            raise AppError("BadRequest", "scopes must be strings", {"field": "scopes"})
        name = item.strip()
        if not name:
            continue
        if name not in SCOPES:
            raise AppError(
                "BadRequest",
                f"unknown scope {name!r}; use read, write or admin",
                {"field": "scopes", "value": name},
            )
        if name not in clean:
            clean.append(name)
    return [s for s in SCOPES if s in clean]


def create_api_key(
    partner: Partner,
    name: str = "",
    scopes: list[str] | None = None,
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """Create a key; return it with the plain text, which is never stored.

    The name is optional; one that is given follows accounts.check_name. The audit log
    gets the key's name, prefix and scopes (never the key) in the same transaction.
    """
    name = check_name(name, required=False)
    plain = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        id=new_uuid(),
        partner_id=partner.id,
        name=name,
        prefix=plain[:12],
        key_hash=key_digest(plain),
        scopes=",".join(scopes or []),
        expires_at=expires_at,
    )
    with write_transaction():
        db.session.add(key)
        audit.record(
            partner.id,
            "api_key",
            "create",
            object_id=key.id,
            label=key_label(key),
            after={
                "name": key.name,
                "prefix": key.prefix,
                "scopes": key.scope_list or "full access",
                "expiresAt": expires_at,
            },
        )
    return key, plain


def key_label(key: ApiKey) -> str:
    """Name a key as the audit log and the pages do: 'name (prefix)'."""
    return f"{key.name or 'unnamed key'} ({key.prefix})"


def key_status(key: ApiKey) -> str:
    """Return active, revoked or expired (the API's status and the keys page's)."""
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= utcnow():
        return "expired"
    return "active"


def _live(key: ApiKey) -> bool:
    if key.revoked_at is not None:
        return False
    return key.expires_at is None or key.expires_at > utcnow()


# Built once: this runs on every API request.
_KEY_QUERY = (
    select(ApiKey, Partner, PartnerDataVersion.version)
    .join(Partner, Partner.id == ApiKey.partner_id)
    .outerjoin(PartnerDataVersion, PartnerDataVersion.partner_id == Partner.id)
    .where(ApiKey.key_hash == bindparam("digest"))
)


def find_api_key(plain: str) -> ApiKey | None:
    """Return the live key for a plain key (not revoked, not expired), else None."""
    found = find_api_key_for_request(plain)
    return found[0] if found is not None else None


def find_api_key_for_request(plain: str) -> tuple[ApiKey, Partner, int] | None:
    """Return a live key with its partner and the partner's data version, in one query.

    Every API request starts here, so the key, the partner and the version the
    closed-period cache checks come back in a single round trip.
    """
    if not plain or not plain.startswith(KEY_PREFIX) or len(plain) > 200:
        return None
    row = db.session.execute(_KEY_QUERY, {"digest": key_digest(plain)}).first()
    if row is None or not _live(row[0]):
        return None
    return row[0], row[1], int(row[2] or 0)


def note_key_used(key: ApiKey) -> None:
    """Record that key is used now, at most once a minute; never wait, never fail.

    The key row read with the request tells whether a write is due, so most requests
    write nothing. When one is, a conditional UPDATE runs on a connection of its own in
    a short transaction of its own (the request's session is untouched): it skips a row
    that another transaction has locked (SKIP LOCKED on PostgreSQL) or a database that
    another writer holds (SQLite, no busy wait), and a write that fails is only logged.
    Concurrent requests write at most once: the UPDATE re-checks the age in the database.
    """
    now = utcnow()
    if key.last_used_at is not None and now - key.last_used_at < LAST_USED_EVERY:
        return
    due = (
        select(ApiKey.id)
        .where(
            ApiKey.id == key.id,
            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at <= now - LAST_USED_EVERY),
        )
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    statement = update(ApiKey).where(ApiKey.id == due).values(last_used_at=now)
    try:
        with db.engine.connect() as conn:
            written = _update_without_waiting(conn, statement)
    except SQLAlchemyError as exc:
        log.info("last use of API key %s not recorded: %s", key.id, exc)
        return
    if written:
        # The session's copy, as if read after the write (the key list shows it).
        set_committed_value(key, "last_used_at", now)


def _update_without_waiting(conn: Connection, statement: Update) -> bool:
    """Run statement in its own transaction without waiting for locks; tell if it wrote."""
    if conn.dialect.name != "sqlite":
        with conn.begin():
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LAST_USED_LOCK_TIMEOUT}'")
            return conn.execute(statement).rowcount == 1
    # On the driver's connection directly: a PRAGMA opens no transaction there.
    raw = conn.connection.driver_connection
    assert raw is not None
    busy_timeout = int(raw.execute("PRAGMA busy_timeout").fetchone()[0])
    raw.execute("PRAGMA busy_timeout=0")
    try:
        with conn.begin():
            return conn.execute(statement).rowcount == 1
    finally:
        raw.execute(f"PRAGMA busy_timeout={busy_timeout}")


def key_allows(key: ApiKey, scope: str) -> bool:
    """Tell whether a key may use an endpoint needing scope (admin implies write and read)."""
    granted = key.scope_list
    if not granted:
        return True
    if "admin" in granted:
        return True
    if scope == "read":
        return bool({"read", "write"} & set(granted))
    return scope in granted


def revoke_api_key(key: ApiKey) -> None:
    """Revoke a key; it answers 401 from then on. The audit log gets the revocation (the
    key's name, prefix and scopes) in the same transaction; revoking a revoked key changes
    nothing and records nothing."""
    if key.revoked_at is not None:
        return
    with write_transaction():
        status = key_status(key)
        key.revoked_at = utcnow()
        audit.record(
            key.partner_id,
            "api_key",
            "revoke",
            object_id=key.id,
            label=key_label(key),
            before={"status": status},
            after={"status": "revoked", "scopes": key.scope_list or "full access"},
        )
