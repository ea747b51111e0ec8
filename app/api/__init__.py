"""The JSON API blueprint under /api/v1; one module per resource."""

from typing import Any

from flask import Blueprint, jsonify, request

from ..web_extensions import limiter

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.get("/openapi.json")
def openapi() -> Any:
    """Serve the OpenAPI 3 document (public: no key needed)."""
    from .spec import document

    return jsonify(document())


@limiter.request_filter
def _public_document() -> bool:
    """Leave the OpenAPI document out of the rate limit: the same public file for everyone
    (no key, no partner's window), and a client fetching it must not spend its quota."""
    return request.endpoint == "api.openapi"


# Imported for their routes; guards first, so its before_request runs before any view.
from . import guards  # noqa: E402,F401,I001
from . import account, analytics, billing, events, organizations  # noqa: E402,F401
from . import alerts, audit, reports, webhooks  # noqa: E402,F401
