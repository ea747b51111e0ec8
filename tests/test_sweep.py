"""The done-when sweep of issue 15: every dashboard page, at 390 px and at 1440 px.

The pages come from the app's URL map, so a page added later is swept too: every GET route
but static files, the JSON API, signing in and out, and CSV or JSON downloads. A route's
URL parameters are filled from the demo data (PARAMETERS); a route with a parameter the
sweep cannot fill fails, so that no new page escapes it unseen.

On each page, at each width: no sideways scroll; the first KPI, where there is one, starts
on the first screen; no table is cut off (a table wider than its box scrolls inside it);
axe-core finds no WCAG 2.x A or AA violation (colour contrast among them), with every
"Show data" table folded and then unfolded. Screenshots: tests/artifacts/screenshots/
sweep-<page>-<width>.png.
"""

from __future__ import annotations

from typing import Any

import pytest

from app import create_app
from tests.browser_support import (
    BROWSER_MARKS,
    SHOTS,
    Watched,
    axe_violations,
    new_page,
    sign_in,
    use_axe,
)

pytestmark = BROWSER_MARKS

WIDTHS = {390: 844, 1440: 900}  # a phone (iPhone 12-15) and a laptop, each with its height
# October 2025: the last whole month before the frozen today (20 Nov 2025) of the demo data.
REPORT_MONTH = "2025-10"


def swept_routes() -> list[tuple[str, str, list[str]]]:
    """Return (endpoint, rule, parameters) of every page the sweep must visit."""
    app = create_app({"DATABASE_URL": "sqlite://", "SECRET_KEY": "sweep"})
    routes = []
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or ()):
            continue
        if rule.endpoint == "static" or rule.endpoint.split(".")[0] in ("api", "auth"):
            continue  # files, the JSON API (test_api), signing in and out (test_browser)
        if rule.rule.endswith((".csv", ".json")):
            continue  # downloads, not pages (test_exports, test_reports_pages)
        routes.append((rule.endpoint, rule.rule, sorted(rule.arguments)))
    return sorted(routes)


ROUTES = swept_routes()


def page_name(endpoint: str) -> str:
    """Name a page for its screenshot: dashboard.reports.month -> reports-month."""
    return "-".join(endpoint.split(".")[1:] if endpoint.startswith("dashboard.") else [endpoint])


def test_the_url_map_gives_the_pages_the_product_has():
    # Hand-listed as the product has them today: a page added later joins the sweep by
    # itself (this list only guards the filter above from dropping a page).
    assert sorted(rule for _, rule, _ in ROUTES) == [
        "/",
        "/account/email",
        "/account/password",
        "/alerts",
        "/api-keys",
        "/audit-log",
        "/billing",
        "/credits",
        "/invitations/<token>",
        "/organizations",
        "/organizations/<org_id>",
        "/organizations/<org_id>/cancel",
        "/organizations/<org_id>/reactivate",
        "/organizations/<org_id>/suspend",
        "/organizations/new",
        "/reports",
        "/reports/<month>",
        "/settings",
        "/team",
        "/webhooks",
    ]


# Known failures, each strict: the day it is fixed, the sweep says so and the mark goes.
KNOWN: dict[tuple[str, int], list[Any]] = {}


def cases() -> list[Any]:
    found = []
    for width in WIDTHS:
        for endpoint, rule, arguments in ROUTES:
            marks = KNOWN.get((endpoint, width), [])
            name = f"{page_name(endpoint)}-{width}"
            found.append(pytest.param(width, rule, arguments, id=name, marks=marks))
    return found


@pytest.fixture(scope="module")
def signed_in(chromium, server):
    """Return a signed-in page at a width (one per width, opened on first use)."""
    pages: dict[int, Watched] = {}

    def at(width: int) -> Watched:
        if width not in pages:
            pages[width] = new_page(chromium, server, width=width, height=WIDTHS[width])
            use_axe(pages[width])
            sign_in(pages[width])
        return pages[width]

    yield at
    for watched in pages.values():
        watched.page.context.close()


@pytest.fixture(scope="module")
def parameters(signed_in) -> dict[str, str]:
    """Values for the URL parameters of the swept routes, taken from the demo data."""
    w = signed_in(1440)
    w.goto("/organizations")
    href = w.page.locator("a[data-org-link]").first.get_attribute("href")
    # An invitation made on the team page: its one-time link opens the accept page.
    w.goto("/team")
    w.page.fill("#email", "sweep.invitee@example.com")
    w.page.click("form[data-form=invite] button[type=submit]")
    w.settle()
    link = w.page.locator("[data-invite-link]").input_value()
    return {
        "org_id": href.split("?")[0].rsplit("/", 1)[1],
        "month": REPORT_MONTH,
        "token": link.rsplit("/", 1)[1],
    }


