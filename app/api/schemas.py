"""Pydantic schemas of the JSON API: they validate requests and generate the OpenAPI document.

Every request and answer shape is in this one module, so that the OpenAPI document comes
from one place; it grows with the endpoints, not with logic.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from ..accounts import MAX_CREDITS
from ..ingest import MAX_BATCH, MAX_EVENT_ID_LENGTH, MAX_QUANTITY, TYPE_RE
from ..metrics import ORG_SORTS
from ..periods import MAX_SPAN_DAYS

MAX_PAGE = 1_000_000
MAX_PAGE_SIZE = 100
# Every pattern is applied in Python with fullmatch ("$" would also match before a final
# newline); none is given to pydantic's pattern=. The OpenAPI document shows each as
# ^...$, which in JSON Schema (ECMA-262, no m flag) means the whole value.
_DIGITS = re.compile(r"[0-9]{1,19}")
_DATE_SHAPE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}.*)?")
_UTC_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")


def whole_value_pattern(regex: re.Pattern[str]) -> str:
    """Return a fullmatch regex as the OpenAPI document's pattern of the whole value."""
    return f"^{regex.pattern}$"


TYPE_PATTERN = whole_value_pattern(TYPE_RE)
DATE_OR_TIMESTAMP = whole_value_pattern(_DATE_SHAPE)


def _whole_number(value: Any) -> Any:
    """Accept a query value only when it is written as plain decimal digits."""
    if isinstance(value, str):
        if not _DIGITS.fullmatch(value):
            raise ValueError("must be a whole number written with digits only")
        return int(value)
    return value


QueryInt = Annotated[int, BeforeValidator(_whole_number)]


def _date_shape(value: Any) -> Any:
    """Refuse text that is not even shaped like a date; periods.py judges the rest."""
    if isinstance(value, str) and not _DATE_SHAPE.fullmatch(value.strip()):
        raise ValueError("must be a date (YYYY-MM-DD) or an ISO 8601 timestamp")
    return value


def _event_type(value: str) -> str:
    """Accept an event type as ingestion does (ingest.TYPE_RE, the whole value)."""
    if not TYPE_RE.fullmatch(value):
        raise ValueError("must be [a-z][a-z0-9_]{0,63}, nothing before or after")
    return value


def _utc_timestamp(value: str) -> str:
    """Check an answered timestamp: UTC with Z, to the second."""
    if not _UTC_TIMESTAMP.fullmatch(value):
        raise ValueError("must be YYYY-MM-DDTHH:MM:SSZ")
    return value


EventType = Annotated[
    str, AfterValidator(_event_type), Field(json_schema_extra={"pattern": TYPE_PATTERN})
]


def _org_sort(value: str) -> str:
    """Accept a sort of the organization breakdown (metrics.ORG_SORTS)."""
    if value not in ORG_SORTS:
        raise ValueError(f"must be one of {', '.join(ORG_SORTS)}")
    return value


OrgSort = Annotated[
    str, AfterValidator(_org_sort), Field(json_schema_extra={"enum": list(ORG_SORTS)})
]


def _blank_is_absent(value: Any) -> Any:
    """A query parameter given empty (startDate=) means the default."""
    return None if value == "" else value


DATE_PARAM_DOC = (
    "YYYY-MM-DD, or an ISO 8601 timestamp whose date in the partner's timezone is used. "
    f"Dates from 1970-01-01 to 2999-12-31; startDate must not be after endDate and the "
    f"period may span at most {MAX_SPAN_DAYS} days (400 otherwise)."
)
DateText = Annotated[
    str,
    BeforeValidator(_date_shape),
    Field(max_length=64, json_schema_extra={"pattern": DATE_OR_TIMESTAMP}),
]
# As a query parameter, an empty value (startDate=) is allowed and means the default.
DateParam = Annotated[
    Annotated[
        str,
        BeforeValidator(_date_shape),
        Field(max_length=64, json_schema_extra={"pattern": "^$|" + DATE_OR_TIMESTAMP}),
    ]
    | None,
    BeforeValidator(_blank_is_absent),
    Field(description=DATE_PARAM_DOC + " Empty means the default."),
]
DateStr = Annotated[str, Field(json_schema_extra={"format": "date"})]
Timestamp = Annotated[
    str,
    AfterValidator(_utc_timestamp),
    Field(
        json_schema_extra={"format": "date-time", "pattern": whole_value_pattern(_UTC_TIMESTAMP)}
    ),
]
OrgStatus = Literal["active", "suspended", "canceled"]
OrgTier = Literal["trial", "paid"]
ProductType = Literal["B2B", "B2C"]
Scope = Literal["read", "write", "admin"]
Money = Annotated[float, Field(description="amount rounded to 2 decimal places")]
Ratio = Annotated[
    float | None,
    Field(
        description="(current - previous) / previous, rounded to 4 places; null when previous is 0"
    ),
]


