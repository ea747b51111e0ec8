"""Tables (issue 15 item 4): every numeric column of the organizations list sorts, with
aria-sort on its heading and an arrow; a totals row over every page; one colour rule for
usage against an allocation (amber from 80 %, red from 100 %)."""

from __future__ import annotations

import html
import re
from datetime import datetime

import pytest
from views_support import FORMULA_NAME, build_acme, ev, login

from app.levels import allocation_level, usage_level, usage_percent

B, C, D, E, F = "Bluebird Bakery", "Cobalt Legal", "Delta Dental", "Echo Events", FORMULA_NAME
PERIOD = "preset=last_7_days"  # 14-20 Nov 2025; the billing period is 1-30 Nov


@pytest.fixture
def five(freeze, make_partner, make_org, add_events, make_user, client):
    """Acme's three organizations and two more, so that each column orders them its own way.

    In 14-20 Nov (identifications, events, quantity) and this billing period (allocation,
    used, available):
        Bluebird  15  3   45   400  15  385
        Cobalt     3  2    5   300  10  290
        Delta      1  2  101    25  19    6   (18 identifications on 2 Nov)
        Echo      12  1   12    15  12    3   (80.0 % of its allocation)
        =cmd       0  0    0    10   9    1   (90.0 %)
    """
    acme = build_acme(freeze, make_partner, make_org, add_events, make_user)
    partner = acme["partner"]
    created = datetime(2025, 9, 1)
    delta = make_org(partner, D, initial_credits=25, created_at=created)
    echo = make_org(partner, E, initial_credits=15, created_at=created)
    result = add_events(
        partner,
        [
            ev("d1", delta, "identification", 18, "2025-11-02T10:00:00Z"),
            ev("d2", delta, "page_view", 100, "2025-11-16T10:00:00Z"),
            ev("d3", delta, "identification", 1, "2025-11-19T10:00:00Z"),
            ev("e1", echo, "identification", 12, "2025-11-15T10:00:00Z"),
        ],
    )
    assert result.rejected == []
    assert login(client).status_code == 302
    return acme


