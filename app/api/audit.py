"""The audit log: every change by any path, newest first, filtered as on the page."""

from __future__ import annotations

from .. import audit
from . import bp
from .guards import current_partner, requires_scope
from .schemas import AuditEntryOut, AuditLogOut, AuditQuery
from .spec import doc, validated_query


@bp.get("/partner/audit-log")
@requires_scope("admin")
@doc(AuditLogOut, query=AuditQuery, tags=("account",))
def audit_log() -> AuditLogOut:
    """The partner's audit log (admin), newest first: who changed what, and when.

    Filters: actor (part of who, any case), objectType, action, and startDate..endDate
    (days in the partner's timezone, both included). Entries are never changed.
    """
    query = validated_query()
    partner = current_partner()
    filters = audit.read_filters(
        partner.timezone,
        query.actor,
        query.objectType,
        query.action,
        query.startDate,
        query.endDate,
    )
    found, total = audit.entries(partner, filters, query.page, query.pageSize)
    return AuditLogOut(
        entries=[AuditEntryOut.model_validate(entry) for entry in found],
        total=total,
        page=query.page,
        page_size=query.pageSize,
    )
