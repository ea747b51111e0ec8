"""Commands before `flask init-db`: a clear message and exit 2, nothing created (issue 12, item 10).

Through the CLI runner for every command, and through real `flask` processes whose instance
folder (secret key, default SQLite file) is a temporary one (INSTANCE_PATH).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from flask_migrate import upgrade
from sqlalchemy import create_engine, inspect

from app import create_app
from app.extensions import db
from tests.reliability_support import FLASK, PG_URL, ROOT
from tests.support import scratch_postgres_database

# Every command but init-db, with arguments it accepts; the test below fails when a command
# is added without being listed here.
COMMANDS = {
    "create-partner": ["--name", "A", "--slug", "a", "--pool", "10"],
    "create-api-key": ["--partner", "a"],
    "create-user": ["--partner", "a", "--email", "u@a.test", "--password", "long enough pw"],
    "set-password": ["--email", "u@a.test", "--password", "long enough pw"],
    "create-org": ["--partner", "a", "--name", "O"],
    "create-orgs": ["orgs.csv", "--partner", "a"],
    "ingest": ["-", "--partner", "a"],
    "seed-demo": [],
    "rollups verify": [],
    "rollups rebuild": [],
    "set-timezone": ["--partner", "a", "--timezone", "Europe/Paris"],
    "report": ["--partner", "a", "--month", "2025-10"],
    "worker": [],
}
MESSAGE = "the database is not initialised"
HOW = "flask init-db"


def command_paths(group: click.Group, prefix: str = "") -> set[str]:
    """Return every command of a group as "name" or "group name"."""
    out = set()
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            out |= command_paths(command, f"{prefix}{name} ")
        else:
            out.add(prefix + name)
    return out


@pytest.fixture
def empty_url(tmp_path: Path) -> Iterator[str]:
    """The URL of a database without the schema: a SQLite file that does not exist yet, or
    an empty PostgreSQL database."""
    if PG_URL:
        with scratch_postgres_database(PG_URL, "pa_empty") as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path / 'data' / 'never.sqlite3'}"


@pytest.fixture
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary instance folder, not created: whatever appears in it was made by us."""
    folder = tmp_path / "instance"
    monkeypatch.setenv("INSTANCE_PATH", str(folder))
    monkeypatch.delenv("SECRET_KEY", raising=False)
    return folder


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def assert_nothing_created(url: str, instance: Path) -> None:
    if url.startswith("sqlite"):
        assert not Path(url.removeprefix("sqlite:///")).exists()
        assert not Path(url.removeprefix("sqlite:///")).parent.exists()
    else:
        assert tables(url) == set()
    assert not instance.exists(), list(instance.iterdir())


def test_every_command_but_init_db_is_listed(instance):
    app = create_app({"TESTING": True, "DATABASE_URL": "sqlite://"})
    # `db ...` is Flask-Migrate's (the schema's own commands): unaffected.
    ours = {p for p in command_paths(app.cli) if not p.startswith("db ")}
    # compress-static reads static/ and writes the compressed copies: no database.
    assert ours == set(COMMANDS) | {"init-db", "compress-static"}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_command_before_init_db_says_so_and_creates_nothing(command, empty_url, instance):
    app = create_app({"TESTING": True, "DATABASE_URL": empty_url})
    with app.app_context():
        result = app.test_cli_runner().invoke(args=[*command.split(), *COMMANDS[command]], input="")
        db.engine.dispose()
    assert result.exit_code == 2, (result.output, result.exception)
    assert MESSAGE in result.output and HOW in result.output and "make db" in result.output
    assert "Traceback" not in result.output and "no such table" not in result.output
    assert_nothing_created(empty_url, instance)


