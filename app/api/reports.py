"""Month-end reports over the API: the same data as the dashboard's report and its JSON."""

from __future__ import annotations

from .. import reports
from . import bp
from .guards import current_partner
from .schemas import PageQuery, ReportListOut, ReportOut
from .spec import doc, validated_query

TAGS = ("reports",)


@bp.get("/partner/reports")
@doc(ReportListOut, query=PageQuery, tags=TAGS)
def report_list() -> ReportListOut:
    """Every calendar month with data (partner's timezone), newest first, with headlines."""
    partner = current_partner()
    query = validated_query()
    months = reports.month_index(partner)
    first = (query.page - 1) * query.pageSize
    return ReportListOut.model_validate(
        {
            "partner_id": partner.id,
            "timezone": partner.timezone,
            "months": months[first : first + query.pageSize],
            "total": len(months),
            "page": query.page,
            "page_size": query.pageSize,
        }
    )


@bp.get("/partner/reports/<month>")
@doc(ReportOut, errors=(404,), tags=TAGS)
def report(month: str) -> ReportOut:
    """The month-end report of a month (YYYY-MM); 404 for a month without a report."""
    return ReportOut.model_validate(reports.report_for(current_partner(), month))
