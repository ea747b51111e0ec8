"""Real-browser tests: Playwright drives Debian's /usr/bin/chromium against a live server.

The server and its data (tests/browser_support.py): the demo partner (40 organizations,
13 months) with the clock frozen on Thu 20 Nov 2025, 12:00 UTC, plus one client whose name
is HTML. Every expected count of chart points below follows from the dates alone (worked
out in the comments). Screenshots of every page go to
tests/artifacts/screenshots/ (git-ignored).
"""

from __future__ import annotations

import re
from typing import Any

from tests.browser_support import BROWSER_MARKS, Watched, new_page, sign_in

pytestmark = BROWSER_MARKS


def query(url: str) -> str:
    return url.split("?", 1)[1] if "?" in url else ""


def test_login_presets_custom_range_and_drill_down(chromium, server):
    w = new_page(chromium, server)
    page = w.page
    page.goto("/")
    assert page.url.endswith("/login?next=%2F")  # the dashboard needs a login
    w.shot("login")
    sign_in(w)
    assert page.url == server + "/"

    # The landing preset, last 30 days, shown as selected: Oct 22 .. Nov 20, daily;
    # previous Sep 22 .. Oct 21. Types: identification, page_view, session; top: the 10
    # largest.
    assert page.locator("a[data-preset=last_30_days].is-active").count() == 1
    assert w.points() == {
        "identifications": [30, 30],
        "cumulative": [30, 30],
        "activity": [30],
        "types": [3],
        "top": [10],
    }
    w.shot("overview")

    page.click("a[data-preset=last_7_days]")
    w.settle()
    assert query(page.url) == "preset=last_7_days"
    assert w.points() == {
        "identifications": [7, 7],
        "cumulative": [7, 7],
        "activity": [7],
        "types": [3],
        "top": [10],
    }

    # Last 12 months: Nov 21, 2024 (Thu) .. Nov 20, 2025 = 365 days, weekly. Buckets: the
    # partial week Nov 21-24, then Mondays Nov 25, 2024 .. Nov 17, 2025 (357 days apart,
    # 52 Mondays) = 53. Previous: Nov 22, 2023 (Wed) .. Nov 20, 2024: the partial week
    # Nov 22-26, then Mondays Nov 27, 2023 .. Nov 18, 2024 (52) = 53.
    page.click("a[data-preset=last_12_months]")
    w.settle()
    assert w.points() == {
        "identifications": [53, 53],
        "cumulative": [365, 365],
        "activity": [53],
        "types": [3],
        "top": [10],
    }
    assert page.locator("a[data-granularity=week].is-active").count() == 1

    # A custom range through the form: September, 30 days, daily.
    page.fill("#startDate", "2025-09-01")
    page.fill("#endDate", "2025-09-30")
    page.click(".range-form button[type=submit]")
    w.settle()
    # The form also says which period was on screen (used only if the new one is refused).
    assert query(page.url) == "shown=last_12_months&startDate=2025-09-01&endDate=2025-09-30"
    # September against August (31 days): August's first 30 days are drawn over
    # September's, by bucket index.
    assert w.points()["identifications"] == [30, 30]
    assert page.locator("a[data-preset].is-active").count() == 0

    # Weekly: Sep 1, 2025 is a Monday: Sep 1, 8, 15, 22, 29 = 5 buckets. Previous, a whole
    # month before: Aug 1 (Fri) .. Aug 31: the partial week Aug 1-3, then Aug 4, 11, 18,
    # 25 = 5, drawn bucket by bucket over September's.
    page.click("a[data-granularity=week]")
    w.settle()
    assert query(page.url) == "granularity=week&startDate=2025-09-01&endDate=2025-09-30"
    assert w.points()["identifications"] == [5, 5]
    assert w.points()["activity"] == [5]

    # Drill down to the first organization of the top list: the range comes along.
    first = page.locator(".top-table a[data-org-link]").first
    name = first.inner_text()
    first.click()
    w.settle()
    assert re.search(
        r"/organizations/[0-9a-f-]{36}\?startDate=2025-09-01&endDate=2025-09-30$", page.url
    )
    assert page.locator("h1").inner_text() == name
    assert w.points()["identifications"] == [30, 30]
    w.shot("organization")

    # Back to the list, then to the overview: still September.
    page.click("a[data-back]")
    w.settle()
    assert query(page.url) == "startDate=2025-09-01&endDate=2025-09-30"
    assert "1 Sep 2025 – 30 Sep 2025" in page.locator(".range-summary").first.inner_text()
    page.click("a[data-nav=overview]")
    w.settle()
    assert query(page.url) == "startDate=2025-09-01&endDate=2025-09-30"
    w.assert_clean()