def page_of(client, query: str) -> str:
    response = client.get(f"/organizations?{PERIOD}&{query}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def names(page: str) -> list[str]:
    return [html.unescape(n) for n in re.findall(r"data-org-link>([^<]*)</a>", page)]


def headings(page: str) -> dict[str, str | None]:
    """Return {sort key: aria-sort of its th} for the sortable headings."""
    found = {}
    for th in re.findall(r"<th\b[^>]*>.*?</th>", page, re.S):
        key = re.search(r'data-sort="([^"]+)"', th)
        if key:
            aria = re.search(r'aria-sort="([^"]+)"', th.split(">", 1)[0])
            found[key.group(1)] = aria.group(1) if aria else None
    return found


ORDERS = {
    # sort key: (descending, ascending), ties by name (Cobalt and Delta have 2 events each)
    "identifications": [B, E, C, D, F],
    "creditsUsed": [B, E, C, D, F],
    "events": [B, C, D, E, F],
    "quantity": [D, B, E, C, F],
    "credits": [B, C, D, E, F],
    "creditsUsedThisBillingPeriod": [D, B, E, C, F],
    "creditsAvailable": [B, C, D, E, F],
}
ASCENDING = {
    "identifications": [F, D, C, E, B],
    "events": [F, E, C, D, B],
    "quantity": [F, C, E, B, D],
    "creditsUsedThisBillingPeriod": [F, C, E, B, D],
    "creditsAvailable": [F, E, D, C, B],
}


@pytest.mark.parametrize("sort", list(ORDERS))
def test_each_numeric_column_sorts_most_first(five, client, sort):
    page = page_of(client, f"sort={sort}&order=desc")
    assert names(page) == ORDERS[sort]
    aria = headings(page)
    assert aria[sort] == "descending"
    assert {k: v for k, v in aria.items() if k != sort} == dict.fromkeys(set(aria) - {sort}, "none")


@pytest.mark.parametrize("sort", list(ASCENDING))
def test_numeric_columns_sort_least_first(five, client, sort):
    page = page_of(client, f"sort={sort}&order=asc")
    assert names(page) == ASCENDING[sort]
    assert headings(page)[sort] == "ascending"


def test_every_numeric_heading_is_sortable_with_an_arrow(five, client):
    page = page_of(client, "")
    assert set(headings(page)) == {
        "name",
        "status",
        "identifications",
        "creditsUsed",
        "events",
        "quantity",
        "credits",
        "creditsUsedThisBillingPeriod",
        "creditsAvailable",
    }
    arrows = dict(
        re.findall(r'data-sort="([^"]+)">[^<]*<span class="sort__arrow"[^>]*>([^<]+)<', page)
    )
    # Sorted by identifications, most first (the default): ▼ there, ↕ on the others.
    assert arrows["identifications"] == "▼"
    assert arrows["creditsAvailable"] == "↕" and arrows["name"] == "↕"
    # A click on a numeric heading sorts it most first; on the sorted one, the other way.
    assert re.search(r'href="[^"]*sort=creditsAvailable[^"]*order=desc[^"]*"', html.unescape(page))
    assert re.search(r'href="[^"]*sort=identifications[^"]*order=asc[^"]*"', html.unescape(page))
    # Headings that do not sort carry no aria-sort.
    assert re.search(r"<th[^>]*>External ID</th>", page)
    assert not re.search(r"<th[^>]*aria-sort[^>]*>External ID", page)


def totals(page: str) -> dict[str, int]:
    row = re.search(r"<tfoot>.*?</tfoot>", page, re.S).group(0)
    return {k: int(v.replace(",", "")) for k, v in re.findall(r'data-sum="([^"]+)">([^<]+)<', row)}


def test_the_totals_row_sums_every_page(five, client):
    expected = {
        "identifications": 15 + 3 + 1 + 12 + 0,
        "creditsUsed": 31,
        "events": 3 + 2 + 2 + 1 + 0,
        "quantity": 45 + 5 + 101 + 12 + 0,
        "creditsAllocated": 400 + 300 + 25 + 15 + 10,
        "creditsUsedThisBillingPeriod": 15 + 10 + 19 + 12 + 9,
        "creditsAvailable": 385 + 290 + 6 + 3 + 1,
    }
    assert totals(page_of(client, "")) == expected
    # Two on a page: the totals are still those of all five, and say so.
    paged = page_of(client, "pageSize=2&page=3")
    assert names(paged) == [F]
    assert totals(paged) == expected
    assert "Total, 5 organizations (all pages)" in paged
    # Filtered: the totals follow the filter.
    only = page_of(client, "search=bakery")
    assert totals(only) == {
        "identifications": 15,
        "creditsUsed": 15,
        "events": 3,
        "quantity": 45,
        "creditsAllocated": 400,
        "creditsUsedThisBillingPeriod": 15,
        "creditsAvailable": 385,
    }


def test_the_identifications_total_is_the_overviews(five, client):
    overview = client.get(f"/?{PERIOD}").get_data(as_text=True)
    value = re.search(r'data-metric="totalIdentifications" data-value="(\d+)"', overview).group(1)
    assert int(value) == 31 == totals(page_of(client, ""))["identifications"]


@pytest.mark.parametrize(
    ("percent", "level"),
    [
        (None, "ok"),
        (0.0, "ok"),
        (79.9, "ok"),
        (80.0, "warn"),
        (99.9, "warn"),
        (100.0, "over"),
        (250.0, "over"),
    ],
)
def test_one_colour_rule(percent, level):
    assert usage_level(percent) == level


def test_the_rule_reads_the_percent_as_shown():
    assert usage_percent(799, 1000) == 79.9
    assert usage_percent(7996, 10000) == 80.0  # shown as 80.0 %: amber, as it reads
    assert allocation_level(7996, 10000) == "warn"
    assert allocation_level(10, 10) == "over"
    assert allocation_level(0, 0) == "ok"
    assert allocation_level(3, 0) == "over"  # used with no allocation at all
    assert usage_percent(3, 0) is None


def test_tables_and_bars_colour_by_the_rule(five, client):
    page = page_of(client, "sort=name&order=asc")
    levels = dict(
        re.findall(r'data-org-link>([^<]*)</a>.*?data-level="(\w+)"', html.unescape(page), re.S)
    )
    assert levels == {B: "ok", C: "ok", D: "ok", E: "warn", F: "warn"}  # 76 % is ok
    page = client.get("/credits").get_data(as_text=True)
    credits = re.search(r'<table class="over-allocation"[^>]*>.*?</table>', page, re.S).group(0)
    listed = re.findall(
        r"data-org-link>([^<]*)</a>.*?(\d+\.\d) %.*?meter meter--(\w+)", credits, re.S
    )
    # 80 % or more: Echo at exactly 80.0 % is listed and amber, as the 90.0 % one.
    assert [(html.unescape(n), p, lvl) for n, p, lvl in listed] == [
        (F, "90.0", "warn"),
        (E, "80.0", "warn"),
    ]
    assert "80 % or more of their allocation" in page


def test_key_figures_follow_the_name(five, client):
    """On a phone the table scrolls under its sticky name column: the figures come first,
    who the organization is (external id, status, tier) last. The CSV keeps identity first."""
    page = page_of(client, "")
    row = re.search(r"<thead>.*?</tr>\s*<tr>(.*?)</tr>", page, re.S)
    assert row
    shown = [
        re.sub(r"<[^>]+>|[▲▼↕]", "", h).strip()
        for h in re.findall(r"<th[^>]*>(.*?)</th>", row.group(1), re.S)
    ]
    assert shown == [
        "Organization",
        "Identifications",
        "Credits used",
        "Events",
        "Quantity",
        "Allocation",
        "Used",
        "Available",
        "External ID",
        "Status",
        "Tier",
    ]
    csv_header = client.get(f"/organizations.csv?{PERIOD}").get_data(as_text=True).splitlines()[0]
    assert csv_header.startswith("organizationId,name,externalId,status,tier,identifications")
