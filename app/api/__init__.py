"""The JSON API blueprint under /api/v1; one module per resource."""

from typing import Any

from flask import Blueprint, jsonify

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.get("/openapi.json")
def openapi() -> Any:
    """Serve the OpenAPI 3 document (public: no key needed)."""
    from .spec import document

    return jsonify(document())


# Imported for their routes; guards first, so its before_request runs before any view.
from . import guards  # noqa: E402,F401,I001
from . import account, analytics, billing, events, organizations  # noqa: E402,F401
from . import reports  # noqa: E402,F401
