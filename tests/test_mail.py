"""E-mail: the .eml outbox (atomic, one file per message), SMTP to a local server, retries,
the invitation helper, the members' choices, and the monthly report by e-mail (due at
06:00 partner-local on the 1st, once; revised once a day at most; the same numbers as the
report page)."""

from __future__ import annotations

import email
import socketserver
import threading
from datetime import datetime, timedelta
from email import policy
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app import alerts, mail, report_mail
from app.extensions import db
from app.ingest import ingest_batch
from app.models import MailMessage, ReportMailing
from app.timeutil import set_frozen_now
from tests.views_support import login

PASSWORD = "correct horse battery"


def parse(raw: str | bytes) -> email.message.EmailMessage:
    data = raw.encode() if isinstance(raw, str) else raw
    return email.message_from_bytes(data, policy=policy.default)  # type: ignore[return-value]


def eml_files(app) -> list[Path]:
    return sorted(Path(app.config["MAIL_OUTBOX_DIR"]).glob("*.eml"))


def row(message_id: str) -> MailMessage:
    db.session.rollback()
    return db.session.get(MailMessage, message_id)


# --- the .eml outbox -----------------------------------------------------------------


def test_without_a_server_each_message_is_an_eml_file(app_ctx, make_partner, freeze):
    freeze(datetime(2025, 10, 20, 12))
    partner = make_partner("alpha", name="Alpha Agency")
    from app.database import write_transaction

    with write_transaction():
        queued = mail.enqueue(
            partner.id,
            "alert",
            "a@alpha.test",
            "Hello",
            "Plain body\n",
            "<p>HTML body</p>",
            (("r.csv", "a,b\n1,2\n", "text/csv"),),
        )
    # Immediate mode (tests): the commit handed it to the worker, which wrote the file.
    files = eml_files(app_ctx)
    assert [f.name for f in files] == [f"{queued.id}.eml"]
    assert not list(Path(app_ctx.config["MAIL_OUTBOX_DIR"]).glob(".tmp-*"))
    message = parse(files[0].read_bytes())
    assert message["To"] == "a@alpha.test" and message["Subject"] == "Hello"
    assert message.get_body(("plain",)).get_content() == "Plain body\n"
    assert "HTML body" in message.get_body(("html",)).get_content()
    attachment = next(message.iter_attachments())
    assert attachment.get_filename() == "r.csv"
    assert attachment.get_content() in ("a,b\n1,2\n", b"a,b\n1,2\n")
    assert row(queued.id).sent_at is not None
    # Sending again (a retry after a crash) rewrites the same file, adds none.
    mail.transport_send(row(queued.id))
    assert len(eml_files(app_ctx)) == 1


def test_a_rolled_back_transaction_sends_nothing(app_ctx, make_partner):
    partner = make_partner("alpha")
    from app.database import write_transaction

    with pytest.raises(RuntimeError), write_transaction():
        mail.enqueue(partner.id, "alert", "a@alpha.test", "Hello", "x\n")
        raise RuntimeError("the change failed")
    assert eml_files(app_ctx) == []
    assert db.session.execute(select(MailMessage)).first() is None


