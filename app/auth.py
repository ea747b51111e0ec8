"""Dashboard passwords (argon2id) and API keys (random, stored as SHA-256 digests)."""

from __future__ import annotations

import functools
import hashlib
import secrets
import unicodedata
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import bindparam, func, select

from .accounts import check_name, visible
from .errors import AppError
from .extensions import db, login_manager
from .ingest import storable_text
from .models import ApiKey, Partner, PartnerDataVersion, User
from .timeutil import utcnow

KEY_PREFIX = "pk_live_"
SCOPES = ("read", "write", "admin")
_hasher = PasswordHasher()


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
        raise AppError("BadRequest", "the password must have at least 8 characters",
                       {"field": "password"})


def check_email(value: str) -> str:
    """Return the email stripped and lowercased: something visible on both sides of an @,
    no whitespace, control or format character inside, at most 254 characters."""
    email = value.strip().lower()
    local, at, domain = email.partition("@")
    if not at or len(email) > 254 or not storable_text(email) \
            or not any(visible(c) for c in local) or not any(visible(c) for c in domain) \
            or any(c.isspace() or unicodedata.category(c) in ("Cc", "Cf") for c in email):
        raise AppError("BadRequest", "a valid email address is required", {"field": "email"})
    return email


def create_user(partner: Partner, email: str, password: str) -> User:
    """Create a dashboard login for one partner."""
    email = check_email(email)
    validate_password(password)
    if db.session.execute(select(User.id).where(User.email == email)).first():
        raise AppError("Conflict", f"a user with email {email} already exists",
                       {"field": "email", "value": email})
    user = User(partner_id=partner.id, email=email, password_hash=hash_password(password))
    db.session.add(user)
    db.session.commit()
    return user


def set_password(user: User, password: str) -> None:
    """Set a user's password and end every session the user had."""
    validate_password(password)
    user.password_hash = hash_password(password)
    end_sessions(user)


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
            raise AppError("BadRequest", f"unknown scope {name!r}; use read, write or admin",
                           {"field": "scopes", "value": name})
        if name not in clean:
            clean.append(name)
    return [s for s in SCOPES if s in clean]


def create_api_key(partner: Partner, name: str = "", scopes: list[str] | None = None,
                   expires_at: datetime | None = None) -> tuple[ApiKey, str]:
    """Create a key; return it with the plain text, which is never stored.

    The name is optional; one that is given follows accounts.check_name.
    """
    name = check_name(name, required=False)
    plain = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(partner_id=partner.id, name=name, prefix=plain[:12],
                 key_hash=key_digest(plain), scopes=",".join(scopes or []),
                 expires_at=expires_at)
    db.session.add(key)
    db.session.commit()
    return key, plain


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
    """Revoke a key; it answers 401 from then on."""
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        db.session.commit()


def active_key_count(partner: Partner) -> int:
    """Return how many unrevoked keys the partner has."""
    return int(db.session.execute(
        select(func.count()).select_from(ApiKey)
        .where(ApiKey.partner_id == partner.id, ApiKey.revoked_at.is_(None))
    ).scalar() or 0)
