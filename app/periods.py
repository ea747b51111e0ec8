"""Dates: parsing, presets, previous and billing periods, buckets, in a partner's timezone.

A partner's billing periods live here with the rule that draws them: both metrics (pool
figures) and billing (costs) need them, and billing imports metrics, so in either of
those modules they would make an import cycle. This module imports neither (the Partner
type is read for annotations only).

Its length (about 630 lines) is that of the date rules, kept together because each builds
on the others: presets, the comparable period, billing periods and buckets all shift and
clip the same calendar days in the same timezone, with the same bounds (MIN_DATE, MAX_DATE,
MAX_SPAN_DAYS). A split would put one rule's two halves in two modules.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from .timeutil import to_utc_naive, utcnow

if TYPE_CHECKING:
    from .models import Partner

MAX_SPAN_DAYS = 3660
# Dates outside this window are refused: they are typos, and they keep date arithmetic
# (previous periods, day ends) far from the edges of the calendar.
MIN_DATE = date(1970, 1, 1)
MAX_DATE = date(2999, 12, 31)
GRANULARITIES = ("day", "week", "month")

# ASCII digits only ("\d" also matches other scripts' digits). DATE_RE is applied with
# fullmatch; TIMESTAMP_START_RE checks only how a timestamp starts (with match), and
# datetime.fromisoformat then judges the whole text.
DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
TIMESTAMP_START_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}")


class PeriodError(ValueError):
    """A date parameter that cannot be used; names the field and the offending value."""

    def __init__(self, field: str, value: object, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.value = value
        self.message = message


@dataclass(frozen=True)
class Period:
    """An inclusive range of calendar days."""

    start: date
    end: date

    @property
    def days(self) -> int:
        """Return the number of days in the period, both ends included."""
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        """Return the equally long period that ends the day before this one starts."""
        end = self.start - timedelta(days=1)
        return Period(end - timedelta(days=self.days - 1), end)

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.start <= day <= self.end

    def iso(self) -> dict[str, str]:
        """Return the period as the API echoes it."""
        return {"startDate": self.start.isoformat(), "endDate": self.end.isoformat()}


# --- timezones ---------------------------------------------------------------------


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    """Return the ZoneInfo for an IANA name (raises ValueError when unknown)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ValueError(f"unknown timezone {name!r}") from exc


def is_valid_timezone(name: str) -> bool:
    """Tell whether name is an IANA timezone this machine knows."""
    return isinstance(name, str) and name in _timezone_names()


@lru_cache(maxsize=1)
def timezone_names() -> list[str]:
    """Return every IANA timezone name this machine knows, sorted (the pages' choices)."""
    return sorted(_timezone_names())


@lru_cache(maxsize=1)
def _timezone_names() -> frozenset[str]:
    return frozenset(available_timezones()) | {"UTC"}


def local_now(tz: str) -> datetime:
    """Return the current time in timezone tz (aware)."""
    return utcnow().replace(tzinfo=UTC).astimezone(zone(tz))


def local_today(tz: str) -> date:
    """Return today's date in timezone tz."""
    return local_now(tz).date()