class SMTPServer:
    """A minimal SMTP server on 127.0.0.1 recording what it is given."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        server = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                self.wfile.write(b"220 test ESMTP\r\n")
                envelope: dict[str, Any] = {"rcpt": []}
                while True:
                    line = self.rfile.readline()
                    if not line:
                        return
                    verb = line.decode().strip().split(" ")[0].upper()
                    if verb in ("EHLO", "HELO"):
                        self.wfile.write(b"250 test\r\n")
                    elif verb == "MAIL":
                        envelope["from"] = line.decode().strip()
                        self.wfile.write(b"250 ok\r\n")
                    elif verb == "RCPT":
                        envelope["rcpt"].append(line.decode().strip())
                        self.wfile.write(b"250 ok\r\n")
                    elif verb == "DATA":
                        self.wfile.write(b"354 go\r\n")
                        data = b""
                        while not data.endswith(b"\r\n.\r\n"):
                            data += self.rfile.readline()
                        envelope["data"] = data[:-5]
                        server.received.append(envelope)
                        envelope = {"rcpt": []}
                        self.wfile.write(b"250 queued\r\n")
                    elif verb == "QUIT":
                        self.wfile.write(b"221 bye\r\n")
                        return
                    else:
                        self.wfile.write(b"250 ok\r\n")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_smtp_sends_through_mail_server(app_ctx, make_partner):
    smtp = SMTPServer()
    try:
        app_ctx.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp.port, MAIL_FROM="pa@x.test")
        partner = make_partner("alpha")
        from app.database import write_transaction

        with write_transaction():
            queued = mail.enqueue(partner.id, "alert", "b@alpha.test", "Over SMTP", "body\n")
        assert len(smtp.received) == 1
        got = smtp.received[0]
        assert [r.split(":", 1)[1] for r in got["rcpt"]] == ["<b@alpha.test>"]
        assert "pa@x.test" in got["from"]
        assert parse(got["data"])["Subject"] == "Over SMTP"
        assert row(queued.id).sent_at is not None
        assert eml_files(app_ctx) == []
    finally:
        smtp.close()


def test_a_failed_send_is_retried_then_sent(app_ctx, make_partner, freeze):
    moment = datetime(2025, 10, 20, 12)
    freeze(moment)
    # A port with nothing listening: connection refused.
    import socket

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    dead_port = probe.getsockname()[1]
    probe.close()
    app_ctx.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=dead_port)
    partner = make_partner("alpha")
    from app.database import write_transaction

    with write_transaction():
        queued = mail.enqueue(partner.id, "alert", "c@alpha.test", "Retry me", "x\n")
    first = row(queued.id)
    assert first.sent_at is None and first.attempts == 1
    assert "ConnectionRefused" in (first.last_error or "")
    # The first retry is due within 20-40 s (the webhooks' schedule).
    assert moment + timedelta(seconds=20) <= first.next_attempt_at <= moment + timedelta(seconds=40)
    app_ctx.config["MAIL_SERVER"] = None
    set_frozen_now(moment + timedelta(seconds=41))
    assert mail.deliver(queued.id) == "sent"
    assert [f.name for f in eml_files(app_ctx)] == [f"{queued.id}.eml"]


def test_the_sweep_sends_what_the_queue_lost(app_ctx, make_partner, monkeypatch):
    from app import worker

    partner = make_partner("alpha")
    lost: list[str] = []
    monkeypatch.setattr(worker, "schedule_mail", lambda mid, due=None: lost.append(mid))
    from app.database import write_transaction

    with write_transaction():
        queued = mail.enqueue(partner.id, "alert", "d@alpha.test", "Lost", "x\n")
    assert lost == [queued.id] and eml_files(app_ctx) == []
    monkeypatch.undo()
    monkeypatch.setattr(worker, "schedule_delivery", lambda *a, **k: None)
    assert mail.sweep() == 1
    assert [f.name for f in eml_files(app_ctx)] == [f"{queued.id}.eml"]


def test_send_invitation_queues_the_link(app_ctx, make_partner):
    from app.database import write_transaction

    with write_transaction():
        queued = mail.send_invitation(
            "new@alpha.test", "https://pa.test/invite/abc", "Alpha Agency"
        )
    message = parse(eml_files(app_ctx)[0].read_bytes())
    assert message["To"] == "new@alpha.test"
    assert "Alpha Agency" in message["Subject"]
    assert "https://pa.test/invite/abc" in message.get_body(("plain",)).get_content()
    assert row(queued.id).kind == "invitation"


def test_alert_mail_goes_to_the_members_who_chose_the_kind(
    app_ctx, make_partner, make_org, make_user, freeze
):
    freeze(datetime(2025, 10, 20, 12))
    partner = make_partner("alpha", pool=100, name="Alpha Agency")
    org = make_org(partner, "Org One")
    wants = make_user(partner, "wants@alpha.test", PASSWORD)
    other = make_user(partner, "other@alpha.test", PASSWORD)
    make_user(partner, "never@alpha.test", PASSWORD)
    mail.save_preferences(wants, ["pool_usage"], False)
    mail.save_preferences(other, ["stale_data"], True)
    alerts.create_rule(partner, "pool_usage", 50)
    event = {
        "eventId": "e1",
        "organizationId": org.id,
        "type": "identification",
        "quantity": 60,
        "occurredAt": "2025-10-10T10:00:00Z",
    }
    ingest_batch(partner, [(0, event)])
    sent = [parse(f.read_bytes()) for f in eml_files(app_ctx)]
    assert [m["To"] for m in sent] == ["wants@alpha.test"]
    assert sent[0]["Subject"] == "[Alpha Agency] Alert: Pool usage reaches 50 % of the pool"
    assert "creditPoolUsed: 60" in sent[0].get_body(("plain",)).get_content()


# --- the monthly report ----------------------------------------------------------------

# Europe/Berlin is UTC+1 on 1 November 2025: 06:00 local is 05:00 UTC.
DUE = datetime(2025, 11, 1, 5, 0)


@pytest.fixture
def reporting(app, make_partner, make_org, make_user, freeze):
    freeze(datetime(2025, 10, 25, 12))
    partner = make_partner("alpha", pool=10_000, tz="Europe/Berlin", name="Alpha Agency")
    one = make_org(partner, "Org One", created_at=datetime(2025, 9, 1))
    two = make_org(partner, "Org Two", created_at=datetime(2025, 9, 1))
    owner = make_user(partner, "owner@alpha.test", PASSWORD)
    mail.save_preferences(owner, [], True)
    events = [
        {
            "eventId": f"e{i}",
            "organizationId": (one if i % 3 else two).id,
            "type": t,
            "quantity": q,
            "occurredAt": f"2025-10-{d:02d}T10:00:00Z",
        }
        for i, (t, q, d) in enumerate(
            [
                ("identification", 120, 3),
                ("identification", 30, 9),
                ("verification", 7, 9),
                ("identification", 45, 17),
                ("identification", 5, 24),
                ("verification", 2, 2),
            ]
        )
    ]
    assert ingest_batch(partner, list(enumerate(events))).accepted == 6
    return partner, one


def report_mails(app) -> list[email.message.EmailMessage]:
    return [parse(f.read_bytes()) for f in eml_files(app)]


def test_the_report_is_due_at_six_local_on_the_first(app_ctx, reporting):
    partner, _ = reporting
    set_frozen_now(DUE - timedelta(minutes=1))
    assert report_mail.due_month(partner, DUE - timedelta(minutes=1)) is None
    assert report_mail.send_due() == 0
    set_frozen_now(DUE)
    assert report_mail.due_month(partner, DUE) == "2025-10"
    assert report_mail.send_due() == 1
    # Every 15 minutes again: nothing more (the sending is recorded).
    set_frozen_now(DUE + timedelta(minutes=15))
    assert report_mail.send_due() == 0
    sent = report_mails(app_ctx)
    assert len(sent) == 1
    assert sent[0]["Subject"] == "[Alpha Agency] Monthly report: October 2025"


def test_the_reports_email_carries_the_report_pages_numbers(client, app, reporting):
    set_frozen_now(DUE)
    with app.app_context():
        assert report_mail.send_due() == 1
        [message] = report_mails(app)
    login(client, "owner@alpha.test", PASSWORD)
    page_csv = client.get("/reports/2025-10.csv")
    assert page_csv.status_code == 200
    attachment = next(message.iter_attachments())
    assert attachment.get_filename() == "alpha-report-2025-10.csv"
    content = attachment.get_content()
    content = content.decode() if isinstance(content, bytes) else content
    assert content == page_csv.get_data(as_text=True)
    # The HTML's headline figures are the report JSON's summary.
    summary = client.get("/reports/2025-10.json").get_json()["summary"]
    html = message.get_body(("html",)).get_content()
    # Identifications: 120 + 30 + 45 + 5 = 200; events: 6; quantity 209.
    assert summary["totalIdentifications"] == 200
    assert 'data-figure="total_identifications">200<' in html
    assert f'data-figure="total_events">{summary["totalEvents"]}<' in html
    assert f'data-figure="total_quantity">{summary["totalQuantity"]}<' in html
    assert 'data-figure="credits_remaining">' + f"{summary['creditsRemaining']:,}<" in html


def test_late_data_sends_a_revision_at_most_once_a_day(app_ctx, reporting):
    partner, one = reporting
    set_frozen_now(DUE)
    report_mail.send_due()
    # A late October event arrives two hours later: not a day since the sending yet.
    set_frozen_now(DUE + timedelta(hours=2))
    late = {
        "eventId": "late1",
        "organizationId": one.id,
        "type": "identification",
        "quantity": 11,
        "occurredAt": "2025-10-30T10:00:00Z",
    }
    assert ingest_batch(partner, [(0, late)]).accepted == 1
    assert report_mail.send_due() == 0
    set_frozen_now(DUE + timedelta(days=1))
    assert report_mail.send_due() == 1
    set_frozen_now(DUE + timedelta(days=2, hours=1))
    assert report_mail.send_due() == 0  # nothing changed since the revision
    db.session.rollback()
    revisions = db.session.execute(
        select(ReportMailing.revision, ReportMailing.headline).order_by(ReportMailing.revision)
    ).all()
    assert [r[0] for r in revisions] == [0, 1]
    assert revisions[1][1]["total_identifications"] == 211  # 200 + 11
    subjects = sorted(m["Subject"] for m in report_mails(app_ctx))
    assert subjects == [
        "[Alpha Agency] Monthly report: October 2025",
        "[Alpha Agency] Monthly report: October 2025 (revised)",
    ]


def test_nobody_opted_in_means_no_report(app_ctx, make_partner, freeze):
    freeze(DUE)
    make_partner("alpha", tz="Europe/Berlin")
    assert report_mail.send_due() == 0
    assert eml_files(app_ctx) == []
