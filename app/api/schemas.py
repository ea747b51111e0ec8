"""Pydantic schemas of the JSON API: they validate requests and generate the OpenAPI document.

Every request and answer shape is in this one module, so that the OpenAPI document comes
from one place; it grows with the endpoints, not with logic.

Its size (about 1,300 lines) is kept in one module on purpose. The document names each
component by its class name alone (app/api/spec.py, naming_strategy), so one namespace is
what keeps those names unique: two modules could each define a Totals or a Rejected, and
one schema would silently replace the other in the document. The answers compose across
resources (Dated and PartnerDated serve the analytics, usage, time series and organization
answers alike), and the shared checks (QueryInt, EventType, whole_match, one_of,
fields_of, changes_of) come before all of them. The sections follow the API: errors, query
parameters, request bodies, answers by resource, reports, webhooks, alerts. It declares;
the only code is those checks.

Answers (Out) have snake_case fields written in camelCase (alias_generator=to_camel): a
view validates the domain's typed result into its model once (from_attributes), and
app/api/spec.py writes that model's model_dump(mode="json", by_alias=True) without
validating it again. Money stays Decimal until then and is written as a JSON number.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin, get_type_hints

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    create_model,
)
from pydantic.alias_generators import to_camel

from .. import metrics, reports
from ..accounts import MAX_CREDITS
from ..audit import ACTION_RE, MAX_ACTOR_FILTER, OBJECT_TYPES
from ..billing import ProjectionMethod
from ..ingest import MAX_BATCH, MAX_EVENT_ID_LENGTH, MAX_QUANTITY, TYPE_RE
from ..metrics import ORG_SORTS
from ..periods import MAX_SPAN_DAYS
from ..timeutil import iso_z

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


def whole_match(regex: re.Pattern[str], message: str) -> Callable[[str], str]:
    """Return a check that accepts only a value the regex matches whole; message says what
    the value must be."""

    def check(value: str) -> str:
        if not regex.fullmatch(value):
            raise ValueError(message)
        return value

    return check


def one_of(choices: tuple[str, ...]) -> Callable[[str], str]:
    """Return a check that accepts only one of choices."""

    def check(value: str) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return value

    return check


# An event type as ingestion accepts it (ingest.TYPE_RE, the whole value).
EventType = Annotated[
    str,
    AfterValidator(whole_match(TYPE_RE, "must be [a-z][a-z0-9_]{0,63}, nothing before or after")),
    Field(json_schema_extra={"pattern": TYPE_PATTERN}),
]
# A sort of the organization breakdown (metrics.ORG_SORTS).
OrgSort = Annotated[
    str, AfterValidator(one_of(ORG_SORTS)), Field(json_schema_extra={"enum": list(ORG_SORTS)})
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
# As a query parameter, an empty value (startDate=) is allowed: it is read as absent.
DateOrBlank = Annotated[
    str,
    BeforeValidator(_date_shape),
    Field(max_length=64, json_schema_extra={"pattern": "^$|" + DATE_OR_TIMESTAMP}),
]
DateParam = Annotated[
    DateOrBlank | None,
    BeforeValidator(_blank_is_absent),
    Field(description=DATE_PARAM_DOC + " Empty means the default."),
]
DateStr = date  # written YYYY-MM-DD
Timestamp = Annotated[
    datetime,
    PlainSerializer(iso_z, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "format": "date-time",
            "pattern": whole_value_pattern(_UTC_TIMESTAMP),
            "type": "string",
        }
    ),
]  # a stored naive-UTC moment, written YYYY-MM-DDTHH:MM:SSZ
OrgStatus = Literal["active", "suspended", "canceled"]
OrgTier = Literal["trial", "paid"]
ProductType = Literal["B2B", "B2C"]
Scope = Literal["read", "write", "admin"]
Money = Annotated[
    Decimal,
    PlainSerializer(float, return_type=float, when_used="json"),
    WithJsonSchema({"type": "number"}),
    Field(description="amount rounded to 2 decimal places"),
]  # a Decimal in cents (billing.cents), written as a JSON number as the contract says
Price = Annotated[
    Decimal,
    PlainSerializer(float, return_type=float, when_used="json"),
    WithJsonSchema({"type": "number"}),
]  # a unit price, exact, written as a JSON number
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
    """A response body: exactly these properties, with exactly these types, in camelCase.

    Built once from the domain's typed results (from_attributes), and written by alias.
    """

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        from_attributes=True,
    )


M = TypeVar("M", bound=Out)
# {domain dataclass: the answer model built from it}, filled by fields_of.
ANSWERS: dict[type, type[Out]] = {}


def _answer_type(hint: Any) -> Any:
    """Return a field's type with each domain dataclass in it (in a list or a dict too)
    replaced by its answer model."""
    if isinstance(hint, type) and hint in ANSWERS:
        return ANSWERS[hint]
    origin = get_origin(hint)
    if origin in (list, dict):
        return origin[tuple(_answer_type(arg) for arg in get_args(hint))]
    return hint


def fields_of(source: type) -> Callable[[type[M]], type[M]]:
    """Give an answer model the fields of the domain dataclass it is built from, in its order.

    A dataclass the fields hold is answered by the model built from it (ANSWERS). The
    class body names only what differs: a field it annotates takes the dataclass's place
    with the body's type and Field (a Literal, Money, Ratio, a description); a field the
    dataclass does not have comes after them. The model keeps its name, docstring and bases.
    """

    def build(model: type[M]) -> type[M]:
        hints = get_type_hints(source)
        fields: dict[str, Any] = {
            f.name: _answer_type(hints[f.name]) for f in dataclasses.fields(source)
        }
        for name in model.__dict__.get("__annotations__", {}):
            info = model.model_fields[name]
            fields[name] = (info.annotation, info)
        derived: type[M] = create_model(  # type: ignore[call-overload]
            model.__name__,
            __base__=model.__bases__,
            __module__=model.__module__,
            __doc__=model.__doc__,
            **fields,
        )
        ANSWERS[source] = derived
        return derived

    return build


def changes_of(figures: type[Out]) -> Callable[[type[M]], type[M]]:
    """Give a change model a Ratio for every whole-number figure of figures, in its order.

    The class body holds only the docstring: the figures are listed once, in figures.
    """

    def build(model: type[M]) -> type[M]:
        ratios: dict[str, Any] = {
            name: (Ratio, ...)
            for name, info in figures.model_fields.items()
            if info.annotation is int
        }
        derived: type[M] = create_model(  # type: ignore[call-overload]
            model.__name__,
            __base__=model.__bases__,
            __module__=model.__module__,
            __doc__=model.__doc__,
            **ratios,
        )
        return derived

    return build


def _absent(value: Any) -> bool:
    return value is None


def only_with(description: str) -> Any:
    """Return the Field of a part only some requests ask for: left out of other answers."""
    return Field(None, description=description, exclude_if=_absent)


# --- errors ------------------------------------------------------------------------------


class ErrorBody(Out):
    """The error envelope of every failure."""

    model_config = Out.model_config | ConfigDict(title="Error")

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
        None, description="add previous (the comparable period before, spec §4) and change"
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


AuditDate = Annotated[
    DateOrBlank | None,
    BeforeValidator(_blank_is_absent),
    Field(
        description="YYYY-MM-DD, or an ISO 8601 timestamp whose date in the partner's "
        "timezone is used; from 1970-01-01 to 2999-12-31, endDate not before startDate "
        "(400 otherwise). Both days are included; empty means no bound."
    ),
]


class AuditQuery(PageQuery):
    """The audit log's filters (each optional; empty means none) and pagination."""

    actor: Annotated[
        Annotated[str, Field(max_length=MAX_ACTOR_FILTER)] | None,
        BeforeValidator(_blank_is_absent),
        Field(
            description="who: part of the user's email, of the key's 'name (prefix)', or "
            "cli (any case)"
        ),
    ] = None
    objectType: Annotated[  # noqa: N815
        Annotated[
            str,
            AfterValidator(one_of(OBJECT_TYPES)),  # audit.OBJECT_TYPES
            Field(json_schema_extra={"enum": list(OBJECT_TYPES)}),
        ]
        | None,
        BeforeValidator(_blank_is_absent),
    ] = None
    action: Annotated[
        Annotated[
            str,
            # Shaped as the audit log writes actions (audit.ACTION_RE).
            AfterValidator(
                whole_match(ACTION_RE, "must be a lower-case word such as create, revoke or ingest")
            ),
            Field(max_length=40, json_schema_extra={"pattern": whole_value_pattern(ACTION_RE)}),
        ]
        | None,
        BeforeValidator(_blank_is_absent),
        Field(description="create, update, revoke, status, ingest, import, ..."),
    ] = None
    startDate: AuditDate = None
    endDate: AuditDate = None


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
    """The new status, and why (optional)."""

    status: OrgStatus
    reason: str | None = Field(
        None,
        max_length=500,
        description="why, at most 500 characters; kept in the audit log and shown in the "
        "organization page's status history",
    )


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
# A class listing mixins after its figures (class X(Figures, Dated)) answers the mixins'
# properties first: pydantic orders fields from the last base to the first.

