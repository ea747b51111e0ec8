"""Deterministic benchmark data: organizations and CSV event files in passes over one year.

The same spec and seed always give byte-identical files. Events come in passes, each of
which covers the whole year day by day (a backfill of one layer of traffic), so that after
the first pass the year is already populated and later passes only make it denser: the
analytics latency can then be read at 1M, 3M and 10M events over the same 365 days.

Inside a pass, about 5 % of the events are delivered one to seven days late and about
0.1 % are sent twice (at-least-once delivery), as real pipelines do.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import sys
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent / "data"
CSV_HEADER = "eventId,externalId,type,quantity,occurredAt\n"
TYPES = ("identification", "page_view", "session")
LATE_SHARE = 0.05
DUPLICATE_SHARE = 0.001


@dataclass(frozen=True)
class Spec:
    """What to generate: organizations, the year it covers and the size of each pass."""

    organizations: int = 1000
    days: int = 365
    passes: tuple[int, ...] = (1_000_000, 2_000_000, 7_000_000)
    end: str = "2025-12-31"
    seed: int = 20251231
    # identification, page_view, session
    type_shares: tuple[float, ...] = (0.40, 0.45, 0.15)
    name: str = field(default="full", compare=False)

    @property
    def total_events(self) -> int:
        """Return the number of event lines over all passes."""
        return sum(self.passes)

    @property
    def end_date(self) -> date:
        """Return the last day of the year covered."""
        return date.fromisoformat(self.end)

    @property
    def start_date(self) -> date:
        """Return the first day of the year covered."""
        return self.end_date - timedelta(days=self.days - 1)

    def digest(self) -> str:
        """Return a short hash of everything that shapes the files."""
        payload = {k: v for k, v in asdict(self).items() if k != "name"}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]

    def folder(self) -> Path:
        """Return the folder holding this spec's files."""
        return DATA_DIR / f"{self.name}-{self.digest()}"


FULL = Spec()
QUICK = Spec(organizations=100, passes=(100_000, 200_000, 700_000), name="quick")


def _organizations(spec: Spec, rng: random.Random) -> list[dict[str, Any]]:
    """Return organization profiles: size weight, creation day, status history, allocation."""
    start, end = spec.start_date, spec.end_date
    orgs = []
    for i in range(spec.organizations):
        weight = rng.lognormvariate(0.0, 1.1)
        if rng.random() < 0.7:
            created = start - timedelta(days=rng.randint(1, 700))
        else:
            # Growth: a third of the clients arrive during the year.
            created = start + timedelta(days=rng.randint(0, spec.days - 30))
        canceled = None
        suspended = None
        roll = rng.random()
        if roll < 0.05:
            first = max(created, start) + timedelta(days=20)
            if first < end:
                canceled = first + timedelta(days=rng.randint(0, (end - first).days))
        elif roll < 0.08:
            first = max(created, start) + timedelta(days=20)
            if first < end:
                suspended = first + timedelta(days=rng.randint(0, (end - first).days))
        paid = rng.random() < 0.8
        orgs.append(
            {
                "externalId": f"org-{i + 1:04d}",
                "name": f"Client {i + 1:04d}",
                "createdAt": datetime.combine(created, datetime.min.time()).isoformat(),
                "weight": weight,
                "tier": "paid" if paid else "trial",
                "credits": rng.choice((2000, 5000, 10000, 20000)) if paid else 500,
                "canceledOn": canceled.isoformat() if canceled else None,
                "suspendedOn": suspended.isoformat() if suspended else None,
            }
        )
    return orgs


def _day_weights(spec: Spec) -> list[float]:
    """Return a relative traffic weight per day: growth, weekly rhythm, a yearly wave."""
    weights = []
    for i in range(spec.days):
        day = spec.start_date + timedelta(days=i)
        growth = 0.7 + 0.6 * i / max(spec.days - 1, 1)
        weekly = 0.55 if day.weekday() >= 5 else 1.0
        season = 1.0 + 0.15 * math.sin(2 * math.pi * i / 365.0)
        weights.append(growth * weekly * season)
    return weights


