"""Accessibility in a real browser (WCAG 2.2 AA, issue 15 item 9).

Every dashboard page is checked with axe-core at two widths by tests/test_sweep.py; here:
the sign-in page, the "Show data" tables a screen reader gets instead of the charts, and a
keyboard-only path through changing the period, sorting, drilling down and allocating, with
a visible focus ring at every stop. Data: tests/browser_support.py (today Thu 20 Nov 2025).
"""

from __future__ import annotations

from typing import Any

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


def test_sign_in_page_meets_wcag_aa(chromium, server):
    w = new_page(chromium, server, width=390, height=844)
    use_axe(w)
    w.page.goto("/login")
    assert axe_violations(w.page) == []
    # A wrong password: the page with its message passes too.
    w.page.fill("#email", "nobody@example.com")
    w.page.fill("#password", "wrong")
    w.page.click("button[type=submit]")
    w.page.wait_for_load_state("load")
    assert axe_violations(w.page) == []


# The numbers each drawn chart holds, as plotly has them (vertical bars and lines: y;
# horizontal bars: x, listed top down as drawn), and each "Show data" table's cells.
PLOTTED = """
() => Object.fromEntries(Array.from(document.querySelectorAll('.js-plotly-plot'))
  .filter((gd) => document.querySelector('[data-chart-data="' + gd.dataset.chart + '"]'))
  .map((gd) => [gd.dataset.chart, gd.data.map((t) => t.orientation === 'h'
      ? Array.from(t.x).reverse() : Array.from(t.y))]))
"""
TABLES = """
() => Object.fromEntries(Array.from(document.querySelectorAll('details.chart-data'))
  .map((d) => [d.dataset.chartData, {
    open: d.open,
    head: Array.from(d.querySelectorAll('thead th')).map((th) => th.textContent.trim()),
    rows: Array.from(d.querySelectorAll('tbody tr')).map((tr) =>
      Array.from(tr.children).map((c) => c.textContent.trim())),
  }]))
"""


def columns(table: dict[str, Any]) -> list[list[int]]:
    """Return a table's value columns as numbers ('1,234' -> 1234)."""
    rows = [row[1:] for row in table["rows"]]
    return [[int(row[i].replace(",", "")) for row in rows] for i in range(len(rows[0]))]


def test_every_chart_has_a_show_data_table_with_its_numbers(chromium, server):
    w = new_page(chromium, server, width=1440)
    sign_in(w)
    page = w.page
    w.goto("/?preset=last_7_days")
    tables = page.evaluate(TABLES)
    # The overview's four charts drawn by the chart macro; the top organizations chart has
    # its table beside it, always shown.
    assert sorted(tables) == ["activity", "cumulative", "identifications", "types"]
    assert not any(t["open"] for t in tables.values())  # folded until asked for
    # Last 7 days: 14 .. 20 Nov 2025, by day; today (the 20th) is still running.
    identifications = tables["identifications"]
    assert identifications["head"] == [
        "Date",
        "Identifications (14 Nov 2025 – 20 Nov 2025)",
        "Previous period (7 Nov 2025 – 13 Nov 2025)",
    ]
    assert [row[0] for row in identifications["rows"]] == [
        "14 Nov 2025",
        "15 Nov 2025",
        "16 Nov 2025",
        "17 Nov 2025",
        "18 Nov 2025",
        "19 Nov 2025",
        "20 Nov 2025 (today, so far)",
    ]
    # Three event types, the largest quantity first, as the bars read top down.
    assert tables["types"]["head"] == ["Name", "Quantity"]
    assert sorted(row[0] for row in tables["types"]["rows"]) == [  # the pages' labels
        "Identifications",
        "Page views",
        "Sessions",
    ]
    quantities = columns(tables["types"])[0]
    assert quantities == sorted(quantities, reverse=True)
    # Every table holds exactly the numbers its chart draws, series by series.
    plotted = page.evaluate(PLOTTED)
    assert {name: columns(t) for name, t in tables.items()} == plotted
    # The KPI says the same as the table: identifications over the 7 days.
    kpi = int(page.get_attribute("[data-metric=totalIdentifications]", "data-value"))
    assert sum(columns(identifications)[0]) == kpi

    # A screen reader gets the table, not the drawing; the toolbar's buttons stay named.
    hidden = page.evaluate(
        "Array.from(document.querySelectorAll('.js-plotly-plot svg.main-svg'))"
        ".map(s => s.getAttribute('aria-hidden'))"
    )
    assert hidden and set(hidden) == {"true"}
    assert page.locator(".chart[role=img]").count() == 0

    # Unfolded by the keyboard (Enter on its summary), it shows the rows.
    page.focus("details[data-chart-data=identifications] summary")
    page.keyboard.press("Enter")
    rows = page.locator("details[data-chart-data=identifications] tbody tr")
    assert rows.count() == 7 and rows.first.is_visible()
    page.locator("details[data-chart-data=identifications]").scroll_into_view_if_needed()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "show-data-open.png"))

    # On paper the chart is printed, not its folded table.
    page.emulate_media(media="print")
    assert page.locator("details.chart-data").first.evaluate(
        "d => getComputedStyle(d).display"
    ) == ("none")
    page.emulate_media(media="screen")
    w.assert_clean()