def local_date_of(moment: datetime, tz: str) -> date:
    """Return the calendar day in tz of a moment (naive means UTC)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(zone(tz)).date()


def local_date_function(tz: str) -> Callable[[datetime], date]:
    """Return f(naive UTC moment) -> its calendar day in tz, as validate_event computes it.

    The UTC offset is looked up once per hour of UTC time (not per event); an hour in
    which the offset changes (a DST switch) is computed event by event.
    """
    if tz == "UTC":
        return datetime.date
    target = zone(tz)
    offsets: dict[datetime, timedelta | None] = {}

    def local_date(moment: datetime) -> date:
        hour = moment.replace(minute=0, second=0, microsecond=0)
        try:
            offset = offsets[hour]
        except KeyError:
            first = hour.replace(tzinfo=UTC).astimezone(target).utcoffset()
            last = (
                (hour + timedelta(hours=1, microseconds=-1))
                .replace(tzinfo=UTC)
                .astimezone(target)
                .utcoffset()
            )
            offset = first if first == last else None
            if len(offsets) > 100_000:
                offsets.clear()
            offsets[hour] = offset
        if offset is None:
            return moment.replace(tzinfo=UTC).astimezone(target).date()
        return (moment + offset).date()

    return local_date


def day_start_utc(day: date, tz: str) -> datetime:
    """Return the first instant of a local day as naive UTC (DST-safe)."""
    # A wall time that does not exist (a DST gap at midnight) resolves with the offset
    # in force before the gap, which is exactly the first instant of the day.
    return to_utc_naive(datetime.combine(day, time(0), tzinfo=zone(tz)))


def day_end_utc(day: date, tz: str) -> datetime:
    """Return the first instant after a local day as naive UTC (exclusive bound)."""
    return day_start_utc(day + timedelta(days=1), tz)


# --- parsing -------------------------------------------------------------------------


def read_date(text: str, tz: str) -> date:
    """Read YYYY-MM-DD, or an ISO 8601 timestamp whose local date in tz is taken, with no
    bounds; raise ValueError for anything else (the pages apply their own bounds)."""
    text = text.strip()
    try:
        if DATE_RE.fullmatch(text):
            return date.fromisoformat(text)
        if TIMESTAMP_START_RE.match(text):
            return local_date_of(datetime.fromisoformat(text), tz)
    except OverflowError as exc:
        # A timestamp near year 1 or 9999 whose offset leaves the calendar.
        raise ValueError(text) from exc
    raise ValueError(text)


def parse_date(value: object, field: str, tz: str) -> date:
    """Parse YYYY-MM-DD, or an ISO 8601 timestamp whose local date in tz is taken."""
    if not isinstance(value, str) or not value.strip():
        raise PeriodError(field, value, f"{field} must be a date (YYYY-MM-DD)")
    try:
        day = read_date(value, tz)
    except ValueError as exc:
        raise PeriodError(
            field, value, f"{field} must be a date (YYYY-MM-DD) or an ISO 8601 timestamp"
        ) from exc
    if not MIN_DATE <= day <= MAX_DATE:
        raise PeriodError(
            field,
            value,
            f"{field} must be between {MIN_DATE.isoformat()} and {MAX_DATE.isoformat()}",
        )
    return day


def parse_moment(value: object, field: str, tz: str) -> datetime:
    """Parse a date or a timestamp as parse_date does, to naive UTC: a bare date is the first
    instant of that day in tz (an organization created "on 2025-10-01" counts from that
    local day on)."""
    day = parse_date(value, field, tz)
    text = str(value).strip()
    if DATE_RE.fullmatch(text):
        return day_start_utc(day, tz)
    return to_utc_naive(datetime.fromisoformat(text))


def check_period(period: Period, start_field: str = "startDate") -> Period:
    """Return period when it is usable; raise PeriodError naming the field otherwise."""
    if period.start > period.end:
        raise PeriodError(
            start_field, period.start.isoformat(), "startDate must not be after endDate"
        )
    if period.days > MAX_SPAN_DAYS:
        raise PeriodError(
            start_field,
            period.start.isoformat(),
            f"the period spans {period.days} days; at most {MAX_SPAN_DAYS} are allowed",
        )
    return period


def default_analytics_period(tz: str) -> Period:
    """Return the analytics default: today - 30 days through today."""
    today = local_today(tz)
    return Period(today - timedelta(days=30), today)


def default_usage_period(tz: str) -> Period:
    """Return the usage default: the first of the current month through today."""
    today = local_today(tz)
    return Period(today.replace(day=1), today)


def resolve_period(
    start_raw: str | None,
    end_raw: str | None,
    tz: str,
    default: Period,
) -> Period:
    """Build the period from optional startDate/endDate texts, filling gaps from default.

    When only endDate is given, the default's length is kept and it ends there; when only
    startDate is given, the period runs to the default's end (today).
    """
    start = parse_date(start_raw, "startDate", tz) if start_raw not in (None, "") else None
    end = parse_date(end_raw, "endDate", tz) if end_raw not in (None, "") else None
    if start is None and end is None:
        return check_period(default)
    if start is None:
        assert end is not None
        start = end - timedelta(days=default.days - 1)
        if start < MIN_DATE:
            start = MIN_DATE
    if end is None:
        end = default.end
    return check_period(Period(start, end))


# --- presets -------------------------------------------------------------------------

PRESETS: dict[str, str] = {
    "last_7_days": "Last 7 days",
    "last_30_days": "Last 30 days",
    "last_90_days": "Last 90 days",
    "month_to_date": "Month to date",
    "last_month": "Last month",
    "quarter_to_date": "Quarter to date",
    "year_to_date": "Year to date",
    "last_12_months": "Last 12 months",
}


def add_months(day: date, months: int) -> date:
    """Return day moved by whole months, clamped to the end of a shorter month."""
    index = day.year * 12 + (day.month - 1) + months
    year, month0 = divmod(index, 12)
    last = _month_length(year, month0 + 1)
    return date(year, month0 + 1, min(day.day, last))


def _month_length(year: int, month: int) -> int:
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    return (nxt - timedelta(days=1)).day


def month_period(year: int, month: int) -> Period:
    """Return the calendar month as a period."""
    first = date(year, month, 1)
    return Period(first, date(year, month, _month_length(year, month)))


def preset_period(key: str, today: date) -> Period:
    """Return the period a preset names, relative to today ("last N days" include today)."""
    if key == "last_7_days":
        return Period(today - timedelta(days=6), today)
    if key == "last_30_days":
        return Period(today - timedelta(days=29), today)
    if key == "last_90_days":
        return Period(today - timedelta(days=89), today)
    if key == "month_to_date":
        return Period(today.replace(day=1), today)
    if key == "last_month":
        first_this = today.replace(day=1)
        last_prev = first_this - timedelta(days=1)
        return month_period(last_prev.year, last_prev.month)
    if key == "quarter_to_date":
        first_month = 3 * ((today.month - 1) // 3) + 1
        return Period(date(today.year, first_month, 1), today)
    if key == "year_to_date":
        return Period(date(today.year, 1, 1), today)
    if key == "last_12_months":
        return Period(add_months(today, -12) + timedelta(days=1), today)
    raise PeriodError("preset", key, f"unknown preset; choose one of {', '.join(PRESETS)}")


# --- the comparable period before (spec §4, compare=previous) ------------------------


@dataclass(frozen=True)
class Comparison:
    """A period as compared (clipped to today) and the comparable period before it.

    rule names the case of spec §4 that chose `previous`: year (to date), quarter (to
    date), month (to date, or a whole month), months (a run of whole months) or days.
    """

    current: Period
    previous: Period
    rule: str

    @property
    def reason(self) -> str:
        """Say in words which period the rule chose: 'the same dates a month earlier'."""
        if self.rule == "year":
            return "the same dates a year earlier"
        if self.rule == "quarter":
            return "the same dates three months earlier"
        if self.rule == "month":
            whole = self.current.start.day == 1 and _is_month_end(self.current.end)
            return "the month before" if whole else "the same dates a month earlier"
        if self.rule == "months":
            start, end = self.current.start, self.current.end
            months = (end.year - start.year) * 12 + end.month - start.month + 1
            return f"the {months} months before" if months != 1 else "the month before"
        days = self.current.days
        return f"the {days} days before" if days != 1 else "the day before"


def _is_month_end(day: date) -> bool:
    return day.day == _month_length(day.year, day.month)


def shift_months(period: Period, months: int) -> Period:
    """Return period moved by whole months (back when negative), as spec §4 shifts dates.

    An end on its month's last day maps to the target month's last day; any other day is
    clamped to the target month's length (1-29 Nov -> 1-29 Oct, 1-31 Mar -> 1-28 Feb,
    1-30 Nov -> 1-31 Oct).
    """
    end = add_months(period.end, months)
    if _is_month_end(period.end):
        end = end.replace(day=_month_length(end.year, end.month))
    return Period(add_months(period.start, months), end)


def comparison(period: Period, today: date) -> Comparison:
    """Return the period compared through today and the comparable period before it.

    The one rule every change on a page, in a report and in the API follows (spec §4):
    the first case that applies, from the dates alone.
    """
    current = Period(period.start, today) if period.start <= today < period.end else period
    start, end = current.start, current.end
    if start.day == 1:
        same_year = start.year == end.year
        if start.month == 1 and same_year and end.month >= 2:
            return Comparison(current, shift_months(current, -12), "year")
        quarter_month = (start.month - 1) % 3 == 0
        if quarter_month and same_year and 1 <= end.month - start.month <= 2:
            return Comparison(current, shift_months(current, -3), "quarter")
        if same_year and end.month == start.month:
            return Comparison(current, shift_months(current, -1), "month")
        if _is_month_end(end):
            months = (end.year - start.year) * 12 + end.month - start.month + 1
            return Comparison(current, shift_months(current, -months), "months")
    return Comparison(current, current.previous(), "days")


# --- billing periods -----------------------------------------------------------------


def billing_period_containing(
    day: date, billing_day: int, billing_period: str = "monthly", anchor_month: int = 1
) -> Period:
    """Return the billing period that contains day.

    Monthly periods start on billing_day of every month; annual periods start on
    billing_day of anchor_month every year.
    """
    if billing_period == "annual":
        start = date(day.year, anchor_month, billing_day)
        if start > day:
            start = date(day.year - 1, anchor_month, billing_day)
        return Period(start, add_months(start, 12) - timedelta(days=1))
    start = date(day.year, day.month, billing_day)
    if start > day:
        start = add_months(start, -1)
    return Period(start, add_months(start, 1) - timedelta(days=1))


def billing_periods_between(
    first_day: date, last_day: date, billing_day: int, billing_period: str, anchor_month: int
) -> list[Period]:
    """Return every billing period touching first_day..last_day, oldest first."""
    periods = []
    current = billing_period_containing(first_day, billing_day, billing_period, anchor_month)
    while current.start <= last_day:
        periods.append(current)
        nxt = current.end + timedelta(days=1)
        current = billing_period_containing(nxt, billing_day, billing_period, anchor_month)
    return periods


def _billing_anchor_month(partner: Partner) -> int:
    """Return the month annual billing periods start in: the partner's creation month."""
    if partner.created_at is None:
        return 1
    return local_date_of(partner.created_at, partner.timezone).month


