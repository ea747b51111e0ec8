"""Periods: parsing, defaults, presets, billing periods, buckets and local day bounds."""

from datetime import date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app import periods
from app.periods import (
    Period,
    PeriodError,
    billing_period_containing,
    billing_periods_between,
    bucket_start,
    buckets,
    check_period,
    day_end_utc,
    day_start_utc,
    default_analytics_period,
    default_usage_period,
    local_today,
    parse_date,
    preset_period,
    resolve_period,
)

D = date


# --- parse_date -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tz", "expected"),
    [
        ("2025-10-01", "UTC", D(2025, 10, 1)),
        ("2025-10-01", "Asia/Kathmandu", D(2025, 10, 1)),  # a bare date is taken as is
        (" 2025-10-01 ", "UTC", D(2025, 10, 1)),
        # 23:30 at -05:00 is 04:30 UTC on Oct 2, i.e. 06:30 in Berlin (CEST, +02:00): Oct 2.
        ("2025-10-01T23:30:00-05:00", "Europe/Berlin", D(2025, 10, 2)),
        # ...and 00:30 EDT on Oct 1 in New York (-04:00) is Oct 1 there.
        ("2025-10-01T04:30:00Z", "America/New_York", D(2025, 10, 1)),
        ("2025-10-01T03:59:59Z", "America/New_York", D(2025, 9, 30)),
        # No offset means UTC: 18:15 UTC is 00:00 the next day in Kathmandu (+05:45).
        ("2025-10-01T18:15:00", "Asia/Kathmandu", D(2025, 10, 2)),
        ("2025-10-01T18:14:59", "Asia/Kathmandu", D(2025, 10, 1)),
        ("2025-10-01 10:00:00Z", "UTC", D(2025, 10, 1)),
    ],
)
def test_parse_date_accepts_dates_and_timestamps(text, tz, expected):
    assert parse_date(text, "startDate", tz) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "yesterday",
        "20251001",
        "2025-13-01",
        "2025-02-30",
        "2025-10-1",
        "2025-10-01T25:00:00",
        "01/10/2025",
        "2025-10-01T10:00:00+25:00",
        "1969-12-31",
        "3000-01-01",
        # Offsets that push the instant off the calendar must be a clean error, not a crash.
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:00:00-05:00",
    ],
)
def test_parse_date_refuses_bad_text_naming_the_field(text):
    with pytest.raises(PeriodError) as info:
        parse_date(text, "endDate", "UTC")
    assert info.value.field == "endDate"
    assert "endDate" in info.value.message
    assert info.value.value == text


@pytest.mark.parametrize("value", [None, 20251001, ["2025-10-01"]])
def test_parse_date_refuses_non_text(value):
    with pytest.raises(PeriodError) as info:
        parse_date(value, "startDate", "UTC")
    assert info.value.field == "startDate"


def test_parse_date_window_edges():
    assert parse_date("1970-01-01", "startDate", "UTC") == D(1970, 1, 1)
    assert parse_date("2999-12-31", "endDate", "UTC") == D(2999, 12, 31)


# --- checks -----------------------------------------------------------------------------


def test_start_after_end_is_refused():
    with pytest.raises(PeriodError) as info:
        check_period(Period(D(2025, 10, 2), D(2025, 10, 1)))
    assert info.value.field == "startDate"
    assert "after" in info.value.message


def test_span_limit_is_3660_days_both_ends_counted():
    # 2000..2009 hold 10 * 365 + 3 leap days = 3653 days, so 2010-01-01 is day 3654 and
    # 2010-01-07 day 3660: that period is allowed; one more day is not.
    ok = Period(D(2000, 1, 1), D(2010, 1, 7))
    assert ok.days == 3660
    assert check_period(ok) == ok
    with pytest.raises(PeriodError) as info:
        check_period(Period(D(2000, 1, 1), D(2010, 1, 8)))
    assert info.value.field == "startDate"
    assert "3661" in info.value.message


