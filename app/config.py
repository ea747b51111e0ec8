"""Configuration: defaults here, then instance/config.py, then environment variables.

Also the SECRET_KEY rule: a server refuses a short one, a CLI command warns.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import flask

# The shortest SECRET_KEY a server accepts: 32 bytes (256 bits), as the generated one has.
MIN_SECRET_KEY_BYTES = 32


def _flag(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _names(value: str) -> list[str] | None:
    names = [n.strip() for n in value.split(",") if n.strip()]
    return names or None


ENV_VARS: dict[str, Callable[[str], Any]] = {
    # name: converter
    "DATABASE_URL": str,
    "SECRET_KEY": str,
    # The default of every Redis use: rate limits, the figure cache (each overridable) and
    # the worker's queue (app/worker.py: SQLite under instance/ without it).
    "REDIS_URL": str,
    "RATELIMIT_STORAGE_URI": str,
    "CACHE_URL": str,
    "API_RATE_LIMIT": str,
    "LOGIN_RATE_LIMIT": str,
    "LOGIN_ACCOUNT_RATE_LIMIT": str,
    "TRUSTED_PROXIES": int,
    "SESSION_COOKIE_SECURE": _flag,
    "MAX_CONTENT_LENGTH": int,
    "CACHE_CLOSED_PERIODS": _flag,
    "LOCK_TIMEOUT": float,
    # Flask 3.1 answers 400 to any other Host header (comma-separated; ".x.com" for subdomains).
    "TRUSTED_HOSTS": _names,
    # Webhooks (app/webhooks.py): seconds to wait for a receiver, and whether URLs may
    # point at private, loopback or link-local addresses (tests, local development).
    "WEBHOOK_TIMEOUT_S": float,
    "WEBHOOK_ALLOW_PRIVATE": _flag,
    # E-mail (app/mail.py): SMTP when MAIL_SERVER is set, else .eml files in instance/outbox.
    "MAIL_SERVER": str,
    "MAIL_PORT": int,
    "MAIL_USE_TLS": _flag,
    "MAIL_USERNAME": str,
    "MAIL_PASSWORD": str,
    "MAIL_FROM": str,
    "MAIL_OUTBOX_DIR": str,
}


def use_redis_url(config: dict[str, Any]) -> None:
    """Fill what is not set from REDIS_URL: the rate-limit storage (else memory://) and the
    figure cache (else one per process)."""
    redis_url = config.get("REDIS_URL") or None
    if not config.get("RATELIMIT_STORAGE_URI"):
        config["RATELIMIT_STORAGE_URI"] = redis_url or "memory://"
    if not config.get("CACHE_URL"):
        config["CACHE_URL"] = redis_url


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
        # Failed sign-ins per email, from any address (app/auth.py: sign_in).
        "LOGIN_ACCOUNT_RATE_LIMIT": "20 per hour",
        # Proxy hops in front of the app whose X-Forwarded-For/-Proto are believed.
        "TRUSTED_PROXIES": 0,
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
        # Seconds a write waits for its partner's lock (held by a timezone change or a
        # rollup rebuild) before the API answers 503 with Retry-After (spec §3).
        "LOCK_TIMEOUT": 5.0,
        # A receiver has this long to connect and to answer each read (app/delivery.py).
        "WEBHOOK_TIMEOUT_S": 10.0,
        "WEBHOOK_ALLOW_PRIVATE": False,
        "MAIL_SERVER": None,
        "MAIL_PORT": 25,
        "MAIL_USE_TLS": False,
        "MAIL_FROM": "Partner Analytics <no-reply@partner-analytics.invalid>",
    }


class Config(flask.Config):
    """Flask's Config, reading (or generating) instance/secret_key only when first used.

    A command that never signs anything (every CLI command) leaves no key file behind.
    """

    secret_key_loader: Callable[[], str] | None = None

    def _load_secret_key(self) -> None:
        if not dict.get(self, "SECRET_KEY") and self.secret_key_loader is not None:
            self["SECRET_KEY"] = self.secret_key_loader()

    def __getitem__(self, key: str) -> Any:
        if key == "SECRET_KEY":
            self._load_secret_key()
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        """Return a setting (the secret key loaded first when asked for)."""
        if key == "SECRET_KEY":
            self._load_secret_key()
        return super().get(key, default)


def defer_secret_key(app: flask.Flask) -> None:
    """Without a configured key, read (or make) instance/secret_key when first needed."""
    config = app.config
    assert isinstance(config, Config), "the app must use config.Config"
    config.secret_key_loader = lambda: load_secret_key(app.instance_path)


def secret_key_problem(key: str | bytes | None) -> str | None:
    """Return why key is too weak to sign sessions with, or None when it is long enough."""
    size = len(key.encode("utf-8") if isinstance(key, str) else key or b"")
    if size >= MIN_SECRET_KEY_BYTES:
        return None
    unit = "byte" if size == 1 else "bytes"
    return (
        f"SECRET_KEY is {size} {unit} long; at least {MIN_SECRET_KEY_BYTES} are needed "
        "(make one with: python -c 'import secrets; print(secrets.token_hex(32))'), or "
        "leave it unset to use the key generated in instance/secret_key"
    )


# gunicorn's APP_LOAD_ERROR: a worker exiting with it stops the whole server ("App failed
# to load") instead of being started again and again.
APP_LOAD_ERROR = 4


def serving_kind() -> str | None:
    """Return "serve" under `flask run` or gunicorn, "cli" under another flask command.

    None otherwise (tests, scripts that build an app in-process).
    """
    if os.environ.get("SERVER_SOFTWARE", "").startswith("gunicorn/"):
        return "serve"
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return None
    return "serve" if ctx.command.name == "run" else "cli"


def loading_for_own_commands() -> bool:
    """Return True when the `flask` group builds the app to find or list its own commands.

    Flask's built-in commands (run, routes, shell) load the app inside their own context;
    the app's commands (spec §5) are found through the group's context, and none of them
    serves a page or answers the API.
    """
    ctx = click.get_current_context(silent=True)
    return ctx is not None and isinstance(ctx.command, click.Group)


def check_secret_key(app: flask.Flask, kind: str | None) -> None:
    """Refuse a short SECRET_KEY when serving (outside debug and testing); warn in the CLI."""
    if kind is None or app.testing:
        return
    if kind == "serve":
        if app.debug:
            return
        problem = secret_key_problem(app.config["SECRET_KEY"])
        if problem:
            click.echo(f"Error: refusing to serve: {problem}", err=True)
            raise SystemExit(APP_LOAD_ERROR)
        return
    # A CLI command signs nothing: only a key that was set is checked, none is generated.
    configured = dict.get(app.config, "SECRET_KEY")
    problem = secret_key_problem(configured) if configured else None
    if problem:
        click.echo(f"Warning: {problem}; a server would refuse to start with it.", err=True)


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
