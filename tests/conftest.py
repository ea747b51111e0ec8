"""Fixtures: a fresh database per test (SQLite, or PostgreSQL when TEST_DATABASE_URL is set)."""

from __future__ import annotations

import contextvars
import os
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from flask import current_app, has_app_context
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app import accounts, auth, create_app, ingest
from app.extensions import db
from app.models import Organization, Partner
from app.timeutil import set_frozen_now
from tests.browser_support import chromium, server  # noqa: F401 (the browser tests' fixtures)
from tests.support import scratch_postgres_database

PG_URL = os.environ.get("TEST_DATABASE_URL", "").strip()
BACKEND = "postgresql" if PG_URL else "sqlite"


def pytest_report_header(config: Any) -> str:
    return f"database backend: {BACKEND}" + (f" ({make_url(PG_URL).host})" if PG_URL else "")


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str | None]:
    """Create one throwaway PostgreSQL database for this test process; drop it at the end."""
    if not PG_URL:
        yield None
        return
    with scratch_postgres_database(PG_URL, "pa_test") as url:
        yield url


_pg_schema_ready: dict[str, bool] = {}


@pytest.fixture
def app(tmp_path: Any, pg_database: str | None) -> Iterator[Any]:
    """An app bound to a fresh, empty database."""
    url = pg_database or f"sqlite:///{tmp_path / 'test.sqlite3'}"
    application = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": url,
            "SECRET_KEY": "test-secret",
            "API_RATE_LIMIT": "100000 per minute",
            "LOGIN_RATE_LIMIT": "1000 per minute",
            "RATELIMIT_STORAGE_URI": "memory://",
            "WTF_CSRF_ENABLED": True,
            # Compressed static bodies in the test's folder, at a fast brotli level (11
            # takes ~30 s on plotly.js): tests check what is sent, bench/ the sizes.
            "COMPRESS_CACHE_DIR": str(tmp_path / "compressed-static"),
            "COMPRESS_BR_LEVEL": 5,
            # Webhook receivers in tests listen on 127.0.0.1 (test_webhooks.py turns it off).
            "WEBHOOK_ALLOW_PRIVATE": True,
            # E-mails (no MAIL_SERVER) are written as .eml files in the test's folder.
            "MAIL_OUTBOX_DIR": str(tmp_path / "mail-outbox"),
        }
    )
    application.test_client_class = ServerLikeClient
    # The context is pushed for the set-up and the tear-down only: the test's requests
    # each push their own (see client), and module calls go through app_ctx.
    with application.app_context():
        if pg_database:
            if not _pg_schema_ready.get(pg_database):
                db.drop_all()
                db.create_all()
                _pg_schema_ready[pg_database] = True
            else:
                tables = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
                db.session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
                db.session.commit()
        else:
            db.create_all()
    yield application
    with application.app_context():
        # Each test builds its own engine; close its pooled connections now rather than
        # at garbage collection, or PostgreSQL runs out of connection slots.
        db.engine.dispose()
    set_frozen_now(None)


@pytest.fixture(autouse=True)
def webhooks_stay_on_this_machine(monkeypatch: Any) -> None:
    """Tests never send a webhook off this machine (a fuzzed URL of the API tests
    included): a host that is not an IP literal or localhost is not even looked up, and
    socket.create_connection (what the webhook sender uses) reaches loopback only."""
    import ipaddress
    import socket

    from app import webhooks

    real_resolve = webhooks.resolve
    real_connect = socket.create_connection

    def resolve(host: str, port: int) -> list[str]:
        try:
            ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            if host.lower() != "localhost":
                raise OSError(f"tests do not look up {host!r}") from None
        return real_resolve(host, port)

    def create_connection(address: Any, *args: Any, **kwargs: Any) -> Any:
        host = str(address[0]).split("%", 1)[0]
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host.lower() == "localhost"
        if not loopback:
            raise OSError(f"tests connect to loopback addresses only, not {host}")
        return real_connect(address, *args, **kwargs)

    monkeypatch.setattr(webhooks, "resolve", resolve)
    monkeypatch.setattr(socket, "create_connection", create_connection)


@pytest.fixture
def app_ctx(app: Any) -> Iterator[Any]:
    """The app, inside an app context held for the whole test: for tests (and the
    factories below) that call the app's modules or db.session directly."""
    with app.app_context():
        yield app


class ServerLikeClient(FlaskClient):
    """A test client whose requests each run as on a server: in an app context of their
    own (a g and a database session of their own), never in one the test holds.

    Flask runs a request in the active app context when it belongs to the same app, so
    without this every request of a test inside app_ctx would share one g and one
    session. A request first ends the test's open transaction (a rollback, as when a
    `with app.app_context()` block ends): the test's ORM objects are then reloaded when
    next read, and see what the request wrote. Commit what a request should see.
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        if has_app_context() and current_app._get_current_object() is self.application:
            db.session.rollback()
        # A new, empty contextvars context has no app context active, so Flask pushes
        # a fresh one for the request and pops it (removing its session) at the end.
        return contextvars.Context().run(super().open, *args, **kwargs)


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


@pytest.fixture
def runner(app: Any) -> Any:
    return app.test_cli_runner()


@pytest.fixture
def freeze() -> Iterator[Any]:
    """Freeze the clock: freeze(datetime(...)) (naive means UTC)."""

    def _freeze(moment: datetime) -> None:
        set_frozen_now(moment)

    yield _freeze
    set_frozen_now(None)


@pytest.fixture
def make_partner(app_ctx: Any) -> Any:
    """Create a partner: make_partner(slug="p1", pool=1000, tz="UTC", ...)."""

    def _make(
        slug: str = "acme",
        pool: int = 100_000,
        tz: str = "UTC",
        billing_day: int = 1,
        billing_period: str = "monthly",
        created_at: datetime | None = None,
        **kwargs: Any,
    ) -> Partner:
        partner = accounts.create_partner(
            kwargs.pop("name", slug.title()), slug, pool, billing_day, billing_period, tz, **kwargs
        )
        if created_at is not None:
            partner.created_at = created_at
            db.session.commit()
        return partner

    return _make


@pytest.fixture
def make_org(app_ctx: Any) -> Any:
    """Create an organization: make_org(partner, "Name", created_at=datetime(...), ...)."""

    def _make(partner: Partner, name: str = "Org", **kwargs: Any) -> Organization:
        return accounts.create_organization(partner, name, **kwargs)

    return _make


@pytest.fixture
def add_events(app_ctx: Any) -> Any:
    """Ingest events: add_events(partner, [{...}, ...]) -> IngestResult."""

    def _add(partner: Partner, events: list[dict[str, Any]]) -> ingest.IngestResult:
        return ingest.ingest_batch(partner, list(enumerate(events)))

    return _add


@pytest.fixture
def api_key(app_ctx: Any) -> Any:
    """Create a plain API key: api_key(partner, scopes=["read"]) -> str."""

    def _key(partner: Partner, scopes: list[str] | None = None, **kwargs: Any) -> str:
        _k, plain = auth.create_api_key(partner, kwargs.pop("name", "test"), scopes, **kwargs)
        return plain

    return _key


@pytest.fixture
def make_user(app_ctx: Any) -> Any:
    """Create a dashboard user: make_user(partner, email, password)."""

    def _user(
        partner: Partner, email: str = "user@example.com", password: str = "correct horse battery"
    ) -> Any:
        return auth.create_user(partner, email, password)

    return _user
