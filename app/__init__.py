"""Partner Analytics: create_app() wires config, extensions, blueprints, errors and the CLI."""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, NoReturn

from flask import Flask, Request, Response, has_request_context, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.exceptions import NotFound
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import RequestRedirect

from . import config as config_module
from . import database  # noqa: F401  (registers the engine event listeners)
from .extensions import csrf, db, limiter, login_manager, migrate

ROOT = Path(__file__).resolve().parent.parent

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    # Plotly sets inline styles on the elements it draws.
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])


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


@lru_cache(maxsize=256)
def _content_version(path: str, mtime_ns: int) -> str:
    """Return a short hash of a static file's content (keyed on its mtime too)."""
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()[:12]


def static_version(folder: str, filename: str) -> str | None:
    """Return the version tag of a static file, or None when it does not exist."""
    path = Path(folder) / filename
    try:
        stat = path.stat()
    except OSError:
        return None
    return _content_version(str(path), stat.st_mtime_ns)


class SessionInterface(SecureCookieSessionInterface):
    """Mark the session cookie Secure whenever the request came over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        """Return True when configured, or when this request is HTTPS."""
        if app.config.get("SESSION_COOKIE_SECURE"):
            return True
        try:
            return bool(request.is_secure)
        except RuntimeError:
            return False


def normalize_database_url(url: str) -> str:
    """Send plain postgres:// and postgresql:// URLs through psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def trust_proxies(app: Flask) -> None:
    """Believe X-Forwarded-For and -Proto from TRUSTED_PROXIES hops (werkzeug's ProxyFix).

    Behind them the client address (which the rate limits key on) and the scheme (Secure
    cookie, HSTS) are the ones the proxies saw; with 0 (the default) both headers are
    ignored, as any client can send them.
    """
    hops = int(app.config["TRUSTED_PROXIES"])
    if hops < 0:
        raise ValueError("TRUSTED_PROXIES must be 0 or more (the number of proxy hops)")
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops,  # type: ignore[method-assign]
                                x_proto=hops, x_host=0, x_port=0, x_prefix=0)


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
    app.config.from_mapping(config_module.defaults(app.instance_path))
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_mapping(config_module.from_environment())
    if test_config:
        app.config.from_mapping(test_config)
    config_module.defer_secret_key(app)
    config_module.check_secret_key(app, config_module.serving_kind())
    app.config["SQLALCHEMY_DATABASE_URI"] = normalize_database_url(app.config["DATABASE_URL"])
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # SQLite has no server-side pool to ping; keep the options minimal.
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {}
    app.session_interface = SessionInterface()
    trust_proxies(app)
    # Answer JSON keys in the order the code builds them (the spec's order), not sorted.
    app.json.sort_keys = False  # type: ignore[attr-defined]

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to see your dashboard."
    login_manager.session_protection = "strong"

    # Registered before the limiter so it runs after the limiter's header injection
    # (after_request hooks run in reverse order): Flask-Limiter adds Retry-After to every
    # response, and it only means something on a 429 (the limit's reset) or on a 503 (the
    # wait the error asked for, which the limiter may have overwritten with its reset).
    @app.after_request
    def retry_after_where_it_applies(response: Response) -> Response:
        from .errors import RETRY_AFTER_KEY

        if response.status_code == 503 and RETRY_AFTER_KEY in request.environ:
            response.headers["Retry-After"] = str(request.environ[RETRY_AFTER_KEY])
        elif response.status_code != 429:
            response.headers.pop("Retry-After", None)
        return response

    from .hooks import register_hooks_before_limiter

    register_hooks_before_limiter(app)
    limiter.init_app(app)

    from . import auth  # noqa: F401  (registers the user loader)
    from .api import bp as api_bp
    from .errors import register_error_handlers
    from .views import register_views

    csrf.exempt(api_bp)
    app.register_blueprint(api_bp)
    register_views(app)
    register_error_handlers(app)

    @app.before_request
    def refuse_nul_characters() -> None:
        # PostgreSQL refuses a NUL in any text parameter (a 500 for a query such as
        # ?search=%00); no field has a use for one. The API checks its input itself.
        if request.path.startswith("/api/"):
            return
        values = [*(request.view_args or {}).values(), *request.args.values()]
        if request.method == "POST" and request.mimetype in (
                "application/x-www-form-urlencoded", "multipart/form-data"):
            values.extend(request.form.values())
        if any(isinstance(v, str) and "\x00" in v for v in values):
            from .errors import AppError

            raise AppError("BadRequest", "the request contains a NUL character")

    @app.url_defaults
    def version_static_urls(endpoint: str, values: dict[str, Any]) -> None:
        # url_for("static", filename=...) gets ?v=<content hash>: cacheable for a year,
        # and a new file is a new URL.
        if endpoint == "static" and "filename" in values and "v" not in values:
            version = static_version(str(app.static_folder), values["filename"])
            if version:
                values["v"] = version

    from .cli import register_cli
    from .hooks import register_hooks

    register_cli(app)
    register_hooks(app)

    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if request.endpoint == "static" and request.args.get("v") \
                and response.status_code in (200, 304):
            response.cache_control.immutable = True
        if _is_secure(request):
            response.headers.setdefault("Strict-Transport-Security",
                                        "max-age=31536000; includeSubDomains")
        return response

    return app


def _is_secure(req: Request) -> bool:
    return bool(req.is_secure)