class BillingDayChange(Protocol):
    """A version of a partner's terms, as the billing schedule reads it (PartnerTerms)."""

    @property
    def effective_from(self) -> date: ...

    @property
    def billing_day_of_month(self) -> int: ...


def scheduled_billing_period(
    day: date,
    versions: Sequence[BillingDayChange],
    billing_period: str = "monthly",
    anchor_month: int = 1,
) -> Period:
    """Return the billing period containing day when the billing day changes by version.

    versions are sorted by effective_from, each the first day of the billing period from
    which it applies (docs/billing-terms.md). The version in force on day is the last one
    that starts on or before it (the first one before any starts: the partner's terms
    before versions existed). Its billing day draws the period containing day, which is
    cut so that it starts no earlier than that version and ends before the next one: the
    first period of a new billing day runs from the old schedule's boundary to the new
    day's next boundary (1 Apr - 14 Apr when day 1 becomes day 15 from 1 Apr).
    """
    index = 0
    for i, version in enumerate(versions):
        if version.effective_from <= day:
            index = i
    current = versions[index]
    found = billing_period_containing(
        day, current.billing_day_of_month, billing_period, anchor_month
    )
    start, end = found.start, found.end
    if index > 0:
        start = max(start, current.effective_from)
    if index + 1 < len(versions):
        end = min(end, versions[index + 1].effective_from - timedelta(days=1))
    return Period(start, end)