# Every table that is laid out: where it is cut off. A table may be wider than its box only
# when a box around it scrolls sideways (overflow-x auto or scroll); a box that hides the
# overflow cuts it, and without such a box it must fit the page. A sticky first column
# (the name, on a phone) may take at most half the box.
CLIPPED_TABLES = """
() => {
  const found = [];
  for (const table of document.querySelectorAll('table')) {
    if (!table.getClientRects().length) continue;  // in a folded <details>, or not shown
    const box = table.getBoundingClientRect();
    const data = table.closest('[data-chart-data]');
    const name = table.className || (data ? 'data of ' + data.dataset.chartData : 'table');
    let clipper = null;
    for (let e = table.parentElement; e && e !== document.body; e = e.parentElement) {
      if (getComputedStyle(e).overflowX !== 'visible') { clipper = e; break; }
    }
    if (clipper === null) {
      if (box.right > document.documentElement.clientWidth + 1 || box.left < -1)
        found.push(`${name}: ${Math.round(box.left)}..${Math.round(box.right)} off the page`);
      continue;
    }
    const overflow = getComputedStyle(clipper).overflowX;
    const edge = clipper.getBoundingClientRect();
    if (edge.right > document.documentElement.clientWidth + 1)
      found.push(`${name}: its box ends at ${Math.round(edge.right)}, off the page`);
    const scrolls = overflow === 'auto' || overflow === 'scroll';
    const wider = clipper.scrollWidth > clipper.clientWidth + 1;
    if (!scrolls && wider)
      found.push(`${name}: cut by overflow-x ${overflow} (${clipper.scrollWidth} px in ` +
                 `${clipper.clientWidth})`);
    if (scrolls && wider && table.closest('.table-wrap') !== clipper)
      found.push(`${name}: scrolls in a box that is not its .table-wrap`);
    // A column that stays put while the rest scrolls leaves at least half the box to them.
    const first = table.querySelector('tbody tr > :first-child');
    if (scrolls && wider && first && getComputedStyle(first).position === 'sticky' &&
        first.getBoundingClientRect().width > clipper.clientWidth / 2)
      found.push(`${name}: its sticky first column takes ` +
                 `${Math.round(first.getBoundingClientRect().width)} of ${clipper.clientWidth} px`);
  }
  return found;
}
"""


@pytest.mark.parametrize(("width", "rule", "arguments"), cases())
def test_page_at_width(signed_in, parameters, width, rule, arguments):
    missing = [name for name in arguments if name not in parameters]
    if missing:
        pytest.fail(f"{rule}: the sweep has no value for {missing}; add one to parameters()")
    path = rule
    for name in arguments:
        path = path.replace(f"<{name}>", parameters[name])
    w = signed_in(width)
    w.errors.clear()  # one page per width for the whole sweep: each case has its own errors
    page = w.page
    w.goto(path)
    height = WIDTHS[width]
    assert page.evaluate("window.innerWidth") == width

    SHOTS.mkdir(parents=True, exist_ok=True)
    name = page_name(next(e for e, r, _ in ROUTES if r == rule))
    page.screenshot(path=str(SHOTS / f"sweep-{name}-{width}.png"), full_page=True)

    problems = []
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    if scroll_width > width:
        problems.append(f"sideways scroll: the page is {scroll_width} px wide")
    first_kpi = page.evaluate(
        "(() => { const k = document.querySelector('.kpi');"
        " return k && k.getBoundingClientRect().top + window.scrollY; })()"
    )
    if first_kpi is not None and first_kpi >= height:
        problems.append(f"the first KPI starts at {first_kpi} px, below the first screen")
    problems += page.evaluate(CLIPPED_TABLES)
    problems += [f"axe: {v}" for v in axe_violations(page)]
    # Unfolded, each "Show data" table scrolls in its box and passes axe too.
    page.evaluate("document.querySelectorAll('details.chart-data').forEach(d => d.open = true)")
    problems += [f"shown data: {p}" for p in page.evaluate(CLIPPED_TABLES)]
    problems += [f"shown data, axe: {v}" for v in axe_violations(page)]
    assert problems == [], problems
    w.assert_clean()