FOCUS = """
() => {
  const e = document.activeElement;
  const s = getComputedStyle(e);
  // A date field's calendar button (inside Chromium's own shadow tree) is a stop of its
  // own: the field is active without :focus, and Chromium rings the button itself.
  if (e.type === 'date' && !e.matches(':focus')) return {visible: true, ring: true};
  return {
    visible: e.matches(':focus-visible'),
    ring: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2,
  };
}
"""


def tab_to(w: Watched, selector: str, limit: int = 120) -> None:
    """Press Tab until the focus is on selector; at every stop the focus must be seen."""
    page = w.page
    for _ in range(limit):
        page.keyboard.press("Tab")
        seen = page.evaluate(FOCUS)
        where = page.evaluate("document.activeElement.outerHTML.slice(0, 120)")
        assert seen == {"visible": True, "ring": True}, where
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} not reached in {limit} presses of Tab")


def test_keyboard_only_period_sorting_drill_down_and_allocation(chromium, server):
    w = new_page(chromium, server, width=1440)
    sign_in(w)
    page = w.page
    w.goto("/")

    # A preset: Last 7 days.
    tab_to(w, "a[data-preset=last_7_days]")
    page.keyboard.press("Enter")
    w.settle()
    assert page.url.endswith("/?preset=last_7_days")

    # The date fields: typed digit by digit (month, day, year in an en-US Chromium), then
    # Enter submits the form.
    tab_to(w, "#startDate")
    page.keyboard.type("09012025")
    tab_to(w, "#endDate")
    page.keyboard.type("09302025")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    w.settle()
    # The form also carries the period shown before ("shown"), kept if the new one is refused.
    assert page.url.endswith("&startDate=2025-09-01&endDate=2025-09-30")
    assert "1 Sep 2025 – 30 Sep 2025" in page.locator(".range-summary").first.inner_text()

    # To the organizations, then sorted by name (ascending, as names are first sorted).
    tab_to(w, "a[data-nav=organizations]")
    page.keyboard.press("Enter")
    w.settle()
    tab_to(w, "a[data-sort=name]")
    page.keyboard.press("Enter")
    w.settle()
    assert "sort=name" in page.url and "order=asc" in page.url
    assert "startDate=2025-09-01&endDate=2025-09-30" in page.url
    # Every sortable heading says its order: the sorted one ascending, the others none.
    header = page.locator("th[aria-sort=ascending]")
    assert header.count() == 1
    assert header.text_content().strip() == "Organization▲"
    assert page.locator("th[aria-sort=descending]").count() == 0
    assert page.locator("th[aria-sort=none]").count() == 8  # the other sortable columns
    names = page.locator("table.org-table td.name a").all_inner_texts()
    assert names == sorted(names, key=str.casefold) and len(names) == 20

    # Drill down: the first organization of the sorted list, on the same period.
    first = names[0]
    tab_to(w, "table.org-table a[data-org-link]")
    page.keyboard.press("Enter")
    w.settle()
    assert page.locator("h1").inner_text() == first
    assert page.url.endswith("?startDate=2025-09-01&endDate=2025-09-30")

    # The allocation form: credits and a note typed, the button pressed with Space.
    tab_to(w, "#credits")
    page.keyboard.press("Control+A")
    page.keyboard.type("300")
    tab_to(w, "#notes")
    page.keyboard.type("set by keyboard")
    tab_to(w, "#allocation button[type=submit]")
    page.keyboard.press("Space")
    w.settle()
    assert "set to 300 credits" in page.locator("#allocation [data-confirmation]").inner_text()
    assert "set by keyboard" in page.locator("table.allocation-history").inner_text()
    w.assert_clean()
