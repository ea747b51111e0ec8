"""Printing (A4 and Letter) and the phone width of the printable pages.

The browser tests print the demo (40 organizations, 13 months; the clock frozen on Thu
20 Nov 2025, 12:00 UTC; the demo partner's timezone is UTC) to PDF with Debian's Chromium
and read the pages back with poppler's pdftotext. PDF pages go to tests/artifacts/print/
(git-ignored) for a look.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from markupsafe import Markup

from app import demo
from app.timeutil import set_frozen_now
from app.views.printing import css_string
from tests.browser_support import demo_app, pdf_text, serving

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "print"
NOW = datetime(2025, 11, 20, 12, 0)
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
ISO_MOMENT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")

needs_browser = pytest.mark.skipif(
    not CHROMIUM.exists() or shutil.which("pdftotext") is None,
    reason="needs /usr/bin/chromium and pdftotext (apt-get install chromium poppler-utils)",
)


# --- the print filters ------------------------------------------------------------------


def test_css_string_cannot_be_escaped_from() -> None:
    # Letters, digits and spaces stay; everything else is a hex escape ended by one space.
    assert css_string("Acme 42") == '"Acme 42"'
    assert css_string('A "B" </style>\\') == '"A \\22 B\\22  \\3c \\2f style\\3e \\5c "'
    # Line breaks collapse to one space; an HTML text is read as the text it shows.
    assert css_string("a\n\tb") == '"a b"'
    assert css_string(Markup("R&amp;D <b>x</b>")) == '"R\\26 D x"'
    assert css_string("Zürich · 1 Oct") == '"Z\\fc rich \\b7  1 Oct"'


# --- the browser ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Serve the demo as it is (no extra client: the page counts are the demo's)."""
    app = demo_app(tmp_path_factory.mktemp("print"), secret="print-tests")
    with serving(app) as url:
        yield url
    set_frozen_now(None)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield instance
        instance.close()


def signed_in(
    chromium: Any, server: str, width: int = 1366, height: int = 900
) -> tuple[Any, list[str]]:
    """Return a signed-in page and the list its script errors go to."""
    page = chromium.new_context(
        viewport={"width": width, "height": height}, base_url=server
    ).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto("/login")
    page.fill("#email", demo.DEMO_EMAIL)
    page.fill("#password", demo.DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("load")
    return page, errors


def open_drawn(page: Any, path: str) -> None:
    page.goto(path)
    page.wait_for_load_state("load")
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('.chart'))"
        ".every(c => c.dataset.drawn === 'true')"
    )


