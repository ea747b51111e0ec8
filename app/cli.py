"""The flask commands of spec §5; each is a thin shell over functions the tests call too.

Every command is here (the module is long because there are many, not because they hold
logic), with the one guard that refuses them before the database is initialised.

`flask --help` builds the app to list these commands, and `flask <command>` to run one:
this module imports only click, Flask and the choices its options offer, and each command
imports what it uses when it runs (tests/test_cli_imports.py guards the set).
"""

from __future__ import annotations

import copy
import csv
import functools
import os
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup, ScriptInfo

from .choices import ORG_TIERS, PRODUCT_TYPES, REPORT_FORMATS, ROLES
from .compression import compress_static_command
from .errors import AppError
from .worker import worker_command

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from .ingest import IngestResult
    from .models import Partner

# Lines per transaction of `flask ingest`. Each batch's rollups are added once, so larger
# batches write fewer rollup rows; a file out of time order gains most (1M shuffled
# events: 20k events/s with 5,000, 31-39k with 50,000; in time order 76k and 80-95k), and
# the importer holds SQLite's write lock about a second per batch. 100,000 took the
# importer and its reader past 200 MB on that file.
INGEST_BATCH_LINES = 50_000
# The page cache of a file import's SQLite connection (the default is 64 MB). 16 MB
# stored that file as fast as 32 (faster, in the runs measured) with 15-20 MB less.
SQLITE_IMPORT_CACHE_KB = 16384
# Pages a file import lets the write-ahead log grow to before it is copied into the
# database (SQLite's default is 1,000: 4 MB, a checkpoint after nearly every batch, each
# rewriting rollup pages the next batch changes again).
SQLITE_IMPORT_WAL_PAGES = 16384


def _fail(exc: AppError) -> click.ClickException:
    return click.ClickException(exc.message)


def _partner(slug: str) -> Partner:
    from . import accounts

    try:
        return accounts.partner_by_slug(slug)
    except AppError as exc:
        raise _fail(exc) from exc


class DatabaseNotReady(click.ClickException):
    """The database has no schema, or an older one: a command using partner data stops."""

    exit_code = 2


def sqlite_file(url: URL) -> Path | None:
    """Return the file of a SQLite URL (None for another database or an in-memory one)."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    name = str(url.database)
    if url.query.get("uri"):
        name = name.removeprefix("file:").split("?", 1)[0]
    return Path(name)


def database_problem() -> str | None:
    """Return why partner data cannot be used yet (no schema, an old one), else None.

    Nothing is created on the way: a missing SQLite file is not opened (opening it would
    create it), and PostgreSQL is only read.
    """
    from sqlalchemy import inspect, text
    from sqlalchemy.exc import OperationalError

    from .extensions import db

    url = db.engine.url
    shown = url.render_as_string(hide_password=True)
    fix = "create it with `flask init-db` (or `make db`)"
    path = sqlite_file(url)
    if path is not None and not path.exists():
        return f"the database is not initialised ({path} does not exist): {fix}"
    try:
        with db.engine.connect() as conn:
            found = inspect(conn)
            if not found.has_table("partner"):
                return f"the database is not initialised (no schema in {shown}): {fix}"
            revisions = (
                set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
                if found.has_table("alembic_version")
                else set()
            )
    except OperationalError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0]
        raise click.ClickException(f"cannot open the database {shown}: {reason}") from exc
    head = _migration_head()
    if revisions and revisions != {head}:
        return (
            f"the database schema is at revision {', '.join(sorted(revisions))} and this "
            f"version needs {head}: upgrade it with `flask init-db` (or `make db`)"
        )
    return None


MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
_REVISION_LINE = re.compile(r"^(down_revision|revision)\s*=\s*['\"]?([\w]+)['\"]?", re.MULTILINE)


def _migration_head() -> str | None:
    """Return the newest migration's revision: the one no other revises.

    Read from the files' revision lines rather than through Alembic, which a command
    would otherwise import (a fifth of a second) for this check alone.
    """
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found = dict(_REVISION_LINE.findall(path.read_text(encoding="utf-8")))
        if "revision" in found:
            revisions.add(found["revision"])
        if found.get("down_revision", "None") != "None":
            revised.add(found["down_revision"])
    heads = revisions - revised
    return heads.pop() if len(heads) == 1 else None


def init_migrations(app: Flask) -> None:
    """Bind Flask-Migrate (and its `flask db` commands) to app, once."""
    if "migrate" in app.extensions:
        return
    from flask_migrate import Migrate

    from .extensions import db

    Migrate(app, db, directory=str(MIGRATIONS), render_as_batch=True)


class LazyMigrationsGroup(click.Group):
    """`flask db`: Flask-Migrate's commands, imported (with Alembic) when this is used."""

    def _group(self) -> click.Group:
        from flask_migrate.cli import db as group

        return group

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # The group's own options (--directory, --x-arg) and the callback storing them.
        real = self._group()
        self.params, self.callback = real.params, real.callback
        return super().parse_args(ctx, args)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return self._group().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        from . import register_data

        app = current_app._get_current_object()  # type: ignore[attr-defined]
        register_data(app)
        init_migrations(app)
        return self._group().get_command(ctx, cmd_name)


