"""A command imports what it needs, and the set is written down here (issue 18, item 3).

`flask --help` builds the app to list its commands and imports no database layer; a
database command such as `flask create-org` adds the data layer (SQLAlchemy, the models,
the figure cache's listeners) and nothing of the pages or the API (plotly, spectree,
pydantic, app.metrics, app.api.schemas), of the worker's queue (Huey), of the import's
reader process (multiprocessing) or of Flask-Migrate and Alembic (only `flask init-db` and
`flask db` use them). Each set is exact: a module that joins one fails the test by name.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Run a flask command in this process as the `flask` executable does, then list the app's
# modules and the libraries (top-level packages outside the standard library, and the
# standard library's multiprocessing, which only an import's reader process needs).
PROBE = """
import json
import sys
from flask.cli import cli
try:
    cli.main(args=sys.argv[1:], prog_name="flask")
except SystemExit as exc:
    if exc.code:
        raise
tops = {m.split(".")[0] for m in sys.modules if not m.startswith("_")}
print(json.dumps({
    "app": sorted(m for m in sys.modules if m == "app" or m.startswith("app.")),
    "libraries": sorted(t for t in tops - set(sys.stdlib_module_names) if t != "app")
    + sorted(tops & {"multiprocessing"}),
}))
"""

# What building the app for `flask <command>` imports: the commands and their options.
HELP_APP = {
    "app",
    "app.choices",
    "app.cli",
    "app.compression",
    "app.config",
    "app.errors",
    "app.hooks",
    "app.security",
    "app.timeutil",
    "app.worker",
}
# create-org and create-orgs: the accounts' rules, their audit entries, the data layer.
ORGANIZATION_APP = HELP_APP | {
    "app.accounts",
    "app.audit",
    "app.cache",
    "app.database",
    "app.display",
    "app.extensions",
    "app.ingest",
    "app.ingest.files",
    "app.ingest.storage",
    "app.ingest.validation",
    "app.models",
    "app.periods",
    "app.rollups",
    "app.terms",
}
FLASK = {"flask", "werkzeug", "jinja2", "markupsafe", "itsdangerous", "click", "blinker"}
# Flask loads every installed plugin's commands: Flask-Limiter's `flask limiter`.
LIMITER_PLUGIN = {
    "flask_limiter",
    "limits",
    "rich",
    "deprecated",
    "wrapt",
    "ordered_set",
    "packaging",
    "typing_extensions",
}
# The data layer (cython_runtime: SQLAlchemy's compiled parts; flask_login: the audit
# entry's actor; flask_caching and cachelib: the figure cache the listeners keep fresh).
DATA = {"sqlalchemy", "cython_runtime", "flask_sqlalchemy", "flask_login", "flask_caching"}
DATA |= {"cachelib"}


def _flask(tmp_path: Path, *args: str) -> tuple[str, dict[str, set[str]]]:
    """Return a command's output and the modules it imported (app's and libraries)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("FLASK_") and key not in ("REDIS_URL", "CACHE_URL")
    }
    env |= {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}",
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "FLASK_APP": "app",
        "PYTHONPATH": str(ROOT),
    }
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
    return output, {key: set(names) for key, names in json.loads(modules).items()}


def assert_imports(found: set[str], expected: set[str]) -> None:
    """Fail naming the modules imported beyond the expected set, and those no longer."""
    assert (sorted(found - expected), sorted(expected - found)) == ([], [])


def test_help_imports_the_commands_only(tmp_path: Path) -> None:
    output, imported = _flask(tmp_path, "--help")
    assert "create-orgs" in output and "routes" in output and "compress-static" in output
    assert_imports(imported["app"], HELP_APP)
    assert_imports(imported["libraries"], FLASK | LIMITER_PLUGIN)


def test_create_org_imports_the_data_layer_and_no_more(tmp_path: Path) -> None:
    _flask(tmp_path, "init-db")
    _flask(tmp_path, "create-partner", "--name", "Acme", "--slug", "acme", "--pool", "100")
    output, imported = _flask(tmp_path, "create-org", "--partner", "acme", "--name", "Globex")
    assert len(output) == 36  # the new organization's id
    assert_imports(imported["app"], ORGANIZATION_APP)
    assert_imports(imported["libraries"], FLASK | LIMITER_PLUGIN | DATA)


def test_create_orgs_imports_no_more(tmp_path: Path) -> None:
    _flask(tmp_path, "init-db")
    _flask(tmp_path, "create-partner", "--name", "Acme", "--slug", "acme", "--pool", "100")
    orgs = tmp_path / "orgs.csv"
    orgs.write_text("name,externalId,credits\nGlobex,g-1,10\nInitech,,\n", encoding="utf-8")
    output, imported = _flask(tmp_path, "create-orgs", str(orgs), "--partner", "acme")
    assert output == "created 2 organization(s)"
    assert_imports(imported["app"], ORGANIZATION_APP)
    assert_imports(imported["libraries"], FLASK | LIMITER_PLUGIN | DATA)


def test_flask_db_still_has_the_migration_commands(tmp_path: Path) -> None:
    # Flask-Migrate is imported when `flask db` is used, with its own options.
    _flask(tmp_path, "init-db")
    output, imported = _flask(tmp_path, "db", "--directory", str(ROOT / "migrations"), "heads")
    assert output.endswith("(head)")
    assert {"flask_migrate", "alembic"} <= imported["libraries"]


def test_the_routes_command_still_sees_every_route(tmp_path: Path) -> None:
    # Flask's own commands load the whole app: `flask routes` lists the API and the pages.
    output, imported = _flask(tmp_path, "routes")
    assert "/api/v1/partner/analytics" in output and "/organizations/<id>" in output
    assert {"app.api.schemas", "app.views.overview", "app.metrics"} <= imported["app"]
    assert {"spectree", "pydantic", "flask_wtf"} <= imported["libraries"]
