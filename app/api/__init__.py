"""The JSON API blueprint under /api/v1; one module per resource."""

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")
