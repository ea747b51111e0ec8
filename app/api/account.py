"""The calling partner (me) and its API keys."""

from __future__ import annotations

from datetime import datetime

from flask import Response, g

from .. import accounts, auth
from ..errors import bad_request
from ..periods import TIMESTAMP_START_RE
from ..timeutil import to_utc_naive, utcnow
from . import bp, serializers
from .guards import current_partner, requires_scope
from .schemas import ApiKeyCreate, ApiKeyCreatedOut, ApiKeyListOut, PageQuery, PartnerOut
from .spec import doc, validated_json, validated_query


def _expires_at(text: str) -> datetime:
    """Return expiresAt as naive UTC; it must be a timestamp in the future."""
    try:
        if not TIMESTAMP_START_RE.match(text.strip()):
            raise ValueError(text)
        moment = to_utc_naive(datetime.fromisoformat(text.strip()))
    except (ValueError, OverflowError) as exc:
        raise bad_request(
            "expiresAt",
            text,
            "expiresAt must be an ISO 8601 timestamp such as 2026-01-01T00:00:00Z",
        ) from exc
    if moment <= utcnow():
        raise bad_request("expiresAt", text, "expiresAt must be in the future")
    return moment


@bp.get("/partner/me")
@doc(PartnerOut, tags=("account",))
def me() -> PartnerOut:
    """The partner this key belongs to, with its credit pool now and the key itself."""
    return serializers.partner_json(current_partner(), g.api_key)


@bp.get("/partner/api-keys")
@requires_scope("admin")
@doc(ApiKeyListOut, query=PageQuery, tags=("account",))
def list_api_keys() -> ApiKeyListOut:
    """The partner's API keys, newest first, revoked and expired ones included (admin)."""
    query = validated_query()
    keys, total = accounts.list_api_keys(current_partner(), query.page, query.pageSize)
    return ApiKeyListOut(
        api_keys=[serializers.api_key(k) for k in keys],
        total=total,
        page=query.page,
        page_size=query.pageSize,
    )


@bp.post("/partner/api-keys")
@requires_scope("admin")
@doc(ApiKeyCreatedOut, status=201, json=ApiKeyCreate, tags=("account",))
def create_api_key() -> tuple[ApiKeyCreatedOut, int]:
    """Create a key (admin). plainKey is shown in this answer only: store it now."""
    body = validated_json()
    expires = _expires_at(body.expiresAt) if body.expiresAt is not None else None
    key, plain = auth.create_api_key(
        current_partner(), body.name, auth.parse_scopes(list(body.scopes)), expires
    )
    return ApiKeyCreatedOut(api_key=serializers.api_key(key), plain_key=plain), 201


@bp.delete("/partner/api-keys/<id>")
@requires_scope("admin")
@doc(None, status=204, errors=(404,), tags=("account",))
def revoke_api_key(id: str) -> Response:  # noqa: A002
    """Revoke a key (admin); it answers 401 from then on."""
    auth.revoke_api_key(accounts.get_api_key(current_partner(), id))
    return serializers.no_content()