lazy_migrations_group = LazyMigrationsGroup(
    "db", help="Perform database migrations (Flask-Migrate's commands)."
)


def _bind_data(app: Flask) -> None:
    from . import register_data

    register_data(app)


def app_command(
    command: click.Command,
    *,
    schema: bool = True,
    bind: Callable[[Flask], None] = _bind_data,
) -> click.Command:
    """Return a copy of command (a group: of each of its commands) that binds what it uses
    to the app first (the database: app.register_data), then, with schema, checks it.

    On the app that `flask <command>` builds nothing is bound before a command runs; on the
    full app (tests, `flask shell`) it is bound already. The check runs before the
    command's own code, so a refused command changes nothing.
    """
    guarded = copy.copy(command)
    if isinstance(command, click.Group):
        guarded.commands = {  # type: ignore[attr-defined]
            name: app_command(sub, schema=schema, bind=bind)
            for name, sub in command.commands.items()
        }
        return guarded
    callback = command.callback
    assert callback is not None

    @functools.wraps(callback)
    def checked(*args: Any, **kwargs: Any) -> Any:
        bind(click.get_current_context().ensure_object(ScriptInfo).load_app())
        if schema:
            problem = database_problem()
            if problem:
                raise DatabaseNotReady(problem)
        return callback(*args, **kwargs)

    guarded.callback = checked
    return guarded


def init_db() -> None:
    """Create or upgrade the schema to the newest migration."""
    from flask_migrate import upgrade

    from .extensions import db

    path = sqlite_file(db.engine.url)
    if path is not None:
        # The instance folder is only made when something goes into it.
        path.parent.mkdir(parents=True, exist_ok=True)
    init_migrations(current_app._get_current_object())  # type: ignore[attr-defined]
    upgrade(directory=str(MIGRATIONS))


@click.command("init-db")
def init_db_command() -> None:
    """Create or upgrade the database schema (idempotent)."""
    from .extensions import db

    init_db()
    click.echo(f"database ready: {db.engine.url.render_as_string(hide_password=True)}", err=True)


@click.command("create-partner")
@click.option("--name", required=True)
@click.option("--slug", required=True)
@click.option("--pool", required=True, type=int, help="credits granted per billing period")
@click.option("--billing-day", default=1, show_default=True, type=int)
@click.option(
    "--billing-period",
    default="monthly",
    show_default=True,
    type=click.Choice(["monthly", "annual"]),
)
@click.option("--timezone", "tz", default="UTC", show_default=True)
@click.option(
    "--billing-mode",
    default="credit_pool",
    show_default=True,
    type=click.Choice(["credit_pool", "pooled", "external", "usage_based"]),
)
@click.option("--max-organizations", type=int, default=None)
def create_partner_command(
    name: str,
    slug: str,
    pool: int,
    billing_day: int,
    billing_period: str,
    tz: str,
    billing_mode: str,
    max_organizations: int | None,
) -> None:
    """Create a partner and print its id."""
    from . import accounts

    try:
        partner = accounts.create_partner(
            name,
            slug,
            pool,
            billing_day,
            billing_period,
            tz,
            billing_mode,
            max_organizations=max_organizations,
        )
    except AppError as exc:
        raise _fail(exc) from exc
    click.echo(partner.id)


