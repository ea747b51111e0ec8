"""E-mail: alerts, the monthly report and invitations, through the mail outbox.

enqueue() writes the whole message (RFC 5322 text) to mail_message in the CURRENT
transaction, so an alert's e-mail commits or rolls back with its firing. Once committed
the worker sends it (app/worker.py, task mail.deliver); the minute sweep hands it what is
due, so a lost job is not a lost e-mail. A failed send is retried (the webhooks' backoff)
for 24 hours.

Transport: SMTP when MAIL_SERVER is set (MAIL_PORT, MAIL_USE_TLS for STARTTLS,
MAIL_USERNAME, MAIL_PASSWORD, MAIL_FROM); otherwise each message is written as
instance/outbox/<id>.eml (a temporary file renamed into place, so a reader never sees
half a message, and a retry rewrites the same file rather than adding one).
"""

from __future__ import annotations

import logging
import os
import smtplib
import tempfile
import uuid
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from flask import current_app
from sqlalchemy import select, update

from .database import write_transaction
from .extensions import db
from .models import MailMessage, MailPreference, User
from .outbox import dispatch_after_commit
from .timeutil import utcnow

log = logging.getLogger(__name__)

OUTBOX_FOLDER = "outbox"
DEFAULT_FROM = "Partner Analytics <no-reply@partner-analytics.invalid>"
GIVE_UP_AFTER = timedelta(hours=24)
LEASE = timedelta(seconds=90)
SMTP_TIMEOUT_S = 30.0
SWEEP_HORIZON = timedelta(seconds=60)
# An attachment: (file name, content, MIME type such as "text/csv").
Attachment = tuple[str, str, str]


def sender() -> str:
    """Return MAIL_FROM (or the default From: address)."""
    return str(current_app.config.get("MAIL_FROM") or DEFAULT_FROM)


def outbox_folder() -> Path:
    """Return the folder of the .eml files (MAIL_OUTBOX_DIR, else instance/outbox)."""
    chosen = current_app.config.get("MAIL_OUTBOX_DIR")
    return Path(chosen) if chosen else Path(current_app.instance_path) / OUTBOX_FOLDER


def compose(
    recipient: str,
    subject: str,
    text: str,
    html: str | None = None,
    attachments: tuple[Attachment, ...] = (),
    message_id: str | None = None,
) -> EmailMessage:
    """Return a message: plain text (and an HTML alternative), with attachments."""
    message = EmailMessage()
    message["From"] = sender()
    message["To"] = recipient
    message["Subject"] = subject
    message["Date"] = formatdate(utcnow().timestamp(), usegmt=True)
    domain = sender().rsplit("@", 1)[-1].strip(">") or "partner-analytics.invalid"
    message["Message-ID"] = make_msgid(idstring=message_id, domain=domain)
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    for filename, content, mimetype in attachments:
        maintype, subtype = mimetype.split("/", 1)
        message.add_attachment(
            content.encode("utf-8"), maintype=maintype, subtype=subtype, filename=filename
        )
    return message


def enqueue(
    partner_id: str | None,
    kind: str,
    recipient: str,
    subject: str,
    text: str,
    html: str | None = None,
    attachments: tuple[Attachment, ...] = (),
) -> MailMessage:
    """Add an e-mail to the current transaction's outbox (the caller commits)."""
    now = utcnow()
    message_id = "mail_" + uuid.uuid4().hex
    raw = compose(recipient, subject, text, html, attachments, message_id).as_string()
    row = MailMessage(
        id=message_id,
        partner_id=partner_id,
        kind=kind,
        recipient=recipient,
        subject=subject[:300],
        raw=raw,
        created_at=now,
        next_attempt_at=now,
        attempts=0,
    )
    db.session.add(row)
    dispatch_after_commit(message_id, now, kind="mail")
    return row


# --- who wants what ------------------------------------------------------------------------


def preferences_of(user: User) -> MailPreference:
    """Return the member's e-mail choices (nothing chosen when never saved; not added)."""
    found = db.session.get(MailPreference, user.id)
    if found is None:
        found = MailPreference(
            user_id=user.id, partner_id=user.partner_id, alert_kinds=[], monthly_report=False
        )
    return found


def save_preferences(user: User, alert_kinds: list[str], monthly_report: bool) -> MailPreference:
    """Save the member's choices (their own; not audited: no partner setting changes)."""
    with write_transaction():
        found = db.session.get(MailPreference, user.id)
        if found is None:
            found = MailPreference(user_id=user.id, partner_id=user.partner_id)
            db.session.add(found)
        found.alert_kinds = sorted(set(alert_kinds))
        found.monthly_report = monthly_report
        found.updated_at = utcnow()
    return found


