"""Month-end reports: one calendar month's figures as plain data.

Every number comes from app/metrics.py, so the report page, its CSV and JSON downloads
(app/exports.py), the API and `flask report` cannot disagree. A month is a calendar month
in the partner's timezone; it closes at the first instant of the next month there.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta
from typing import Any

from . import metrics
from .errors import AppError
from .models import Partner
from .periods import (
    Period,
    add_months,
    day_start_utc,
    local_today,
    month_period,
)
from .timeutil import iso_z, utcnow

MONTH_RE = re.compile(r"([0-9]{4})-([0-9]{2})")  # fullmatch: the whole text


# --- months ------------------------------------------------------------------------------


def month_key(day: date) -> str:
    """Return the YYYY-MM key of the month holding day."""
    return f"{day.year:04d}-{day.month:02d}"


def month_label(year: int, month: int) -> str:
    """Return a month's name, such as October 2025."""
    return f"{calendar.month_name[month]} {year}"


def available_months(partner: Partner) -> list[str]:
    """Return every month from the first with data through the current one, newest first.

    Months are calendar months in the partner's timezone; a partner without any usage
    has no reports yet.
    """
    first = metrics.first_activity_day(partner)
    if first is None:
        return []
    today = local_today(partner.timezone)
    months = []
    cursor = min(first, today).replace(day=1)
    while cursor <= today:
        months.append(month_key(cursor))
        cursor = add_months(cursor, 1)
    return list(reversed(months))


def _not_found(text: str, message: str) -> AppError:
    return AppError("NotFound", message, {"field": "month", "value": str(text)[:20]})


def parse_month(partner: Partner, text: str) -> tuple[int, int]:
    """Return (year, month) for a YYYY-MM that has a report, or raise NotFound saying why."""
    match = MONTH_RE.fullmatch(text or "")
    if match is None:
        raise _not_found(text, "a report month is written YYYY-MM, for example 2025-10")
    year, month = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12 or year < 1970:
        raise _not_found(text, f"{text} is not a calendar month")
    today = local_today(partner.timezone)
    if (year, month) > (today.year, today.month):
        raise _not_found(
            text,
            f"{month_label(year, month)} has not started yet "
            f"(today is {today.isoformat()} in {partner.timezone})",
        )
    months = available_months(partner)
    if f"{year:04d}-{month:02d}" not in months:
        if not months:
            raise _not_found(text, "there is no usage data yet, so there are no reports")
        raise _not_found(
            text,
            f"there is no data for {month_label(year, month)}: "
            f"the first month with data is {months[-1]}",
        )
    return year, month


# --- the report --------------------------------------------------------------------------