@click.command("create-api-key")
@click.option("--partner", "slug", required=True)
@click.option("--name", default="")
@click.option("--scopes", default="", help="comma-separated: read,write,admin (empty: all)")
def create_api_key_command(slug: str, name: str, scopes: str) -> None:
    """Create an API key and print the plain key (shown only this once)."""
    from . import auth

    partner = _partner(slug)
    try:
        _key, plain = auth.create_api_key(partner, name, auth.parse_scopes(scopes))
    except AppError as exc:
        raise _fail(exc) from exc
    click.echo(plain)


@click.command("create-user")
@click.option("--partner", "slug", required=True)
@click.option("--email", required=True)
@click.option("--password", default=None, help="prompted for (hidden) when not given")
@click.option(
    "--role",
    type=click.Choice(ROLES),
    default=None,
    help="owner, admin or analyst; owner by default for a partner's first user, "
    "required for later ones",
)
def create_user_command(slug: str, email: str, password: str | None, role: str | None) -> None:
    """Create a dashboard login for a partner, with its role (audited).

    A partner's first user is its owner unless --role says otherwise; a later user needs
    --role, so that nobody becomes an owner by leaving the option out.
    """
    from sqlalchemy import select

    from . import auth
    from .extensions import db
    from .models import User

    partner = _partner(slug)
    if role is None:
        if db.session.execute(select(User.id).where(User.partner_id == partner.id)).first():
            raise click.UsageError(
                f"partner {partner.slug} has users already: say which role the new one has "
                "with --role owner, --role admin or --role analyst"
            )
        role = "owner"
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = auth.create_user(partner, email, password, role)
    except AppError as exc:
        raise _fail(exc) from exc
    click.echo(f"created user {user.email} ({user.role}) for partner {partner.slug}")


@click.command("set-password")
@click.option("--email", required=True)
@click.option("--password", default=None, help="prompted for (hidden) when not given")
def set_password_command(email: str, password: str | None) -> None:
    """Set a dashboard user's password (ends the user's sessions)."""
    from sqlalchemy import select

    from . import auth
    from .extensions import db
    from .models import User

    user = db.session.execute(
        select(User).where(User.email == email.strip().lower())
    ).scalar_one_or_none()
    if user is None:
        raise click.ClickException(f"no user with email {email}")
    if password is None:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    try:
        auth.set_password(user, password)
    except AppError as exc:
        raise _fail(exc) from exc
    click.echo(f"password set for {user.email}")


@click.command("create-org")
@click.option("--partner", "slug", required=True)
@click.option("--name", required=True)
@click.option("--external-id", default=None)
@click.option("--credits", default=0, type=int)
@click.option("--tier", default="trial", type=click.Choice(ORG_TIERS))
@click.option("--product-type", default="B2B", type=click.Choice(PRODUCT_TYPES))
@click.option(
    "--created-at",
    default=None,
    help="YYYY-MM-DD (the start of that day in the partner's timezone) or an ISO "
    "8601 timestamp, not in the future (as the API's createdAt)",
)
def create_org_command(
    slug: str,
    name: str,
    external_id: str | None,
    credits: int,
    tier: str,
    product_type: str,
    created_at: str | None,
) -> None:
    """Create an organization and print its id."""
    from . import accounts
    from .periods import PeriodError, parse_moment

    partner = _partner(slug)
    created = None
    if created_at:
        try:
            created = parse_moment(created_at, "createdAt", partner.timezone)
        except PeriodError as exc:
            raise click.BadParameter(exc.message, param_hint="--created-at") from exc
    try:
        org = accounts.create_organization(
            partner, name, external_id, credits, None, tier, product_type, created
        )
    except AppError as exc:
        raise _fail(exc) from exc
    click.echo(org.id)


# The columns of `flask create-orgs`, as `flask create-org`'s options (the API's names).
CREATE_ORGS_COLUMNS = ("name", "externalId", "credits", "tier", "productType", "createdAt")
# An error's field named as its column (create_organization says initialCredits).
_COLUMN_OF_FIELD = {"initialCredits": "credits"}


