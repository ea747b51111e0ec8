"""Errors: the AppError family, and one app-level handler (JSON under /api/, HTML elsewhere)."""

from __future__ import annotations

import logging
from typing import Any

from flask import (
    Flask,
    Response,
    current_app,
    g,
    jsonify,
    make_response,
    render_template,
    request,
    url_for,
)
from werkzeug.exceptions import HTTPException, SecurityError

log = logging.getLogger(__name__)

# Seconds a client is asked to wait after SQLite's busy timeout expired.
BUSY_RETRY_AFTER = 5

STATUS_CODES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
    422: "UnprocessableEntity",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
}
CODE_STATUS = {
    "BadRequest": 400,
    "Unauthorized": 401,
    "Forbidden": 403,
    "NotFound": 404,
    "Conflict": 409,
    "InsufficientCredits": 422,
    "UnprocessableEntity": 422,
    "TooManyRequests": 429,
    "InternalError": 500,
    "ServiceUnavailable": 503,
}


class AppError(Exception):
    """A failure a user can act on: a code of spec §3, a message, and details."""

    def __init__(
        self,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}
        self.status = status or CODE_STATUS.get(code, 400)

    @property
    def field(self) -> str | None:
        """Return the offending field's name, when there is one."""
        value = self.details.get("field")
        return value if isinstance(value, str) else None


