"""How the pages write dates, moments, counts, event types and pricing bands (app/display.py)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from app.display import event_label, fmt_day, fmt_moment, plural, tier_band


def test_a_day_is_written_day_month_year_without_a_leading_zero() -> None:
    assert fmt_day(date(2026, 10, 1)) == "1 Oct 2026"
    assert fmt_day("2026-10-30") == "30 Oct 2026"
    assert fmt_day(None) == "—"


NY = "America/New_York"


@pytest.mark.parametrize(
    ("moment", "tz", "text"),
    [
        # 12:00 UTC on 5 Nov 2025 is 07:00 in New York (EST, UTC-5, since 2 Nov).
        (datetime(2025, 11, 5, 12, 0), NY, f"5 Nov 2025 at 07:00 EST ({NY})"),
        # In July New York is on EDT (UTC-4): 12:00 UTC is 08:00.
        (datetime(2025, 7, 1, 12, 0), NY, f"1 Jul 2025 at 08:00 EDT ({NY})"),
        # The day changes too: 23:30 UTC on 31 Dec is 00:30 on 1 Jan in Paris (UTC+1).
        (datetime(2025, 12, 31, 23, 30), "Europe/Paris", "1 Jan 2026 at 00:30 CET (Europe/Paris)"),
        # UTC is not written twice.
        (datetime(2025, 11, 5, 12, 0), "UTC", "5 Nov 2025 at 12:00 (UTC)"),
        # Kathmandu (+05:45) has no letter abbreviation: its name alone.
        (datetime(2025, 11, 5, 12, 0), "Asia/Kathmandu", "5 Nov 2025 at 17:45 (Asia/Kathmandu)"),
        # An aware moment is converted: 13:00 at +01:00 is 12:00 UTC, 07:00 in New York.
        (
            datetime(2025, 11, 5, 13, 0, tzinfo=timezone(timedelta(hours=1))),
            NY,
            f"5 Nov 2025 at 07:00 EST ({NY})",
        ),
    ],
)
def test_a_moment_is_written_in_words_in_the_partners_timezone(
    moment: datetime, tz: str, text: str
) -> None:
    assert fmt_moment(moment, tz) == text


def test_the_two_half_past_ones_of_the_autumn_change_differ() -> None:
    # On 2 Nov 2025 New York's clocks went back from 02:00 EDT to 01:00 EST: 05:30 UTC and
    # 06:30 UTC were both 01:30 there.
    assert fmt_moment(datetime(2025, 11, 2, 5, 30), NY) == f"2 Nov 2025 at 01:30 EDT ({NY})"
    assert fmt_moment(datetime(2025, 11, 2, 6, 30), NY) == f"2 Nov 2025 at 01:30 EST ({NY})"


def test_no_moment_is_a_dash() -> None:
    assert fmt_moment(None, NY) == "—"


@pytest.mark.parametrize(
    ("count", "text"), [(0, "0 days"), (1, "1 day"), (7, "7 days"), (1000, "1,000 days")]
)
def test_counts_take_the_singular_only_for_one(count: int, text: str) -> None:
    assert plural(count, "day") == text


def test_an_irregular_plural_can_be_given() -> None:
    assert plural(2, "entry", "entries") == "2 entries"
    assert plural(1, "entry", "entries") == "1 entry"


@pytest.mark.parametrize(
    ("event_type", "text"),
    [
        ("page_view", "Page views"),
        ("identification", "Identifications"),
        ("session", "Sessions"),
        # A partner's own type: as named, underscores as spaces, a capital first letter.
        ("file_download", "File download"),
        ("signup", "Signup"),
        ("form_submitted_v2", "Form submitted v2"),
    ],
)
def test_event_types_by_their_human_labels(event_type: str, text: str) -> None:
    assert event_label(event_type) == text


@pytest.mark.parametrize(
    ("low", "high", "text"),
    [
        (0, 10_000, "0–9,999"),  # the upper bound is exclusive
        (10_000, 100_000, "10,000–99,999"),
        (100_000, None, "100,000+"),
        (0, None, "0+"),
        (5, 6, "5"),  # a band of one unit
    ],
)
def test_tier_bands_name_the_units_they_hold(low: int, high: int | None, text: str) -> None:
    assert tier_band(low, high) == text