class RowRejected(Exception):
    """A CSV row that cannot be read: its column and the reason."""

    def __init__(self, column: str, reason: str) -> None:
        super().__init__(reason)
        self.column = column
        self.reason = reason


def _organization_row(values: dict[str, str], timezone: str) -> dict[str, Any]:
    """Return create_organization's arguments for one CSV row (empty cells: the defaults)."""
    from .periods import PeriodError, parse_moment

    credits_text = values.get("credits", "").strip().replace(",", "")
    try:
        credits = int(credits_text) if credits_text else 0
    except ValueError as exc:
        raise RowRejected("credits", "credits must be a whole number") from exc
    created_text = values.get("createdAt", "").strip()
    created = None
    if created_text:
        try:
            created = parse_moment(created_text, "createdAt", timezone)
        except PeriodError as exc:
            raise RowRejected("createdAt", exc.message) from exc
    return {
        "name": values.get("name", ""),
        "external_id": values.get("externalId", "").strip() or None,
        "initial_credits": credits,
        "tier": values.get("tier", "").strip() or "trial",
        "product_type": values.get("productType", "").strip() or "B2B",
        "created_at": created,
    }


def read_organizations_csv(
    stream: Any, timezone: str
) -> tuple[list[tuple[int, dict[str, Any]]], list[str]]:
    """Return (line, arguments) for each CSV row and the problems found reading them.

    Line numbers count the header as line 1. A header naming an unknown column, or
    without name, is the one problem reported (the rows are not read).
    """
    reader = csv.reader(stream)
    header = next(reader, None)
    if header is None:
        return [], ["line 1: header: the file is empty; it needs a header row"]
    columns = [cell.strip() for cell in header]
    unknown = [c for c in columns if c not in CREATE_ORGS_COLUMNS]
    if unknown or "name" not in columns or len(set(columns)) != len(columns):
        return [], [
            "line 1: header: the header names the columns, each once, among "
            + ", ".join(CREATE_ORGS_COLUMNS)
            + " (name is required)"
            + (f"; unknown: {', '.join(unknown)}" if unknown else "")
        ]
    rows: list[tuple[int, dict[str, Any]]] = []
    problems: list[str] = []
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(f"line {reader.line_num}: row: {exc}")
            break
        line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue  # a blank line
        if len(cells) != len(columns):
            problems.append(
                f"line {line}: row: {len(cells)} cells where the header has {len(columns)}"
            )
            continue
        try:
            rows.append((line, _organization_row(dict(zip(columns, cells, strict=True)), timezone)))
        except RowRejected as exc:
            problems.append(f"line {line}: {exc.column}: {exc.reason}")
    return rows, problems


@click.command("create-orgs")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--partner", "slug", required=True)
def create_orgs_command(file: str, slug: str) -> None:
    """Create the organizations of a CSV file, all or none, in one transaction.

    The header row names the columns: name (required), externalId, credits, tier,
    productType, createdAt (as create-org's options). A refused row is reported as
    `line N: <column>: <reason>` (the header is line 1), and then nothing is created.
    """
    from . import accounts

    partner = _partner(slug)
    try:
        with open(file, encoding="utf-8-sig", newline="") as stream:
            rows, problems = read_organizations_csv(stream, partner.timezone)
    except OSError as exc:
        raise click.ClickException(f"cannot read {file}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{file} is not UTF-8 text: {exc}") from exc
    lines = {index: line for index, (line, _args) in enumerate(rows)}
    try:
        # With rows refused already, the others are still checked (and every refusal
        # reported), then nothing is created.
        created = accounts.create_organizations(
            partner, [args for _line, args in rows], check_only=bool(problems)
        )
    except accounts.OrganizationsRejected as exc:
        problems += [
            f"line {lines[index]}: {_COLUMN_OF_FIELD.get(error.field or '', error.field or 'row')}"
            f": {error.message}"
            for index, error in exc.errors
        ]
        problems.sort(key=lambda text: int(text.split(":", 1)[0].removeprefix("line ")))
        for problem in problems:
            click.echo(problem)
        click.echo(f"Error: {len(problems)} row(s) rejected; no organization created", err=True)
        sys.exit(1)
    except AppError as exc:
        raise _fail(exc) from exc
    click.echo(f"created {len(created)} organization(s)")