class Query(BaseModel):
    """Query parameters: strings from the URL, unknown parameters ignored."""

    model_config = ConfigDict(extra="ignore")


class Body(BaseModel):
    """A JSON request body: types are strict (no "5" for 5); unknown properties are ignored."""

    model_config = ConfigDict(extra="ignore", strict=True)


class Out(BaseModel):
    """A response body: exactly these properties, with exactly these types."""

    model_config = ConfigDict(extra="forbid", strict=True)


# --- errors ------------------------------------------------------------------------------


class ErrorBody(Out):
    """The error envelope of every failure."""

    model_config = ConfigDict(extra="forbid", strict=True, title="Error")

    code: str = Field(
        description="BadRequest, Unauthorized, Forbidden, NotFound, Conflict, "
        "InsufficientCredits, UnprocessableEntity, TooManyRequests, "
        "ServiceUnavailable, ..."
    )
    message: str
    details: dict[str, Any] = Field(
        description="names the offending field and value, when there is one"
    )


# --- query parameters ------------------------------------------------------------------


class PageQuery(Query):
    """page (from 1) and pageSize (1-100, default 20)."""

    page: QueryInt = Field(1, ge=1, le=MAX_PAGE)
    pageSize: QueryInt = Field(20, ge=1, le=MAX_PAGE_SIZE)


class PeriodQuery(Query):
    """startDate and endDate (default: today - 30 days .. today), compare=previous."""

    startDate: DateParam = None
    endDate: DateParam = None
    compare: Literal["previous"] | None = Field(
        None, description="add previous (the equally long period just before) and change"
    )


class UsageQuery(PeriodQuery):
    """startDate and endDate (default: first day of the month .. today), type, organizationId."""

    type: EventType | None = Field(None, description="only this event type")
    organizationId: str | None = Field(
        None, max_length=200, description="only this organization (404 if unknown)"
    )


class TimeseriesQuery(PeriodQuery):
    """The period, the bucket size and an optional organization."""

    granularity: Literal["day", "week", "month"] = Field(
        "day", description="weeks start on Monday; months are calendar months"
    )
    organizationId: str | None = Field(
        None, max_length=200, description="only this organization (404 if unknown)"
    )


class OrgAnalyticsQuery(PeriodQuery, PageQuery):
    """Per-organization figures: the period, sorting, filters and pagination."""

    sort: OrgSort = Field("identifications")
    order: Literal["asc", "desc"] | None = Field(
        None, description="default asc for name and status, desc for the others"
    )
    status: OrgStatus | None = None
    search: str | None = Field(
        None, max_length=200, description="case-insensitive substring of the name"
    )
    externalId: str | None = Field(None, max_length=200, description="exact externalId")


class OrgListQuery(PageQuery):
    """Organization list filters."""

    status: OrgStatus | None = None
    search: str | None = Field(
        None, max_length=200, description="case-insensitive substring of the name"
    )
    externalId: str | None = Field(None, max_length=200, description="exact externalId")


class CalculateQuery(Query):
    """usage: a whole number of identifications."""

    usage: QueryInt = Field(ge=0, le=MAX_CREDITS, description="identifications to price")


# --- request bodies --------------------------------------------------------------------


class OrganizationCreate(Body):
    """A new organization."""

    name: str = Field(min_length=1, max_length=200)
    externalId: str | None = Field(
        None, min_length=1, max_length=200, description="your own reference; unique (409 otherwise)"
    )
    initialCredits: int | None = Field(None, ge=0, le=MAX_CREDITS)
    metadata: dict[str, Any] | None = None
    tier: OrgTier | None = Field(
        None, description="default trial (trial allocations are capped at 500 credits)"
    )
    productType: ProductType | None = Field(None, description="default B2B")
    createdAt: DateText | None = Field(
        None,
        description="YYYY-MM-DD (the start of that day in the partner's timezone) or an ISO "
        "8601 timestamp; not in the future. For importing a client with its "
        "history.",
    )