def _date(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _share(part: int, total: int) -> float | None:
    return round(part / total, 4) if total else None


def month_report(partner: Partner, year: int, month: int) -> dict[str, Any]:
    """Return the month-end report of one calendar month as JSON-ready data.

    The current month is reported to date (through today). Figures include every event
    stored so far; lateData tells how much of it arrived after the month closed.
    """
    tz = partner.timezone
    full = month_period(year, month)
    today = local_today(tz)
    complete = today > full.end
    period = full if complete else Period(full.start, today)
    prev_start = add_months(full.start, -1)
    prev_full = month_period(prev_start.year, prev_start.month)
    next_first = full.end + timedelta(days=1)

    current = metrics.summary(partner, period)
    previous = metrics.summary(partner, prev_full)
    organizations, totals, idle = _organization_table(partner, period, current)
    return {
        "partnerId": partner.id,
        "partnerName": partner.name,
        "partnerSlug": partner.slug,
        "timezone": tz,
        "month": month_key(full.start),
        "monthLabel": month_label(year, month),
        "startDate": full.start.isoformat(),
        "endDate": full.end.isoformat(),
        "throughDate": period.end.isoformat(),
        "complete": complete,
        "closedAt": iso_z(day_start_utc(next_first, tz)),
        "generatedAt": iso_z(utcnow()),
        "dataReceivedThrough": iso_z(metrics.data_freshness(partner)),
        "summary": current,
        "previousMonth": month_key(prev_full.start),
        "previousMonthLabel": month_label(prev_full.start.year, prev_full.start.month),
        "previous": previous,
        "change": metrics.compare(current, previous),
        "daily": metrics.timeseries(partner, period, "day"),
        "organizations": organizations,
        "totals": totals,
        "activeWithoutIdentifications": idle,
        "billingPeriods": _billing_overlap(partner, full, period),
        "lateData": _late_data(partner, period, next_first, complete, current),
    }


def _organization_table(
    partner: Partner, period: Period, current: dict[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, Any], list[dict[str, Any]]]:
    """Return the per-organization rows, their totals, and the active ones without usage.

    An organization is listed when it had events in the month, or existed at its end and
    was not canceled for the whole of it.
    """
    items, _count = metrics.organization_breakdown(
        partner, period, sort="identifications", order="desc", page=1, page_size=10**9
    )
    states = metrics.organization_states(partner, period)
    total_identifications = current["totalIdentifications"]
    rows: list[dict[str, Any]] = []
    idle: list[dict[str, Any]] = []
    for item in items:
        state = states[item["organizationId"]]
        dormant = (
            state["statusAtStart"] == "canceled"
            and state["statusAtEnd"] == "canceled"
            and not state["reactivated"]
        )
        if item["events"] == 0 and (state["statusAtEnd"] is None or dormant):
            continue
        share = _share(item["identifications"], total_identifications)
        rows.append(
            {
                "organizationId": item["organizationId"],
                "name": item["name"],
                "externalId": item["externalId"],
                "identifications": item["identifications"],
                "creditsUsed": item["creditsUsed"],
                "events": item["events"],
                "quantity": item["quantity"],
                "share": share,
                "sharePercent": round(share * 100, 2) if share is not None else None,
                "creditsAllocated": state["creditsAllocatedAtEnd"],
                "statusAtEnd": state["statusAtEnd"],
                "new": state["new"],
                "churned": state["churned"],
                "reactivated": state["reactivated"],
            }
        )
        if state["statusAtEnd"] == "active" and item["identifications"] == 0:
            idle.append(
                {
                    "organizationId": item["organizationId"],
                    "name": item["name"],
                    "externalId": item["externalId"],
                    "events": item["events"],
                }
            )
    totals = {
        "organizations": len(rows),
        "identifications": sum(r["identifications"] for r in rows),
        "creditsUsed": sum(r["creditsUsed"] for r in rows),
        "events": sum(r["events"] for r in rows),
        "quantity": sum(r["quantity"] for r in rows),
        "share": 1.0 if total_identifications else None,
        "sharePercent": 100.0 if total_identifications else None,
        "creditsAllocated": sum(r["creditsAllocated"] for r in rows),
        "new": sum(1 for r in rows if r["new"]),
        "churned": sum(1 for r in rows if r["churned"]),
        "reactivated": sum(1 for r in rows if r["reactivated"]),
    }
    idle.sort(key=lambda i: (i["name"].lower(), i["organizationId"]))
    return rows, totals, idle


def _billing_overlap(partner: Partner, full: Period, period: Period) -> list[dict[str, Any]]:
    """Return the billing periods the month touches, with its days and usage in each."""
    segments = []
    for bp in metrics.billing_periods(partner, full.start, full.end):
        overlap = Period(max(bp.start, full.start), min(bp.end, full.end))
        counted = Period(overlap.start, min(overlap.end, period.end))
        used = metrics.credits_used(partner, counted) if counted.start <= counted.end else 0
        segments.append(
            {
                "billingPeriodStart": bp.start.isoformat(),
                "billingPeriodEnd": bp.end.isoformat(),
                "startDate": overlap.start.isoformat(),
                "endDate": overlap.end.isoformat(),
                "days": overlap.days,
                "identifications": used,
                "creditsUsed": used,
            }
        )
    return segments


def _late_data(
    partner: Partner, period: Period, next_first: date, complete: bool, current: dict[str, Any]
) -> dict[str, Any]:
    """Return what arrived after the month closed and how much it changed the month."""
    late = (
        metrics.late_receipts(partner, period, next_first)
        if complete
        else {"byType": {}, "firstReceivedDay": None, "lastReceivedDay": None}
    )
    by_type = late["byType"]
    added = metrics.identifications_of(by_type)
    at_close = current["totalIdentifications"] - added
    return {
        "closed": complete,
        "closedAt": iso_z(day_start_utc(next_first, partner.timezone)),
        "lateEvents": sum(v["events"] for v in by_type.values()),
        "lateQuantity": sum(v["quantity"] for v in by_type.values()),
        "identificationsAdded": added,
        "creditsAdded": added,
        "identificationsAtClose": at_close,
        "creditsUsedAtClose": at_close,
        "identificationsChange": metrics.relative_change(current["totalIdentifications"], at_close),
        "firstReceivedDate": _date(late["firstReceivedDay"]),
        "lastReceivedDate": _date(late["lastReceivedDay"]),
        "byType": by_type,
    }


def report_for(partner: Partner, month_text: str) -> dict[str, Any]:
    """Return the report of a YYYY-MM month, or raise NotFound."""
    year, month = parse_month(partner, month_text)
    return month_report(partner, year, month)


# --- the list of months --------------------------------------------------------------------

HEADLINE_KEYS = (
    "totalIdentifications",
    "creditsUsed",
    "totalEvents",
    "totalQuantity",
    "organizationsWithActivity",
    "activeOrganizations",
)


def month_index(partner: Partner) -> list[dict[str, Any]]:
    """Return every month with a report, newest first, with its headline figures.

    Each row has the figures of summary() for the month (the current month to date) and
    their relative change against the month before.
    """
    months = available_months(partner)
    if not months:
        return []
    tz = partner.timezone
    today = local_today(tz)
    oldest = date.fromisoformat(months[-1] + "-01")
    # One series from the month before the oldest, so the oldest has a change too.
    series = metrics.timeseries(partner, Period(add_months(oldest, -1), today), "month")
    figures: dict[str, dict[str, Any]] = {}
    for point in series:
        start = date.fromisoformat(point["date"])
        end = min(month_period(start.year, start.month).end, today)
        counts = metrics.organization_counts(partner, end)
        figures[month_key(start)] = {
            "totalIdentifications": point["identifications"],
            "creditsUsed": point["creditsUsed"],
            "totalEvents": point["events"],
            "totalQuantity": point["quantity"],
            "organizationsWithActivity": point["organizationsWithActivity"],
            "activeOrganizations": counts["activeOrganizations"],
        }
    rows = []
    for key in months:
        start = date.fromisoformat(key + "-01")
        full = month_period(start.year, start.month)
        prev = figures[month_key(add_months(start, -1))]
        current = figures[key]
        rows.append(
            {
                "month": key,
                "monthLabel": month_label(start.year, start.month),
                "startDate": full.start.isoformat(),
                "endDate": full.end.isoformat(),
                "throughDate": min(full.end, today).isoformat(),
                "complete": today > full.end,
                **current,
                "change": {k: metrics.relative_change(current[k], prev[k]) for k in HEADLINE_KEYS},
            }
        )
    return rows