def run_ingest(
    partner: Partner,
    path: str,
    fmt: str | None,
    batch_size: int,
    pipeline: bool = False,
    wait: float = 0.0,
) -> IngestResult:
    """Ingest a file (or '-' for stdin), printing rejections as they come; return the counts.

    With pipeline, a second process reads and validates while this one stores. A batch
    whose partner is busy is tried again for up to wait seconds (IngestStopped after).
    The file gets one audit entry with its counts (see audit_import).
    """
    from sqlalchemy import text

    from . import ingest
    from .database import dialect_name
    from .extensions import db
    from .ingest import IngestResult, IngestStopped

    fmt = ingest.detect_format(path, fmt)
    show_progress = sys.stderr.isatty()
    started = time.monotonic()
    # What the committed batches hold so far, for the audit entry of an import that stops.
    stored = IngestResult()
    lines_stored = 0

    def on_batch(lines: int, result: IngestResult) -> None:
        nonlocal lines_stored
        lines_stored = lines
        stored.accepted += result.accepted
        stored.duplicates += result.duplicates
        stored.rejected_count += len(result.rejected)
        for rej in result.rejected:
            click.echo(f"line {rej.index}: {rej.code}: {rej.message}")
        if show_progress:
            rate = lines / max(time.monotonic() - started, 1e-9)
            click.echo(f"\r{lines:,} lines read ({rate:,.0f}/s)", nl=False, err=True)

    if dialect_name() == "sqlite":
        # A streaming import revisits few pages: a smaller page cache than the web
        # workers' keeps the importer and its reader process under 200 MB together, at
        # the same speed (measured on the benchmark's 1M-event set).
        db.session.execute(text(f"PRAGMA cache_size=-{SQLITE_IMPORT_CACHE_KB}"))
        db.session.execute(text(f"PRAGMA wal_autocheckpoint={SQLITE_IMPORT_WAL_PAGES}"))
    stream = ingest.open_text(path, sys.stdin)
    from_file = stream is not sys.stdin
    try:
        # The reader process cannot read this process's stdin (multiprocessing closes it
        # in the child), so standard input is imported in one process.
        piped = pipeline and from_file
        stream_into = ingest.ingest_stream_pipelined if piped else ingest.ingest_stream
        result = stream_into(partner, ingest.iter_file(stream, fmt), batch_size, on_batch, wait)
    except IngestStopped as exc:
        audit_import(partner.id, path, fmt, exc.total, lines_stored, stopped_at=exc.line)
        raise
    except Exception:
        if lines_stored:  # some batches are stored: the entry says so, then the error
            audit_import(partner.id, path, fmt, stored, lines_stored, stopped_at=lines_stored + 1)
        raise
    finally:
        if from_file:
            stream.close()
    audit_import(partner.id, path, fmt, result, lines_stored)
    if show_progress:
        click.echo("", err=True)
    return result


def audit_import(
    partner_id: str,
    path: str,
    fmt: str,
    counts: IngestResult,
    lines: int,
    stopped_at: int | None = None,
) -> None:
    """Write the one audit entry of an imported file, with its counts.

    A file is stored in many batches, each its own transaction, so the entry cannot share
    one transaction with all of its events: it is written after the last batch, in its own
    transaction. An import that stops (a busy partner, a broken line, the database) writes
    the counts of the batches it stored and the line it stopped at; a process killed
    mid-way writes none (its stored batches come back as duplicates when run again).
    """
    from sqlalchemy.exc import SQLAlchemyError

    from . import audit
    from .database import write_transaction

    after: dict[str, Any] = {
        "file": "standard input" if path == "-" else path,
        "format": fmt,
        "lines": lines,
        "accepted": counts.accepted,
        "duplicates": counts.duplicates,
        "rejected": counts.rejected_count,
        "complete": stopped_at is None,
    }
    if stopped_at is not None:
        after["stoppedAtLine"] = stopped_at
    label = "standard input" if path == "-" else Path(path).name
    try:
        with write_transaction():
            audit.record_ingest(partner_id, "import", label, after)
    except SQLAlchemyError:
        if stopped_at is None:
            raise
        # Already failing: the import's own error is the one to report.
        click.echo("Warning: the audit entry of this import could not be written", err=True)