def recipients(partner_id: str, alert_kind: str | None = None) -> list[str]:
    """Return the addresses of the partner's members who chose alert_kind (or, with None,
    the monthly report), in a stable order."""
    rows = db.session.execute(
        select(User.email, MailPreference.alert_kinds, MailPreference.monthly_report)
        .join(MailPreference, MailPreference.user_id == User.id)
        .where(User.partner_id == partner_id, MailPreference.partner_id == partner_id)
        .order_by(User.email)
    ).all()
    if alert_kind is None:
        return [email for email, _kinds, monthly in rows if monthly]
    return [email for email, kinds, _monthly in rows if alert_kind in (kinds or [])]


# --- invitations (for the team page) -------------------------------------------------------


def send_invitation(email: str, link: str, partner_name: str) -> MailMessage:
    """Queue the invitation e-mail to email with its one-time link, in the current
    transaction (call it inside the invitation's write_transaction)."""
    subject = f"You are invited to {partner_name} on Partner Analytics"
    text = (
        f"Hello,\n\nYou have been invited to join {partner_name} on Partner Analytics.\n\n"
        f"Accept the invitation (the link works once, for 7 days):\n{link}\n\n"
        "If you did not expect this, ignore this message.\n"
    )
    return enqueue(None, "invitation", email, subject, text)


# --- sending -------------------------------------------------------------------------------


def transport_send(row: MailMessage) -> None:
    """Send one message: SMTP when MAIL_SERVER is set, else an .eml file. Raises on failure."""
    config = current_app.config
    server = config.get("MAIL_SERVER")
    if not server:
        folder = outbox_folder()
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"{row.id}.eml"
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".eml")
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                handle.write(row.raw)
            os.replace(temporary, final)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return
    port = int(config.get("MAIL_PORT") or 25)
    with smtplib.SMTP(str(server), port, timeout=SMTP_TIMEOUT_S) as smtp:
        if config.get("MAIL_USE_TLS"):
            smtp.starttls()
        username = config.get("MAIL_USERNAME")
        if username:
            smtp.login(str(username), str(config.get("MAIL_PASSWORD") or ""))
        smtp.sendmail(sender(), [row.recipient], row.raw.encode("utf-8"))


def claim(message_id: str) -> bool:
    """Take message_id for one attempt if it is due and nobody holds it."""
    now = utcnow()
    with write_transaction():
        result = db.session.execute(
            update(MailMessage)
            .where(
                MailMessage.id == message_id,
                MailMessage.sent_at.is_(None),
                MailMessage.failed_at.is_(None),
                MailMessage.next_attempt_at <= now,
            )
            .values(next_attempt_at=now + LEASE)
            .execution_options(synchronize_session=False)
        )
    return bool(getattr(result, "rowcount", 0) == 1)


def deliver(message_id: str) -> str:
    """Make one attempt at sending message_id if it is due; return what happened."""
    from .delivery import retry_delay

    if not claim(message_id):
        return "not due"
    row = db.session.get(MailMessage, message_id)
    if row is None:  # pragma: no cover (claimed rows are never deleted)
        return "gone"
    error: str | None = None
    try:
        transport_send(row)
    except (OSError, smtplib.SMTPException) as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    with write_transaction():
        row = db.session.execute(
            select(MailMessage).where(MailMessage.id == message_id)
        ).scalar_one()
        now = utcnow()
        row.attempts += 1
        retry_at: datetime | None = None
        if error is None:
            row.sent_at, row.next_attempt_at, row.last_error = now, None, None
            result = "sent"
        elif now - row.created_at < GIVE_UP_AFTER:
            retry_at = now + retry_delay(row.attempts)
            row.next_attempt_at, row.last_error = retry_at, error
            result = f"retry at {retry_at.isoformat(timespec='seconds')}Z"
        else:
            row.failed_at, row.next_attempt_at, row.last_error = now, None, error
            result = "given up"
        if retry_at is not None:
            dispatch_after_commit(row.id, retry_at, kind="mail")
    log.info("mail %s: %s (%s)", message_id, result, error or "ok")
    return result


def sweep() -> int:
    """Hand the queue every e-mail due within the next minute; return how many."""
    from . import worker

    horizon = utcnow() + SWEEP_HORIZON
    rows = db.session.execute(
        select(MailMessage.id, MailMessage.next_attempt_at)
        .where(MailMessage.next_attempt_at <= horizon)
        .order_by(MailMessage.next_attempt_at)
        .limit(1000)
    ).all()
    db.session.rollback()
    for message_id, due in rows:
        worker.schedule_mail(message_id, due)
    return len(rows)