COMPARED = "with compare=previous"


class Dated(Out):
    """The effective dates of an answer."""

    start_date: DateStr
    end_date: DateStr


class PartnerDated(Out):
    """The partner and the effective dates of an answer."""

    partner_id: str
    start_date: DateStr
    end_date: DateStr


class AnalyticsFigures(Out):
    """The figures of spec §2 for a period."""

    total_organizations: int
    active_organizations: int
    total_identifications: int
    credits_remaining: int
    credits_used: int
    organizations_with_activity: int


class AnalyticsPrevious(AnalyticsFigures, Dated):
    """The same figures for the comparable period before (spec §4)."""


@changes_of(AnalyticsFigures)
class AnalyticsChange(Out):
    """Relative change of each figure."""


class AnalyticsOut(AnalyticsFigures, PartnerDated):
    """GET /partner/analytics."""

    previous: AnalyticsPrevious | None = only_with(COMPARED)
    change: AnalyticsChange | None = only_with(COMPARED)


@fields_of(metrics.TypeUsage)
class TypeUsage(Out):
    """Usage of one event type."""


class UsageFigures(Out):
    """Usage totals."""

    total_quantity: int
    total_events: int
    by_type: dict[str, TypeUsage]


class UsagePrevious(UsageFigures, Dated):
    """Usage in the comparable period before (spec §4)."""


