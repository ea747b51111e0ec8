"""Overview page: the partner's figures for a period."""

from flask import Blueprint, render_template

bp = Blueprint("overview", __name__)


@bp.get("/")
def index() -> str:
    """Show a placeholder until the dashboard exists."""
    return render_template("overview/placeholder.html")
