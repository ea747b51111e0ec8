"""What every template gets: the navigation's period, links to pages and API, freshness."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

from flask import Flask, current_app, request, url_for
from markupsafe import Markup

from .. import ROOT, metrics
from ..display import fmt_moment
from ..forms import LogoutForm
from ..levels import allocation_level, usage_level, usage_percent
from ..periods import PRESETS
from ..roles import can
from ..timeutil import utcnow
from .dashboard import current_partner
from .filters import age_text
from .period import PERIOD_KEYS, nav_args
from .printing import register_printing


def api_link(endpoint: str, **params: Any) -> str:
    """Return the URL of an API endpoint: its path arguments in the path (url_for), the
    other parameters in the query string (None and empty values left out)."""
    in_path = {name for rule in current_app.url_map.iter_rules(endpoint) for name in rule.arguments}
    path = url_for(endpoint, **{k: v for k, v in params.items() if k in in_path})
    clean = {k: v for k, v in params.items() if k not in in_path and v not in (None, "")}
    return path + ("?" + urlencode(clean) if clean else "")


def page_url(**params: Any) -> str:
    """Return this page's URL (same path arguments) with the given query parameters."""
    clean = {k: v for k, v in params.items() if v not in (None, "")}
    return url_for(
        request.endpoint or "dashboard.overview.index", **(request.view_args or {}), **clean
    )


# How old the newest event may be for the data to count as fresh, then as stale; older
# than that it is old (the dot turns green, amber, red).
FRESH_FOR = timedelta(hours=1)
STALE_FOR = timedelta(days=1)


def freshness() -> dict[str, Any]:
    """Return when the signed-in partner's newest event was received (in words in its
    timezone), and how fresh that is."""
    partner = current_partner()
    moment = metrics.data_freshness(partner)
    level = "none"
    if moment is not None:
        age = utcnow() - moment
        level = "fresh" if age < FRESH_FOR else "stale" if age < STALE_FOR else "old"
    return {
        "at": moment,
        "text": fmt_moment(moment, partner.timezone),
        "age": age_text(moment),
        "level": level,
    }


@lru_cache(maxsize=1)
def plotly_js_filename() -> str:
    """Return the static path of the vendored plotly.js bundle.

    Read from static/vendor, not from the plotly package, which the app does not import
    at run time (its figures are plain dicts); tests/test_static.py checks that the one
    bundle there (built by tools/plotly/build.js) is at the version the installed plotly package
    expects, with the checksum static/vendor/README.md records.
    """
    vendor = ROOT / "static" / "vendor"
    bundles = sorted(p.name for p in vendor.glob("plotly-*.min.js"))
    if len(bundles) != 1:
        raise RuntimeError(f"expected one plotly-*.min.js in {vendor}, found {bundles}")
    return "vendor/" + bundles[0]


# The pages where a partner runs its program, in the order of their tabs: (blueprint,
# endpoint, label, the permission of app/roles.py that shows it).
MANAGE_PAGES = (
    ("settings", "dashboard.settings.index", "Settings", "manage_settings"),
    ("team", "dashboard.team.index", "Team", "manage_team"),
    ("keys", "dashboard.keys.index", "API keys", "manage_api_keys"),
    ("webhooks", "dashboard.webhooks.index", "Webhooks", "manage_webhooks"),
    ("alerts", "dashboard.alerts.index", "Alerts", "manage_alerts"),
    ("audit", "dashboard.audit.index", "Audit log", "view_audit"),
)


def manage_links() -> list[tuple[str, str, str]]:
    """Return (blueprint, endpoint, label) of the management pages the signed-in role may
    open: the tabs of those pages, and the first of them is where "Manage" in the
    navigation leads (analysts get none, so no "Manage")."""
    return [
        (blueprint, endpoint, label)
        for blueprint, endpoint, label, permission in MANAGE_PAGES
        if endpoint in current_app.view_functions and can(permission)
    ]


def register_context(app: Flask) -> None:
    """Give every template the dashboard's globals (and the print filters)."""
    register_printing(app)
    # The one colour rule of usage against an allocation (tables, meters).
    app.jinja_env.globals.update(
        usage_level=usage_level, usage_percent=usage_percent, allocation_level=allocation_level
    )

    @app.context_processor
    def dashboard_globals() -> dict[str, Any]:
        return {
            "nav_args": nav_args(),
            "api_link": api_link,
            "page_url": page_url,
            "freshness": freshness,
            "can": can,
            "manage_links": manage_links,
            "has_endpoint": lambda name: name in current_app.view_functions,
            "logout_form": LogoutForm,
            "presets": PRESETS,
            "period_keys": PERIOD_KEYS,
            "plotly_js": plotly_js_filename(),
            "nbsp": Markup("&nbsp;"),
        }
