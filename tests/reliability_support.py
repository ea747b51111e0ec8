"""Helpers for the reliability tests: throwaway databases, `flask` subprocesses, event files.

The fault, concurrency and load checks run the real command line and the real server in
other processes, so they need databases those processes can open by URL (a SQLite file,
or a PostgreSQL database created and dropped here), and a way to read every figure back
in this process to compare two databases.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
FLASK = str(ROOT / ".venv" / "bin" / "flask")
PG_URL = os.environ.get("TEST_DATABASE_URL", "").strip()
BACKEND = "postgresql" if PG_URL else "sqlite"
ARTIFACTS = ROOT / "tests" / "artifacts"

TYPES = ("identification", "page_view", "session")


class Databases:
    """Create databases reachable by URL from other processes; drop them all at the end."""

    def __init__(self, backend: str, tmp: Path) -> None:
        self.backend = backend
        self.tmp = tmp
        self.created: list[str] = []
        self._admin = None
        if backend == "postgresql":
            server = make_url(PG_URL).set(drivername="postgresql+psycopg")
            self._server = server
            self._admin = create_engine(
                server.set(database="postgres"), isolation_level="AUTOCOMMIT"
            )

    def new(self, template: str | None = None) -> str:
        """Return the URL of a new empty database, or of a copy of template (a URL)."""
        name = f"pa_test_{uuid.uuid4().hex[:12]}"
        if self.backend == "sqlite":
            path = self.tmp / f"{name}.sqlite3"
            if template:
                # A WAL database is complete in its main file once no connection is open.
                src = Path(make_url(template).database or "")
                path.write_bytes(src.read_bytes())
            self.created.append(str(path))
            return f"sqlite:///{path}"
        assert self._admin is not None
        with self._admin.connect() as conn:
            if template:
                tname = make_url(template).database
                conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{tname}"'))
            else:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return self._server.set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        """Drop every database made here."""
        if self.backend == "sqlite":
            for path in self.created:
                for suffix in ("", "-wal", "-shm"):
                    Path(path + suffix).unlink(missing_ok=True)
            return
        assert self._admin is not None
        with self._admin.connect() as conn:
            for name in self.created:
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"
                    ),
                    {"n": name},
                )
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        self._admin.dispose()


def flask_env(url: str, **extra: str) -> dict[str, str]:
    """Return the environment for a flask subprocess bound to the database at url."""
    env = dict(os.environ)
    env.pop("TEST_DATABASE_URL", None)
    env.update({"DATABASE_URL": url, "FLASK_APP": "app:create_app", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def flask(
    url: str, *args: str, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `flask <args>` against url; raise with its output when check and it fails."""
    proc = subprocess.run(  # noqa: S603
        [FLASK, *args],
        cwd=ROOT,
        env=flask_env(url),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"flask {' '.join(args)} exited {proc.returncode}\n"
            f"stdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-4000:]}"
        )
    return proc


def start_flask(url: str, *args: str, **popen: Any) -> subprocess.Popen[str]:
    """Start `flask <args>` against url in the background."""
    popen.setdefault("stdout", subprocess.PIPE)
    popen.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen(  # noqa: S603
        [FLASK, *args], cwd=ROOT, env=flask_env(url), text=True, **popen
    )


def setup_partner(
    url: str, slug: str, orgs: int, pool: int = 10_000_000, tz: str = "Europe/Paris"
) -> dict[str, str]:
    """Create the schema (`flask init-db`), a partner and organizations o1..oN.

    The organizations are paid and were created on 2024-01-01; returns externalId -> id.
    """
    from app import accounts
    from app.extensions import db

    flask(url, "init-db")
    application = app_for(url)
    with application.app_context():
        try:
            partner = accounts.create_partner(slug.title(), slug, pool, timezone=tz)
            ids = {}
            for i in range(1, orgs + 1):
                org = accounts.create_organization(
                    partner,
                    f"Org {i}",
                    external_id=f"o{i}",
                    tier="paid",
                    created_at=datetime(2024, 1, 1),
                )
                ids[f"o{i}"] = org.id
        finally:
            db.session.remove()
            db.engine.dispose()
    return ids


# --- event files ---------------------------------------------------------------------------


@dataclass
class EventFile:
    """A generated event file and what a correct ingestion must end up storing."""

    path: Path
    lines: int
    # eventId -> (externalId, type, quantity, occurredAt) of the first occurrence.
    unique: dict[str, tuple[str, str, int, str]]