BAR_FILLS = """
(name) => Array.from(document.querySelectorAll('#chart-' + name + ' .trace.bars .point path'))
  .map(function (p) { return [getComputedStyle(p).fill.indexOf('url(') === 0,
                              Number(getComputedStyle(p).opacity)]; })
"""


TIP_LINES = """
(g) => Array.from(g.querySelectorAll('tspan.line')).map(function (t) { return t.textContent; })
  .join('\\n')
"""


def test_partial_buckets_and_one_tooltip(chromium, server):
    w = new_page(chromium, server)
    sign_in(w)
    page = w.page
    # Month to date by week, today Thu 20 Nov 2025: Sat 1 Nov (2 of 7 days), 3 Nov, 10 Nov,
    # and 17 Nov (Mon-Thu, 4 of 7 days). The first and the last bar are hatched and lighter.
    w.goto("/?preset=month_to_date&granularity=week")
    assert w.points()["identifications"] == [4, 4]  # Oct 1-20 by week: 1, 6, 13, 20 Oct
    fills = page.evaluate(BAR_FILLS, "identifications")
    assert [hatched for hatched, _ in fills] == [True, False, False, True]
    assert [opacity for _, opacity in fills] == [0.45, 1, 1, 0.45]
    w.shot("partial-weeks")

    # One tooltip says the bucket, its value, the previous period's bucket and the change.
    page.locator("#chart-identifications").scroll_into_view_if_needed()
    box = page.locator("#chart-identifications .trace.bars .point path").first.bounding_box()
    assert box is not None
    page.mouse.move(0, 0)
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] - 2, steps=8)
    tip = page.locator("#chart-identifications .hoverlayer .hovertext")
    tip.first.wait_for(timeout=5_000)
    assert tip.count() == 1
    text = tip.evaluate(TIP_LINES)
    assert "week of 1 Nov 2025 (partial: 2 of 7 days)" in text
    assert "Identifications:" in text and "Change:" in text
    assert "Previous period, week of 1 Oct 2025 (partial: 5 of 7 days):" in text
    w.shot("tooltip")

    # A period without events says so instead of drawing an empty axis.
    w.goto("/?startDate=2023-01-01&endDate=2023-01-31")
    assert "identifications" not in w.points()
    assert page.get_by_text("No events in this period or the one before.").count() == 1

    # The report's organizations open on the report's month; Back returns to the report.
    w.goto("/reports/2025-10")
    page.locator("a[data-org-link]").first.click()
    w.settle()
    assert query(page.url) == "startDate=2025-10-01&endDate=2025-10-31"
    page.go_back()
    w.settle()
    assert page.url.endswith("/reports/2025-10")
    w.assert_clean()


def test_every_page_draws_cleanly_with_screenshots(chromium, server):
    w = new_page(chromium, server)
    sign_in(w)
    page = w.page
    # Credits: this billing period (Nov 1 .. 30): used so far (Nov 1 .. 20 = 20 days), the
    # projection from the last complete day through today to the period's end (3 points),
    # the pool (2 points).
    w.goto("/credits")
    assert w.points() == {"burn": [20, 3, 2]}
    w.shot("credits")
    # Billing: 3 default tiers (so far, projected); the demo starts Oct 20, 2024 and its
    # partner on Oct 10, 2024: monthly periods Oct 2024 .. Nov 2025 = 14.
    w.goto("/billing")
    assert w.points() == {"tiers": [3, 3], "periods": [14]}
    w.shot("billing")
    w.goto("/organizations?preset=last_30_days")
    assert w.points() == {}
    assert page.locator("table.org-table tbody tr").count() == 20  # the first page
    w.shot("organizations")
    # A long table keeps its header in view while its rows scroll (41 organizations).
    w.goto("/organizations?preset=last_30_days&pageSize=100")
    header = page.evaluate(
        """() => {
        const wrap = document.querySelector('table.org-table').closest('.table-wrap');
        const th = wrap.querySelector('thead tr:last-child th');
        wrap.scrollTop = 400;
        const rows = wrap.querySelector('tbody tr').getBoundingClientRect().top;
        return [wrap.scrollTop, th.getBoundingClientRect().bottom, rows];
    }"""
    )
    assert header[0] == 400 and header[1] > header[2], header  # rows pass under the header
    if page.locator("a[data-nav=reports]").count():
        page.click("a[data-nav=reports]")
        page.wait_for_load_state("load")
        w.shot("reports")
    w.assert_clean()


