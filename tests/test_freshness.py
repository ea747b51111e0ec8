"""The freshness line (green under an hour, amber under a day, red beyond, with the age) and
every moment on the pages: in words in the partner's timezone, the UTC instant in <time>."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from app import accounts
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
    return found.group(1), " ".join(re.sub(r"<[^>]+>", "", found.group(2)).split())


@pytest.mark.parametrize(
    ("later", "level", "age"),
    [
        (timedelta(minutes=1), "fresh", ", just now"),
        (timedelta(minutes=59), "fresh", ", 59 minutes ago"),
        (timedelta(hours=1), "stale", ", 1 hour ago"),
        (timedelta(hours=23, minutes=59), "stale", ", 23 hours ago"),
        (timedelta(days=1), "old", ", 1 day ago: no newer event since"),
        (timedelta(days=9, hours=5), "old", ", 9 days ago: no newer event since"),
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
    assert "received 20 Nov 2025 at 09:00 (UTC)," in text


def test_charts_hold_their_height_until_drawn(partner_with_one_event, client, freeze):
    freeze(RECEIVED + timedelta(minutes=5))
    login(client)
    page = client.get("/?preset=last_7_days").get_data(as_text=True)
    # Every chart placeholder carries its figure's height (the default layout's is 300).
    heights = re.findall(r'data-chart="(\w+)"\s+style="min-height: (\d+)px"', page)
    assert dict(heights)["identifications"] == "300"
    assert len(heights) == page.count('class="js-figure"') >= 3


NY = "America/New_York"


@pytest.fixture
def new_york_partner(freeze, make_partner, make_org, make_user, add_events):
    """A New York partner with one organization: created at 03:00 UTC on 1 Oct 2025,
    allocated 400 credits at 05:30 UTC on 2 Nov, suspended at 14:15 UTC on 10 Nov, and
    one event received at 09:00 UTC on 20 Nov (the tests say what these are in New York)."""
    freeze(datetime(2025, 10, 1, 3, 0))
    partner = make_partner("acme", pool=5000, tz=NY)
    org = make_org(partner, "Bluebird")
    make_user(partner, "ops@acme.test", PASSWORD)
    freeze(datetime(2025, 11, 2, 5, 30))
    accounts.set_allocation(partner, org, 400, "first allocation")
    freeze(datetime(2025, 11, 10, 14, 15))
    accounts.set_status(partner, org, "suspended")
    freeze(RECEIVED)
    event = {
        "eventId": "e1",
        "organizationId": org.id,
        "type": "identification",
        "quantity": 1,
        "occurredAt": "2025-11-20T08:00:00Z",
    }
    assert add_events(partner, [event]).rejected == []
    return org


def _times(page: str) -> dict[str, str]:
    """Return each <time>'s words by its datetime."""
    return {
        machine: " ".join(words.split())
        for machine, words in re.findall(r'<time datetime="([^"]+)">(.*?)</time>', page, re.S)
    }


def test_the_freshness_line_is_in_the_partners_timezone(new_york_partner, client, freeze):
    freeze(RECEIVED + timedelta(minutes=5))
    login(client)
    page = client.get("/").get_data(as_text=True)
    level, text = _freshness(client)
    # 09:00 UTC on 20 Nov is 04:00 in New York (EST, UTC-5).
    assert level == "fresh"
    assert text.endswith(f"received 20 Nov 2025 at 04:00 EST ({NY}), 5 minutes ago"), text
    # The machine value stays the UTC instant.
    assert _times(page)["2025-11-20T09:00:00Z"] == f"20 Nov 2025 at 04:00 EST ({NY})"
    assert 'data-freshness="2025-11-20T09:00:00Z"' in page
    assert "UTC" not in re.sub(r"<[^>]+>", "", page)
    assert f"days, periods and times in {NY}" in page


def test_an_organizations_moments_are_in_the_partners_timezone(new_york_partner, client, freeze):
    freeze(RECEIVED + timedelta(minutes=5))
    login(client)
    page = client.get(f"/organizations/{new_york_partner.id}").get_data(as_text=True)
    times = _times(page)
    # Created 03:00 UTC on 1 Oct: 23:00 on 30 Sep in New York (EDT, UTC-4).
    assert times["2025-10-01T03:00:00Z"] == f"30 Sep 2025 at 23:00 EDT ({NY})"
    # Allocated 05:30 UTC on 2 Nov: 01:30 EDT, the first of that night's two 01:30s (the
    # clocks went back at 02:00 EDT = 06:00 UTC).
    history = page[page.index('class="allocation-history"') :]
    history = history[: history.index("</table>")]
    assert _times(history) == {"2025-11-02T05:30:00Z": f"2 Nov 2025 at 01:30 EDT ({NY})"}
    # Suspended 14:15 UTC on 10 Nov: 09:15 EST (UTC-5).
    statuses = page[page.index('class="status-history"') :]
    statuses = statuses[: statuses.index("</table>")]
    assert times["2025-11-10T14:15:00Z"] == f"10 Nov 2025 at 09:15 EST ({NY})"
    assert "2025-11-10T14:15:00Z" in _times(statuses)
    assert "(UTC)" not in page and "When (UTC)" not in page
