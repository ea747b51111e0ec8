"""Create the benchmark's databases and load its partner, organizations and login."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.support import scratch_postgres_database

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
PARTNER_SLUG = "bench"
HTTP_PARTNER_SLUG = "bench-http"
USER_EMAIL = "bench@example.com"
USER_PASSWORD = "bench-password-123"  # noqa: S105 - a throwaway benchmark login
POOL = 50_000_000
# gunicorn refuses a SECRET_KEY under 32 bytes.
BENCH_SECRET_KEY = "bench-secret-" + "0" * 32


@contextmanager
def database(backend: str, pg_server: str, data_dir: Path) -> Iterator[str]:
    """Yield a DATABASE_URL for a fresh, empty benchmark database; remove it afterwards."""
    if backend == "sqlite":
        path = data_dir / "bench.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        yield f"sqlite:///{path}"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    with scratch_postgres_database(pg_server, "pa_bench") as url:
        yield url


def child_env(database_url: str, **extra: str) -> dict[str, str]:
    """Return the environment for a flask or gunicorn child bound to database_url."""
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": database_url,
            "FLASK_APP": "app:create_app",
            "SECRET_KEY": BENCH_SECRET_KEY,
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def init_schema(database_url: str) -> None:
    """Create the schema with the project's own migrations (flask init-db)."""
    subprocess.run(
        [str(VENV_BIN / "flask"), "init-db"],
        cwd=ROOT,
        env=child_env(database_url),
        check=True,
        capture_output=True,
    )


def make_app(database_url: str, **config: Any) -> Any:
    """Return an app bound to the benchmark database (imported late: keeps the CLI light)."""
    sys.path.insert(0, str(ROOT))
    from app import create_app

    settings = {
        "DATABASE_URL": database_url,
        "SECRET_KEY": BENCH_SECRET_KEY,
        "API_RATE_LIMIT": "100000000 per minute",
    }
    settings.update(config)
    return create_app(settings)


def load_partner(
    app: Any, folder: Path, slug: str = PARTNER_SLUG, limit: int | None = None
) -> dict[str, Any]:
    """Create the partner, its organizations (with history) and a login; return the ids."""
    from app import accounts, auth
    from app.extensions import db

    orgs = json.loads((folder / "orgs.json").read_text())[:limit]
    with app.app_context():
        partner = accounts.create_partner(f"Benchmark {slug}", slug, POOL, 1, "monthly", "UTC")
        partner.created_at = datetime(2023, 1, 1)
        db.session.commit()
        for o in orgs:
            org = accounts.create_organization(
                partner,
                o["name"],
                external_id=o["externalId"],
                initial_credits=o["credits"],
                tier=o["tier"],
                created_at=datetime.fromisoformat(o["createdAt"]),
            )
            for status, key in (("canceled", "canceledOn"), ("suspended", "suspendedOn")):
                if o[key]:
                    accounts.set_status(
                        partner, org, status, at=datetime.fromisoformat(o[key] + "T12:00:00")
                    )
        _key, plain = auth.create_api_key(partner, "bench", ["read", "write"])
        email = USER_EMAIL if slug == PARTNER_SLUG else f"{slug}@example.com"
        auth.create_user(partner, email, USER_PASSWORD)
        return {
            "partner_id": partner.id,
            "api_key": plain,
            "email": email,
            "organizations": len(orgs),
        }
