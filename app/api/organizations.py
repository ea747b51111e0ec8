"""Organizations: list, create, read, update, status, tier, soft delete, credit allocation."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from flask import Response, url_for

from .. import accounts
from ..errors import bad_request
from ..models import Organization, Partner
from ..periods import PeriodError, parse_moment
from . import bp, serializers
from .guards import current_partner
from .schemas import (
    AllocationHistoryOut,
    AllocationOut,
    CreditsBody,
    OrganizationCreate,
    OrganizationListOut,
    OrganizationOut,
    OrganizationPatch,
    OrgListQuery,
    PageQuery,
    StatusBody,
    TierBody,
)
from .spec import doc, validated_json, validated_query

TAGS = ("organizations",)


def _created_at(text: str, tz: str) -> datetime:
    """Return createdAt as naive UTC: a bare date is the start of that day in the partner's tz."""
    try:
        return parse_moment(text, "createdAt", tz)
    except PeriodError as exc:
        raise bad_request(exc.field, exc.value, exc.message) from exc


def _changed(id: str, change: Callable[[Partner, Organization], object]) -> OrganizationOut:  # noqa: A002
    """Make one change to the partner's organization id (404 if unknown) and answer it."""
    partner = current_partner()
    org = accounts.get_organization(partner, id)
    change(partner, org)
    return serializers.organization(partner, org)


@bp.get("/partner/organizations")
@doc(OrganizationListOut, query=OrgListQuery, tags=TAGS)
def list_organizations() -> OrganizationListOut:
    """The partner's organizations by name; search is a case-insensitive name substring."""
    partner = current_partner()
    query = validated_query()
    orgs, total = accounts.list_organizations(
        partner,
        status=query.status,
        search=query.search,
        external_id=query.externalId,
        page=query.page,
        page_size=query.pageSize,
    )
    return OrganizationListOut(
        organizations=serializers.organizations(partner, orgs),
        total=total,
        page=query.page,
        page_size=query.pageSize,
    )


@bp.post("/partner/organizations")
@doc(OrganizationOut, status=201, json=OrganizationCreate, errors=(409, 422), tags=TAGS)
def create_organization() -> tuple[OrganizationOut, int, dict[str, str]]:
    """Create an organization (write). A duplicate externalId answers 409; over
    maxOrganizations, or initialCredits beyond the pool or the trial cap, 422."""
    partner = current_partner()
    body = validated_json()
    created = _created_at(body.createdAt, partner.timezone) if body.createdAt else None
    org = accounts.create_organization(
        partner,
        body.name,
        external_id=body.externalId,
        initial_credits=body.initialCredits,
        metadata=body.metadata,
        tier=body.tier,
        product_type=body.productType,
        created_at=created,
    )
    location = url_for("api.get_organization", id=org.id)
    return serializers.organization(partner, org), 201, {"Location": location}


@bp.get("/partner/organizations/<id>")
@doc(OrganizationOut, errors=(404,), tags=TAGS)
def get_organization(id: str) -> OrganizationOut:  # noqa: A002
    """One organization with its allocation and this billing period's usage."""
    partner = current_partner()
    return serializers.organization(partner, accounts.get_organization(partner, id))


@bp.patch("/partner/organizations/<id>")
@doc(OrganizationOut, json=OrganizationPatch, errors=(404, 409, 422), tags=TAGS)
def update_organization(id: str) -> OrganizationOut:  # noqa: A002
    """Change only the properties sent: name, externalId (null removes it), metadata,
    productType, status, tier (write)."""
    partner = current_partner()
    org = accounts.get_organization(partner, id)
    body = validated_json()
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    if "name" in changes:
        # Checked before anything changes, so a bad name cannot leave a half-done update.
        changes["name"] = accounts.check_name(changes["name"])
    accounts.update_organization(partner, org, changes)
    return serializers.organization(partner, org)


@bp.delete("/partner/organizations/<id>")
@doc(None, status=204, errors=(404,), tags=TAGS)
def delete_organization(id: str) -> Response:  # noqa: A002
    """Soft delete (write): the organization becomes canceled, its allocation returns to
    the pool, and all its history is kept."""
    partner = current_partner()
    org = accounts.get_organization(partner, id)
    accounts.set_status(partner, org, "canceled", action="delete")
    return serializers.no_content()


@bp.put("/partner/organizations/<id>/status")
@doc(OrganizationOut, json=StatusBody, errors=(404,), tags=TAGS)
def set_status(id: str) -> OrganizationOut:  # noqa: A002
    """Set the status (write); every change is kept with its time, and the optional
    reason (at most 500 characters) with it in the audit log."""
    body = validated_json()
    return _changed(
        id, lambda partner, org: accounts.set_status(partner, org, body.status, reason=body.reason)
    )


@bp.put("/partner/organizations/<id>/tier")
@doc(OrganizationOut, json=TierBody, errors=(404, 422), tags=TAGS)
def set_tier(id: str) -> OrganizationOut:  # noqa: A002
    """Set the tier (write); trial needs an allocation of at most 500 credits (else 422)."""
    return _changed(id, lambda partner, org: accounts.set_tier(partner, org, validated_json().tier))


@bp.put("/partner/organizations/<id>/credits")
@doc(AllocationOut, json=CreditsBody, errors=(404, 422), tags=TAGS)
def set_credits(id: str) -> AllocationOut:  # noqa: A002
    """Set the allocation to credits (write). If all allocations together would exceed the
    pool, or a trial organization would hold more than 500, the answer is 422
    InsufficientCredits with what is available, and nothing changes."""
    partner = current_partner()
    org = accounts.get_organization(partner, id)
    body = validated_json()
    change = accounts.set_allocation(partner, org, body.credits, body.notes)
    return AllocationOut(allocation=serializers.allocation(partner, org, change))


@bp.get("/partner/organizations/<id>/credits/history")
@doc(AllocationHistoryOut, query=PageQuery, errors=(404,), tags=TAGS)
def credits_history(id: str) -> AllocationHistoryOut:  # noqa: A002
    """The allocation audit trail, newest first."""
    partner = current_partner()
    org = accounts.get_organization(partner, id)
    query = validated_query()
    rows, total = accounts.allocation_history_page(org, query.page, query.pageSize)
    return AllocationHistoryOut(
        organization_id=org.id,
        history=[serializers.allocation_change(r) for r in rows],
        total=total,
        page=query.page,
        page_size=query.pageSize,
    )