def test_single_day_period_is_allowed():
    p = check_period(Period(D(2025, 10, 1), D(2025, 10, 1)))
    assert p.days == 1
    assert D(2025, 10, 1) in p
    assert D(2025, 10, 2) not in p


def test_previous_period_is_equally_long_and_adjacent():
    # Nov 1..14 is 14 days; the 14 days before are Oct 18..31.
    assert Period(D(2025, 11, 1), D(2025, 11, 14)).previous() == Period(
        D(2025, 10, 18), D(2025, 10, 31)
    )
    # March 2024 (31 days) -> Jan 30..Feb 29 (2 + 29 = 31 days, leap year).
    assert Period(D(2024, 3, 1), D(2024, 3, 31)).previous() == Period(
        D(2024, 1, 30), D(2024, 2, 29)
    )


# --- defaults (frozen clock) ---------------------------------------------------------------


def test_defaults_follow_the_frozen_clock(freeze):
    freeze(datetime(2025, 11, 14, 12, 0))
    # today - 30 days: Nov 14 - 30 = Oct 15.
    assert default_analytics_period("UTC") == Period(D(2025, 10, 15), D(2025, 11, 14))
    assert default_usage_period("UTC") == Period(D(2025, 11, 1), D(2025, 11, 14))


def test_defaults_use_the_partner_local_today(freeze):
    # 03:00 UTC on Nov 1 is 23:00 EDT on Oct 31 in New York, 08:45 Nov 1 in Kathmandu.
    freeze(datetime(2025, 11, 1, 3, 0))
    assert local_today("America/New_York") == D(2025, 10, 31)
    assert local_today("Asia/Kathmandu") == D(2025, 11, 1)
    assert default_usage_period("America/New_York") == Period(D(2025, 10, 1), D(2025, 10, 31))
    assert default_usage_period("Asia/Kathmandu") == Period(D(2025, 11, 1), D(2025, 11, 1))
    # Oct 31 - 30 days = Oct 1.
    assert default_analytics_period("America/New_York") == Period(D(2025, 10, 1), D(2025, 10, 31))


def test_resolve_period_fills_gaps_from_the_default(freeze):
    freeze(datetime(2025, 11, 14, 12, 0))
    default = default_analytics_period("UTC")  # Oct 15..Nov 14, 31 days
    assert resolve_period(None, None, "UTC", default) == default
    assert resolve_period("", "", "UTC", default) == default
    # Only endDate: keep 31 days ending there; Jun 30 - 30 days = May 31.
    assert resolve_period(None, "2025-06-30", "UTC", default) == Period(
        D(2025, 5, 31), D(2025, 6, 30)
    )
    # Only startDate: run to today.
    assert resolve_period("2025-11-01", None, "UTC", default) == Period(
        D(2025, 11, 1), D(2025, 11, 14)
    )
    assert resolve_period("2025-10-01", "2025-10-01", "UTC", default) == Period(
        D(2025, 10, 1), D(2025, 10, 1)
    )


def test_resolve_period_errors_name_the_field(freeze):
    freeze(datetime(2025, 11, 14, 12, 0))
    default = default_analytics_period("UTC")
    with pytest.raises(PeriodError) as info:
        resolve_period("2025-10-01", "garbage", "UTC", default)
    assert info.value.field == "endDate"
    with pytest.raises(PeriodError) as info:
        resolve_period("nope", "2025-10-01", "UTC", default)
    assert info.value.field == "startDate"
    with pytest.raises(PeriodError) as info:
        resolve_period("2025-10-02", "2025-10-01", "UTC", default)
    assert info.value.field == "startDate"
    # Only startDate, far in the past: 1990-01-01..2025-11-14 is over 3660 days.
    with pytest.raises(PeriodError):
        resolve_period("1990-01-01", None, "UTC", default)


