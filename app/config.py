"""Configuration: defaults here, then instance/config.py, then environment variables."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _flag(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _names(value: str) -> list[str] | None:
    names = [n.strip() for n in value.split(",") if n.strip()]
    return names or None


ENV_VARS: dict[str, Callable[[str], Any]] = {
    # name: converter
    "DATABASE_URL": str,
    "SECRET_KEY": str,
    "RATELIMIT_STORAGE_URI": str,
    "API_RATE_LIMIT": str,
    "LOGIN_RATE_LIMIT": str,
    "SESSION_COOKIE_SECURE": _flag,
    "MAX_CONTENT_LENGTH": int,
    "CACHE_CLOSED_PERIODS": _flag,
    # Flask 3.1 answers 400 to any other Host header (comma-separated; ".x.com" for subdomains).
    "TRUSTED_HOSTS": _names,
}


def defaults(instance_path: str) -> dict[str, Any]:
    """Return the built-in defaults for an app whose instance folder is instance_path."""
    db_file = Path(instance_path) / "partner_analytics.sqlite3"
    return {
        "DATABASE_URL": f"sqlite:///{db_file}",
        # No pool_pre_ping: app/database.py drops closed PostgreSQL connections at checkout
        # without a round trip.
        "SQLALCHEMY_ENGINE_OPTIONS": {},
        # 1,000 requests per minute per partner (spec §3).
        "API_RATE_LIMIT": "1000 per minute",
        "LOGIN_RATE_LIMIT": "10 per minute",
        "RATELIMIT_STORAGE_URI": "memory://",
        "RATELIMIT_HEADERS_ENABLED": True,
        # A batch of 1,000 events with generous fields is well under 2 MB.
        "MAX_CONTENT_LENGTH": 4 * 1024 * 1024,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": False,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "WTF_CSRF_TIME_LIMIT": None,
        "CACHE_CLOSED_PERIODS": True,
    }


def load_secret_key(instance_path: str) -> str:
    """Return the secret key kept in the instance folder, creating it on first use."""
    path = Path(instance_path) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    path.write_text(key)
    path.chmod(0o600)
    return key


def from_environment() -> dict[str, Any]:
    """Return the configuration values set in the process environment."""
    found: dict[str, Any] = {}
    for name, convert in ENV_VARS.items():
        raw = os.environ.get(name)
        if raw not in (None, ""):
            found[name] = convert(raw)
    return found
