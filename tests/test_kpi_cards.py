"""The KPI cards: one order on every page (a headline row, then the rest), identifications
and credits used in one card, the billing period's cost, and which changes are coloured as
good or bad news and which neutrally (issue 14, item 7). Figures are the hand-worked
"acme" data set of views_support (today Thursday 20 Nov 2025)."""

from __future__ import annotations

import re

import pytest
from views_support import build_acme, login

from app.extensions import db

HEADLINE = ["totalIdentifications", "creditsRemaining", "cost", "activeOrganizations"]
SECONDARY = ["totalOrganizations", "organizationsWithActivity", "totalQuantity", "totalEvents"]


@pytest.fixture
def acme(freeze, make_partner, make_org, add_events, make_user, client):
    data = build_acme(freeze, make_partner, make_org, add_events, make_user)
    assert login(client).status_code == 302
    return data


def rows(page: str) -> dict[str, list[str]]:
    """Return the cards of each row ('headline', 'secondary') by metric, in page order."""
    out = {}
    for row, body in re.findall(r'<div class="kpis kpis--(\w+)[^"]*">(.*?)\n</div>', page, re.S):
        out[row] = [
            metric or "cost"
            for metric, _cost in re.findall(
                r'<article class="card kpi[^"]*"(?: data-metric="(\w+)"| (data-cost))', body
            )
        ]
    return out


def card(page: str, metric: str) -> str:
    found = re.search(rf'<article[^>]*data-metric="{metric}".*?</article>', page, re.S)
    assert found, metric
    return found.group(0)


def test_overview_leads_with_the_headline_row(acme, client):
    page = client.get("/?preset=last_7_days").get_data(as_text=True)
    assert rows(page) == {"headline": HEADLINE, "secondary": SECONDARY}
    # Nov 14-20: b1 10 + b2 5 + c2 3 = 18 identifications, which are 18 credits used.
    identifications = card(page, "totalIdentifications")
    assert '<p class="kpi__value">18</p>' in identifications
    assert "= 18 credits used (one per identification)" in identifications
    assert 'data-metric="creditsUsed" data-value="18"' in identifications
    # The billing period (1-30 Nov) so far: 34 identifications at 0.10 (Starter) = 3.40.
    cost = re.search(r'<article[^>]*data-cost="([\d.]+)".*?</article>', page, re.S)
    assert cost and cost.group(1) == "3.40"
    assert "3.40 USD" in cost.group(0) and "1 Nov – 20 Nov 2025, so far" in cost.group(0)
    # Today is Nov 20; the pool resets on Dec 1.
    assert "The pool resets on 1 Dec 2025, in 11 days." in card(page, "creditsRemaining")


def test_colours_say_whether_a_change_is_good_news(acme, client):
    # Nov 15-20 against Nov 9-14: identifications fall from 17 (c1 7, b1 10) to 8 (b2 5,
    # c2 3): red. Credits remaining fall from 974 (1000 - f1 9 - c1 7 - b1 10) to 966: the
    # time passing, shown neutrally. Events rise from 2 to 4 (b2 b3 c2 c3): green.
    page = client.get("/?startDate=2025-11-15&endDate=2025-11-20").get_data(as_text=True)
    assert '<span class="delta delta--down">▼ −52.9 %</span>' in card(page, "totalIdentifications")
    remaining = card(page, "creditsRemaining")
    assert 'data-tone="neutral"' in remaining
    assert '<span class="delta delta--neutral">▼ −0.8 %</span>' in remaining  # -8 / 974
    assert '<span class="delta delta--up">▲ +100.0 %</span>' in card(page, "totalEvents")
    for metric in ("totalIdentifications", "totalEvents", "totalQuantity", "totalOrganizations"):
        assert 'data-tone="rise-good"' in card(page, metric), metric
    for metric in ("activeOrganizations", "organizationsWithActivity"):
        assert 'data-tone="rise-good"' in card(page, metric), metric


def test_report_keeps_the_order_and_shows_cost_only_for_a_calendar_month(acme, client, app):
    page = client.get("/reports/2025-11").get_data(as_text=True)
    assert rows(page) == {"headline": HEADLINE, "secondary": SECONDARY}
    assert 'data-cost="3.40"' in page  # billing day 1: the month is the billing period
    with app.app_context():
        partner = db.session.merge(acme["partner"])
        partner.billing_day_of_month = 15
        db.session.commit()
    page = client.get("/reports/2025-11").get_data(as_text=True)
    assert rows(page) == {"headline": [h for h in HEADLINE if h != "cost"], "secondary": SECONDARY}
    assert "data-cost" not in page


def test_organization_page_has_the_same_order_without_pool_or_cost(acme, client):
    org = acme["bluebird"]
    page = client.get(f"/organizations/{org.id}?preset=last_7_days").get_data(as_text=True)
    assert rows(page) == {
        "headline": ["totalIdentifications"],
        "secondary": ["totalQuantity", "totalEvents"],
    }
    # Bluebird Nov 14-20: b1 10 + b2 5 identifications; page_view 30 -> quantity 45, 3 events.
    assert "= 15 credits used" in card(page, "totalIdentifications")
    assert 'data-metric="totalQuantity" data-value="45"' in page