# --- presets ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "start", "end"),
    [
        # today = Friday 2025-11-14
        ("last_7_days", D(2025, 11, 8), D(2025, 11, 14)),  # 14 - 6
        ("last_30_days", D(2025, 10, 16), D(2025, 11, 14)),  # 14 Nov - 29 days
        # Aug 17..Aug 31 = 15 days, Sep 30, Oct 31, Nov 14: 15 + 30 + 31 + 14 = 90.
        ("last_90_days", D(2025, 8, 17), D(2025, 11, 14)),
        ("month_to_date", D(2025, 11, 1), D(2025, 11, 14)),
        ("last_month", D(2025, 10, 1), D(2025, 10, 31)),
        ("quarter_to_date", D(2025, 10, 1), D(2025, 11, 14)),
        ("year_to_date", D(2025, 1, 1), D(2025, 11, 14)),
        ("last_12_months", D(2024, 11, 15), D(2025, 11, 14)),
    ],
)
def test_presets(key, start, end):
    assert preset_period(key, D(2025, 11, 14)) == Period(start, end)


def test_every_preset_is_tested():
    assert set(periods.PRESETS) == {
        "last_7_days",
        "last_30_days",
        "last_90_days",
        "month_to_date",
        "last_month",
        "quarter_to_date",
        "year_to_date",
        "last_12_months",
    }


def test_preset_edges():
    # In January, last month is December of the year before.
    assert preset_period("last_month", D(2025, 1, 15)) == Period(D(2024, 12, 1), D(2024, 12, 31))
    # Last month from March in a leap year is the 29-day February.
    assert preset_period("last_month", D(2024, 3, 1)) == Period(D(2024, 2, 1), D(2024, 2, 29))
    # Quarter to date on the last day of Q1 and the first day of Q2.
    assert preset_period("quarter_to_date", D(2025, 3, 31)) == Period(D(2025, 1, 1), D(2025, 3, 31))
    assert preset_period("quarter_to_date", D(2025, 4, 1)) == Period(D(2025, 4, 1), D(2025, 4, 1))
    # Feb 29: a year before clamps to 2023-02-28, the day after is Mar 1.
    assert preset_period("last_12_months", D(2024, 2, 29)) == Period(D(2023, 3, 1), D(2024, 2, 29))
    assert preset_period("month_to_date", D(2025, 11, 1)) == Period(D(2025, 11, 1), D(2025, 11, 1))


def test_unknown_preset_names_the_field():
    with pytest.raises(PeriodError) as info:
        preset_period("last_week", D(2025, 11, 14))
    assert info.value.field == "preset"


# --- billing periods -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "start", "end"),
    [
        (D(2025, 11, 14), D(2025, 10, 15), D(2025, 11, 14)),
        (D(2025, 11, 15), D(2025, 11, 15), D(2025, 12, 14)),
        (D(2025, 1, 10), D(2024, 12, 15), D(2025, 1, 14)),  # across the year end
        (D(2025, 12, 31), D(2025, 12, 15), D(2026, 1, 14)),
    ],
)
def test_monthly_billing_period_with_billing_day_15(day, start, end):
    assert billing_period_containing(day, 15) == Period(start, end)


def test_monthly_billing_period_with_billing_day_1():
    assert billing_period_containing(D(2025, 2, 10), 1) == Period(D(2025, 2, 1), D(2025, 2, 28))
    assert billing_period_containing(D(2024, 2, 29), 1) == Period(D(2024, 2, 1), D(2024, 2, 29))


def test_monthly_billing_period_with_billing_day_28_in_february():
    # Jan 28..Feb 27 (31 days), then Feb 28..Mar 27.
    assert billing_period_containing(D(2025, 2, 27), 28) == Period(D(2025, 1, 28), D(2025, 2, 27))
    assert billing_period_containing(D(2025, 2, 28), 28) == Period(D(2025, 2, 28), D(2025, 3, 27))


def test_annual_billing_period():
    # Anchored on March 15.
    assert billing_period_containing(D(2025, 11, 14), 15, "annual", 3) == Period(
        D(2025, 3, 15), D(2026, 3, 14)
    )
    assert billing_period_containing(D(2025, 3, 14), 15, "annual", 3) == Period(
        D(2024, 3, 15), D(2025, 3, 14)
    )
    assert billing_period_containing(D(2025, 3, 15), 15, "annual", 3) == Period(
        D(2025, 3, 15), D(2026, 3, 14)
    )


