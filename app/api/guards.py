"""Every API request passes here first: rate limit, API key and scope, then input hygiene."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app, g, request
from flask_login import current_user

from .. import cache
from ..auth import find_api_key_for_request, key_allows, note_key_used
from ..errors import AppError, _safe
from ..ingest import MAX_BATCH, Rejection, storable_text
from ..ingest.files import refuse_constant
from ..models import Partner
from ..roles import allowed
from ..web_extensions import _limiter_key, limiter
from . import bp
from .bodies import (
    GZIP_ENCODINGS,
    NDJSON_TYPE,
    InflatedTooLarge,
    NotGzip,
    inflate_gzip,
    ndjson_lines,
)

API_KEY_HEADER = "X-Partner-API-Key"
RATE_SCOPE = "partner-api"
MAX_DEPTH = 32
PUBLIC_ENDPOINTS = {"api.openapi"}
BODY_METHODS = {"POST", "PUT", "PATCH"}

F = TypeVar("F", bound=Callable[..., Any])


def requires_scope(scope: str) -> Callable[[F], F]:
    """Mark a view as needing scope (default: read for GET, write for other methods)."""

    def mark(func: F) -> F:
        func._required_scope = scope  # type: ignore[attr-defined]
        return func

    return mark


def body_optional(func: F) -> F:
    """Mark a POST view that takes no body: an empty one is fine (a sent one must still be
    a JSON object)."""
    func._body_optional = True  # type: ignore[attr-defined]
    return func


def bulk_body(func: F) -> F:
    """Mark the bulk view (POST /partner/events): its body may come gzip-compressed
    (Content-Encoding: gzip) and as NDJSON (application/x-ndjson), one event a line."""
    func._bulk_body = True  # type: ignore[attr-defined]
    return func


def _view_marked(mark: str) -> bool:
    view = current_app.view_functions.get(request.endpoint or "")
    return bool(getattr(view, mark, False))


def _empty_body_allowed() -> bool:
    return _view_marked("_body_optional") and not request.get_data(cache=True).strip()


def authenticate() -> None:
    """Look the request's key up once; set g.partner and g.api_key (None when not live)."""
    if g.get("api_auth_done"):
        return
    g.api_auth_done = True
    plain = request.headers.get(API_KEY_HEADER, "").strip()
    g.api_key_sent = bool(plain)
    g.api_via_session = False
    found = find_api_key_for_request(plain) if plain else None
    g.api_key, g.partner = (found[0], found[1]) if found is not None else (None, None)
    if found is not None:
        cache.remember_version(found[1].id, found[2])
        note_key_used(found[0])
    if not plain and current_user.is_authenticated:
        # The dashboard's "JSON" links: a signed-in user may read its own partner's data.
        g.partner = current_user.partner
        g.api_via_session = True


def _rate_limit_key() -> str:
    """Count requests per partner, or per client address when the key is missing or bad."""
    authenticate()
    return _limiter_key()


def _rate_limit_value() -> str:
    return str(current_app.config.get("API_RATE_LIMIT") or "1000 per minute")


# One window shared by every endpoint of the blueprint. The limiter checks it before the
# view runs, so requests without a valid key are limited (by address) too.
limiter.shared_limit(_rate_limit_value, scope=RATE_SCOPE, key_func=_rate_limit_key)(bp)


def _required_scope() -> str:
    view = current_app.view_functions.get(request.endpoint or "")
    scope = getattr(view, "_required_scope", None)
    if scope:
        return str(scope)
    return "read" if request.method in {"GET", "HEAD", "OPTIONS"} else "write"


def session_scopes(role: str) -> list[str]:
    """Return what a dashboard session of this role may do through the JSON API: read, and
    for owners and admins also read what needs the admin scope (keys, the audit log).
    Changes need an API key (a session's cookie would make them forgeable across sites)."""
    return ["read", "admin"] if allowed(role, "view_audit") else ["read"]


def _check_session(scope: str) -> None:
    """Refuse a signed-in session's request its role or the read-only rule does not allow."""
    scopes = session_scopes(current_user.role)
    if request.method not in {"GET", "HEAD", "OPTIONS"}:
        raise AppError(
            "Forbidden",
            f"a dashboard session may only read; send an {API_KEY_HEADER} header to change data",
            {"field": API_KEY_HEADER, "requiredScope": scope, "scopes": scopes},
        )
    if scope not in scopes:
        raise AppError(
            "Forbidden",
            f"the {current_user.role} role may not read this; it needs the {scope!r} scope",
            {"field": API_KEY_HEADER, "requiredScope": scope, "scopes": scopes},
        )