@changes_of(UsageFigures)
class UsageChange(Out):
    """Relative change of the usage totals."""


class UsageFilters(PartnerDated):
    """The partner, the dates and the filters of a usage answer."""

    type: str | None = Field(description="the type filter, or null")
    organization_id: str | None = Field(description="the organization filter, or null")


class UsageOut(UsageFigures, UsageFilters):
    """GET /partner/usage."""

    previous: UsagePrevious | None = only_with(COMPARED)
    change: UsageChange | None = only_with(COMPARED)


@fields_of(metrics.SeriesTotals)
class SeriesTotals(Out):
    """Totals of a series over its whole period."""


class BucketStart(Out):
    """The date of a bucket."""

    date: DateStr = Field(description="bucket start, clipped to the period")


class SeriesPoint(SeriesTotals, BucketStart):
    """One bucket of the series."""

    days: int = Field(description="days of the bucket inside the period, through today")
    partial: bool = Field(description="the bucket is clipped by the period or still running today")


ANSWERS[metrics.SeriesPoint] = SeriesPoint  # its date first, as the bases give it


@changes_of(SeriesTotals)
class SeriesChange(Out):
    """Relative change of the period totals."""


class SeriesPrevious(Dated):
    """The series of the comparable period before (spec §4)."""

    totals: SeriesTotals
    points: list[SeriesPoint]


class TimeseriesOut(Out):
    """GET /partner/analytics/timeseries."""

    partner_id: str
    organization_id: str | None
    start_date: DateStr
    end_date: DateStr
    granularity: Literal["day", "week", "month"]
    totals: SeriesTotals
    points: list[SeriesPoint] = Field(description="one per bucket, zeros included")
    previous: SeriesPrevious | None = only_with(COMPARED)
    change: SeriesChange | None = only_with(COMPARED)


class OrgFigures(Out):
    """One organization's figures for a period."""

    identifications: int
    credits_used: int
    events: int
    quantity: int


@changes_of(OrgFigures)
class OrgFiguresChange(Out):
    """Relative change of one organization's figures."""


class OrgIdentity(Out):
    """Who an organization is."""

    organization_id: str
    name: str
    external_id: str | None
    status: OrgStatus
    tier: OrgTier