def test_billing_periods_between():
    # Sep 20 lies in Sep 15..Oct 14; Nov 14 in Oct 15..Nov 14.
    assert billing_periods_between(D(2025, 9, 20), D(2025, 11, 14), 15, "monthly", 1) == [
        Period(D(2025, 9, 15), D(2025, 10, 14)),
        Period(D(2025, 10, 15), D(2025, 11, 14)),
    ]
    assert billing_periods_between(D(2024, 6, 1), D(2025, 6, 1), 1, "annual", 7) == [
        Period(D(2023, 7, 1), D(2024, 6, 30)),
        Period(D(2024, 7, 1), D(2025, 6, 30)),
    ]


# --- buckets -----------------------------------------------------------------------------------


def test_week_buckets_start_on_monday_and_are_clipped():
    # 2025-10-01 is a Wednesday, 2025-10-20 a Monday.
    assert buckets(Period(D(2025, 10, 1), D(2025, 10, 20)), "week") == [
        Period(D(2025, 10, 1), D(2025, 10, 5)),
        Period(D(2025, 10, 6), D(2025, 10, 12)),
        Period(D(2025, 10, 13), D(2025, 10, 19)),
        Period(D(2025, 10, 20), D(2025, 10, 20)),
    ]


def test_week_buckets_across_the_year_end():
    # 2025-12-29 is a Monday; its week runs into 2026.
    assert buckets(Period(D(2025, 12, 25), D(2026, 1, 6)), "week") == [
        Period(D(2025, 12, 25), D(2025, 12, 28)),
        Period(D(2025, 12, 29), D(2026, 1, 4)),
        Period(D(2026, 1, 5), D(2026, 1, 6)),
    ]


def test_month_and_day_buckets():
    assert buckets(Period(D(2025, 1, 15), D(2025, 3, 10)), "month") == [
        Period(D(2025, 1, 15), D(2025, 1, 31)),
        Period(D(2025, 2, 1), D(2025, 2, 28)),
        Period(D(2025, 3, 1), D(2025, 3, 10)),
    ]
    assert buckets(Period(D(2025, 12, 31), D(2026, 1, 2)), "day") == [
        Period(D(2025, 12, 31), D(2025, 12, 31)),
        Period(D(2026, 1, 1), D(2026, 1, 1)),
        Period(D(2026, 1, 2), D(2026, 1, 2)),
    ]
    assert buckets(Period(D(2025, 5, 5), D(2025, 5, 5)), "month") == [
        Period(D(2025, 5, 5), D(2025, 5, 5))
    ]


def test_bucket_start_and_bad_granularity():
    assert bucket_start(D(2025, 10, 5), "week") == D(2025, 9, 29)  # Sunday -> Monday before
    assert bucket_start(D(2025, 10, 6), "week") == D(2025, 10, 6)
    assert bucket_start(D(2025, 10, 31), "month") == D(2025, 10, 1)
    with pytest.raises(PeriodError) as info:
        buckets(Period(D(2025, 10, 1), D(2025, 10, 2)), "hour")
    assert info.value.field == "granularity"