class OrganizationPatch(Body):
    """A partial update: only the properties present change."""

    name: str | None = Field(None, min_length=1, max_length=200)
    externalId: str | None = Field(
        None, min_length=1, max_length=200, description="null removes it"
    )
    metadata: dict[str, Any] | None = None
    productType: ProductType | None = None
    status: OrgStatus | None = None
    tier: OrgTier | None = None


class StatusBody(Body):
    """The new status."""

    status: OrgStatus


class TierBody(Body):
    """The new tier."""

    tier: OrgTier


class CreditsBody(Body):
    """The new allocation (it replaces the current one)."""

    credits: int = Field(ge=0, le=MAX_CREDITS)
    notes: str | None = Field(None, max_length=2000)


class ApiKeyCreate(Body):
    """A new API key."""

    name: str = Field("", max_length=200)
    scopes: list[Scope] = Field(
        default_factory=list, max_length=3, description="empty: full access"
    )
    expiresAt: str | None = Field(
        None,
        max_length=64,
        description="ISO 8601 timestamp in the future",
        json_schema_extra={"format": "date-time"},
    )


class EventIn(BaseModel):
    """One usage event (documentation of the items of events)."""

    model_config = ConfigDict(title="Event")

    eventId: str = Field(
        min_length=1,
        max_length=MAX_EVENT_ID_LENGTH,
        description="your unique id for the event: the idempotency key",
    )
    organizationId: str | None = None
    externalId: str | None = None
    type: EventType = Field(description="identification, page_view, session, ...")
    quantity: int = Field(1, ge=0, le=MAX_QUANTITY)
    occurredAt: str = Field(
        description="ISO 8601 timestamp; without an offset it is UTC",
        json_schema_extra={"format": "date-time"},
    )


class EventsBody(Body):
    """A batch of events. Each invalid event is rejected on its own; the others are stored."""

    events: list[Any] = Field(
        max_length=MAX_BATCH,
        description=f"at most {MAX_BATCH:,} events (400 above); each as the Event schema. An "
        "event that does not fit is answered in rejected, not with a 400.",
        json_schema_extra={"items": EventIn.model_json_schema()},
    )


# --- responses --------------------------------------------------------------------------


class AnalyticsFigures(Out):
    """The figures of spec §2 for a period."""

    totalOrganizations: int
    activeOrganizations: int
    totalIdentifications: int
    creditsRemaining: int
    creditsUsed: int
    organizationsWithActivity: int


class AnalyticsPrevious(AnalyticsFigures):
    """The same figures for the equally long period just before."""

    startDate: DateStr
    endDate: DateStr


class AnalyticsChange(Out):
    """Relative change of each figure."""

    totalOrganizations: Ratio
    activeOrganizations: Ratio
    totalIdentifications: Ratio
    creditsRemaining: Ratio
    creditsUsed: Ratio
    organizationsWithActivity: Ratio


class AnalyticsOut(AnalyticsFigures):
    """GET /partner/analytics."""

    partnerId: str
    startDate: DateStr
    endDate: DateStr
    previous: AnalyticsPrevious | None = Field(None, description="with compare=previous")
    change: AnalyticsChange | None = Field(None, description="with compare=previous")


class TypeUsage(Out):
    """Usage of one event type."""

    quantity: int
    events: int


class UsageFigures(Out):
    """Usage totals."""

    totalQuantity: int
    totalEvents: int
    byType: dict[str, TypeUsage]


class UsagePrevious(UsageFigures):
    """Usage in the equally long period just before."""

    startDate: DateStr
    endDate: DateStr


class UsageChange(Out):
    """Relative change of the usage totals."""

    totalQuantity: Ratio
    totalEvents: Ratio


class UsageOut(UsageFigures):
    """GET /partner/usage."""

    partnerId: str
    startDate: DateStr
    endDate: DateStr
    type: str | None = Field(description="the type filter, or null")
    organizationId: str | None = Field(description="the organization filter, or null")
    previous: UsagePrevious | None = Field(None, description="with compare=previous")
    change: UsageChange | None = Field(None, description="with compare=previous")


class SeriesPoint(Out):
    """One bucket of the series."""

    date: DateStr = Field(description="bucket start, clipped to the period")
    identifications: int
    creditsUsed: int
    events: int
    quantity: int
    organizationsWithActivity: int


class SeriesTotals(Out):
    """Totals of a series over its whole period."""

    identifications: int
    creditsUsed: int
    events: int
    quantity: int
    organizationsWithActivity: int