class OrgBreakdownItem(OrgFigures, OrgIdentity):
    """One organization's figures for the period, with its allocation now."""

    credits_allocated: int = Field(description="current allocation")
    credits_used_this_billing_period: int
    credits_available: int = Field(description="allocation minus credits used this billing period")
    previous: OrgFigures | None = only_with(COMPARED)
    change: OrgFiguresChange | None = only_with(COMPARED)


class OrgBreakdownOut(Out):
    """GET /partner/analytics/organizations."""

    partner_id: str
    start_date: DateStr
    end_date: DateStr
    previous_start_date: DateStr | None = only_with(COMPARED)
    previous_end_date: DateStr | None = only_with(COMPARED)
    sort: str
    order: Literal["asc", "desc"]
    organizations: list[OrgBreakdownItem]
    total: int
    page: int
    page_size: int


class OrgAnalyticsFigures(Out):
    """The analytics fields of one organization."""

    total_identifications: int
    credits_used: int
    total_quantity: int
    total_events: int
    by_type: dict[str, TypeUsage]


class OrgAnalyticsPrevious(OrgAnalyticsFigures, Dated):
    """The same fields for the comparable period before (spec §4)."""


@changes_of(OrgAnalyticsFigures)
class OrgAnalyticsChange(Out):
    """Relative change of the organization's figures."""


class OrgDated(PartnerDated):
    """The partner, the dates and the organization of an answer."""

    organization_id: str


class OrgAnalyticsOut(OrgAnalyticsFigures, OrgDated):
    """GET /partner/organizations/{id}/analytics."""

    status_at_end: OrgStatus | None = Field(
        description="status at the end of endDate; null if it did not exist yet"
    )
    credits_allocated: int
    credits_used_this_billing_period: int
    credits_available: int
    previous: OrgAnalyticsPrevious | None = only_with(COMPARED)
    change: OrgAnalyticsChange | None = only_with(COMPARED)


class PricingTier(Out):
    """One band of the graduated pricing."""

    tier: str
    price_per_identification: Price
    min_usage: int
    max_usage: int | None = Field(description="null for the open top tier")


class TermsOut(Out):
    """The terms a billing figure uses: the pool, billing day and pricing tiers of its
    billing period. A change applies from the next billing period on."""

    effective_from: DateStr | None = Field(
        description="the first day of the billing period these terms apply from; null when "
        "the partner's terms have never changed"
    )
    credit_pool_total: int
    billing_day_of_month: int
    pricing_tiers: list[PricingTier]


class BillingOut(Out):
    """GET /partner/billing: the current billing period's terms and pool figures."""

    partner_id: str
    billing_mode: Literal["credit_pool", "external", "usage_based"]
    billing_period: Literal["monthly", "annual"]
    billing_day_of_month: int
    billing_period_start: DateStr
    next_billing_date: DateStr
    pricing_tiers: list[PricingTier]
    currency: str
    credit_pool_total: int
    credit_pool_used: int = Field(description="consumed this billing period")
    credit_pool_available: int
    credit_pool_allocated: int = Field(description="sum of current allocations")
    terms: TermsOut = Field(description="the terms of the current billing period")
    next_terms: TermsOut | None = Field(
        description="the terms a settings change scheduled from the next billing period "
        "(null when none is)"
    )


class CostLine(Out):
    """The cost of the units that fall in one tier."""

    tier: str
    units: int
    price_per_identification: Price
    amount: Money


class PeriodUsage(Out):
    """Usage and cost of one billing period."""

    billing_period_start: DateStr
    billing_period_end: DateStr
    identifications: int
    credits_used: int
    total_quantity: int
    total_events: int
    estimated_cost: Money
    currency: str
    cost_breakdown: list[CostLine]
    terms: TermsOut = Field(description="the terms of this billing period (its pool and tiers)")


class PartnerOwned(Out):
    """The partner an answer is about."""

    partner_id: str


class BillingUsageOut(PeriodUsage, PartnerOwned):
    """GET /partner/billing/usage."""

    days_elapsed: int
    days_in_period: int
    projected_identifications: int | None = Field(
        description="the whole period: identifications of its complete days, then the "
        "projectionMethod's daily average for today (or today so far when more) and each "
        "day after; null for insufficient_data"
    )
    projected_cost: Money | None = Field(description="the graduated cost of the projection")
    projection_method: ProjectionMethod = Field(
        description="last_7_complete_days: the average of the last 7 complete days; "
        "period_average: of the period's 1-6 complete days; insufficient_data: no "
        "complete day yet (projections null)"
    )