def test_pages_on_a_phone(chromium, server):
    w = new_page(chromium, server, width=390, height=844)
    sign_in(w)
    page = w.page
    for name, path in (
        ("overview", "/?preset=last_30_days"),
        ("organizations", "/organizations"),
        ("credits", "/credits"),
        ("billing", "/billing"),
    ):
        w.goto(path)
        # Nothing but tables (which scroll inside their card) may be wider than the screen.
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= 390, (name, overflow)
        # Every section of the navigation fits the width (none is cut or scrolled away): the
        # demo user is an owner, so Manage is the sixth.
        rights = page.evaluate(
            "Array.from(document.querySelectorAll('.nav a'))"
            ".map(a => a.getBoundingClientRect().right)"
        )
        assert len(rights) == 6 and max(rights) <= 390, (name, rights)
        # No chart toolbar on a phone (it covered the legends).
        assert page.locator(".modebar-btn").count() == 0, name
        w.shot(f"phone-{name}")
    # The organizations table scrolls inside its card, its names staying in place.
    w.goto("/organizations")
    scrolled = page.evaluate(
        """() => {
        const wrap = document.querySelector('table.org-table').closest('.table-wrap');
        const name = () => wrap.querySelector('tbody tr td:first-child').getBoundingClientRect();
        const before = name().left;
        wrap.scrollLeft = 250;
        return [wrap.scrollWidth > wrap.clientWidth, wrap.scrollLeft, before, name().left];
    }"""
    )
    assert scrolled[0] and scrolled[1] == 250 and scrolled[2] == scrolled[3], scrolled
    # The overview's period folds into one line, so the first KPI is on the first screen.
    w.goto("/?preset=last_30_days")
    toggle = page.locator("[data-range-toggle]")
    assert " ".join(toggle.inner_text().split()).startswith("Last 30 days")
    assert not page.locator("a[data-preset=last_7_days]").is_visible()
    first_kpi = page.evaluate("document.querySelector('.kpi').getBoundingClientRect().bottom")
    assert first_kpi <= 844, first_kpi
    # Opened by keyboard, it offers the presets; choosing one folds it again.
    toggle.focus()
    page.keyboard.press("Enter")
    page.click("a[data-preset=last_7_days]")
    w.settle()
    assert " ".join(toggle.inner_text().split()).startswith("Last 7 days")
    assert not page.locator("a[data-preset=last_30_days]").is_visible()
    w.assert_clean()


def test_html_in_an_organization_name_stays_text(chromium, server):
    w = new_page(chromium, server)
    sign_in(w)
    w.goto("/?preset=last_7_days")
    page = w.page
    ticks = page.eval_on_selector_all(
        "#chart-top .ytick text", "els => els.map(e => e.textContent)"
    )
    assert "<b>Bold</b> & <i>Co</i>" in ticks
    # Plotly made no bold or italic markup out of it.
    assert page.locator("#chart-top .ytick text tspan[style*=bold]").count() == 0
    assert page.locator(".top-table a", has_text="<b>Bold</b> & <i>Co</i>").count() == 1
    w.assert_clean()


