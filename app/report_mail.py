"""The monthly report by e-mail: at 06:00 partner-local on the first day after the month
closes, then "revised" when late data changes a headline figure (at most once a day).

The worker asks every 15 minutes (send_due). Each sending is a report_mailing row keyed
by (partner, month, revision), inserted in the transaction that queues the e-mails
(insert-or-nothing), so two workers, or a worker run twice, send a revision once. The
e-mail is an HTML summary (and its plain-text twin) with the report's CSV attached: the
CSV is exports.report_csv() of reports.month_report(), the very text the report page's
CSV link downloads, and the figures are that report's.

Only the month that closed last is watched for revisions: late data for older months is
rare and shows on the report page.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select

from . import mail, reports
from .alerts import insert_or_nothing
from .database import write_transaction
from .errors import AppError
from .exports import report_csv, report_filename
from .extensions import db
from .models import MailPreference, Partner, ReportMailing
from .periods import add_months, zone
from .timeutil import utcnow

log = logging.getLogger(__name__)

SEND_HOUR = 6
REVISION_GAP = timedelta(days=1)
# The figures whose change makes a "revised" sending (the report's summary).
HEADLINE = (
    "total_identifications",
    "credits_used",
    "total_events",
    "total_quantity",
    "organizations_with_activity",
    "active_organizations",
    "total_organizations",
    "credits_remaining",
)
HEADLINE_LABELS = {
    "total_identifications": "Identifications",
    "credits_used": "Credits used",
    "total_events": "Events",
    "total_quantity": "Total quantity",
    "organizations_with_activity": "Organizations with activity",
    "active_organizations": "Active organizations at month end",
    "total_organizations": "Organizations at month end",
    "credits_remaining": "Credits remaining at month end",
}


def due_month(partner: Partner, now: datetime) -> str | None:
    """Return the month (YYYY-MM) whose report is due for the partner at now (UTC): the
    month that closed last, once it is 06:00 local on the 1st or later; None before."""
    local = now.replace(tzinfo=UTC).astimezone(zone(partner.timezone)).replace(tzinfo=None)
    if local.day == 1 and local.hour < SEND_HOUR:
        return None
    last_month = add_months(local.date().replace(day=1), -1)
    return reports.month_key(last_month)


def headline_of(report: reports.MonthReport) -> dict[str, int]:
    """Return the report's headline figures."""
    return {name: int(getattr(report.summary, name)) for name in HEADLINE}


def _insert_mailing(values: dict[str, Any]) -> bool:
    return insert_or_nothing(ReportMailing, values, ["partner_id", "month", "revision"])


def render(report: reports.MonthReport, revised: bool) -> tuple[str, str, str]:
    """Return (subject, plain text, HTML) of the report's e-mail."""
    figures = headline_of(report)
    mark = " (revised)" if revised else ""
    subject = f"[{report.partner_name}] Monthly report: {report.month_label}{mark}"
    lines = [
        f"{report.partner_name} — monthly report for {report.month_label}{mark}",
        f"{report.start_date} to {report.end_date} ({report.timezone})",
        "",
    ]
    if revised:
        lines += ["Revised: events received after the month closed changed its figures.", ""]
    lines += [f"{HEADLINE_LABELS[name]}: {value:,}" for name, value in figures.items()]
    if report.estimated_cost is not None:
        lines.append(f"Estimated cost: {report.estimated_cost} {report.currency}")
    lines += ["", "The full report is attached as CSV."]
    template = current_app.jinja_env.get_template("mail/report.html")
    html = template.render(
        report=report,
        figures=[(HEADLINE_LABELS[k], v, k) for k, v in figures.items()],
        revised=revised,
        organizations=report.organizations[:50],
        more=max(0, len(report.organizations) - 50),
    )
    return subject, "\n".join(lines) + "\n", html


def send_month(partner: Partner, month: str, now: datetime | None = None) -> int | None:
    """Send the month's report (revision 0), or a revision if a headline figure changed
    since the last sending a day or more ago; return the revision sent, or None."""
    now = now or utcnow()
    with write_transaction():
        to = mail.recipients(partner.id, None)
        if not to:
            return None
        last = db.session.execute(
            select(ReportMailing)
            .where(ReportMailing.partner_id == partner.id, ReportMailing.month == month)
            .order_by(ReportMailing.revision.desc())
            .limit(1)
        ).scalar_one_or_none()
        if last is not None and now - last.sent_at < REVISION_GAP:
            return None
        try:
            report = reports.report_for(partner, month)
        except AppError:  # no data for the month: no report to send
            return None
        figures = headline_of(report)
        if last is not None and last.headline == figures:
            return None
        revision = 0 if last is None else last.revision + 1
        if not _insert_mailing(
            {
                "partner_id": partner.id,
                "month": month,
                "revision": revision,
                "sent_at": now,
                "headline": figures,
                "recipients": len(to),
            }
        ):
            return None
        subject, text, html = render(report, revised=revision > 0)
        attachment = (report_filename(report, "csv"), report_csv(report), "text/csv")
        for recipient in to:
            mail.enqueue(partner.id, "report", recipient, subject, text, html, (attachment,))
    log.info("monthly report %s of %s: revision %s to %s", month, partner.slug, revision, len(to))
    return revision


def send_due(now: datetime | None = None) -> int:
    """Send every due monthly report (and revisions); return how many sendings."""
    now = now or utcnow()
    ids = [
        r[0]
        for r in db.session.execute(
            select(MailPreference.partner_id)
            .where(MailPreference.monthly_report.is_(True))
            .distinct()
        ).all()
    ]
    db.session.rollback()
    sent = 0
    for partner_id in ids:
        partner = db.session.get(Partner, partner_id)
        if partner is None:
            continue
        month = due_month(partner, now)
        if month is not None and send_month(partner, month, now) is not None:
            sent += 1
    return sent
