"""Real browser: Chromium prints the month-end report to PDF, and the PDF says what it must.

The October 2025 data set of test_reports (totals 26 identifications, 9 events, quantity 39)
plus 60 idle organizations, so that the organization table runs over several pages.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from test_reports import NY, build_october
from views_support import PASSWORD

from tests.browser_support import BROWSER_MARKS, CHROMIUM, LAUNCH_ARGS, pdf_text, serving

pytestmark = [
    *BROWSER_MARKS,
    pytest.mark.skipif(
        shutil.which("pdftotext") is None,
        reason="pdftotext is missing (apt-get install poppler-utils)",
    ),
]


@pytest.fixture
def server(app: Any) -> Iterator[str]:
    """Serve the test app over HTTP on a free local port."""
    with serving(app) as url:
        yield url


@pytest.fixture
def chromium_browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def long_october(make_partner, make_org, add_events, freeze, make_user):
    partner = build_october(make_partner, make_org, add_events, freeze)
    for i in range(60):
        make_org(partner, f"Idle client {i:02d}", created_at=datetime(2025, 9, 1))
    make_user(partner, "ops@acme.test", PASSWORD)
    return partner


def pdf_pages(data: bytes, tmp_path: Any) -> list[str]:
    """Return the text of each page of a PDF, whitespace collapsed.

    poppler's pdftotext -layout keeps a table row on one line.
    """
    path = tmp_path / "report.pdf"
    path.write_bytes(data)
    return pdf_text(path)


def test_report_prints_to_pdf_with_identity_on_every_page(
    long_october, server, chromium_browser, tmp_path
):
    page = chromium_browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{server}/login?next=/reports/2025-10")
    page.fill("input[name=email]", "ops@acme.test")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}/reports/2025-10")
    # charts.js marks a chart once Plotly has drawn it.
    page.wait_for_selector("#chart-daily[data-drawn=true]")
    page.emulate_media(media="print")
    assert not page.is_visible(".topbar")
    assert not page.is_visible(".report-tools")

    for paper in ("A4", "Letter"):
        pages = pdf_pages(page.pdf(format=paper), tmp_path)
        assert len(pages) >= 3, (paper, len(pages))  # 65 organizations do not fit on one
        for number, body in enumerate(pages, start=1):
            where = f"{paper} page {number}"
            # The running header and footer: partner, month, timezone, generation time (in
            # words, in the partner's timezone: 12:00 UTC on 5 Nov 2025 is 07:00 EST).
            assert "Acme Agency" in body, where
            assert "October 2025 (2025-10)" in body, where
            assert f"days in {NY}" in body, where
            assert f"Generated 5 Nov 2025 at 07:00 EST ({NY})" in body, where
            assert f"Page {number} of {len(pages)}" in body, where
            assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", body), where
        everything = " ".join(pages)
        assert "Month-end report: October 2025" in everything
        # The chart is drawn (Plotly's SVG text is in the PDF), the navigation is not.
        assert "Identifications per day (= credits used)" in everything
        assert "Sign out" not in everything and "Download CSV" not in everything
        # The totals row, once, at the end of the table: 26 identifications, 26 credits,
        # 9 events, quantity 39, 100 % (see test_reports for the arithmetic).
        totals = re.findall(r"Total 26 26 9 39 100\.00 % 450 65 organizations: 1 new", everything)
        assert len(totals) == 1, everything[-2000:]
        # The table header is repeated on each page the table runs over.
        headers = sum(1 for body in pages if "Events Quantity Share Allocation" in body)
        assert headers >= 2
        assert "3 events belonging to October 2025 arrived after the month closed" in everything
    assert errors == []
