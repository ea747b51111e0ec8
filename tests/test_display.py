"""How the pages write dates, counts, event types and pricing bands (app/display.py)."""

from __future__ import annotations

from datetime import date

import pytest

from app.display import event_label, fmt_day, plural, tier_band


def test_a_day_is_written_day_month_year_without_a_leading_zero() -> None:
    assert fmt_day(date(2026, 10, 1)) == "1 Oct 2026"
    assert fmt_day("2026-10-30") == "30 Oct 2026"
    assert fmt_day(None) == "—"


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
