"""The freshness line: green under an hour, amber under a day, red beyond, with the age."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from tests.views_support import PASSWORD, login

RECEIVED = datetime(2025, 11, 20, 9, 0)  # when the one event is received (UTC)


@pytest.fixture
def partner_with_one_event(freeze, make_partner, make_org, make_user, add_events):
    freeze(RECEIVED)
    partner = make_partner("acme", pool=1000)
    org = make_org(partner, "Bluebird")
    make_user(partner, "ops@acme.test", PASSWORD)
    event = {
        "eventId": "e1",
        "organizationId": org.id,
        "type": "identification",
        "quantity": 1,
        "occurredAt": "2025-11-20T08:00:00Z",
    }
    assert add_events(partner, [event]).rejected == []
    return partner


def _freshness(client) -> tuple[str, str]:
    page = client.get("/").get_data(as_text=True)
    found = re.search(r'data-freshness-level="(\w+)">(.*?)</p>', page, re.S)
    assert found, page[:2000]
    return found.group(1), " ".join(found.group(2).split())


@pytest.mark.parametrize(
    ("later", "level", "age"),
    [
        (timedelta(minutes=1), "fresh", "(just now)"),
        (timedelta(minutes=59), "fresh", "(59 minutes ago)"),
        (timedelta(hours=1), "stale", "(1 hour ago)"),
        (timedelta(hours=23, minutes=59), "stale", "(23 hours ago)"),
        (timedelta(days=1), "old", "(1 day ago: no newer event since)"),
        (timedelta(days=9, hours=5), "old", "(9 days ago: no newer event since)"),
    ],
)
def test_the_dot_says_how_old_the_newest_event_is(
    partner_with_one_event, client, freeze, later, level, age
):
    freeze(RECEIVED + later)
    login(client)
    shown_level, text = _freshness(client)
    assert shown_level == level
    assert text.endswith(age), text
    assert "20 Nov 2025 09:00 UTC" in text


def test_charts_hold_their_height_until_drawn(partner_with_one_event, client, freeze):
    freeze(RECEIVED + timedelta(minutes=5))
    login(client)
    page = client.get("/?preset=last_7_days").get_data(as_text=True)
    # Every chart placeholder carries its figure's height (the default layout's is 300).
    heights = re.findall(r'data-chart="(\w+)"\s+style="min-height: (\d+)px"', page)
    assert dict(heights)["identifications"] == "300"
    assert len(heights) == page.count('class="js-figure"') >= 3