# --- local day bounds ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "tz", "start", "end"),
    [
        # Berlin springs forward on 2025-03-30 (CET +01 -> CEST +02): a 23-hour day.
        (D(2025, 3, 30), "Europe/Berlin", datetime(2025, 3, 29, 23), datetime(2025, 3, 30, 22)),
        # ...and falls back on 2025-10-26: a 25-hour day.
        (D(2025, 10, 26), "Europe/Berlin", datetime(2025, 10, 25, 22), datetime(2025, 10, 26, 23)),
        # New York: spring forward 2025-03-09 (EST -05 -> EDT -04), fall back 2025-11-02.
        (D(2025, 3, 9), "America/New_York", datetime(2025, 3, 9, 5), datetime(2025, 3, 10, 4)),
        (D(2025, 11, 2), "America/New_York", datetime(2025, 11, 2, 4), datetime(2025, 11, 3, 5)),
        # Kathmandu is +05:45 all year: the day starts at 18:15 UTC the day before.
        (
            D(2025, 10, 1),
            "Asia/Kathmandu",
            datetime(2025, 9, 30, 18, 15),
            datetime(2025, 10, 1, 18, 15),
        ),
        # Havana skips midnight (00:00 CST -05 -> 01:00 CDT -04) on 2025-03-09: the day
        # starts at 01:00 CDT = 05:00 UTC.
        (D(2025, 3, 9), "America/Havana", datetime(2025, 3, 9, 5), datetime(2025, 3, 10, 4)),
        (D(2025, 10, 1), "UTC", datetime(2025, 10, 1), datetime(2025, 10, 2)),
    ],
)
def test_day_bounds_in_utc(day, tz, start, end):
    assert day_start_utc(day, tz) == start
    assert day_end_utc(day, tz) == end


def test_unknown_timezone():
    assert periods.is_valid_timezone("Europe/Berlin")
    assert periods.is_valid_timezone("UTC")
    assert not periods.is_valid_timezone("Mars/Olympus")
    with pytest.raises(ValueError, match="unknown timezone"):
        periods.zone("Mars/Olympus")


# --- decompose: the rollup rows that cover a period --------------------------------------