def _split(total: int, weights: list[float]) -> list[int]:
    """Split total into integer parts proportional to weights (largest remainder)."""
    whole = sum(weights)
    raw = [total * w / whole for w in weights]
    parts = [int(r) for r in raw]
    rest = total - sum(parts)
    order = sorted(range(len(raw)), key=lambda i: raw[i] - parts[i], reverse=True)
    for i in order[:rest]:
        parts[i] += 1
    return parts


def generate(spec: Spec, out: Path | None = None, progress: bool = True) -> Path:
    """Write orgs.json and pass-N.csv files for spec (skipped if already complete)."""
    folder = out or spec.folder()
    manifest = folder / "manifest.json"
    if manifest.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(spec.seed)  # noqa: S311 - benchmark data, not secrets
    orgs = _organizations(spec, rng)
    (folder / "orgs.json").write_text(json.dumps(orgs, indent=1))

    start = spec.start_date
    day_strings = [(start + timedelta(days=i)).isoformat() for i in range(spec.days)]
    clock = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86400)]
    ext = [o["externalId"] for o in orgs]
    created = [(date.fromisoformat(o["createdAt"][:10]) - start).days for o in orgs]
    stop = [
        (date.fromisoformat(o["canceledOn"]) - start).days if o["canceledOn"] else spec.days
        for o in orgs
    ]
    weights = _day_weights(spec)
    files = []
    for p, size in enumerate(spec.passes, start=1):
        path = folder / f"pass-{p}.csv"
        per_day = _split(size, weights)
        late: dict[int, list[str]] = {}
        recent: list[str] = []
        seq = 0
        with open(path, "w", encoding="utf-8", newline="") as fh:
            fh.write(CSV_HEADER)
            for d in range(spec.days):
                alive = [i for i in range(len(orgs)) if created[i] <= d < stop[i]]
                cum: list[float] = []
                acc = 0.0
                for i in alive:
                    acc += orgs[i]["weight"]
                    cum.append(acc)
                n = per_day[d]
                picks = rng.choices(alive, cum_weights=cum, k=n)
                kinds = rng.choices(TYPES, weights=spec.type_shares, k=n)
                lines = []
                day = day_strings[d]
                for o, kind in zip(picks, kinds, strict=True):
                    seq += 1
                    if kind == "identification":
                        qty = 1 if rng.random() < 0.9 else rng.randint(2, 5)
                    elif kind == "page_view":
                        qty = rng.randint(1, 4)
                    else:
                        qty = 1
                    line = (
                        f"evt_{p}_{seq:08x},{ext[o]},{kind},{qty},"
                        f"{day}T{clock[rng.randrange(86400)]}Z\n"
                    )
                    if rng.random() < LATE_SHARE and d + 1 < spec.days:
                        late.setdefault(min(d + rng.randint(1, 7), spec.days - 1), []).append(line)
                    else:
                        lines.append(line)
                    if rng.random() < DUPLICATE_SHARE and recent:
                        lines.append(rng.choice(recent))
                    if seq % 997 == 0:
                        recent = recent[-50:] + [line]
                lines.extend(late.pop(d, []))
                fh.writelines(lines)
                if progress and d % 30 == 0:
                    print(f"\r  pass {p}: day {d + 1}/{spec.days}", end="", file=sys.stderr)
        files.append(path.name)
        if progress:
            print(f"\r  pass {p}: {size:,} events written to {path}", file=sys.stderr)
    manifest.write_text(
        json.dumps({"spec": asdict(spec), "digest": spec.digest(), "files": files}, indent=1)
    )
    return folder


def count_lines(path: Path) -> int:
    """Return the number of event lines of a CSV file (header excluded)."""
    with open(path, "rb") as fh:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b"")) - 1


def main(argv: list[str] | None = None) -> None:
    """Generate the full or quick data set from the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 organizations, 1M events")
    args = parser.parse_args(argv)
    spec = QUICK if args.quick else FULL
    print(generate(spec))


if __name__ == "__main__":
    main()
