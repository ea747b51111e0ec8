"""The worker: Huey runs the webhook and e-mail deliveries, their retries and the minute
sweeps of both outboxes, the alert rules' sweep every five minutes (app/alerts.py) and the
monthly reports' check every 15 minutes (app/report_mail.py).

The queue is Huey's SQLite storage in the instance folder (instance/worker-queue.sqlite3),
so nothing else needs to run; with REDIS_URL set it is Redis instead (several workers on
several machines). The database outbox stays the source of truth (app/outbox.py): the
queue only says "look at this message now, or at this time"; the sweep, every minute and
when a worker starts, hands it whatever is due, so a lost job is not a lost delivery.

Run it with `flask worker` or `python -m app.worker` (make run and make serve start it).
Tests run Huey in immediate mode (TESTING, or WORKER_IMMEDIATE): a delivery due now runs
inside the call that asks for it; one scheduled for later waits in memory.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from .timeutil import utcnow

if TYPE_CHECKING:
    # Huey itself is imported when a queue is built: another command has no use for it.
    from huey import Huey

log = logging.getLogger(__name__)

QUEUE_NAME = "partner-analytics"
QUEUE_FILE = "worker-queue.sqlite3"
_build_lock = threading.Lock()


@dataclass
class Jobs:
    """An app's queue and its tasks."""

    huey: Huey
    deliver: Any
    sweep: Any
    send_mail: Any = None
    mail_sweep: Any = None
    alerts_sweep: Any = None
    reports_due: Any = None


def _in_app(app: Flask, func: Callable[..., Any]) -> Callable[..., Any]:
    """Run func inside its own app context (a database session of its own)."""

    def run(*args: Any) -> Any:
        with app.app_context():
            return func(*args)

    run.__name__ = func.__name__
    return run


def _build(app: Flask) -> Jobs:
    from huey import RedisHuey, SqliteHuey, crontab

    from . import alerts, delivery, mail, report_mail

    immediate = app.config.get("WORKER_IMMEDIATE")
    if immediate is None:
        immediate = app.testing
    redis_url = app.config.get("REDIS_URL")
    huey: Huey
    if redis_url:
        huey = RedisHuey(QUEUE_NAME, url=redis_url, results=False, immediate=bool(immediate))
    else:
        path = Path(app.instance_path) / QUEUE_FILE
        if not immediate:
            path.parent.mkdir(parents=True, exist_ok=True)
        huey = SqliteHuey(QUEUE_NAME, filename=str(path), results=False, immediate=immediate)
    deliver = huey.task(name="webhooks.deliver")(_in_app(app, delivery.deliver))
    sweep = huey.periodic_task(crontab(minute="*"), name="webhooks.sweep")(
        _in_app(app, delivery.sweep)
    )
    send_mail = huey.task(name="mail.deliver")(_in_app(app, mail.deliver))
    mail_sweep = huey.periodic_task(crontab(minute="*"), name="mail.sweep")(
        _in_app(app, mail.sweep)
    )
    # The time-based alerts, and the resolution of every firing one.
    alerts_sweep = huey.periodic_task(crontab(minute="*/5"), name="alerts.sweep")(
        _in_app(app, alerts.sweep)
    )
    # Which partners' monthly report is due (06:00 local on the 1st), or revised.
    reports_due = huey.periodic_task(crontab(minute="*/15"), name="reports.mail_due")(
        _in_app(app, report_mail.send_due)
    )
    return Jobs(huey, deliver, sweep, send_mail, mail_sweep, alerts_sweep, reports_due)


def jobs(app: Flask | None = None) -> Jobs:
    """Return the app's queue and tasks (built on first use)."""
    flask_app: Flask = app or current_app._get_current_object()  # type: ignore[attr-defined]
    found = flask_app.extensions.get("worker_jobs")
    if found is None:
        with _build_lock:
            found = flask_app.extensions.get("worker_jobs")
            if found is None:
                found = _build(flask_app)
                flask_app.extensions["worker_jobs"] = found
    return found  # type: ignore[no-any-return]


def schedule_delivery(message_id: str, due: datetime | None = None) -> None:
    """Ask the worker to deliver message_id now, or at due. A failure to reach the queue is
    only logged: the message is in the outbox and the sweep will hand it over again."""
    try:
        found = jobs()
        delay = (due - utcnow()).total_seconds() if due is not None else 0.0
        if delay > 0:
            found.deliver.schedule(args=(message_id,), delay=delay)
        else:
            found.deliver(message_id)
    except Exception:  # the queue is down (Redis), or an immediate-mode delivery failed
        log.warning("could not queue webhook %s; the sweep will", message_id, exc_info=True)


def schedule_mail(message_id: str, due: datetime | None = None) -> None:
    """Ask the worker to send e-mail message_id now, or at due (a failure is only logged:
    the mail outbox's sweep hands it over again)."""
    try:
        found = jobs()
        delay = (due - utcnow()).total_seconds() if due is not None else 0.0
        if delay > 0:
            found.send_mail.schedule(args=(message_id,), delay=delay)
        else:
            found.send_mail(message_id)
    except Exception:
        log.warning("could not queue e-mail %s; the sweep will", message_id, exc_info=True)


def run_consumer(app: Flask, workers: int = 2) -> None:
    """Run the consumer (deliveries and the minute sweep) until stopped."""
    found = jobs(app)
    if found.huey.immediate:
        raise click.UsageError("the worker cannot run in immediate mode (TESTING is set)")
    # First a sweep: what came due while no worker ran, and the claims of a killed one.
    found.sweep()
    found.mail_sweep()
    consumer = found.huey.create_consumer(
        workers=workers,
        worker_type="thread",
        periodic=True,
        max_delay=2.0,
        check_worker_health=True,
    )
    consumer.run()


@click.command("worker")
@click.option("--workers", default=2, show_default=True, help="Delivery threads.")
@with_appcontext
def worker_command(workers: int) -> None:
    """Run the worker: webhooks, e-mail, their retries, the alerts and the monthly reports."""
    logging.basicConfig(level=logging.INFO, format="[worker] %(asctime)s %(name)s %(message)s")
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    where = "Redis" if app.config.get("REDIS_URL") else str(Path(app.instance_path) / QUEUE_FILE)
    click.echo(f"Worker: {workers} delivery threads, queue in {where} (Ctrl+C stops it)")
    run_consumer(app, workers)


def main() -> None:
    """python -m app.worker: the same as flask worker."""
    from . import create_app

    logging.basicConfig(level=logging.INFO, format="[worker] %(asctime)s %(name)s %(message)s")
    app = create_app()
    run_consumer(app)


if __name__ == "__main__":
    main()