def test_invalid_range_is_explained_beside_the_field(chromium, server):
    w = new_page(chromium, server)
    sign_in(w)
    page = w.page
    w.goto("/?preset=last_7_days")
    # The calendar offers 1 Jan 1970 .. today (Thu 20 Nov 2025).
    for name in ("startDate", "endDate"):
        assert page.get_attribute(f"#{name}", "min") == "1970-01-01"
        assert page.get_attribute(f"#{name}", "max") == "2025-11-20"

    def boxes() -> list[tuple[float, float, float]]:
        found = [page.locator(s).bounding_box() for s in ("#startDate", "#endDate")]
        found.append(page.locator(".range-form button[type=submit]").bounding_box())
        return [(b["x"], b["y"], b["width"]) for b in found if b]

    before = boxes()
    page.fill("#startDate", "2025-11-10")
    page.fill("#endDate", "2025-11-01")
    page.click(".range-form button[type=submit]")
    w.settle()
    assert (
        page.locator("[data-error-for=endDate]").inner_text()
        == "The end date is before the start date (10 Nov 2025)"
    )
    # Both dates stay as typed; the inputs and Apply neither move nor change width.
    assert page.input_value("#startDate") == "2025-11-10"
    assert page.input_value("#endDate") == "2025-11-01"
    assert boxes() == before
    # The figures stay on the period shown before: the last 7 days, day by day.
    assert w.points()["identifications"] == [7, 7]
    assert page.locator("a[data-preset=last_7_days].is-active").count() == 1
    w.shot("invalid-range")

    # An end after today is cut to today, and the page says so beside the field.
    page.fill("#startDate", "2025-11-14")
    page.fill("#endDate", "2025-12-31")
    page.click(".range-form button[type=submit]")
    w.settle()
    assert page.locator("[data-error-for]").count() == 0
    assert (
        page.locator("[data-note-for=endDate]").inner_text()
        == "31 Dec 2025 is after today: the period ends today, 20 Nov 2025."
    )
    assert page.input_value("#endDate") == "2025-11-20"
    assert w.points()["identifications"] == [7, 7]  # 14 .. 20 Nov
    w.assert_clean()


def test_allocation_form_in_the_browser(chromium, server):
    w = new_page(chromium, server)
    sign_in(w)
    page = w.page
    w.goto("/organizations?search=Bold")
    page.click("a[data-org-link]")
    w.settle()
    page.fill("#credits", "999999999")
    page.click("#allocation button[type=submit]")
    w.settle()
    assert (
        "999,999,999 credits requested, but at most"
        in page.locator("[data-error-for=credits]").inner_text()
    )
    # The refused form is back in view, its message beside the field.
    assert page.url.endswith("#allocation")
    assert page.evaluate(
        "(() => { const r = document.querySelector('[data-error-for=credits]')"
        ".getBoundingClientRect(); return r.top >= 0 && r.bottom <= window.innerHeight; })()"
    )
    page.fill("#credits", "250")
    page.fill("#notes", "browser test")
    page.click("#allocation button[type=submit]")
    w.settle()
    # The confirmation is inside the allocation card, which the page is scrolled to.
    confirmation = page.locator("#allocation [data-confirmation]")
    assert "set to 250 credits" in confirmation.inner_text()
    assert page.evaluate(
        "(() => { const r = document.querySelector('#allocation [data-confirmation]')"
        ".getBoundingClientRect(); return r.top >= 0 && r.bottom <= window.innerHeight; })()"
    )
    assert "browser test" in page.locator("table.allocation-history").inner_text()
    w.shot("organization-allocated")
    # The refused form answers 422, which Chromium reports on the console; nothing else.
    w.assert_clean(
        (
            "console: Failed to load resource: the server responded with a status "
            "of 422 (UNPROCESSABLE ENTITY)",
        )
    )


def test_sign_out(chromium, server):
    w = new_page(chromium, server)
    sign_in(w)
    page = w.page
    page.click(".signout button")
    page.wait_for_load_state("load")
    assert page.url.endswith("/login")
    page.goto("/credits")
    assert "/login" in page.url
    w.assert_clean()


# Every button the chart toolbar may show; anything else (a share, cloud or edit button,
# whose action leaves the server) fails the test below.
LOCAL_BUTTONS = {
    "Download plot as a PNG",
    "Zoom",
    "Pan",
    "Zoom in",
    "Zoom out",
    "Reset axes",
    "Show closest data on hover",
    "Compare data on hover",
}


