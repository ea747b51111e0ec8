"""Errors: the AppError family, and one app-level handler (JSON under /api/, HTML elsewhere)."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, g, jsonify, make_response, render_template, request
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


def _html(status: int, title: str, message: str) -> tuple[str, int]:
    # A refused Host header leaves the request without a URL adapter: no url_for then.
    links = not isinstance(request.routing_exception, SecurityError)
    return render_template(
        "errors/error.html", status=status, title=title, message=message, links=links
    ), status


def register_error_handlers(app: Flask) -> None:
    """Install the handlers on the app itself so unrouted URLs are covered too."""

    @app.errorhandler(AppError)
    def handle_app_error(exc: AppError) -> Any:
        if wants_json():
            response = error_json(exc.code, exc.message, exc.details, exc.status)
        else:
            response = make_response(
                _html(exc.status, STATUS_CODES.get(exc.status, "Error"), exc.message)
            )
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
        return _html(status, exc.name, message)

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
        return _html(500, "Something went wrong", "An internal error occurred; it has been logged.")


def database_busy(exc: BaseException) -> bool:
    """Tell whether exc is SQLite giving up on a lock after its busy timeout."""
    from sqlalchemy.exc import OperationalError

    return isinstance(exc, OperationalError) and "database is locked" in str(exc.orig)
