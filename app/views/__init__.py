"""HTML blueprints, one module per page family, under one signed-in dashboard blueprint.

Layout: dashboard.py (the parent blueprint and its login gate), period.py (the period in
the URL), filters.py (template filters), context.py (template globals), kpis.py (the KPI
cards), then one module per page family (org_manage.py: the organizations' forms); CSV
downloads are written by app/exports.py.
"""

from flask import Flask

from ..chart_tables import chart_table
from . import (
    account,
    alerts,
    audit,
    auth,
    billing,
    credits,
    dashboard,
    invitations,
    keys,
    org_manage,
    organizations,
    overview,
    reports,
    settings,
    team,
    webhooks,
)
from .context import register_context
from .filters import register_filters

# Registered once, at import: the page families' endpoints become dashboard.<family>.<view>.
for _page in (
    overview,
    organizations,
    org_manage,
    credits,
    billing,
    reports,
    settings,
    team,
    webhooks,
    keys,
    audit,
    alerts,
    account,
):
    dashboard.bp.register_blueprint(_page.bp)


def register_views(app: Flask) -> None:
    """Register the template filters and globals, the sign-in pages and the dashboard."""
    register_filters(app)
    register_context(app)
    # A plain global, not a context variable: the chart macro is imported into the pages.
    app.add_template_global(chart_table)
    app.register_blueprint(auth.bp)
    # Public, outside the login gate: accepting an invitation by its one-time link.
    app.register_blueprint(invitations.bp)
    app.register_blueprint(dashboard.bp)