@click.command("ingest")
@click.argument("file")
@click.option("--partner", "slug", required=True)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "csv"]),
    default=None,
    help="default: from the file extension (.csv, else JSON Lines)",
)
@click.option(
    "--batch-size",
    default=INGEST_BATCH_LINES,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="lines per transaction: each batch commits whole or not at all",
)
@click.option(
    "--pipeline/--no-pipeline",
    default=None,
    help="read and validate a file in a second process while this one stores "
    "(default: on when the machine has more than one CPU; not for stdin)",
)
@click.option(
    "--wait",
    default=300.0,
    show_default=True,
    type=click.FloatRange(0),
    help="seconds to keep retrying a batch while the partner is busy (a timezone "
    "change or a rollup rebuild holds it); then stop, naming the line",
)
def ingest_command(
    file: str, slug: str, fmt: str | None, batch_size: int, pipeline: bool | None, wait: float
) -> None:
    """Import usage events from a JSON Lines or CSV file ('-' for stdin)."""
    from sqlalchemy.exc import OperationalError

    from .errors import database_busy
    from .ingest import FileFormatError, IngestStopped

    partner = _partner(slug)
    if pipeline is None:
        pipeline = (os.cpu_count() or 1) > 1
    try:
        result = run_ingest(partner, file, fmt, batch_size, pipeline, wait)
    except IngestStopped as exc:
        done = exc.total
        click.echo(f"accepted: {done.accepted}")
        click.echo(f"duplicates: {done.duplicates}")
        click.echo(f"rejected: {done.rejected_count}")
        click.echo(
            f"Error: stopped at line {exc.line} after retrying for {wait:g} s: {exc.reason}. "
            f"Every line before {exc.line} is stored (or rejected above); run the same "
            "command again to finish (events already stored count as duplicates).",
            err=True,
        )
        sys.exit(1)
    except FileFormatError as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        raise click.ClickException(f"cannot read {file}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{file} is not UTF-8 text: {exc}") from exc
    except OperationalError as exc:
        if not database_busy(exc):
            raise
        raise click.ClickException(
            "the database stayed busy with other writes for too long; the batches before "
            "the failing one are stored: run the same command again to finish (events "
            "already stored count as duplicates)"
        ) from exc
    click.echo(f"accepted: {result.accepted}")
    click.echo(f"duplicates: {result.duplicates}")
    click.echo(f"rejected: {result.rejected_count}")
    sys.exit(1 if result.rejected_count else 0)


@click.command("seed-demo")
def seed_demo_command() -> None:
    """Load the demo partner (idempotent) and print its login and a fresh API key."""
    from .demo import DEMO_EMAIL, DEMO_PASSWORD, seed_demo

    outcome = seed_demo()
    if outcome.created:
        click.echo(
            f"demo partner created: {outcome.organizations} organizations, "
            f"{outcome.events:,} events"
        )
    else:
        click.echo("demo partner already present; no data added")
    click.echo(f"dashboard login: {DEMO_EMAIL} / {DEMO_PASSWORD}")
    click.echo(f"API key (demo partner, replaces the previous demo key): {outcome.api_key}")


rollups_group = AppGroup("rollups", help="Check or rebuild the daily rollups from the raw events.")


def _partners(slug: str | None) -> list[Partner]:
    from sqlalchemy import select

    from .extensions import db
    from .models import Partner

    if slug:
        return [_partner(slug)]
    return list(db.session.execute(select(Partner).order_by(Partner.slug)).scalars())


@rollups_group.command("verify")
@click.option("--partner", "slug", default=None, help="one partner (default: all)")
def rollups_verify(slug: str | None) -> None:
    """Check that every rollup figure agrees with the raw events (exit 1 if not)."""
    from . import rollups

    bad = 0
    for partner in _partners(slug):
        problems = rollups.verify(partner.id)
        for line in problems:
            click.echo(f"{partner.slug}: {line}")
        bad += len(problems)
        click.echo(f"{partner.slug}: {'OK' if not problems else f'{len(problems)} mismatches'}")
    sys.exit(1 if bad else 0)


