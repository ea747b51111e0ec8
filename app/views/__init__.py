"""HTML blueprints, one module per page family."""

from flask import Flask


def register_views(app: Flask) -> None:
    """Register every page blueprint."""
    from . import overview

    app.register_blueprint(overview.bp)