class CalculateOut(Out):
    """GET /partner/billing/calculate."""

    usage: int
    total_cost: Money
    currency: str
    breakdown: list[CostLine]
    terms: TermsOut = Field(description="the current billing period's terms (its tiers)")


class BillingPeriodRow(PeriodUsage):
    """One billing period."""

    is_current: bool


class BillingPeriodsOut(Out):
    """GET /partner/billing/periods."""

    partner_id: str
    periods: list[BillingPeriodRow] = Field(description="newest first")
    total: int
    page: int
    page_size: int


class OrganizationOut(Out):
    """An organization."""

    id: str
    name: str
    external_id: str | None
    status: OrgStatus
    tier: OrgTier
    product_type: ProductType
    credits: int = Field(description="current allocation")
    credits_used: int = Field(description="used this billing period")
    credits_available: int
    metadata: dict[str, Any]
    created_at: Timestamp
    updated_at: Timestamp


class OrganizationListOut(Out):
    """GET /partner/organizations."""

    organizations: list[OrganizationOut]
    total: int
    page: int
    page_size: int


class Allocation(Out):
    """An organization's allocation."""

    id: str
    partner_id: str
    organization_id: str
    credits_allocated: int
    credits_used: int = Field(description="used this billing period")
    credits_available: int
    allocated_at: Timestamp
    notes: str | None


class AllocationOut(Out):
    """PUT /partner/organizations/{id}/credits."""

    allocation: Allocation


class AllocationChange(Out):
    """One change of the allocation."""

    id: str
    organization_id: str
    credits_allocated: int
    previous_credits: int
    notes: str | None
    allocated_at: Timestamp


class AllocationHistoryOut(Out):
    """GET /partner/organizations/{id}/credits/history."""

    organization_id: str
    history: list[AllocationChange] = Field(description="newest first")
    total: int
    page: int
    page_size: int


class PartnerOut(Out):
    """GET /partner/me."""

    id: str
    name: str
    slug: str
    status: str
    billing_mode: Literal["credit_pool", "external", "usage_based"]
    billing_period: Literal["monthly", "annual"]
    billing_day_of_month: int
    credit_pool_total: int
    credit_pool_used: int
    credit_pool_available: int
    credit_pool_allocated: int
    billing_period_start: DateStr
    billing_period_end: DateStr
    pricing_tiers: list[PricingTier]
    currency: str
    max_organizations: int | None
    timezone: str
    created_at: Timestamp
    data_freshness: Timestamp | None = Field(description="when the newest event was received")
    api_key: ApiKeyOut | None = Field(
        description="the key of this request (null when a signed-in dashboard user reads the JSON)"
    )


class ApiKeyOut(Out):
    """An API key (never its secret)."""

    id: str
    name: str
    prefix: str = Field(description="the first characters of the key, to recognise it")
    scopes: list[Scope] = Field(description="empty: full access")
    created_at: Timestamp
    expires_at: Timestamp | None
    revoked_at: Timestamp | None
    last_used_at: Timestamp | None = Field(
        description="when the key last authenticated a "
        "request, to the minute (written at most once a "
        "minute); null if never"
    )
    status: Literal["active", "revoked", "expired"]


class ApiKeyListOut(Out):
    """GET /partner/api-keys."""

    api_keys: list[ApiKeyOut]
    total: int
    page: int
    page_size: int


class ApiKeyCreatedOut(Out):
    """POST /partner/api-keys: the plain key is shown here once and never again."""

    api_key: ApiKeyOut
    plain_key: str


class AuditEntryOut(Out):
    """One entry of the audit log: when, who, what, and the changed fields."""

    id: int
    occurred_at: Timestamp
    actor_kind: Literal["user", "api_key", "cli"] = Field(
        description="user (dashboard), api_key, or cli (a flask command)"
    )
    actor: str = Field(description="the user's email, the key's 'name (prefix)', or cli")
    object_type: str = Field(json_schema_extra={"enum": list(OBJECT_TYPES)})
    object_id: str | None
    object_label: str | None
    action: str
    before: dict[str, Any] | None = Field(description="the changed fields before (null: none)")
    after: dict[str, Any] | None = Field(description="the changed fields after, or the counts")
    client_address: str | None = Field(description="null for the command line")