@rollups_group.command("rebuild")
@click.option("--partner", "slug", default=None, help="one partner (default: all)")
def rollups_rebuild(slug: str | None) -> None:
    """Re-bucket stale local days and rebuild the rollups from the raw events.

    Each partner in one transaction under its exclusive lock: its ingestion waits
    meanwhile (the API answers 503 with Retry-After after LOCK_TIMEOUT).
    """
    from . import rollups
    from .database import PartnerBusy

    for partner in _partners(slug):
        slug_ = partner.slug
        started = time.monotonic()
        try:
            moved = rollups.rebuild(partner.id)
        except PartnerBusy as exc:
            raise click.ClickException(f"{slug_}: not rebuilt: {exc.message}") from exc
        click.echo(
            f"{slug_}: rebuilt in {time.monotonic() - started:.1f} s"
            + (f" ({moved} event(s) re-bucketed to their local day)" if moved else "")
        )


@click.command("set-timezone")
@click.option("--partner", "slug", required=True)
@click.option("--timezone", "tz", required=True)
def set_timezone_command(slug: str, tz: str) -> None:
    """Change a partner's reporting timezone and re-bucket its history."""
    from . import rollups
    from .database import PartnerBusy
    from .periods import is_valid_timezone

    partner = _partner(slug)
    if not is_valid_timezone(tz):
        raise click.BadParameter("an IANA name such as Europe/Paris", param_hint="--timezone")
    slug_ = partner.slug
    started = time.monotonic()
    try:
        moved = rollups.set_timezone(partner, tz)
    except PartnerBusy as exc:
        raise click.ClickException(f"{slug_}: timezone not changed: {exc.message}") from exc
    click.echo(
        f"{slug_}: timezone {tz}, history re-bucketed ({moved} event(s) changed "
        f"day) in {time.monotonic() - started:.1f} s, at "
        f"{datetime.now(UTC).isoformat(timespec='seconds')}"
    )


@click.command("report")
@click.option("--partner", "slug", required=True)
@click.option("--month", "month_text", required=True, help="YYYY-MM, in the partner's timezone")
@click.option(
    "--format", "fmt", type=click.Choice(REPORT_FORMATS), default="csv", show_default=True
)
def report_command(slug: str, month_text: str, fmt: str) -> None:
    """Print a month-end report as CSV or JSON (for cron jobs that mail it)."""
    from . import accounts, reports
    from .exports import report_text

    try:
        partner = accounts.partner_by_slug(slug)
    except AppError as exc:
        raise click.ClickException(exc.message) from exc
    try:
        report = reports.report_for(partner, month_text)
    except AppError as exc:
        raise click.BadParameter(exc.message, param_hint="--month") from exc
    click.echo(report_text(report, fmt), nl=False)


def _bind_compression(app: Flask) -> None:
    from .compression import init_app

    if "partner_analytics.compress" not in app.extensions:
        init_app(app)


def register_cli(app: Flask, light: bool = False) -> None:
    """Add every command to the app's CLI.

    light: the app `flask <command>` builds, which binds nothing before a command runs;
    there `flask db` is Flask-Migrate's group imported when used, and compress-static
    binds Flask-Compress itself (the full app has both from its extensions).
    """
    app.cli.add_command(app_command(init_db_command, schema=False))
    if light:
        app.cli.add_command(lazy_migrations_group)
        app.cli.add_command(
            app_command(compress_static_command, schema=False, bind=_bind_compression)
        )
    # Every other command reads or writes partner data: without the schema it says how to
    # create it and exits 2 before touching anything (it used to create an empty SQLite
    # file, then fail with a traceback).
    for command in (
        create_partner_command,
        create_api_key_command,
        create_user_command,
        set_password_command,
        create_org_command,
        create_orgs_command,
        ingest_command,
        seed_demo_command,
        set_timezone_command,
        rollups_group,
        report_command,
        worker_command,
    ):
        app.cli.add_command(app_command(command))