class ServiceUnavailable(AppError):
    """A retryable refusal (spec §3): nothing was changed; try again after retry_after s."""

    def __init__(
        self, message: str, retry_after: int, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(
            "ServiceUnavailable",
            message,
            {"retryable": True, "retryAfter": retry_after, **(details or {})},
            status=503,
        )
        self.retry_after = retry_after


def bad_request(field: str, value: Any, message: str) -> AppError:
    """Return a 400 naming the offending field and value."""
    return AppError("BadRequest", message, {"field": field, "value": _safe(value)})


def not_found(what: str = "resource") -> AppError:
    """Return a 404."""
    return AppError("NotFound", f"{what} not found")


def _safe(value: Any) -> Any:
    """Keep echoed values short and JSON-friendly."""
    if value is None or isinstance(value, bool | int | float):
        return value
    text = str(value)
    return text if len(text) <= 200 else text[:200] + "…"


def wants_json() -> bool:
    """Tell whether the current request should be answered with JSON errors."""
    return request.path.startswith("/api/") or request.path.endswith(".json")


def error_json(code: str, message: str, details: dict[str, Any] | None, status: int) -> Response:
    """Return the JSON error envelope."""
    response = jsonify({"code": code, "message": message, "details": details or {}})
    response.status_code = status
    return response


# The one error page's words per status: a title and what to do, for people (the API's
# codes and Werkzeug's texts are for programs).
PAGE_TEXT = {
    400: ("This request could not be used", "Something in the address or form was not readable."),
    401: ("Please sign in", "This page needs you to be signed in."),
    403: ("Not allowed", "Your account cannot open this page or do this action."),
    404: ("Page not found", "There is no such page, or it is not yours to see."),
    405: ("Not available here", "This page does not do that; use its own links and buttons."),
    413: ("Too much at once", "What was sent is larger than the server accepts."),
    429: ("Too many requests", "Please wait a moment, then try again."),
    500: ("Something went wrong", "An internal error occurred; it has been logged."),
    503: ("Busy for a moment", "Nothing was changed. Please try again in a moment."),
}  # fmt: skip


def _signed_in() -> bool:
    # The page that explains a failure must not fail itself: a broken database or session
    # only loses the navigation. (Imported here: a `flask` command has no use for it.)
    from flask_login import current_user

    try:
        return bool(current_user.is_authenticated)
    except Exception:  # noqa: BLE001
        return False


def error_page(
    status: int,
    message: str | None = None,
    *,
    title: str | None = None,
    back: tuple[str, str] | None = None,
) -> tuple[str, int]:
    """Return the one error page of the dashboard: a human title, what to do, a way back,
    and the navigation when someone is signed in. Never an exception's name."""
    default_title, default_message = PAGE_TEXT.get(status, PAGE_TEXT[500 if status >= 500 else 400])
    # A refused Host header leaves the request without a URL adapter: no url_for then.
    routable = not isinstance(request.routing_exception, SecurityError)
    chrome = routable and _signed_in()
    if back is None and routable:
        back = (
            (url_for("dashboard.overview.index"), "Back to the overview")
            if chrome
            else (url_for("auth.login"), "Go to sign in")
        )
    words = {
        "status": status,
        "title": title or default_title,
        "message": message or default_message,
        "back": back,
    }
    try:
        return render_template("errors/error.html", chrome=chrome, **words), status
    except Exception:
        # Straight through Jinja: render_template's context processors (Flask-Login's
        # current_user among them) may be what fails.
        log.exception("the error page failed; answering it in its bare frame")
        template = current_app.jinja_env.get_template("errors/error.html")
        return template.render(chrome=False, **words), status


def sentence(message: str) -> str:
    """Return an AppError's message as a sentence ("organization not found" -> "Organization
    not found.")."""
    text = message.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def register_error_handlers(app: Flask) -> None:
    """Install the handlers on the app itself so unrouted URLs are covered too."""

    @app.errorhandler(AppError)
    def handle_app_error(exc: AppError) -> Any:
        if wants_json():
            response = error_json(exc.code, exc.message, exc.details, exc.status)
        else:
            response = make_response(error_page(exc.status, sentence(exc.message)))
        if isinstance(exc, ServiceUnavailable):
            response.headers["Retry-After"] = str(exc.retry_after)
            # Flask-Limiter rewrites Retry-After on its way out; the app puts this back.
            g.retry_after = exc.retry_after
        return response

    @app.errorhandler(HTTPException)
    def handle_http(exc: HTTPException) -> Any:
        status = exc.code or 500
        code = STATUS_CODES.get(status, "BadRequest" if status < 500 else "InternalError")
        message = exc.description or code
        if status == 413:
            message = "the request body is too large"
        if wants_json():
            details: dict[str, Any] = {}
            if status == 405:
                details = {"method": request.method, "path": request.path}
            elif isinstance(exc, SecurityError):  # a Host header outside TRUSTED_HOSTS
                details = {"field": "Host", "value": _safe(request.headers.get("Host"))}
            response = error_json(code, message, details, status)
            if status == 429 and exc.response is not None:
                for header in (
                    "Retry-After",
                    "X-RateLimit-Limit",
                    "X-RateLimit-Remaining",
                    "X-RateLimit-Reset",
                ):
                    if header in exc.response.headers:
                        response.headers[header] = exc.response.headers[header]
            if status == 405 and hasattr(exc, "valid_methods") and exc.valid_methods:
                response.headers["Allow"] = ", ".join(exc.valid_methods)
            return response
        if isinstance(exc, SecurityError):  # a Host header outside TRUSTED_HOSTS
            host = _safe(request.headers.get("Host"))
            return error_page(400, f"The host name {host} is not trusted by this server.")
        # Werkzeug's texts are for programs; a description of our own (the sign-in
        # throttle's) is written for people.
        own = exc.description if exc.description != type(exc).description else None
        return error_page(status, own if status == 429 else None)

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception) -> Any:
        if database_busy(exc):
            # SQLite queued this write behind others for its busy timeout and gave up; the
            # transaction rolled back, so this is the retryable 503 of spec §3.
            log.warning("database busy on %s %s", request.method, request.path)
            return handle_app_error(
                ServiceUnavailable(
                    "the database stayed busy with other writes for too long; nothing was "
                    "changed: retry in a moment",
                    retry_after=BUSY_RETRY_AFTER,
                )
            )
        log.exception("unhandled error on %s %s", request.method, request.path)
        if wants_json():
            return error_json(
                "InternalError", "an internal error occurred; it has been logged", {}, 500
            )
        return error_page(500)


def database_busy(exc: BaseException) -> bool:
    """Tell whether exc is SQLite giving up on a lock after its busy timeout."""
    from sqlalchemy.exc import OperationalError

    return isinstance(exc, OperationalError) and "database is locked" in str(exc.orig)