def billing_period(partner: Partner, day: date) -> Period:
    """Return the partner's billing period containing day (its terms' billing days)."""
    versions = partner.terms_versions
    if not versions:
        return billing_period_containing(
            day,
            partner.billing_day_of_month,
            partner.billing_period,
            _billing_anchor_month(partner),
        )
    return scheduled_billing_period(
        day, versions, partner.billing_period, _billing_anchor_month(partner)
    )


def billing_periods(partner: Partner, start: date, end: date) -> list[Period]:
    """Return the partner's billing periods that touch start..end, oldest first."""
    if not partner.terms_versions:
        return billing_periods_between(
            start,
            end,
            partner.billing_day_of_month,
            partner.billing_period,
            _billing_anchor_month(partner),
        )
    periods = []
    current = billing_period(partner, start)
    while current.start <= end:
        periods.append(current)
        current = billing_period(partner, current.end + timedelta(days=1))
    return periods


def current_billing_period(partner: Partner) -> Period:
    """Return the billing period that contains the partner's today."""
    return billing_period(partner, local_today(partner.timezone))


# --- buckets -------------------------------------------------------------------------


def as_date(value: object) -> date:
    """Return a day read back from the database: a date, a datetime or ISO text (SQLite)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def bucket_start(day: date, granularity: str) -> date:
    """Return the start of the day/week (Monday)/month bucket that holds day."""
    if granularity == "day":
        return day
    if granularity == "week":
        return day - timedelta(days=day.weekday())
    if granularity == "month":
        return day.replace(day=1)
    raise PeriodError("granularity", granularity, "granularity must be day, week or month")


def buckets(period: Period, granularity: str) -> list[Period]:
    """Return every bucket of the period, each clipped to the period."""
    result = []
    start = period.start
    while start <= period.end:
        end = min(bucket_end(bucket_start(start, granularity), granularity), period.end)
        result.append(Period(start, end))
        start = end + timedelta(days=1)
    return result


def bucket_length(day: date, granularity: str) -> int:
    """Return how many days the whole (unclipped) bucket holding day has."""
    start = bucket_start(day, granularity)
    return (bucket_end(start, granularity) - start).days + 1


def counted_days(bucket: Period, granularity: str, today: date) -> tuple[int, bool]:
    """Return the days of a clipped bucket counted through today, and whether the bucket
    is partial: clipped by its period, or not over yet (spec §4, timeseries)."""
    days = max(0, (min(bucket.end, today) - bucket.start).days + 1)
    whole = bucket.days == bucket_length(bucket.start, granularity)
    return days, not whole or bucket.end >= today


ROLLUP_GRAINS = ("month", "week")
# partner_activity's grains: every day, and the buckets of org_bucket_usage.
ACTIVITY_GRAINS = ("day", *ROLLUP_GRAINS)


def bucket_end(start: date, granularity: str) -> date:
    """Return the last day of the unclipped bucket that starts on start."""
    if granularity == "day":
        return start
    if granularity == "week":
        return start + timedelta(days=6)
    return add_months(start, 1) - timedelta(days=1)


def whole_buckets(period: Period, granularity: str) -> Period | None:
    """Return the starts of the first and last buckets lying wholly inside period (as a
    Period of bucket starts), or None when no bucket fits."""
    first = bucket_start(period.start, granularity)
    if first < period.start:
        first = bucket_end(first, granularity) + timedelta(days=1)
    last = bucket_start(period.end, granularity)
    if bucket_end(last, granularity) > period.end:
        last = bucket_start(last - timedelta(days=1), granularity)
    if first > last:
        return None
    return Period(first, last)


def decompose(period: Period) -> list[tuple[str, Period]]:
    """Cover period exactly with as few rollup rows as possible: whole months, then whole
    weeks of what is left on either side, then single days.

    Returns (grain, starts) pairs, where starts is the Period from the first to the last
    bucket start of that grain; the buckets of all pairs together hold every day of period
    once. A year aligned on months is 12 monthly rows per organization and type instead
    of 365 daily ones.
    """
    parts: list[tuple[str, Period]] = []

    def cover(piece: Period, grains: tuple[str, ...]) -> None:
        if piece.start > piece.end:
            return
        if not grains:
            parts.append(("day", piece))
            return
        grain, rest = grains[0], grains[1:]
        inner = whole_buckets(piece, grain)
        if inner is None:
            cover(piece, rest)
            return
        cover(Period(piece.start, inner.start - timedelta(days=1)), rest)
        parts.append((grain, inner))
        cover(Period(bucket_end(inner.end, grain) + timedelta(days=1), piece.end), rest)

    cover(period, ROLLUP_GRAINS)
    return parts


def auto_granularity(period: Period) -> str:
    """Choose a readable granularity: days up to ~3 months, weeks up to a year, else months."""
    if period.days <= 92:
        return "day"
    if period.days <= 366:
        return "week"
    return "month"
