"""`make fuzz`: schemathesis over /api/v1/openapi.json with a valid key, ≥ 10,000 requests.

The suite's tests/test_api_schemathesis.py runs the same engine and checks with a few
hundred requests; this runs it again and again (a new seed each round, the coverage phase
on) until at least --min-requests requests were made, then prints what answered what and
exits 1 on any 5xx or any response that does not match the document.

    .venv/bin/python tests/fuzz_api.py [--min-requests 10000] [--examples 150]

The database is a throwaway SQLite file, or a throwaway PostgreSQL database when
TEST_DATABASE_URL is set (created and dropped here).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import schemathesis  # noqa: E402
from reliability_support import BACKEND, Databases  # noqa: E402
from schemathesis.config import SchemathesisConfig  # noqa: E402
from schemathesis.engine import Status, events, from_schema  # noqa: E402
from test_api_schemathesis import CHECKS  # noqa: E402

# By design, POST /partner/events answers 200 and lists each invalid event in `rejected`.
EXPECTED = {("POST /api/v1/partner/events", "negative_data_rejection")}


def run_round(schema: object) -> tuple[Counter[int], list[tuple[str, ...]]]:
    """Run the engine once; return the status codes seen and the failed checks."""
    statuses: Counter[int] = Counter()
    failures: list[tuple[str, ...]] = []
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            recorder = event.recorder
            for interaction in recorder.interactions.values():
                if interaction.response is not None:
                    statuses[interaction.response.status_code] += 1
            for case_id, checks in recorder.checks.items():
                for check in checks:
                    if check.status != Status.FAILURE:
                        continue
                    if (event.label, check.name) in EXPECTED:
                        continue
                    interaction = recorder.interactions.get(case_id)
                    uri = interaction.request.uri if interaction else ""
                    title = check.failure_info.failure.title if check.failure_info else ""
                    failures.append((event.label, check.name, title, uri))
        elif isinstance(event, events.NonFatalError):
            failures.append((event.label, "error", repr(event.value)))
        elif isinstance(event, events.FatalError):
            failures.append(("engine", "fatal", repr(event.exception)))
    return statuses, failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-requests", type=int, default=10_000)
    parser.add_argument("--examples", type=int, default=150, help="max examples per operation")
    parser.add_argument("--max-rounds", type=int, default=40)
    args = parser.parse_args()

    from app import accounts, auth, create_app, ingest
    from app.extensions import db
    from app.timeutil import set_frozen_now

    tmp = Path(tempfile.mkdtemp(prefix="pa_fuzz_"))
    dbs = Databases(BACKEND, tmp)
    began = time.monotonic()
    try:
        url = dbs.new()
        app = create_app(
            {
                "DATABASE_URL": url,
                "SECRET_KEY": "fuzz",
                "TESTING": True,
                "API_RATE_LIMIT": "10000000 per minute",
            }
        )
        set_frozen_now(datetime(2025, 10, 20, 12))
        with app.app_context():
            db.create_all()
            partner = accounts.create_partner("Fuzz", "fuzz", 10_000)
            org = accounts.create_organization(
                partner, "Alpha", external_id="a-1", initial_credits=100
            )
            ingest.ingest_batch(
                partner,
                [
                    (
                        0,
                        {
                            "eventId": "e1",
                            "organizationId": org.id,
                            "type": "identification",
                            "quantity": 4,
                            "occurredAt": "2025-10-02T10:00:00Z",
                        },
                    )
                ],
            )
            _key, plain = auth.create_api_key(partner, "fuzz", None)
            org_id = org.id
            db.session.remove()
        statuses: Counter[int] = Counter()
        failures: list[tuple[str, ...]] = []
        rounds = 0
        while sum(statuses.values()) < args.min_requests and rounds < args.max_rounds:
            config = SchemathesisConfig.from_dict(
                {
                    "headers": {"X-Partner-API-Key": plain},
                    "parameters": {"path.id": org_id},
                    "seed": 1000 + rounds,
                    "generation": {
                        "max-examples": args.examples,
                        "database": "none",
                        "mode": "all",
                    },
                    "checks": {"enabled": False, **{n: {"enabled": True} for n in CHECKS}},
                    "phases": {"coverage": {"enabled": True}, "stateful": {"enabled": False}},
                    "workers": 1,
                }
            )
            schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, config=config)
            got, failed = run_round(schema)
            statuses += got
            failures += failed
            rounds += 1
            print(
                f"round {rounds}: {sum(got.values()):,} requests "
                f"({sum(statuses.values()):,} in all), {len(failed)} failed checks",
                flush=True,
            )
    finally:
        set_frozen_now(None)
        dbs.drop_all()
    total = sum(statuses.values())
    server_errors = sum(n for code, n in statuses.items() if code >= 500)
    print(f"\n{total:,} requests in {rounds} rounds, {time.monotonic() - began:.0f} s ({BACKEND})")
    print("status codes: " + ", ".join(f"{c}: {n:,}" for c, n in sorted(statuses.items())))
    print(f"5xx answers: {server_errors}")
    print(f"failed checks: {len(failures)}")
    for failure in failures[:30]:
        print("  " + " | ".join(str(part)[:200] for part in failure))
    if total < args.min_requests:
        print(f"FAIL: only {total:,} requests (wanted {args.min_requests:,})")
        return 1
    return 1 if server_errors or failures else 0


if __name__ == "__main__":
    sys.exit(main())