def test_chart_toolbar_keeps_data_local(chromium, server):
    """Click every toolbar button of every chart on every page that draws one: no request
    and no window may go to another origin, and only local buttons are offered."""
    context = chromium.new_context(
        viewport={"width": 1366, "height": 900}, base_url=server, accept_downloads=True
    )
    elsewhere: list[str] = []

    def guard(route: Any) -> None:
        if route.request.url.startswith(server) or route.request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    w = Watched(context.new_page())
    windows: list[Any] = []  # any page opened after this one (a popup, a new tab)
    context.on("page", lambda opened: windows.append(opened))
    sign_in(w)
    page = w.page
    org_link = page.locator(".top-table a[data-org-link]").first.get_attribute("href")
    seen: set[str] = set()
    clicked = charts_seen = 0
    for path in ("/", org_link, "/credits", "/billing", "/reports/2025-10"):
        w.goto(path)
        charts = page.locator(".js-plotly-plot")
        assert charts.count() > 0, path
        charts_seen += charts.count()
        for index in range(charts.count()):
            chart = charts.nth(index)
            chart.scroll_into_view_if_needed()
            chart.hover()
            buttons = chart.locator(".modebar-btn")
            titles = [buttons.nth(i).get_attribute("data-title") for i in range(buttons.count())]
            assert "Download plot as a PNG" in titles, (path, titles)
            assert set(titles) <= LOCAL_BUTTONS, (path, titles)
            seen.update(titles)
            for i in range(buttons.count()):
                chart.hover()
                buttons.nth(i).click(force=True)
                clicked += 1
            # The PNG download happens in the page (a data: URL), never on a server.
            page.wait_for_timeout(50)
    # Every chart is drawn with fixed axes (no zoom that a phone's scroll would trigger),
    # so each offers the PNG download alone; each of the charts had its button clicked.
    assert seen == {"Download plot as a PNG"} and clicked == charts_seen >= 10
    assert elsewhere == [] and [p.url for p in windows] == [], elsewhere
    context.close()


# Every text node's colour against the first opaque background behind it (WCAG 2.x
# relative luminance); large text (>= 24 px, or >= 18.66 px bold) needs 3:1, other 4.5:1.
LOW_CONTRAST = """
() => {
  const parse = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map((v) => {
    v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
  }).reduce((s, v, i) => s + v * [0.2126, 0.7152, 0.0722][i], 0);
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] === 1)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const found = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!node.textContent.trim() || el.closest('svg, .js-plotly-plot, .skip-link')) continue;
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    if (style.visibility === 'hidden' || box.width === 0 || box.height === 0) continue;
    const fg = lum(parse(style.color)), bg = lum(background(el));
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    const text = node.textContent.trim().slice(0, 30);
    if (ratio < need) found.push(`${el.tagName}.${el.className}: "${text}" ${ratio.toFixed(2)}`);
  }
  return found;
}
"""


