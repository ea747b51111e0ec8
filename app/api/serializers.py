"""Answer models of partners, organizations, allocations and keys, built from the rows."""

from __future__ import annotations

from flask import Response

from .. import billing, metrics
from ..auth import key_status
from ..models import ApiKey, CreditAllocation, Organization, Partner
from .schemas import Allocation, AllocationChange, ApiKeyOut, OrganizationOut, PartnerOut


def organizations(partner: Partner, orgs: list[Organization]) -> list[OrganizationOut]:
    """Return organizations as the API shows them, with this billing period's credits."""
    alloc = metrics.allocation_figures(partner, orgs)
    return [
        OrganizationOut.model_validate(
            {
                "id": org.id,
                "name": org.name,
                "external_id": org.external_id,
                "status": org.status,
                "tier": org.tier,
                "product_type": org.product_type,
                "credits": alloc[org.id].credits,
                "credits_used": alloc[org.id].credits_used,
                "credits_available": alloc[org.id].credits_available,
                "metadata": org.meta or {},
                "created_at": org.created_at,
                "updated_at": org.updated_at,
            }
        )
        for org in orgs
    ]


def organization(partner: Partner, org: Organization) -> OrganizationOut:
    """Return one organization as the API shows it."""
    return organizations(partner, [org])[0]


def allocation(partner: Partner, org: Organization, change: CreditAllocation) -> Allocation:
    """Return an organization's allocation after a change."""
    used = metrics.allocation_figures(partner, [org])[org.id].credits_used
    return Allocation.model_validate(
        {
            "id": change.id,
            "partner_id": partner.id,
            "organization_id": org.id,
            "credits_allocated": change.credits_allocated,
            "credits_used": used,
            "credits_available": change.credits_allocated - used,
            "allocated_at": change.allocated_at,
            "notes": change.notes,
        }
    )


def allocation_change(change: CreditAllocation) -> AllocationChange:
    """Return one entry of the allocation audit trail (the row's own fields)."""
    return AllocationChange.model_validate(change)


def api_key(key: ApiKey) -> ApiKeyOut:
    """Return a key's public description (never its secret)."""
    return ApiKeyOut.model_validate(
        {
            "id": key.id,
            "name": key.name,
            "prefix": key.prefix,
            "scopes": key.scope_list,
            "created_at": key.created_at,
            "expires_at": key.expires_at,
            "revoked_at": key.revoked_at,
            "last_used_at": key.last_used_at,
            "status": key_status(key),
        }
    )


def partner_json(partner: Partner, key: ApiKey | None) -> PartnerOut:
    """Return the partner with its pool figures now."""
    pool = metrics.pool_status(partner)
    return PartnerOut.model_validate(
        {
            "id": partner.id,
            "name": partner.name,
            "slug": partner.slug,
            "status": partner.status,
            "billing_mode": partner.billing_mode,
            "billing_period": partner.billing_period,
            "billing_day_of_month": partner.billing_day_of_month,
            "credit_pool_total": pool.credit_pool_total,
            "credit_pool_used": pool.credit_pool_used,
            "credit_pool_available": pool.credit_pool_available,
            "credit_pool_allocated": pool.credit_pool_allocated,
            "billing_period_start": pool.billing_period_start,
            "billing_period_end": pool.billing_period_end,
            "pricing_tiers": billing.pricing_tiers(partner.pricing_tiers),
            "currency": partner.currency,
            "max_organizations": partner.max_organizations,
            "timezone": partner.timezone,
            "created_at": partner.created_at,
            "data_freshness": metrics.data_freshness(partner),
            "api_key": api_key(key) if key is not None else None,
        }
    )


def no_content() -> Response:
    """Return an empty 204 answer."""
    return Response(status=204)