def test_after_init_db_the_same_commands_work(empty_url, instance):
    app = create_app({"TESTING": True, "DATABASE_URL": empty_url})
    runner = app.test_cli_runner()
    with app.app_context():
        try:
            assert runner.invoke(args=["init-db"]).exit_code == 0
            for command in ("create-partner", "create-org", "create-user", "rollups verify"):
                result = runner.invoke(args=[*command.split(), *COMMANDS[command]])
                assert result.exit_code == 0, (command, result.output, result.exception)
        finally:
            db.session.remove()
            db.engine.dispose()
    # No command signed anything: the secret key file is still to be made when needed.
    assert not (instance / "secret_key").exists()


def test_an_older_schema_asks_for_an_upgrade(empty_url, instance):
    app = create_app({"TESTING": True, "DATABASE_URL": empty_url})
    with app.app_context():
        try:
            if empty_url.startswith("sqlite"):
                Path(empty_url.removeprefix("sqlite:///")).parent.mkdir()
            upgrade(revision="0006")
            result = app.test_cli_runner().invoke(args=["rollups", "verify"])
            assert result.exit_code == 2, (result.output, result.exception)
            assert "at revision 0006" in result.output and HOW in result.output
            assert "org_bucket_usage" not in result.output  # said before any query failed
            assert app.test_cli_runner().invoke(args=["init-db"]).exit_code == 0
            assert app.test_cli_runner().invoke(args=["rollups", "verify"]).exit_code == 0
        finally:
            db.session.remove()
            db.engine.dispose()


def run_flask(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FLASK, *args],
        cwd=ROOT,
        env=env,
        input=stdin,  # noqa: S603
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_real_flask_processes_before_init_db(tmp_path, empty_url):
    instance = tmp_path / "instance"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FLASK_", "DATABASE_", "SECRET_KEY", "TEST_DATABASE"))
    }
    env.update({"FLASK_APP": "app:create_app", "INSTANCE_PATH": str(instance)})
    if PG_URL:
        env["DATABASE_URL"] = empty_url
        url = empty_url
    else:
        # No DATABASE_URL: the default SQLite file in the (temporary) instance folder.
        url = f"sqlite:///{instance / 'partner_analytics.sqlite3'}"
    events = tmp_path / "events.jsonl"
    events.write_text(
        '{"eventId": "e1", "externalId": "x", "type": "identification", '
        '"occurredAt": "2025-10-01T10:00:00Z"}\n'
    )
    for args in (
        COMMANDS["create-partner"],
        ["ingest", str(events), "--partner", "a"],
        ["rollups", "verify"],
        ["report", "--partner", "a", "--month", "2025-10"],
    ):
        if args is COMMANDS["create-partner"]:
            args = ["create-partner", *args]
        proc = run_flask(env, *args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert MESSAGE in proc.stderr and HOW in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr and proc.stdout == ""
        assert_nothing_created(url, instance)
    # Commands that need no partner data are unaffected.
    for args in (["--help"], ["routes"], ["rollups", "--help"], ["ingest", "--help"]):
        proc = run_flask(env, *args)
        assert proc.returncode == 0, (args, proc.stderr)
        assert MESSAGE not in proc.stderr
    assert_nothing_created(url, instance)
    # init-db creates the database; the commands then work.
    assert run_flask(env, "init-db").returncode == 0
    proc = run_flask(env, "create-partner", *COMMANDS["create-partner"])
    assert proc.returncode == 0, proc.stderr
    proc = run_flask(env, "rollups", "verify")
    assert (proc.returncode, proc.stdout) == (0, "a: OK\n"), proc.stderr
    assert not (instance / "secret_key").exists()


def test_the_secret_key_file_is_made_when_first_needed(instance):
    url = "sqlite://"
    app = create_app({"TESTING": True, "DATABASE_URL": url})
    assert not instance.exists()
    # A page with a form signs a CSRF token: that is the first need for the key.
    assert app.test_client().get("/login").status_code == 200
    key = (instance / "secret_key").read_text()
    assert re.fullmatch(r"[0-9a-f]{64}", key)
    assert (instance / "secret_key").stat().st_mode & 0o777 == 0o600
    # The next process reads the same key.
    assert create_app({"TESTING": True, "DATABASE_URL": url}).secret_key == key
