"""Request and response hooks shared by every answer: API edges, NUL refusal, versioned
static URLs, caching and Retry-After headers."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from .errors import AppError


def register_hooks_before_limiter(app: Flask) -> None:
    """Install the hooks that must run before Flask-Limiter's own hooks.

    after_request hooks run in reverse order of registration, so retry_after_where_it_applies
    runs after the limiter has added its headers.
    """
    app.after_request(retry_after_where_it_applies)
    app.before_request(route_api_405_to_its_url)


def register_hooks(app: Flask) -> None:
    """Install the request and response hooks of every answer."""
    app.before_request(refuse_nul_characters)
    app.url_defaults(version_static_urls)
    app.after_request(cache_control)
    app.after_request(no_html_under_api)


def retry_after_where_it_applies(response: Response) -> Response:
    """Keep Retry-After only where it means something.

    Flask-Limiter adds it to every response; it belongs on a 429 (the limit's reset) and
    on a 503 (the wait the error asked for, which the limiter may have overwritten).
    """
    if response.status_code == 503 and "retry_after" in g:
        response.headers["Retry-After"] = str(g.retry_after)
    elif response.status_code != 429:
        response.headers.pop("Retry-After", None)
    return response


def refuse_nul_characters() -> None:
    """Answer 400 to a page request carrying a NUL character anywhere.

    PostgreSQL refuses a NUL in any text parameter (a 500 for a query such as
    ?search=%00); no field has a use for one. The API checks its input itself.
    """
    if request.path.startswith("/api/"):
        return
    values = [*(request.view_args or {}).values(), *request.args.values()]
    if request.method == "POST" and request.mimetype in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        values.extend(request.form.values())
    if any(isinstance(v, str) and "\x00" in v for v in values):
        raise AppError("BadRequest", "the request contains a NUL character")


def version_static_urls(endpoint: str, values: dict[str, Any]) -> None:
    """Give url_for("static", filename=...) ?v=<content hash>: cacheable for a year, and a
    new file is a new URL."""
    if endpoint == "static" and "filename" in values and "v" not in values:
        version = static_version(str(current_app.static_folder), values["filename"])
        if version:
            values["v"] = version


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


def route_api_405_to_its_url() -> None:
    """Give a known API URL called with an unknown method its URL's rule.

    The router leaves such a request without an endpoint, so the limiter would neither
    count it nor send X-RateLimit-* headers. With the rule of the URL (for a method it
    does allow) the request falls in the API blueprint's shared window like any other;
    dispatching still raises the 405. The blueprint's before_request hooks were chosen
    before this one ran, so the key guard does not run for it (the 405 comes first, as
    before); the blueprint has no after_request hooks or error handlers of its own.
    """
    exc = request.routing_exception
    if (
        not isinstance(exc, MethodNotAllowed)
        or not request.path.startswith("/api/")
        or not exc.valid_methods
    ):
        return
    adapter = current_app.create_url_adapter(request)
    if adapter is None:  # pragma: no cover (only without a request)
        return
    try:
        rule, _args = adapter.match(method=sorted(exc.valid_methods)[0], return_rule=True)
    except HTTPException:
        return
    request.url_rule = rule


def cache_control(response: Response) -> Response:
    """Keep every answer but static files out of caches (they carry partners' data).

    Pages, downloads and API answers need a session or a key, and the sign-in page's
    answers start or end one: none may be stored by the browser (nor kept in its
    back/forward cache after sign-out) or by a proxy. Static files keep their own
    headers (a year and immutable for versioned URLs).
    """
    if request.endpoint != "static":
        response.headers["Cache-Control"] = "no-store"
    return response


def no_html_under_api(response: Response) -> Response:
    """Drop the text/html type Flask gives empty answers (automatic OPTIONS) under /api/."""
    if (
        request.path.startswith("/api/")
        and response.mimetype == "text/html"
        and not response.is_streamed
        and not response.get_data()
    ):
        del response.headers["Content-Type"]
    return response
