"""A command imports what it needs: `flask create-org` loads neither the pages nor the API.

Nor the worker's queue (Huey), the import's reader process (multiprocessing), or
Flask-Migrate and Alembic (only `flask init-db` and `flask db` use them).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Run a flask command in this process as the `flask` executable does, then list the
# modules of the web surfaces (and their libraries) that it imported.
PROBE = """
import sys
from flask.cli import cli
try:
    cli.main(args=sys.argv[1:], prog_name="flask")
except SystemExit as exc:
    if exc.code:
        raise
web = (
    "app.api", "app.views", "app.ingest.pipeline", "app.charts", "spectree", "pydantic",
    "plotly", "huey", "alembic", "flask_migrate", "multiprocessing",
)
print(sorted({m.split(".")[0] if not m.startswith("app.") else m for m in sys.modules
              if m.startswith(web)}))
"""


def _flask(tmp_path: Path, *args: str) -> tuple[str, str]:
    """Return a command's output and the web modules it imported."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}",
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "FLASK_APP": "app",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("FLASK_DEBUG", None)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    output, _, modules = done.stdout.strip().rpartition("\n")
    return output, modules


def test_a_database_command_imports_neither_pages_nor_api(tmp_path: Path) -> None:
    _flask(tmp_path, "init-db")
    _flask(tmp_path, "create-partner", "--name", "Acme", "--slug", "acme", "--pool", "100")
    output, imported = _flask(tmp_path, "create-org", "--partner", "acme", "--name", "Globex")
    assert len(output) == 36  # the new organization's id
    assert imported == "[]"


def test_create_orgs_and_help_import_no_more(tmp_path: Path) -> None:
    _flask(tmp_path, "init-db")
    _flask(tmp_path, "create-partner", "--name", "Acme", "--slug", "acme", "--pool", "100")
    orgs = tmp_path / "orgs.csv"
    orgs.write_text("name,externalId,credits\nGlobex,g-1,10\nInitech,,\n", encoding="utf-8")
    output, imported = _flask(tmp_path, "create-orgs", str(orgs), "--partner", "acme")
    assert output == "created 2 organization(s)"
    assert imported == "[]"
    output, imported = _flask(tmp_path, "--help")
    assert "create-orgs" in output and "routes" in output
    assert imported == "[]"


def test_flask_db_still_has_the_migration_commands(tmp_path: Path) -> None:
    # Flask-Migrate is imported when `flask db` is used, with its own options.
    _flask(tmp_path, "init-db")
    output, imported = _flask(tmp_path, "db", "--directory", str(ROOT / "migrations"), "heads")
    assert output.endswith("(head)")
    assert "'flask_migrate'" in imported and "'alembic'" in imported


def test_the_routes_command_still_sees_every_route(tmp_path: Path) -> None:
    # Flask's own commands load the whole app: `flask routes` lists the API and the pages.
    output, imported = _flask(tmp_path, "routes")
    assert "/api/v1/partner/analytics" in output and "/organizations/<id>" in output
    assert "'app.api.schemas'" in imported and "'app.views.overview'" in imported
