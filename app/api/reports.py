"""Month-end reports over the API: the same data as the dashboard's report and its JSON."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from .. import reports
from . import bp
from .guards import current_partner
from .schemas import DateStr, Out, PageQuery, Ratio, SeriesPoint, Timestamp, TypeUsage
from .serializers import page_of
from .spec import doc, validated_query

TAGS = ("reports",)
Month = str
Share = float | None


class ReportSummary(Out):
    """The metrics of spec §2 for the month (the current month to date)."""

    totalOrganizations: int
    activeOrganizations: int
    totalIdentifications: int
    creditsUsed: int
    creditsRemaining: int
    organizationsWithActivity: int
    totalQuantity: int
    totalEvents: int


class ReportChange(Out):
    """Relative change of each metric against the month before."""

    totalOrganizations: Ratio
    activeOrganizations: Ratio
    totalIdentifications: Ratio
    creditsUsed: Ratio
    creditsRemaining: Ratio
    organizationsWithActivity: Ratio
    totalQuantity: Ratio
    totalEvents: Ratio


class ReportOrganization(Out):
    """One organization's line of the report."""

    organizationId: str
    name: str
    externalId: str | None
    identifications: int
    creditsUsed: int
    events: int
    quantity: int
    share: Share = Field(
        description="share of the partner's identifications, 0..1 "
        "(4 places); null when the month has none"
    )
    sharePercent: Share = Field(description="share as a percentage (2 places)")
    creditsAllocated: int = Field(description="allocation at the end of the month")
    statusAtEnd: Literal["active", "suspended", "canceled"] | None = Field(
        description="status at the end of the month; null if created later"
    )
    new: bool = Field(description="created during the month")
    churned: bool = Field(description="entered canceled during the month")
    reactivated: bool = Field(description="went from suspended or canceled back to active")


class ReportTotals(Out):
    """The totals row of the organization table (equal to the month's figures)."""

    organizations: int
    identifications: int
    creditsUsed: int
    events: int
    quantity: int
    share: Share
    sharePercent: Share
    creditsAllocated: int
    new: int
    churned: int
    reactivated: int


class IdleOrganization(Out):
    """An organization active at the month's end without identifications in it."""

    organizationId: str
    name: str
    externalId: str | None
    events: int


class BillingOverlap(Out):
    """The part of the month inside one billing period."""

    billingPeriodStart: DateStr
    billingPeriodEnd: DateStr
    startDate: DateStr
    endDate: DateStr
    days: int
    identifications: int
    creditsUsed: int


class LateData(Out):
    """Events of the month received after it closed, and how much they changed it."""

    closed: bool
    closedAt: Timestamp = Field(
        description="the first instant of the next month in the partner's timezone"
    )
    lateEvents: int
    lateQuantity: int
    identificationsAdded: int
    creditsAdded: int
    identificationsAtClose: int
    creditsUsedAtClose: int
    identificationsChange: Ratio
    firstReceivedDate: DateStr | None
    lastReceivedDate: DateStr | None
    byType: dict[str, TypeUsage]


class ReportOut(Out):
    """GET /partner/reports/{month}."""

    partnerId: str
    partnerName: str
    partnerSlug: str
    timezone: str
    month: Month = Field(description="YYYY-MM")
    monthLabel: str
    startDate: DateStr
    endDate: DateStr
    throughDate: DateStr = Field(
        description="the last day counted: endDate, or today for the current month"
    )
    complete: bool = Field(description="the month has closed")
    closedAt: Timestamp
    generatedAt: Timestamp
    dataReceivedThrough: Timestamp | None = Field(description="when the newest event was received")
    summary: ReportSummary
    previousMonth: Month
    previousMonthLabel: str
    previous: ReportSummary
    change: ReportChange
    daily: list[SeriesPoint]
    organizations: list[ReportOrganization]
    totals: ReportTotals
    activeWithoutIdentifications: list[IdleOrganization]
    billingPeriods: list[BillingOverlap]
    lateData: LateData


class MonthHeadline(Out):
    """One month of the list, with its change against the month before."""

    month: Month
    monthLabel: str
    startDate: DateStr
    endDate: DateStr
    throughDate: DateStr
    complete: bool
    totalIdentifications: int
    creditsUsed: int
    totalEvents: int
    totalQuantity: int
    organizationsWithActivity: int
    activeOrganizations: int
    change: dict[str, float | None]


class ReportListOut(Out):
    """GET /partner/reports."""

    partnerId: str
    timezone: str
    months: list[MonthHeadline] = Field(description="every month with data, newest first")
    total: int
    page: int
    pageSize: int


@bp.get("/partner/reports")
@doc(ReportListOut, query=PageQuery, tags=TAGS)
def report_list() -> dict[str, Any]:
    """Every calendar month with data (partner's timezone), newest first, with headlines."""
    partner = current_partner()
    query = validated_query()
    months = reports.month_index(partner)
    first = (query.page - 1) * query.pageSize
    return {
        "partnerId": partner.id,
        "timezone": partner.timezone,
        **page_of(
            "months",
            months[first : first + query.pageSize],
            len(months),
            query.page,
            query.pageSize,
        ),
    }


@bp.get("/partner/reports/<month>")
@doc(ReportOut, errors=(404,), tags=TAGS)
def report(month: str) -> dict[str, Any]:
    """The month-end report of a month (YYYY-MM); 404 for a month without a report."""
    return reports.report_for(current_partner(), month)