def test_text_contrast_and_the_skip_link(chromium, server):
    w = new_page(chromium, server, width=1440)
    sign_in(w)
    page = w.page
    org_link = page.locator(".top-table a[data-org-link]").first.get_attribute("href")
    for path in ("/", "/organizations", org_link, "/credits", "/billing", "/reports"):
        w.goto(path)
        assert page.evaluate(LOW_CONTRAST) == [], path
    # The first Tab reaches the skip link, which leads to the content.
    w.goto("/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to the content"
    page.keyboard.press("Enter")
    assert page.url.endswith("#main")


ROW_FIGURES = """
([selector, column]) => Array.from(document.querySelectorAll(selector + ' tbody tr'))
  .map(function (row) { return row.cells[column].textContent.trim(); })
"""


def test_whole_tables_sort_in_the_browser(chromium, server):
    """The reports list (every month on one page) sorts by a numeric column on a click and
    from the keyboard; the heading says its order. Values are checked against each other,
    as the page writes them, not against the code that wrote them."""
    w = new_page(chromium, server)
    sign_in(w)
    page = w.page
    w.goto("/reports")
    heading = page.locator("table.report-months th", has_text="Events")
    assert heading.get_attribute("aria-sort") == "none"
    column = heading.evaluate("(th) => th.cellIndex")
    before = page.evaluate(ROW_FIGURES, ["table.report-months", column])
    numbers = [int(text.replace(",", "")) for text in before]
    heading.click()
    after = [
        int(t.replace(",", "")) for t in page.evaluate(ROW_FIGURES, ["table.report-months", column])
    ]
    assert after == sorted(numbers, reverse=True)  # largest first
    assert heading.get_attribute("aria-sort") == "descending"
    heading.focus()
    page.keyboard.press("Enter")
    after = [
        int(t.replace(",", "")) for t in page.evaluate(ROW_FIGURES, ["table.report-months", column])
    ]
    assert after == sorted(numbers)
    assert heading.get_attribute("aria-sort") == "ascending"
    months = page.locator("table.report-months th").first  # Month
    assert months.get_attribute("aria-sort") is None  # text columns keep their order
    w.assert_clean()


def test_organization_create_suspend_reactivate_by_keyboard(chromium, server):
    # Last in this module: it adds an organization to the demo data the tests above count.
    w = new_page(chromium, server)
    sign_in(w)
    page = w.page
    w.goto("/organizations")

    def focused() -> str:
        return page.evaluate("document.activeElement.id || document.activeElement.textContent")

    def enter() -> None:
        """Press Enter on the focused link or field, and wait for the page it opens."""
        with page.expect_navigation():
            page.keyboard.press("Enter")
        w.settle()

    def in_view(selector: str) -> bool:
        return page.evaluate(
            "(s) => { const r = document.querySelector(s).getBoundingClientRect();"
            " return r.top >= 0 && r.bottom <= window.innerHeight; }",
            selector,
        )

    page.focus("a[data-new-organization]")
    enter()
    assert page.url.endswith("/organizations/new")
    w.shot("organization-new")
    page.focus("#name")
    page.keyboard.type("Keyboard Kites")
    page.keyboard.press("Tab")
    assert focused() == "externalId"
    page.keyboard.type("kb-1")
    page.keyboard.press("Tab")
    assert focused() == "tier"  # trial, as it starts
    page.keyboard.press("Tab")
    assert focused() == "productType"
    page.keyboard.press("Tab")
    assert focused() == "initialCredits"
    page.keyboard.press("Control+A")
    page.keyboard.type("1,000")
    enter()  # sends the form
    # Refused as the API refuses it, beside the field, with what was typed kept.
    assert (
        page.locator("[data-error-for=initialCredits]").inner_text()
        == "a trial organization can hold at most 500 credits"
    )
    assert page.input_value("#name") == "Keyboard Kites"
    w.shot("organization-new-refused")
    page.focus("#initialCredits")
    page.keyboard.press("Control+A")
    page.keyboard.type("250")
    enter()
    assert re.search(r"/organizations/[0-9a-f-]{36}$", page.url), page.url
    assert "Keyboard Kites created." in page.locator(".flashes").inner_text()
    assert page.locator("#status .badge").first.text_content() == "active"

    # Suspend: a confirmation page first, with the reason; the button is reached by Tab.
    page.focus("a[data-status-action=suspend]")
    enter()
    assert page.locator("h1").inner_text() == "Suspend Keyboard Kites?"
    w.shot("organization-suspend-confirm")
    page.focus("#reason")
    page.keyboard.type("paused at the client's request")
    page.keyboard.press("Tab")
    assert focused() == "Suspend Keyboard Kites"
    enter()
    assert page.url.endswith("#status")
    assert in_view("#status [data-confirmation]")
    assert (
        page.locator("#status [data-confirmation]").inner_text() == "Keyboard Kites is suspended."
    )
    assert page.locator("#status p .badge").first.text_content() == "suspended"
    first = page.locator("table.status-history tbody tr").first
    assert "paused at the client's request" in first.inner_text()
    w.shot("organization-suspended")

    # Reactivate, without a reason.
    page.focus("a[data-status-action=reactivate]")
    enter()
    assert page.locator("h1").inner_text() == "Reactivate Keyboard Kites?"
    page.focus("#reason")
    page.keyboard.press("Tab")
    assert focused() == "Reactivate Keyboard Kites"
    enter()
    assert in_view("#status [data-confirmation]")
    assert (
        page.locator("#status [data-confirmation]").inner_text()
        == "Keyboard Kites is active again."
    )
    assert page.locator("table.status-history tbody tr").count() == 3
    w.shot("organization-reactivated")
    # The refused form answered 422, which Chromium reports on the console; nothing else.
    w.assert_clean(
        (
            "console: Failed to load resource: the server responded with a status "
            "of 422 (UNPROCESSABLE ENTITY)",
        )
    )