class AuditLogOut(Out):
    """GET /partner/audit-log."""

    entries: list[AuditEntryOut] = Field(description="newest first")
    total: int
    page: int
    page_size: int


class Rejected(Out):
    """One event that was not stored."""

    index: int = Field(
        description="position in events (0-based); for an NDJSON body the 0-based line "
        "index, blank lines counted"
    )
    event_id: str | None
    code: str = Field(
        description="invalid_event, invalid_event_id, missing_organization, "
        "unknown_organization, organization_mismatch, invalid_type, "
        "invalid_quantity, invalid_occurred_at; for an NDJSON line also invalid_json "
        "(not JSON) and invalid_text (a NUL or a lone surrogate)"
    )
    message: str
    field: str | None = Field(None, exclude_if=lambda value: not value)


class EventsOut(Out):
    """POST /partner/events."""

    accepted: int = Field(description="events stored by this call")
    duplicates: int = Field(description="events whose eventId was already stored (or repeated)")
    rejected: list[Rejected]


# --- reports ----------------------------------------------------------------------------

Month = str
Share = float | None


def _camel_keys(value: dict[str, Any]) -> dict[str, Any]:
    return {to_camel(key): item for key, item in value.items()}


# {field name: relative change}, written with the fields' camelCase names.
CamelKeys = Annotated[
    dict[str, float | None], PlainSerializer(_camel_keys, return_type=dict[str, float | None])
]


@fields_of(metrics.Summary)
class ReportSummary(Out):
    """The metrics of spec §2 for the month (the current month to date)."""


@changes_of(ReportSummary)
class ReportChange(Out):
    """Relative change of each metric against the month before."""


@fields_of(reports.ReportOrganization)
class ReportOrganization(Out):
    """One organization's line of the report."""

    share: Share = Field(
        description="share of the partner's identifications, 0..1 "
        "(4 places); null when the month has none"
    )
    share_percent: Share = Field(description="share as a percentage (2 places)")
    credits_allocated: int = Field(description="allocation at the end of the month")
    status_at_end: OrgStatus | None = Field(
        description="status at the end of the month; null if created later"
    )
    new: bool = Field(description="created during the month")
    churned: bool = Field(description="entered canceled during the month")
    reactivated: bool = Field(description="went from suspended or canceled back to active")


@fields_of(reports.ReportTotals)
class ReportTotals(Out):
    """The totals row of the organization table (equal to the month's figures)."""


@fields_of(reports.IdleOrganization)
class IdleOrganization(Out):
    """An organization active at the month's end without identifications in it."""


@fields_of(reports.BillingOverlap)
class BillingOverlap(Out):
    """The part of the month inside one billing period."""


@fields_of(reports.LateData)
class LateData(Out):
    """Events of the month received after it closed, and how much they changed it."""

    closed_at: Timestamp = Field(
        description="the first instant of the next month in the partner's timezone"
    )
    identifications_change: Ratio


@fields_of(reports.MonthReport)
class ReportOut(Out):
    """GET /partner/reports/{month}."""

    month: Month = Field(description="YYYY-MM")
    through_date: DateStr = Field(
        description="the last day counted: endDate, or today for the current month"
    )
    complete: bool = Field(description="the month has closed")
    closed_at: Timestamp
    generated_at: Timestamp
    data_received_through: Timestamp | None = Field(
        description="when the newest event was received"
    )
    estimated_cost: Money | None = Field(
        description="the month's cost under the pricing tiers when the billing period is the "
        "calendar month (billing day 1, monthly); null otherwise"
    )
    previous_month: Month = Field(description="the month the comparison period is in")
    previous_start_date: DateStr = Field(
        description="the comparison period (spec §4): the month before a closed month; "
        "for the open month, the same days a month earlier"
    )
    change: ReportChange


@fields_of(reports.MonthHeadline)
class MonthHeadline(Out):
    """One month of the list, with its change against the month before."""

    previous_start_date: DateStr = Field(description="the period change compares with")
    change: CamelKeys


class ReportListOut(Out):
    """GET /partner/reports."""

    partner_id: str
    timezone: str
    months: list[MonthHeadline] = Field(description="every month with data, newest first")
    total: int
    page: int
    page_size: int


PartnerOut.model_rebuild()


# --- webhooks ----------------------------------------------------------------------------

