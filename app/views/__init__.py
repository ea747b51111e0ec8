"""HTML blueprints, one module per page family."""

from flask import Flask


def register_views(app: Flask) -> None:
    """Register every page blueprint."""
    from . import auth, billing, common, credits, organizations, overview, reports

    common.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(overview.bp)
    app.register_blueprint(organizations.bp)
    app.register_blueprint(credits.bp)
    app.register_blueprint(billing.bp)
    app.register_blueprint(reports.bp)
