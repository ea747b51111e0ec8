"""JSON shapes of partners, organizations, allocations and keys (camelCase, UTC with Z)."""

from __future__ import annotations

from typing import Any

from flask import Response

from .. import billing, metrics
from ..models import ApiKey, CreditAllocation, Organization, Partner
from ..timeutil import iso_z, utcnow


def iso(moment: Any) -> str:
    """Return a stored (naive UTC) moment as ISO 8601 with Z."""
    text = iso_z(moment)
    assert text is not None
    return text


def organizations(partner: Partner, orgs: list[Organization]) -> list[dict[str, Any]]:
    """Return organizations as the API shows them, with this billing period's credits."""
    alloc = metrics.allocation_figures(partner, orgs)
    return [
        {
            "id": org.id,
            "name": org.name,
            "externalId": org.external_id,
            "status": org.status,
            "tier": org.tier,
            "productType": org.product_type,
            "credits": alloc[org.id]["credits"],
            "creditsUsed": alloc[org.id]["creditsUsed"],
            "creditsAvailable": alloc[org.id]["creditsAvailable"],
            "metadata": org.meta or {},
            "createdAt": iso(org.created_at),
            "updatedAt": iso(org.updated_at),
        }
        for org in orgs
    ]


def organization(partner: Partner, org: Organization) -> dict[str, Any]:
    """Return one organization as the API shows it."""
    return organizations(partner, [org])[0]


def allocation(partner: Partner, org: Organization, change: CreditAllocation) -> dict[str, Any]:
    """Return an organization's allocation after a change."""
    figures = metrics.allocation_figures(partner, [org])[org.id]
    return {
        "id": change.id,
        "partnerId": partner.id,
        "organizationId": org.id,
        "creditsAllocated": change.credits_allocated,
        "creditsUsed": figures["creditsUsed"],
        "creditsAvailable": change.credits_allocated - figures["creditsUsed"],
        "allocatedAt": iso(change.allocated_at),
        "notes": change.notes,
    }


def allocation_change(change: CreditAllocation) -> dict[str, Any]:
    """Return one entry of the allocation audit trail."""
    return {
        "id": change.id,
        "organizationId": change.organization_id,
        "creditsAllocated": change.credits_allocated,
        "previousCredits": change.previous_credits,
        "notes": change.notes,
        "allocatedAt": iso(change.allocated_at),
    }


def api_key(key: ApiKey) -> dict[str, Any]:
    """Return a key's public description (never its secret)."""
    if key.revoked_at is not None:
        status = "revoked"
    elif key.expires_at is not None and key.expires_at <= utcnow():
        status = "expired"
    else:
        status = "active"
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "scopes": key.scope_list,
        "createdAt": iso(key.created_at),
        "expiresAt": iso_z(key.expires_at),
        "revokedAt": iso_z(key.revoked_at),
        "lastUsedAt": iso_z(key.last_used_at),
        "status": status,
    }


def partner_json(partner: Partner, key: ApiKey | None) -> dict[str, Any]:
    """Return the partner with its pool figures now."""
    pool = metrics.pool_status(partner)
    return {
        "id": partner.id,
        "name": partner.name,
        "slug": partner.slug,
        "status": partner.status,
        "billingMode": partner.billing_mode,
        "billingPeriod": partner.billing_period,
        "billingDayOfMonth": partner.billing_day_of_month,
        "creditPoolTotal": pool["creditPoolTotal"],
        "creditPoolUsed": pool["creditPoolUsed"],
        "creditPoolAvailable": pool["creditPoolAvailable"],
        "creditPoolAllocated": pool["creditPoolAllocated"],
        "billingPeriodStart": pool["billingPeriodStart"].isoformat(),
        "billingPeriodEnd": pool["billingPeriodEnd"].isoformat(),
        "pricingTiers": billing.tiers_json(partner),
        "currency": partner.currency,
        "maxOrganizations": partner.max_organizations,
        "timezone": partner.timezone,
        "createdAt": iso(partner.created_at),
        "dataFreshness": iso_z(metrics.data_freshness(partner)),
        "apiKey": api_key(key) if key is not None else None,
    }


def page_of(
    items_key: str, items: list[Any], total: int, page: int, page_size: int
) -> dict[str, Any]:
    """Return a list answer with its pagination fields."""
    return {items_key: items, "total": total, "page": page, "pageSize": page_size}


def no_content() -> Response:
    """Return an empty 204 answer."""
    return Response(status=204)