WebhookEventType = Literal[
    "test",
    "billing.pool.threshold",
    "billing.pool.projected_exhaustion",
    "organization.allocation.threshold",
    "data.stale",
    "organization.inactive",
]


class WebhookBody(Body):
    """PUT /partner/webhooks/billing: where to send, whether to, and which events."""

    url: str = Field(
        max_length=2000,
        description="https:// or http:// URL; its host must resolve to public addresses "
        "only (400 naming url otherwise), any port",
    )
    enabled: bool = True
    eventTypes: list[str] | None = Field(
        None,
        max_length=20,
        description="the event types to send (omitted: unchanged, or every type but test "
        "for a new webhook); test is always sent by POST /partner/webhooks/test",
        json_schema_extra={"items": {"type": "string", "enum": list(get_args(WebhookEventType))}},
    )


class WebhookOut(Out):
    """A webhook endpoint (its secret only by hint)."""

    name: Literal["billing"]
    url: str
    enabled: bool
    event_types: list[WebhookEventType]
    secret_hint: str = Field(description="whsec_… and the secret's last 4 characters")
    created_at: Timestamp
    updated_at: Timestamp
    secret_rotated_at: Timestamp | None


class WebhookListOut(Out):
    """GET /partner/webhooks: the configured endpoints (none or the billing one)."""

    webhooks: list[WebhookOut]
    event_types: list[WebhookEventType] = Field(description="every event type there is")


class WebhookConfiguredOut(Out):
    """PUT /partner/webhooks/billing and the rotation: the endpoint, and its secret when it
    is new (the first PUT and every rotation) - shown this once, null otherwise."""

    webhook: WebhookOut
    secret: str | None = Field(description="whsec_<base64>: store it now; null on a change")


class WebhookMessageOut(Out):
    """A message in the outbox."""

    webhook_id: str = Field(description="the webhook-id header, the same on every attempt")
    event_type: WebhookEventType
    created_at: Timestamp
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    next_attempt_at: Timestamp | None


class WebhookAttemptOut(Out):
    """One delivery attempt."""

    id: int
    webhook_id: str
    event_type: WebhookEventType
    time: Timestamp
    url: str
    status: Literal["succeeded", "failed"]
    response_code: int | None = Field(description="the receiver's HTTP status; null if none")
    latency: int = Field(description="milliseconds until the answer (or the error)")
    error: str | None
    will_retry: bool = Field(description="whether another attempt is scheduled")


class WebhookLogsOut(Out):
    """GET /partner/webhooks/logs: delivery attempts, newest first."""

    logs: list[WebhookAttemptOut]
    total: int
    page: int
    page_size: int


# --- alerts (app/alerts.py) --------------------------------------------------------------

AlertKind = Literal[
    "pool_usage", "org_allocation", "projected_exhaustion", "stale_data", "inactive_org"
]


class AlertRuleBody(Body):
    """POST /partner/alerts and PUT /partner/alerts/{id}: a rule."""

    kind: AlertKind = Field(
        description="pool_usage (threshold %), org_allocation (threshold %), "
        "projected_exhaustion (no threshold), stale_data (threshold hours), "
        "inactive_org (threshold days)"
    )
    threshold: int | None = Field(
        None,
        description="percent 1-1000 (pool_usage, org_allocation), hours 1-8760 "
        "(stale_data), days 1-365 (inactive_org); ignored for projected_exhaustion",
    )
    enabled: bool = True


class AlertRuleOut(Out):
    """An alert rule."""

    id: str
    kind: AlertKind
    threshold: int
    enabled: bool
    description: str
    event_type: WebhookEventType = Field(description="the webhook event type of its firings")
    firing: int = Field(description="how many subjects it is firing for now")
    created_at: Timestamp
    updated_at: Timestamp


class AlertRuleListOut(Out):
    """GET /partner/alerts: the partner's rules, oldest first."""

    alerts: list[AlertRuleOut]


class AlertEventOut(Out):
    """One firing, resolution or test send."""

    id: int
    rule_id: str
    kind: str
    action: Literal["fired", "resolved", "test"]
    subject: str = Field(description="the organization id, or empty for partner-wide rules")
    subject_label: str
    occurred_at: Timestamp
    data: dict[str, Any]


class AlertHistoryOut(Out):
    """GET /partner/alerts/history: firings and resolutions, newest first."""

    history: list[AlertEventOut]
    total: int
    page: int
    page_size: int
