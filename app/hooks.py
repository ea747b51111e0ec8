"""Request and response hooks shared by every answer: API edges and caching headers."""

from __future__ import annotations

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed


def register_hooks_before_limiter(app: Flask) -> None:
    """Install the hooks that must run before Flask-Limiter's own before_request."""
    app.before_request(route_api_405_to_its_url)


def register_hooks(app: Flask) -> None:
    """Install the response hooks."""
    app.after_request(cache_control)
    app.after_request(no_html_under_api)


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
    if not isinstance(exc, MethodNotAllowed) or not request.path.startswith("/api/") \
            or not exc.valid_methods:
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
    if request.path.startswith("/api/") and response.mimetype == "text/html" \
            and not response.is_streamed and not response.get_data():
        del response.headers["Content-Type"]
    return response