def _check_text(value: str, where: str) -> None:
    """Refuse text the databases cannot store (NUL characters, lone surrogates)."""
    if "\x00" in value:
        raise AppError(
            "BadRequest", f"{where} contains a NUL character", {"field": where, "value": None}
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise AppError(
            "BadRequest", f"{where} is not valid Unicode text", {"field": where, "value": None}
        ) from exc


def _check_tree_paths(body: Any) -> None:
    """Walk a parsed body (without recursion) checking depth and every string; raise the
    400 that names the first bad field."""
    stack: list[tuple[Any, str, int]] = [(body, "", 0)]
    while stack:
        node, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise AppError(
                "BadRequest",
                f"the body is nested deeper than {MAX_DEPTH} levels",
                {"field": path or "body", "value": None},
            )
        if isinstance(node, dict):
            for key, value in node.items():
                child = f"{path}.{key}" if path else str(key)
                _check_text(key, child)
                stack.append((value, child, depth + 1))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                stack.append((value, f"{path}[{index}]", depth + 1))
        elif isinstance(node, str):
            _check_text(node, path or "body")


def _tree_is_clean(body: Any, texts: bool) -> bool:
    """Tell, without building field paths, that _check_tree_paths would pass body.

    False means "look closer", not "bad". With texts False the strings are not looked at.
    """
    stack: list[tuple[Any, int]] = [(body, 0)]
    while stack:
        node, depth = stack.pop()
        if type(node) is dict:
            if node and depth >= MAX_DEPTH:
                return False
            if texts and not all(storable_text(key) for key in node):
                return False
            children: Any = node.values()
        elif type(node) is list:
            if node and depth >= MAX_DEPTH:
                return False
            children = node
        else:
            continue
        for child in children:
            kind = type(child)
            if kind is dict or kind is list:
                stack.append((child, depth + 1))
            elif texts and kind is str and not storable_text(child):
                return False
    return True


def _check_tree(body: Any, raw: bytes | None = None) -> None:
    """Refuse a body nested deeper than MAX_DEPTH or holding text the databases cannot store.

    A NUL character or a lone surrogate can only come out of json.loads through a \\u
    escape, or from bytes that are not plain UTF-8 (json.loads decodes UTF-8 with
    surrogatepass, so ED A0..ED BF lead bytes pass; a UTF-16 or UTF-32 body has NUL
    bytes). A body without any of those skips the string checks; every body still gets
    a quick depth check, and anything it cannot clear is walked again with field paths
    to name the first bad field.
    """
    texts = raw is None or b"\\u" in raw or b"\xed" in raw or b"\x00" in raw
    if not _tree_is_clean(body, texts):
        _check_tree_paths(body)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is out of range")
    return value


def parse_body(ndjson: bool = False) -> dict[str, Any]:
    """Return the request body as a JSON object, or raise the 400/415 that explains why not.

    ndjson: the view also takes NDJSON (read by read_ndjson), which the 415 says."""
    mimetype = request.mimetype or ""
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise AppError(
            "UnsupportedMediaType",
            f"send the body as JSON with Content-Type: application/json"
            f"{' or as NDJSON with Content-Type: ' + NDJSON_TYPE if ndjson else ''}",
            {"field": "Content-Type", "value": _safe(request.content_type)},
            status=415,
        )
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise AppError(
            "BadRequest", "a JSON object body is required", {"field": "body", "value": None}
        )
    try:
        body = json.loads(raw, parse_constant=refuse_constant, parse_float=_finite_float)
    except (ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError, bad UTF-8 and integers of over 4,300 digits.
        reason = str(exc).splitlines()[0][:200] if str(exc) else "cannot be parsed"
        raise AppError(
            "BadRequest", f"the body is not valid JSON: {reason}", {"field": "body", "value": None}
        ) from exc
    if not isinstance(body, dict):
        raise AppError(
            "BadRequest",
            "the body must be a JSON object",
            {"field": "body", "value": type(body).__name__},
        )
    _check_tree(body, raw)
    return body


def decode_body() -> None:
    """Undo the bulk view's Content-Encoding: gzip is inflated, at most MAX_CONTENT_LENGTH
    bytes of it (413 past that, inflating stopped there), and what the body reads from
    then on (get_data, get_json) is the inflated text. Other encodings answer 415.

    Other views do not look at Content-Encoding: an encoded body is not JSON to them (400).
    """
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return
    if encoding not in GZIP_ENCODINGS:
        raise AppError(
            "UnsupportedMediaType",
            "the body may be sent as is or gzip-compressed (Content-Encoding: gzip), "
            f"not as {_safe(encoding)}",
            {"field": "Content-Encoding", "value": _safe(request.headers["Content-Encoding"])},
            status=415,
        )
    limit = request.max_content_length or current_app.config["MAX_CONTENT_LENGTH"]
    try:
        inflated = inflate_gzip(request.stream.read, limit)
    except InflatedTooLarge as exc:
        raise AppError(
            "PayloadTooLarge",
            f"{exc}; send at most {limit:,} bytes once inflated",
            {"field": "body", "value": None, "limit": limit},
            status=413,
        ) from exc
    except NotGzip as exc:
        raise AppError(
            "BadRequest",
            f"{exc}, as Content-Encoding: gzip says it is",
            {"field": "Content-Encoding", "value": _safe(request.headers["Content-Encoding"])},
        ) from exc
    # Werkzeug's get_data() cache: from here on the request's body is the inflated one.
    request._cached_data = inflated  # type: ignore[attr-defined]


# Built once: json.loads with these arguments would build a decoder for every line.
_LINE_DECODER = json.JSONDecoder(parse_constant=refuse_constant, parse_float=_finite_float)


def _line_rejection(index: int, line: str) -> Any:
    """Return the event of one NDJSON line, or the Rejection that says why it is not one.

    The line must be JSON and pass the body checks (depth, NUL, lone surrogates: these
    can only come from a \\u escape in text that decoded as UTF-8); a value that is not an
    object goes on to validate_event, which rejects it as the JSON form does."""
    try:
        value = _LINE_DECODER.decode(line)
    except json.JSONDecodeError as exc:
        return Rejection(
            index, None, "invalid_json", f"not valid JSON: {exc.msg} at column {exc.colno}"
        )
    except ValueError as exc:  # NaN/Infinity, a float out of range, a huge integer
        return Rejection(index, None, "invalid_json", f"not valid JSON: {str(exc)[:200]}")
    except RecursionError:
        return Rejection(index, None, "invalid_json", "not valid JSON: nested too deeply")
    if not _tree_is_clean(value, "\\u" in line):
        try:
            _check_tree_paths(value)
        except AppError as exc:
            event_id = value.get("eventId") if isinstance(value, dict) else None
            if not (isinstance(event_id, str) and storable_text(event_id)):
                event_id = None
            if exc.message.startswith("the body is nested"):
                message = f"the event is nested deeper than {MAX_DEPTH} levels"
                return Rejection(index, event_id, "invalid_event", message, exc.field)
            return Rejection(index, event_id, "invalid_text", exc.message, exc.field)
    return value


def read_ndjson() -> list[tuple[int, Any]]:
    """Return the (line index, event or Rejection) pairs of the bulk view's NDJSON body.

    The index is the line's 0-based position in the (inflated) body, blank lines counted;
    blank lines are skipped. A line that is not a JSON object is rejected on its own. The
    whole call is refused (400) only when the body is not UTF-8, holds no event line, or
    holds more than MAX_BATCH of them (as the JSON form's events)."""
    raw = request.get_data(cache=True)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AppError(
            "BadRequest",
            f"the body is not UTF-8 text (byte {exc.start:,}: {exc.reason})",
            {"field": "body", "value": None},
        ) from exc
    lines = ndjson_lines(text.removeprefix("\ufeff"))
    if not lines:
        raise AppError(
            "BadRequest",
            "an NDJSON body of at least one event line is required",
            {"field": "body", "value": None},
        )
    if len(lines) > MAX_BATCH:
        raise AppError(
            "BadRequest",
            f"events: at most {MAX_BATCH:,} events per call; the body has {len(lines):,} "
            "event lines",
            {"field": "events", "value": None},
        )
    return [(index, _line_rejection(index, line)) for index, line in lines]


def ndjson_events() -> list[tuple[int, Any]] | None:
    """Return the events read from an NDJSON body by the guard, or None for a JSON body."""
    events: list[tuple[int, Any]] | None = g.get("ndjson_events")
    return events


@bp.before_request
def guard() -> None:
    """Authenticate, check the scope, then the URL's text and the body."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    authenticate()
    if g.get("partner") is None:
        if not g.get("api_key_sent"):
            raise AppError(
                "Unauthorized",
                f"the {API_KEY_HEADER} header is required",
                {"field": API_KEY_HEADER, "value": None},
            )
        raise AppError(
            "Unauthorized",
            "the API key is unknown, revoked or expired",
            {"field": API_KEY_HEADER, "value": None},
        )
    scope = _required_scope()
    if g.get("api_via_session"):
        _check_session(scope)
    elif not key_allows(g.api_key, scope):
        raise AppError(
            "Forbidden",
            f"this API key lacks the {scope!r} scope",
            {"field": API_KEY_HEADER, "requiredScope": scope, "scopes": g.api_key.scope_list},
        )
    for name, value in (request.view_args or {}).items():
        if isinstance(value, str):
            _check_text(value, name)
    for name, value in request.args.items(multi=True):
        _check_text(name, name)
        _check_text(value, name)
    if request.method not in BODY_METHODS:
        return
    bulk = _view_marked("_bulk_body")
    if bulk:
        decode_body()
        if request.mimetype == NDJSON_TYPE:
            g.ndjson_events = read_ndjson()
            return
    if not _empty_body_allowed():
        parse_body(ndjson=bulk)


def current_partner() -> Partner:
    """Return the partner whose key made this request."""
    partner: Partner = g.partner
    return partner