class SeriesChange(Out):
    """Relative change of the period totals."""

    identifications: Ratio
    creditsUsed: Ratio
    events: Ratio
    quantity: Ratio
    organizationsWithActivity: Ratio


class SeriesPrevious(Out):
    """The series of the equally long period just before."""

    startDate: DateStr
    endDate: DateStr
    totals: SeriesTotals
    points: list[SeriesPoint]


class TimeseriesOut(Out):
    """GET /partner/analytics/timeseries."""

    partnerId: str
    organizationId: str | None
    startDate: DateStr
    endDate: DateStr
    granularity: Literal["day", "week", "month"]
    totals: SeriesTotals
    points: list[SeriesPoint] = Field(description="one per bucket, zeros included")
    previous: SeriesPrevious | None = Field(None, description="with compare=previous")
    change: SeriesChange | None = Field(None, description="with compare=previous")


class OrgFigures(Out):
    """One organization's figures for a period."""

    identifications: int
    creditsUsed: int
    events: int
    quantity: int


class OrgFiguresChange(Out):
    """Relative change of one organization's figures."""

    identifications: Ratio
    creditsUsed: Ratio
    events: Ratio
    quantity: Ratio


class OrgBreakdownItem(OrgFigures):
    """One organization's figures for the period, with its allocation now."""

    organizationId: str
    name: str
    externalId: str | None
    status: OrgStatus
    tier: OrgTier
    creditsAllocated: int = Field(description="current allocation")
    creditsUsedThisBillingPeriod: int
    creditsAvailable: int = Field(description="allocation minus credits used this billing period")
    previous: OrgFigures | None = Field(None, description="with compare=previous")
    change: OrgFiguresChange | None = Field(None, description="with compare=previous")


class OrgBreakdownOut(Out):
    """GET /partner/analytics/organizations."""

    partnerId: str
    startDate: DateStr
    endDate: DateStr
    previousStartDate: DateStr | None = Field(None, description="with compare=previous")
    previousEndDate: DateStr | None = Field(None, description="with compare=previous")
    sort: str
    order: Literal["asc", "desc"]
    organizations: list[OrgBreakdownItem]
    total: int
    page: int
    pageSize: int


class OrgAnalyticsFigures(Out):
    """The analytics fields of one organization."""

    totalIdentifications: int
    creditsUsed: int
    totalQuantity: int
    totalEvents: int
    byType: dict[str, TypeUsage]


class OrgAnalyticsPrevious(OrgAnalyticsFigures):
    """The same fields for the equally long period just before."""

    startDate: DateStr
    endDate: DateStr


class OrgAnalyticsChange(Out):
    """Relative change of the organization's figures."""

    totalIdentifications: Ratio
    creditsUsed: Ratio
    totalQuantity: Ratio
    totalEvents: Ratio


class OrgAnalyticsOut(OrgAnalyticsFigures):
    """GET /partner/organizations/{id}/analytics."""

    partnerId: str
    organizationId: str
    startDate: DateStr
    endDate: DateStr
    statusAtEnd: OrgStatus | None = Field(
        description="status at the end of endDate; null if it did not exist yet"
    )
    creditsAllocated: int
    creditsUsedThisBillingPeriod: int
    creditsAvailable: int
    previous: OrgAnalyticsPrevious | None = Field(None, description="with compare=previous")
    change: OrgAnalyticsChange | None = Field(None, description="with compare=previous")


class PricingTier(Out):
    """One band of the graduated pricing."""

    tier: str
    pricePerIdentification: float
    minUsage: int
    maxUsage: int | None = Field(description="null for the open top tier")


class BillingOut(Out):
    """GET /partner/billing."""

    partnerId: str
    billingMode: Literal["credit_pool", "external", "usage_based"]
    billingPeriod: Literal["monthly", "annual"]
    billingDayOfMonth: int
    billingPeriodStart: DateStr
    nextBillingDate: DateStr
    pricingTiers: list[PricingTier]
    currency: str
    creditPoolTotal: int
    creditPoolUsed: int = Field(description="consumed this billing period")
    creditPoolAvailable: int
    creditPoolAllocated: int = Field(description="sum of current allocations")


class CostLine(Out):
    """The cost of the units that fall in one tier."""

    tier: str
    units: int
    pricePerIdentification: float
    amount: Money


class PeriodUsage(Out):
    """Usage and cost of one billing period."""

    billingPeriodStart: DateStr
    billingPeriodEnd: DateStr
    identifications: int
    creditsUsed: int
    totalQuantity: int
    totalEvents: int
    estimatedCost: Money
    currency: str
    costBreakdown: list[CostLine]


