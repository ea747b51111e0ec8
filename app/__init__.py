"""Partner Analytics: create_app() wires config, extensions, blueprints, errors and the CLI."""

from __future__ import annotations

import atexit
import gc
import os
from pathlib import Path
from typing import Any, NoReturn

from flask import Flask, Request, has_request_context, request
from werkzeug.exceptions import NotFound
from werkzeug.routing import RequestRedirect

from . import config as config_module
from .cli import register_cli
from .errors import register_error_handlers
from .hooks import register_hooks
from .security import register_security

ROOT = Path(__file__).resolve().parent.parent

# A static URL carrying its file's content hash (?v=...) never changes meaning: the
# browser may keep it for a year without asking again.
STATIC_MAX_AGE = 31_536_000


class PartnerAnalytics(Flask):
    """Flask, with year-long caching for static files requested by a versioned URL."""

    config_class = config_module.Config

    def get_send_file_max_age(self, filename: str | None) -> int | None:
        """Return a year for ?v=<hash> URLs; otherwise the default (revalidate each time)."""
        if has_request_context() and request.args.get("v"):
            return STATIC_MAX_AGE
        return super().get_send_file_max_age(filename)

    def raise_routing_exception(self, request: Request) -> NoReturn:
        """Answer 404 where the router would redirect to the canonical URL.

        Werkzeug redirects merged slashes (/a//b) and missing trailing slashes with an
        absolute URL built from the Host header; a non-canonical URL is simply not one of
        this app's, and under /api/ the 404 is the JSON envelope like any other.
        """
        if isinstance(request.routing_exception, RequestRedirect):
            raise NotFound()
        super().raise_routing_exception(request)


def normalize_database_url(url: str) -> str:
    """Send plain postgres:// and postgresql:// URLs through psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the application: defaults, then instance/config.py, then the environment."""
    app = PartnerAnalytics(
        __name__,
        # The instance folder is not created here: a command refused for want of a
        # database leaves nothing behind (init-db and the secret key create what they need).
        instance_path=os.environ.get("INSTANCE_PATH") or str(ROOT / "instance"),
        instance_relative_config=True,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    configure(app, test_config)
    # `flask <command>` and `flask --help` build a light app: the commands, and nothing that
    # serves a request (CSRF, sign-in, the rate limiter, the pages and the API, whose
    # schemas, pydantic and spectree take a good part of a second to import). What a
    # command uses is bound when it runs (register_data, app/cli.py), so listing the
    # commands imports no database layer either.
    light = config_module.loading_for_own_commands()
    if light:
        atexit.register(end_of_command, app)
    if not light:
        register_extensions(app)
        register_blueprints(app)
    register_error_handlers(app)
    register_hooks(app)
    register_cli(app, light=light)
    register_security(app)
    return app


def configure(app: Flask, test_config: dict[str, Any] | None) -> None:
    """Load the settings: defaults, instance/config.py, the environment, then test_config."""
    app.config.from_mapping(config_module.defaults(app.instance_path))
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_mapping(config_module.from_environment())
    if test_config:
        app.config.from_mapping(test_config)
    config_module.use_redis_url(app.config)
    config_module.defer_secret_key(app)
    config_module.check_secret_key(app, config_module.serving_kind())
    app.config["SQLALCHEMY_DATABASE_URI"] = normalize_database_url(app.config["DATABASE_URL"])
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # SQLite has no server-side pool to ping; keep the options minimal.
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {}
    # Answer JSON keys in the order the code builds them (the spec's order), not sorted.
    app.json.sort_keys = False  # type: ignore[attr-defined]


def register_data(app: Flask) -> None:
    """Bind what every command uses, once: the database with its listeners, and the
    figure cache, whose listeners bump a partner's data version on each write."""
    if "sqlalchemy" in app.extensions:
        return
    from . import cache, database
    from .extensions import db

    db.init_app(app)
    database.init_app(app)
    cache.init_app(app)


def end_of_command(app: Flask) -> None:
    """Close a `flask` command's database connections as its process exits, then spare
    the exit the collector's last pass.

    That pass walks every object imported (a fifth of `flask create-org`'s time) to free
    what the exit frees anyway; the connections, which it would have closed (SQLite then
    removes its -wal and -shm files), are closed here first.
    """
    if "sqlalchemy" in app.extensions:
        from .extensions import db

        with app.app_context():
            for engine in db.engines.values():
                engine.dispose()
    gc.freeze()


def register_extensions(app: Flask) -> None:
    """Bind the extensions: the data layer, Flask-Migrate, CSRF, sign-in, the rate limiter
    (with the hooks that must run around it) and the compression of static files."""
    from . import compression
    from .cli import init_migrations
    from .extensions import login_manager
    from .hooks import register_hooks_before_limiter
    from .web_extensions import csrf, limiter

    register_data(app)
    init_migrations(app)
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to see your dashboard."
    login_manager.session_protection = "strong"
    register_hooks_before_limiter(app)
    limiter.init_app(app)
    compression.init_app(app)


def register_blueprints(app: Flask) -> None:
    """Register the JSON API (no CSRF: it authenticates by key) and the dashboard pages."""
    from . import auth  # noqa: F401  (registers the user loader)
    from .api import bp as api_bp
    from .views import register_views
    from .web_extensions import csrf

    csrf.exempt(api_bp)
    app.register_blueprint(api_bp)
    register_views(app)