def _days_of(grain, starts):
    """Every day held by the buckets of grain starting from starts.start to starts.end,
    walked with plain date arithmetic (not with the code under test)."""
    day, out = starts.start, []
    while day <= starts.end:
        if grain == "day":
            out.append(day)
            day += timedelta(days=1)
            continue
        if grain == "week":
            assert day.weekday() == 0, f"week bucket starting on {day}"
            following = day + timedelta(days=7)
        else:
            assert day.day == 1, f"month bucket starting on {day}"
            following = date(day.year + day.month // 12, day.month % 12 + 1, 1)
        while day < following:
            out.append(day)
            day += timedelta(days=1)
    return out


@settings(max_examples=300, deadline=None)
@given(start=st.dates(date(2023, 1, 1), date(2027, 12, 31)), length=st.integers(1, 800))
def test_decompose_covers_every_day_of_the_period_once(start, length):
    period = Period(start, start + timedelta(days=length - 1))
    covered = [
        day for grain, starts in periods.decompose(period) for day in _days_of(grain, starts)
    ]
    assert sorted(covered) == [period.start + timedelta(days=i) for i in range(length)]
    assert len(covered) == len(set(covered))
    # A day is read from the daily rollup only when neither its month nor its week (from
    # Monday, outside whole months) lies wholly inside the period.
    for grain, starts in periods.decompose(period):
        if grain == "day":
            for day in _days_of(grain, starts):
                assert not _in_whole_month(day, period), day
                monday = day - timedelta(days=day.weekday())
                week = [monday + timedelta(days=i) for i in range(7)]
                assert not all(d in period and not _in_whole_month(d, period) for d in week), day


def _in_whole_month(day, period):
    first = day.replace(day=1)
    last = date(first.year + first.month // 12, first.month % 12 + 1, 1) - timedelta(days=1)
    return period.start <= first and last <= period.end


def test_decompose_a_year_aligned_on_months_is_twelve_months():
    assert periods.decompose(Period(D(2025, 1, 1), D(2025, 12, 31))) == [
        ("month", Period(D(2025, 1, 1), D(2025, 12, 1)))
    ]


def test_decompose_thirty_days_is_whole_weeks_between_two_day_ranges():
    # 2025-10-28 is a Tuesday, 2025-11-26 a Wednesday; no whole month fits.
    assert periods.decompose(Period(D(2025, 10, 28), D(2025, 11, 26))) == [
        ("day", Period(D(2025, 10, 28), D(2025, 11, 2))),
        ("week", Period(D(2025, 11, 3), D(2025, 11, 17))),
        ("day", Period(D(2025, 11, 24), D(2025, 11, 26))),
    ]


def test_whole_buckets_none_when_no_bucket_fits():
    assert periods.whole_buckets(Period(D(2025, 10, 1), D(2025, 10, 5)), "week") is None
    assert periods.whole_buckets(Period(D(2025, 10, 2), D(2025, 10, 31)), "month") is None
    assert periods.whole_buckets(Period(D(2025, 10, 6), D(2025, 10, 12)), "week") == Period(
        D(2025, 10, 6), D(2025, 10, 6)
    )


# --- the comparable period before (spec §4, compare=previous) -------------------------
# Every expected pair below is worked out by hand from the rule's five cases and its
# rule for shifting dates.


def _day(text: str) -> date:
    return date.fromisoformat(text)


def _period(text: str) -> Period:
    start, end = text.split("..")
    return Period(date.fromisoformat(start), date.fromisoformat(end))


@pytest.mark.parametrize(
    ("today", "preset", "current", "previous", "rule"),
    [
        # Tue 1 Dec 2026.
        ("2026-12-01", "last_7_days", "2026-11-25..2026-12-01", "2026-11-18..2026-11-24", "days"),
        ("2026-12-01", "last_30_days", "2026-11-02..2026-12-01", "2026-10-03..2026-11-01", "days"),
        ("2026-12-01", "last_90_days", "2026-09-03..2026-12-01", "2026-06-05..2026-09-02", "days"),
        (
            "2026-12-01",
            "month_to_date",
            "2026-12-01..2026-12-01",
            "2026-11-01..2026-11-01",
            "month",
        ),
        ("2026-12-01", "last_month", "2026-11-01..2026-11-30", "2026-10-01..2026-10-31", "month"),
        (
            "2026-12-01",
            "quarter_to_date",
            "2026-10-01..2026-12-01",
            "2026-07-01..2026-09-01",
            "quarter",
        ),
        ("2026-12-01", "year_to_date", "2026-01-01..2026-12-01", "2025-01-01..2025-12-01", "year"),
        (
            "2026-12-01",
            "last_12_months",
            "2025-12-02..2026-12-01",
            "2024-12-02..2025-12-01",
            "days",
        ),
        # 15 Jan: month, quarter and year to date are all 1-15 Jan, compared a month back.
        (
            "2026-01-15",
            "month_to_date",
            "2026-01-01..2026-01-15",
            "2025-12-01..2025-12-15",
            "month",
        ),
        (
            "2026-01-15",
            "quarter_to_date",
            "2026-01-01..2026-01-15",
            "2025-12-01..2025-12-15",
            "month",
        ),
        ("2026-01-15", "year_to_date", "2026-01-01..2026-01-15", "2025-12-01..2025-12-15", "month"),
        ("2026-01-15", "last_month", "2025-12-01..2025-12-31", "2025-11-01..2025-11-30", "month"),
        # 10 Feb: year to date (and quarter to date, the same dates) a year back.
        ("2026-02-10", "year_to_date", "2026-01-01..2026-02-10", "2025-01-01..2025-02-10", "year"),
        (
            "2026-02-10",
            "quarter_to_date",
            "2026-01-01..2026-02-10",
            "2025-01-01..2025-02-10",
            "year",
        ),
        (
            "2026-02-10",
            "month_to_date",
            "2026-02-01..2026-02-10",
            "2026-01-01..2026-01-10",
            "month",
        ),
        ("2026-02-10", "last_month", "2026-01-01..2026-01-31", "2025-12-01..2025-12-31", "month"),
        # 29 Feb 2028 is its month's last day: it maps to the last day of the target month.
        (
            "2028-02-29",
            "month_to_date",
            "2028-02-01..2028-02-29",
            "2028-01-01..2028-01-31",
            "month",
        ),
        ("2028-02-29", "year_to_date", "2028-01-01..2028-02-29", "2027-01-01..2027-02-28", "year"),
        (
            "2028-02-29",
            "last_12_months",
            "2027-03-01..2028-02-29",
            "2026-03-01..2027-02-28",
            "months",
        ),
        ("2028-02-29", "last_month", "2028-01-01..2028-01-31", "2027-12-01..2027-12-31", "month"),
        # 30 Nov: the last day of November maps to the last day of October.
        (
            "2026-11-30",
            "month_to_date",
            "2026-11-01..2026-11-30",
            "2026-10-01..2026-10-31",
            "month",
        ),
        (
            "2026-11-30",
            "quarter_to_date",
            "2026-10-01..2026-11-30",
            "2026-07-01..2026-08-31",
            "quarter",
        ),
        ("2026-11-30", "year_to_date", "2026-01-01..2026-11-30", "2025-01-01..2025-11-30", "year"),
        ("2026-11-30", "last_7_days", "2026-11-24..2026-11-30", "2026-11-17..2026-11-23", "days"),
        # 31 Dec: the whole year against the year before; the last 12 months are the year.
        ("2026-12-31", "year_to_date", "2026-01-01..2026-12-31", "2025-01-01..2025-12-31", "year"),
        (
            "2026-12-31",
            "last_12_months",
            "2026-01-01..2026-12-31",
            "2025-01-01..2025-12-31",
            "year",
        ),
        (
            "2026-12-31",
            "quarter_to_date",
            "2026-10-01..2026-12-31",
            "2026-07-01..2026-09-30",
            "quarter",
        ),
        (
            "2026-12-31",
            "month_to_date",
            "2026-12-01..2026-12-31",
            "2026-11-01..2026-11-30",
            "month",
        ),
    ],
)
def test_every_preset_is_compared_by_the_one_rule(today, preset, current, previous, rule):
    result = periods.comparison(periods.preset_period(preset, _day(today)), _day(today))
    assert (result.current, result.previous, result.rule) == (
        _period(current),
        _period(previous),
        rule,
    )


@pytest.mark.parametrize(
    ("start", "end", "today", "current", "previous", "rule"),
    [
        # spec §4's own examples
        ("2025-07-01", "2026-06-30", "2026-11-29", None, "2024-07-01..2025-06-30", "months"),
        ("2026-10-15", "2026-11-14", "2026-11-29", None, "2026-09-14..2026-10-14", "days"),
        ("2026-02-01", "2026-03-15", "2026-11-29", None, "2025-12-20..2026-01-31", "days"),
        ("2026-03-01", "2026-03-31", "2026-11-29", None, "2026-02-01..2026-02-28", "month"),
        ("2026-03-01", "2026-03-30", "2026-11-29", None, "2026-02-01..2026-02-28", "month"),
        ("2026-04-01", "2026-05-31", "2026-11-29", None, "2026-01-01..2026-02-28", "quarter"),
        ("2026-09-01", "2026-11-15", "2026-11-29", None, "2026-06-17..2026-08-31", "days"),
        ("2025-01-01", "2026-03-31", "2026-11-29", None, "2023-10-01..2024-12-31", "months"),
        # a period ending after today is compared through today, on both sides
        (
            "2026-11-01",
            "2026-11-30",
            "2026-11-29",
            "2026-11-01..2026-11-29",
            "2026-10-01..2026-10-29",
            "month",
        ),
        (
            "2026-01-01",
            "2026-12-31",
            "2026-11-29",
            "2026-01-01..2026-11-29",
            "2025-01-01..2025-11-29",
            "year",
        ),
        # a period wholly after today is left as it is
        ("2026-12-01", "2026-12-31", "2026-11-29", None, "2026-11-01..2026-11-30", "month"),
    ],
)
def test_custom_ranges_are_compared_by_the_one_rule(start, end, today, current, previous, rule):
    asked = Period(_day(start), _day(end))
    result = periods.comparison(asked, _day(today))
    assert result.current == (_period(current) if current else asked)
    assert (result.previous, result.rule) == (_period(previous), rule)