class BillingUsageOut(PeriodUsage):
    """GET /partner/billing/usage."""

    partnerId: str
    daysElapsed: int
    daysInPeriod: int
    projectedIdentifications: int = Field(description="the whole period at the current daily rate")
    projectedCost: Money


class CalculateOut(Out):
    """GET /partner/billing/calculate."""

    usage: int
    totalCost: Money
    currency: str
    breakdown: list[CostLine]


class BillingPeriodRow(PeriodUsage):
    """One billing period."""

    isCurrent: bool


class BillingPeriodsOut(Out):
    """GET /partner/billing/periods."""

    partnerId: str
    periods: list[BillingPeriodRow] = Field(description="newest first")
    total: int
    page: int
    pageSize: int


class OrganizationOut(Out):
    """An organization."""

    id: str
    name: str
    externalId: str | None
    status: OrgStatus
    tier: OrgTier
    productType: ProductType
    credits: int = Field(description="current allocation")
    creditsUsed: int = Field(description="used this billing period")
    creditsAvailable: int
    metadata: dict[str, Any]
    createdAt: Timestamp
    updatedAt: Timestamp


class OrganizationListOut(Out):
    """GET /partner/organizations."""

    organizations: list[OrganizationOut]
    total: int
    page: int
    pageSize: int


class Allocation(Out):
    """An organization's allocation."""

    id: str
    partnerId: str
    organizationId: str
    creditsAllocated: int
    creditsUsed: int = Field(description="used this billing period")
    creditsAvailable: int
    allocatedAt: Timestamp
    notes: str | None


class AllocationOut(Out):
    """PUT /partner/organizations/{id}/credits."""

    allocation: Allocation


class AllocationChange(Out):
    """One change of the allocation."""

    id: str
    organizationId: str
    creditsAllocated: int
    previousCredits: int
    notes: str | None
    allocatedAt: Timestamp


class AllocationHistoryOut(Out):
    """GET /partner/organizations/{id}/credits/history."""

    organizationId: str
    history: list[AllocationChange] = Field(description="newest first")
    total: int
    page: int
    pageSize: int


class PartnerOut(Out):
    """GET /partner/me."""

    id: str
    name: str
    slug: str
    status: str
    billingMode: Literal["credit_pool", "external", "usage_based"]
    billingPeriod: Literal["monthly", "annual"]
    billingDayOfMonth: int
    creditPoolTotal: int
    creditPoolUsed: int
    creditPoolAvailable: int
    creditPoolAllocated: int
    billingPeriodStart: DateStr
    billingPeriodEnd: DateStr
    pricingTiers: list[PricingTier]
    currency: str
    maxOrganizations: int | None
    timezone: str
    createdAt: Timestamp
    dataFreshness: Timestamp | None = Field(description="when the newest event was received")
    apiKey: ApiKeyOut | None = Field(
        description="the key of this request (null when a signed-in dashboard user reads the JSON)"
    )


class ApiKeyOut(Out):
    """An API key (never its secret)."""

    id: str
    name: str
    prefix: str = Field(description="the first characters of the key, to recognise it")
    scopes: list[Scope] = Field(description="empty: full access")
    createdAt: Timestamp
    expiresAt: Timestamp | None
    revokedAt: Timestamp | None
    lastUsedAt: Timestamp | None = Field(
        description="when the key last authenticated a "
        "request, to the minute (written at most once a "
        "minute); null if never"
    )
    status: Literal["active", "revoked", "expired"]


class ApiKeyListOut(Out):
    """GET /partner/api-keys."""

    apiKeys: list[ApiKeyOut]
    total: int
    page: int
    pageSize: int


class ApiKeyCreatedOut(Out):
    """POST /partner/api-keys: the plain key is shown here once and never again."""

    apiKey: ApiKeyOut
    plainKey: str


class Rejected(Out):
    """One event that was not stored."""

    index: int = Field(description="position in events")
    eventId: str | None
    code: str = Field(
        description="invalid_event, invalid_event_id, missing_organization, "
        "unknown_organization, organization_mismatch, invalid_type, "
        "invalid_quantity, invalid_occurred_at"
    )
    message: str
    field: str | None = None


class EventsOut(Out):
    """POST /partner/events."""

    accepted: int = Field(description="events stored by this call")
    duplicates: int = Field(description="events whose eventId was already stored (or repeated)")
    rejected: list[Rejected]


PartnerOut.model_rebuild()