def printed(page: Any, name: str, paper: str) -> list[str]:
    """Print the page to PDF (kept in tests/artifacts/print); return each page's text."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}-{paper}.pdf"
    path.write_bytes(page.pdf(format=paper))
    return pdf_text(path)


# Registered after charts.js's own listener, so it sees the charts as they are printed:
# each chart's drawn width against its card's inner width, in the print layout.
RECORD_PRINTED_CHARTS = """
() => {
  window.__printedCharts = [];
  window.matchMedia('print').addEventListener('change', function (e) {
    if (!e.matches) { return; }
    document.querySelectorAll('.js-plotly-plot').forEach(function (gd) {
      var svg = gd.querySelector('svg.main-svg');
      var card = gd.closest('.card');
      window.__printedCharts.push([gd.dataset.chart, Math.round(svg.getBoundingClientRect().width),
                                   Math.round(card.clientWidth)]);
    });
  });
}
"""


@pytest.mark.browser
@needs_browser
@pytest.mark.parametrize("paper", ["A4", "Letter"])
def test_october_report_prints_on_three_pages_at_most(chromium, server, paper):
    page, errors = signed_in(chromium, server)
    open_drawn(page, "/reports/2025-10")
    page.evaluate(RECORD_PRINTED_CHARTS)
    pages = printed(page, "report-2025-10", paper)
    # 40 organizations: 5 pages before (names on three lines, a half-empty first page).
    assert 1 <= len(pages) <= 3, (paper, len(pages))
    for number, body in enumerate(pages, start=1):
        where = f"{paper} page {number}"
        # The running header and footer (@page margin boxes): partner, month and period,
        # timezone, when the report was generated (the frozen clock, in words), Page X of Y.
        assert "Northwind Digital (demo)" in body, where
        assert "Month-end report October 2025 (2025-10), 1 Oct – 31 Oct 2025" in body, where
        assert "days in UTC" in body, where
        assert "Generated 20 Nov 2025 at 12:00 (UTC)" in body, where
        assert f"Page {number} of {len(pages)}" in body, where
        assert not ISO_MOMENT.search(body), (where, ISO_MOMENT.search(body))
    first = pages[0]
    # No half-empty first page: the KPIs and the daily chart are on it.
    assert "Identifications per day (= credits used)" in first
    assert "Credits remaining" in first
    everything = " ".join(pages)
    assert "Sign out" not in everything and "Download CSV" not in everything
    # The totals row, once; the two boxes after the table whole, each on one page.
    assert everything.count("Total 4") == 1  # "Total 4x,xxx" (the month's identifications)
    for heading, inside in (
        ("Active without identifications", "Active at the end of the month"),
        ("Billing periods", "The billing period is this calendar month"),
    ):
        holding = [n for n, body in enumerate(pages) if heading in body]
        assert holding and inside in pages[holding[-1]], heading
    # The chart was redrawn at the paper's width: inside its card.
    charts = page.evaluate("window.__printedCharts")
    assert [c[0] for c in charts] == ["daily"]
    assert all(0 < drawn <= card for _name, drawn, card in charts), charts
    assert errors == []


@pytest.mark.browser
@needs_browser
def test_report_table_fits_the_paper_with_names_on_one_line(chromium, server):
    # The A4 content width: 210 mm less 2 × 12 mm of margin = 186 mm = 703 px.
    page, _errors = signed_in(chromium, server, width=703)
    page.emulate_media(media="print")
    open_drawn(page, "/reports/2025-10")
    layout = page.evaluate(
        """() => {
        const table = document.querySelector('table.report-orgs');
        const card = table.closest('.card');
        const names = Array.from(table.querySelectorAll('tbody td.name a'));
        return {
          tableRight: table.getBoundingClientRect().right,
          cardRight: card.getBoundingClientRect().right,
          names: names.length,
          wrapped: names.filter(a => a.getClientRects().length > 1).map(a => a.textContent),
          heads: Array.from(table.querySelectorAll('thead th')).slice(0, 3)
                   .map(th => th.textContent.replace('\\u00ad', '').replace(/[↕▲▼]/g, '').trim()),
        };
    }"""
    )
    assert layout["tableRight"] <= layout["cardRight"], layout
    assert layout["names"] >= 30 and layout["wrapped"] == [], layout
    assert layout["heads"] == ["Organization", "Identifications", "Credits used"]


@pytest.mark.browser
@needs_browser
@pytest.mark.parametrize(
    "path, period",
    [
        # Last 30 days through Thu 20 Nov 2025: 20 Nov - 29 days = 22 Oct.
        ("/?preset=last_30_days", "Last 30 days, 22 Oct – 20 Nov 2025"),
        ("/organizations?preset=last_30_days", "Last 30 days, 22 Oct – 20 Nov 2025"),
        ("/credits", "Billing period 1 Nov – 30 Nov 2025"),
        ("/billing", "Billing period 1 Nov – 30 Nov 2025"),
        ("/reports", "Every month with usage"),
    ],
)
def test_every_page_prints_partner_period_timezone_and_page_numbers(chromium, server, path, period):
    page, errors = signed_in(chromium, server)
    open_drawn(page, path)
    page.evaluate(RECORD_PRINTED_CHARTS)
    name = path.strip("/").split("?")[0] or "overview"
    pages = printed(page, name, "A4")
    for number, body in enumerate(pages, start=1):
        assert f"Northwind Digital (demo) · {period} · days in UTC" in body, (path, number)
        assert f"Page {number} of {len(pages)}" in body, (path, number)
        assert "Generated 20 Nov 2025 at 12:00 (UTC)" in body, (path, number)
    # Each chart is redrawn inside its card (the overview's main chart overflowed it).
    charts = page.evaluate("window.__printedCharts")
    assert all(0 < drawn <= card for _name, drawn, card in charts), charts
    assert errors == []


# Registered after charts.js's own listener: each chart as printed, its card's place and
# whether a legend sits above the plot (not over it).
RECORD_PRINTED_LAYOUT = """
() => {
  window.__printed = [];
  window.matchMedia('print').addEventListener('change', function (e) {
    if (!e.matches) { return; }
    document.querySelectorAll('.js-plotly-plot').forEach(function (gd) {
      var svg = gd.querySelector('svg.main-svg').getBoundingClientRect();
      var card = gd.closest('.card');
      var box = card.getBoundingClientRect();
      var legend = gd.querySelector('.legend');
      var plot = gd.querySelector('.cartesianlayer .gridlayer');
      window.__printed.push({
        name: gd.dataset.chart, width: Math.round(svg.width), height: Math.round(svg.height),
        cardLeft: Math.round(box.left), cardWidth: Math.round(box.width),
        breakInside: getComputedStyle(card).breakInside,
        legendOverPlot: legend && plot ?
          legend.getBoundingClientRect().bottom - plot.getBoundingClientRect().top : null,
      });
    });
  });
}
"""


@pytest.mark.browser
@needs_browser
@pytest.mark.parametrize("paper", ["A4", "Letter"])
def test_overview_prints_its_small_charts_one_a_row(chromium, server, paper):
    page, errors = signed_in(chromium, server)
    open_drawn(page, "/?preset=last_30_days")
    page.evaluate(RECORD_PRINTED_LAYOUT)
    pages = printed(page, "overview", paper)
    charts = {c["name"]: c for c in page.evaluate("window.__printed")}
    main = charts["identifications"]
    for name in ("cumulative", "activity", "types"):
        chart = charts[name]
        # A row each, as wide as the main chart's card (a third of it was too cramped) ...
        assert (chart["cardLeft"], chart["cardWidth"]) == (main["cardLeft"], main["cardWidth"])
        assert chart["width"] >= main["width"] - 2, chart
        # ... lower than on screen (300 px; the types chart's own 204 px stays).
        assert chart["height"] == (204 if name == "types" else 210), chart
    for chart in charts.values():
        # A chart's box is never split across pages (its hidden "Show data" table of 30
        # rows had made it breakable) ...
        assert chart["breakInside"] == "avoid", chart
        # ... and its legend is above the plot, not over it (plotly.js left a legend that
        # went from two rows to one where it was).
        if chart["legendOverPlot"] is not None:
            assert chart["legendOverPlot"] <= 0, chart
    assert len(pages) <= 3, (paper, len(pages))
    for number, body in enumerate(pages, start=1):
        assert "Northwind Digital (demo) · Last 30 days, 22 Oct – 20 Nov 2025 · days in UTC" in body
        assert f"Page {number} of {len(pages)}" in body
    # Whole boxes: the pool chart's title and legend on one page.
    holding = [body for body in pages if "Credits used against the pool" in body]
    assert len(holding) == 1 and "Pool (79,000 per billing period)" in holding[0]
    assert errors == []


@pytest.mark.browser
@needs_browser
@pytest.mark.parametrize("path", ["/reports/2025-10", "/organizations"])
def test_printable_pages_fit_a_phone(chromium, server, path):
    page, _errors = signed_in(chromium, server, width=390, height=844)
    open_drawn(page, path)
    # Nothing scrolls sideways but tables, inside their card.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # The report's chart takes its container's width (it had a fixed 680 px).
    widths = page.evaluate(
        "Array.from(document.querySelectorAll('.js-plotly-plot')).map(gd => "
        "[Math.round(gd.querySelector('svg.main-svg').getBoundingClientRect().width),"
        " Math.round(gd.getBoundingClientRect().width)])"
    )
    assert all(drawn == box and drawn < 390 for drawn, box in widths), widths
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"phone{path.replace('/', '-')}.png"), full_page=True)
