"""A file's order does not change what is stored: the same events shuffled out of time
order give the rollups of the events in order, counted here independently."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Organization, OrgBucketUsage, OrgDailyUsage, Partner, PartnerDailyUsage

pytestmark = pytest.mark.usefixtures("app_ctx")

NOW = datetime(2025, 11, 14, 12, 0)
ORGS = ("a-1", "b-1", "c-1")
TYPES = ("identification", "page_view", "session")


def ok(result, code=0):
    assert result.exit_code == code, (result.output, result.exception)
    return result


def _partner(runner, slug: str) -> Partner:
    ok(runner.invoke(args=["create-partner", "--name", slug, "--slug", slug, "--pool", "1000"]))
    for ext in ORGS:
        ok(
            runner.invoke(
                args=[
                    "create-org",
                    "--partner",
                    slug,
                    "--name",
                    f"Org {ext}",
                    "--external-id",
                    ext,
                    "--created-at",
                    "2025-01-01",
                ]
            )
        )
    return db.session.execute(select(Partner).where(Partner.slug == slug)).scalar_one()


def _events() -> list[dict[str, object]]:
    """600 events on 40 days (a week apart, over nine months), three organizations and
    three types, in time order: most (organization, day, type) keys have several."""
    events = []
    for i in range(600):
        day = (i * 37) % 40 * 7
        at = datetime(2025, 1, 1) + timedelta(days=day, seconds=(i * 7919) % 86400)
        events.append(
            {
                "eventId": f"o{i:04d}",
                "externalId": ORGS[i % 3],
                "type": TYPES[(i // 3) % 3],
                "quantity": 1 + i % 4,
                "occurredAt": at.isoformat() + "Z",
            }
        )
    events.sort(key=lambda e: str(e["occurredAt"]))
    return events


def _csv(events: list[dict[str, object]]) -> str:
    header = "eventId,externalId,type,quantity,occurredAt\n"
    return header + "".join(
        f"{e['eventId']},{e['externalId']},{e['type']},{e['quantity']},{e['occurredAt']}\n"
        for e in events
    )


def _stored(partner: Partner) -> tuple[dict, dict, dict]:
    """Return the partner's daily, bucket and partner-daily rollups, organizations named
    by externalId."""
    db.session.expire_all()
    odu, obu, pdu, org = OrgDailyUsage, OrgBucketUsage, PartnerDailyUsage, Organization
    daily = {
        (e, d, t): (q, n)
        for e, d, t, q, n in db.session.execute(
            select(org.external_id, odu.day, odu.type, odu.quantity, odu.events)
            .join(org, org.id == odu.organization_id)
            .where(odu.partner_id == partner.id)
        )
    }
    buckets = {
        (g, b, e): (i, q, n)
        for g, b, e, i, q, n in db.session.execute(
            select(
                obu.grain,
                obu.bucket_start,
                org.external_id,
                obu.identifications,
                obu.quantity,
                obu.events,
            )
            .join(org, org.id == obu.organization_id)
            .where(obu.partner_id == partner.id)
        )
    }
    totals = {
        (d, t): (q, n)
        for d, t, q, n in db.session.execute(
            select(pdu.day, pdu.type, pdu.quantity, pdu.events).where(pdu.partner_id == partner.id)
        )
    }
    return daily, buckets, totals


def _expected(events: list[dict[str, object]]) -> tuple[dict, dict, dict]:
    """Count the events by hand: by organization, UTC day and type; by week (from Monday)
    and month; by day and type."""
    daily: dict = defaultdict(lambda: [0, 0])
    buckets: dict = defaultdict(lambda: [0, 0, 0])
    totals: dict = defaultdict(lambda: [0, 0])
    for e in events:
        day = date.fromisoformat(str(e["occurredAt"])[:10])
        q = int(str(e["quantity"]))
        ext, etype = e["externalId"], e["type"]
        daily[(ext, day, etype)][0] += q
        daily[(ext, day, etype)][1] += 1
        totals[(day, etype)][0] += q
        totals[(day, etype)][1] += 1
        for grain, start in (
            ("week", day - timedelta(days=day.weekday())),
            ("month", day.replace(day=1)),
        ):
            counts = buckets[(grain, start, ext)]
            counts[0] += q if etype == "identification" else 0
            counts[1] += q
            counts[2] += 1
    return (
        {k: tuple(v) for k, v in daily.items()},
        {k: tuple(v) for k, v in buckets.items()},
        {k: tuple(v) for k, v in totals.items()},
    )


@pytest.mark.parametrize("mode", ["--pipeline", "--no-pipeline"])
def test_a_shuffled_file_gives_the_rollups_of_the_same_events_in_order(
    runner, freeze, tmp_path, mode
):
    freeze(NOW)
    events = _events()
    shuffled = list(events)
    random.Random(18).shuffle(shuffled)
    assert shuffled != events
    # Twelve lines sent twice, in other places of the shuffled files: duplicates.
    again = shuffled + shuffled[100:112]
    random.Random(19).shuffle(again)
    files = {
        "ordered": ("ordered.csv", _csv(events)),
        "shuffled": ("shuffled.csv", _csv(again)),
        "shuffled-jsonl": ("shuffled.jsonl", "".join(json.dumps(e) + "\n" for e in again)),
    }
    want = _expected(events)
    assert sum(n for _q, n in want[0].values()) == 600
    assert len(want[0]) < 400  # keys shared by events, in a batch and across batches
    for slug, (name, content) in files.items():
        partner = _partner(runner, slug)
        path = tmp_path / name
        path.write_text(content)
        # Batches of 50: each batch of the shuffled files spans the whole nine months.
        result = ok(
            runner.invoke(args=["ingest", str(path), "--partner", slug, "--batch-size", "50", mode])
        )
        duplicates = 0 if slug == "ordered" else 12
        assert result.stdout.splitlines()[-3:] == [
            "accepted: 600",
            f"duplicates: {duplicates}",
            "rejected: 0",
        ]
        assert _stored(partner) == want, slug
    assert ok(runner.invoke(args=["rollups", "verify"])).stdout.splitlines() == [
        "ordered: OK",
        "shuffled: OK",
        "shuffled-jsonl: OK",
    ]