def make_events(
    n: int,
    orgs: int,
    seed: int,
    prefix: str = "e",
    dup_rate: float = 0.05,
    start: datetime = datetime(2025, 1, 1),
    days: int = 300,
) -> list[dict[str, Any]]:
    """Return n events over orgs organizations; about dup_rate of them repeat an earlier id.

    A repeat carries a different quantity half of the time: the first one sent must win.
    """
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    for i in range(n):
        if events and rng.random() < dup_rate:
            copy = dict(events[rng.randrange(len(events))])
            if rng.random() < 0.5:
                copy["quantity"] = copy["quantity"] + 1
            events.append(copy)
            continue
        moment = start + timedelta(seconds=rng.randrange(days * 86400))
        events.append(
            {
                "eventId": f"{prefix}{i}",
                "externalId": f"o{rng.randrange(orgs) + 1}",
                "type": rng.choice(TYPES),
                "quantity": rng.randrange(0, 6),
                "occurredAt": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        )
    return events


def write_jsonl(path: Path, events: list[dict[str, Any]]) -> EventFile:
    """Write events as JSON Lines and return what storing them exactly once must give."""
    unique: dict[str, tuple[str, str, int, str]] = {}
    with path.open("w", encoding="utf-8") as out:
        for ev in events:
            out.write(json.dumps(ev) + "\n")
            unique.setdefault(
                ev["eventId"], (ev["externalId"], ev["type"], ev["quantity"], ev["occurredAt"])
            )
    return EventFile(path, len(events), unique)


def expected_totals(unique: dict[str, tuple[str, str, int, str]]) -> dict[str, Any]:
    """Count events and quantities per type and per organization, independently of the app."""
    by_type: Counter[str] = Counter()
    events_by_type: Counter[str] = Counter()
    by_org: Counter[str] = Counter()
    for ext, etype, qty, _at in unique.values():
        by_type[etype] += qty
        events_by_type[etype] += 1
        by_org[ext] += 1
    return {
        "events": len(unique),
        "quantity": dict(by_type),
        "eventsByType": dict(events_by_type),
        "eventsByOrg": dict(by_org),
    }


# --- reading figures back --------------------------------------------------------------------


def app_for(url: str) -> Any:
    """Return an app bound to url (for reading figures in this process)."""
    from app import create_app

    return create_app({"DATABASE_URL": url, "SECRET_KEY": "reliability-tests", "TESTING": True})


def figures(
    url: str, slug: str, period: tuple[date, date] = (date(2025, 1, 1), date(2025, 12, 31))
) -> dict[str, Any]:
    """Return every stored row and every headline figure of one partner, keyed portably.

    Organization ids differ between two databases, so rows are keyed by externalId.
    """
    from app import metrics, rollups
    from app.extensions import db
    from app.models import Organization, OrgDailyUsage, Partner, PartnerDailyUsage, UsageEvent
    from app.periods import Period

    application = app_for(url)
    with application.app_context():
        try:
            partner = db.session.execute(select(Partner).where(Partner.slug == slug)).scalar_one()
            ext = dict(
                db.session.execute(
                    select(Organization.id, Organization.external_id).where(
                        Organization.partner_id == partner.id
                    )
                ).all()
            )
            ev = UsageEvent
            raw = sorted(
                (
                    r.event_id,
                    ext[r.organization_id],
                    r.type,
                    int(r.quantity),
                    r.occurred_at.isoformat(),
                    r.local_date.isoformat(),
                )
                for r in db.session.execute(
                    select(
                        ev.event_id,
                        ev.organization_id,
                        ev.type,
                        ev.quantity,
                        ev.occurred_at,
                        ev.local_date,
                    ).where(ev.partner_id == partner.id)
                )
            )
            odu = OrgDailyUsage
            org_rollup = sorted(
                (ext[r[0]], r[1].isoformat(), r[2], int(r[3]), int(r[4]))
                for r in db.session.execute(
                    select(odu.organization_id, odu.day, odu.type, odu.quantity, odu.events).where(
                        odu.partner_id == partner.id
                    )
                )
            )
            pdu = PartnerDailyUsage
            partner_rollup = sorted(
                (r[0].isoformat(), r[1], int(r[2]), int(r[3]))
                for r in db.session.execute(
                    select(pdu.day, pdu.type, pdu.quantity, pdu.events).where(
                        pdu.partner_id == partner.id
                    )
                )
            )
            span = Period(*period)
            per_org = {ext[oid]: metrics.usage(partner, span, organization_id=oid) for oid in ext}
            out = {
                "raw": raw,
                "orgRollup": org_rollup,
                "partnerRollup": partner_rollup,
                "summary": metrics.summary(partner, span),
                "usage": metrics.usage(partner, span),
                "usageByOrg": per_org,
                "monthly": metrics.timeseries(partner, span, "month"),
                "verify": rollups.verify(partner.id),
            }
        finally:
            db.session.remove()
            db.engine.dispose()
    return out


def log_artifact(name: str, record: dict[str, Any]) -> None:
    """Append one JSON line to tests/artifacts/<name> (a running record across runs)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with (ARTIFACTS / name).open("a", encoding="utf-8") as out:
        out.write(json.dumps(record, default=str) + "\n")


def python() -> str:
    """Return the interpreter running the tests (the project's virtualenv)."""
    return sys.executable


def counts_by(rows: list[tuple[Any, ...]], key: int) -> dict[Any, int]:
    """Return how many rows share each value at position key."""
    out: dict[Any, int] = defaultdict(int)
    for row in rows:
        out[row[key]] += 1
    return dict(out)


# --- a live server and a proxy that drops connections -----------------------------------------


def serve(application: Any) -> tuple[Any, int]:
    """Serve application from a thread on a free port of 127.0.0.1; return (server, port)."""
    import threading

    from werkzeug.serving import make_server

    # Port 0: the kernel picks a free port (werkzeug exits the process on a taken one).
    httpd = make_server("127.0.0.1", 0, application, threaded=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, httpd.server_port


def _read_message(sock: Any) -> bytes:
    """Read one HTTP request (head and Content-Length body) from a socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


class DroppingProxy:
    """A TCP proxy for one-request connections that misbehaves on purpose.

    Each connection gets a mode from plan(n): "pass" relays faithfully; "cut_request"
    forwards half of the request and hangs up on both sides (the server never gets a whole
    body); "drop_response" forwards the request, lets the server answer, and closes the
    client's connection without a byte; "cut_response" relays half of the answer; "stall"
    holds the answer longer than the client waits.
    """

    MODES = ("pass", "cut_request", "drop_response", "cut_response", "stall")

    def __init__(self, upstream_port: int, plan: Any, stall: float) -> None:
        import socket
        import threading

        self.upstream = ("127.0.0.1", upstream_port)
        self.plan = plan
        self.stall = stall
        self.counts: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()
        self._n = 0
        self._stop = False
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))  # a free port chosen by the kernel
        self.port = self.sock.getsockname()[1]
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        import threading

        while not self._stop:
            try:
                client, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                mode = self.plan(self._n)
                self._n += 1
                self.counts[mode] += 1
            threading.Thread(target=self._handle, args=(client, mode), daemon=True).start()

    def _handle(self, client: Any, mode: str) -> None:
        import socket
        import time

        upstream = socket.create_connection(self.upstream)
        try:
            request = _read_message(client)
            if mode == "cut_request":
                upstream.sendall(request[: len(request) // 2])
                return
            upstream.sendall(request)
            answer = b""
            while True:
                chunk = upstream.recv(65536)
                if not chunk:
                    break
                answer += chunk
            if mode == "drop_response":
                return
            if mode == "cut_response":
                client.sendall(answer[: len(answer) // 2])
                return
            if mode == "stall":
                time.sleep(self.stall)
            client.sendall(answer)
        except OSError:
            pass
        finally:
            for sock in (client, upstream):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def close(self) -> None:
        self._stop = True
        self.thread.join(timeout=5)
        self.sock.close()


def post_with_retries(
    port: int,
    path: str,
    payload: dict[str, Any],
    headers: dict[str, str],
    timeout: float,
    attempts: int = 40,
) -> tuple[dict[str, Any], int]:
    """POST JSON until a whole 200 answer arrives; return (answer, attempts used).

    What a careful client does: any connection error, timeout, cut-off or unreadable
    answer means "unknown outcome", and the same call is sent again (events carry their
    own ids, so a repeat cannot count twice).
    """
    import http.client
    import time

    body = json.dumps(payload).encode()
    for attempt in range(1, attempts + 1):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            conn.request(
                "POST",
                path,
                body,
                {**headers, "Content-Type": "application/json", "Connection": "close"},
            )
            response = conn.getresponse()
            data = response.read()
            if response.status == 200:
                return json.loads(data), attempt
            if response.status < 500 and response.status != 429:
                raise AssertionError(f"{response.status}: {data[:300]!r}")
        except (OSError, http.client.HTTPException, ValueError):
            pass
        finally:
            conn.close()
        time.sleep(0.02 * attempt)
    raise AssertionError(f"no answer after {attempts} attempts")
