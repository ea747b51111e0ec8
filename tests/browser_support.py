"""Browser-test support: a live server over the seeded demo data, Chromium, a watched page.

Shared by tests/test_browser.py, tests/test_accessibility.py and tests/test_sweep.py. The
server runs in a thread on 127.0.0.1 (a free port) over a seeded SQLite file: the demo
partner (40 organizations, 13 months) with the clock frozen on Thu 20 Nov 2025, 12:00 UTC,
plus one client whose name is HTML. The fixtures are imported by the test modules, so each
module gets its own server.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from app import accounts, create_app, demo, ingest
from app.extensions import db
from app.models import Partner
from app.timeutil import set_frozen_now

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parent / "artifacts" / "screenshots"
# axe-core, vendored for the tests only (tests/vendor/axe-core/README.md).
AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
NOW = datetime(2025, 11, 20, 12, 0)
HTML_NAME = "<b>Bold</b> & <i>Co</i>"
# The marks of every browser test module (`pytestmark = [*BROWSER_MARKS, ...]`).
BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="no Chromium at /usr/bin/chromium (apt-get install chromium; .ci/run does it)",
    ),
]
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]

# Watches every page for CSP violations; registered through Playwright, not the page.
CSP_WATCH = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__cspViolations.push(e.violatedDirective + ' ' + (e.blockedURI || ''));
});
"""
CHART_POINTS = """
() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(function (gd) {
  return [gd.dataset.chart, gd.data.map(function (t) { return (t.x || []).length; })];
})
"""
ALL_DRAWN = """
() => Array.from(document.querySelectorAll('.chart'))
        .every(function (c) { return c.dataset.drawn === 'true'; })
"""


def demo_app(folder: Path, secret: str = "browser-tests") -> Any:
    """Return the app over a fresh SQLite file in folder, seeded with the demo data, with
    the clock frozen at NOW (static files compressed at a quick brotli level)."""
    db_file = folder / "dashboard.sqlite3"
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{db_file}",
            "SECRET_KEY": secret,
            "LOGIN_RATE_LIMIT": "1000 per minute",
            "RATELIMIT_STORAGE_URI": "memory://",
            "COMPRESS_CACHE_DIR": str(folder / "compressed-static"),
            "COMPRESS_BR_LEVEL": 5,
        }
    )
    set_frozen_now(NOW)
    with app.app_context():
        db.create_all()
        demo.seed_demo(today=NOW.date())
        db.session.remove()
    return app


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve app over HTTP on a free local port, in a thread; yield its base URL."""
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        thread.join(timeout=10)


def pdf_text(path: Path) -> list[str]:
    """Return the text of each page of a PDF file, whitespace collapsed (poppler's
    pdftotext -layout keeps a table row on one line; it ends every page with a form feed)."""
    out = subprocess.run(
        ["pdftotext", "-layout", "-enc", "UTF-8", str(path), "-"],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout.decode("utf-8")
    return [" ".join(body.split()) for body in out.split("\f") if body.strip()]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Serve the demo, plus a client named in HTML among the top 10; yield its base URL."""
    app = demo_app(tmp_path_factory.mktemp("browser"))
    with app.app_context():
        partner = db.session.execute(db.select(Partner).filter_by(slug="demo")).scalar_one()
        org = accounts.create_organization(
            partner, HTML_NAME, external_id="html-1", tier="paid", created_at=datetime(2025, 11, 1)
        )
        # 700 identifications a day over the last 7 days: well inside the top 10.
        result = ingest.ingest_batch(
            partner,
            list(
                enumerate(
                    {
                        "eventId": f"html-{d}",
                        "organizationId": org.id,
                        "type": "identification",
                        "quantity": 700,
                        "occurredAt": f"2025-11-{d}T09:00:00Z",
                    }
                    for d in range(14, 21)
                )
            ),
        )
        assert result.rejected == []
        db.session.remove()
    with serving(app) as url:
        yield url
    set_frozen_now(None)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield browser
        browser.close()


class Watched:
    """A page plus every console error, page error and CSP violation it produced."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on(
            "console",
            lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None,
        )
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        page.add_init_script(CSP_WATCH)

    def goto(self, url: str) -> None:
        self.page.goto(url)
        self.settle()

    def settle(self) -> None:
        self.page.wait_for_load_state("load")
        self.page.wait_for_function(ALL_DRAWN, timeout=20_000)

    def points(self) -> dict[str, list[int]]:
        return dict(self.page.evaluate(CHART_POINTS))

    def assert_clean(self, expected: tuple[str, ...] = ()) -> None:
        violations = self.page.evaluate("window.__cspViolations || []")
        assert violations == [], violations
        assert self.errors == list(expected), self.errors

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def new_page(chromium: Any, server: str, width: int = 1366, height: int = 900) -> Watched:
    context = chromium.new_context(viewport={"width": width, "height": height}, base_url=server)
    return Watched(context.new_page())


def sign_in(watched: Watched) -> None:
    page = watched.page
    page.goto("/login")
    page.fill("#email", demo.DEMO_EMAIL)
    page.fill("#password", demo.DEMO_PASSWORD)
    page.click("button[type=submit]")
    watched.settle()


# The WCAG 2.0, 2.1 and 2.2 A and AA rules of axe-core (its tags; best practices are left out).
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
RUN_AXE = """
async (options) => {
  const result = await axe.run(document, options);
  return result.violations.map((v) => [v.id, v.nodes.map((n) =>
    n.target.join(' ') + ' | ' + (n.failureSummary || '').replace(/\\s+/g, ' ').slice(0, 160))]);
}
"""


def use_axe(watched: Watched) -> None:
    """Load axe-core into every page this one opens from now on.

    An init script runs through the DevTools protocol, before the page's own scripts and
    outside its content security policy: the policy under test stays as served (a script
    tag added with page.add_script_tag would be an inline script the policy refuses).
    """
    watched.page.add_init_script(path=str(AXE))


def axe_violations(page: Any, tags: list[str] | None = None) -> list[list[Any]]:
    """Return axe-core's violations on the page as [rule, [node | summary, ...]]."""
    options = {"runOnly": {"type": "tag", "values": tags or WCAG_AA}, "resultTypes": ["violations"]}
    return list(page.evaluate(RUN_AXE, options))
