"""The same events in and out of time order, as CSV and as JSON Lines with externalId.

Backfills and exports from other systems rarely arrive day by day, so the benchmark also
imports one pass of the data set shuffled (a seeded, reproducible permutation of its
lines) and compares it with the same lines in time order, each into a fresh database.
Files written beside the pass, in its folder:

- pass-1-shuffled.csv: the CSV lines of pass-1.csv, shuffled;
- pass-1.jsonl: pass-1.csv as JSON Lines with externalId, in time order;
- pass-1-shuffled.jsonl: the same JSON Lines in the shuffled order.

One pass (1M events of the 10M), not the whole data set: the four imports on each back
end then take minutes, not an hour, and the shape of a batch (how many distinct rollup
keys it touches, how far apart its pages are) is already the one of a shuffled file.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterable
from pathlib import Path

from .generate import CSV_HEADER, Spec

# The pass compared (pass-1: 1,000,000 events of the full data set).
PASS = 1
# Offsets the shuffle's seed from the data set's, so that it is not the events' own stream.
SHUFFLE_SALT = 7919


def names(pass_number: int = PASS) -> dict[str, str]:
    """Return the file names of the comparison: {(format, order): name}."""
    base = f"pass-{pass_number}"
    return {
        "csv-ordered": f"{base}.csv",
        "csv-shuffled": f"{base}-shuffled.csv",
        "jsonl-ordered": f"{base}.jsonl",
        "jsonl-shuffled": f"{base}-shuffled.jsonl",
    }


def jsonl_line(csv_line: str) -> str:
    """Return one event line of the benchmark CSV as a JSON Lines line (quantity a number)."""
    event_id, external_id, etype, quantity, occurred_at = csv_line.rstrip("\n").split(",")
    return (
        json.dumps(
            {
                "eventId": event_id,
                "externalId": external_id,
                "type": etype,
                "quantity": int(quantity),
                "occurredAt": occurred_at,
            },
            separators=(",", ":"),
        )
        + "\n"
    )


def _write(path: Path, header: str, lines: Iterable[str]) -> None:
    """Write a file whole or not at all (a partial file is never left under its name)."""
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", encoding="utf-8", newline="") as fh:
        fh.write(header)
        fh.writelines(lines)
    os.replace(partial, path)


def write_shuffled(spec: Spec, folder: Path, pass_number: int = PASS) -> dict[str, Path]:
    """Write the shuffled CSV and the two JSON Lines files of one pass (skipped when
    present); return every file of the comparison by (format, order)."""
    files = {key: folder / name for key, name in names(pass_number).items()}
    if all(path.exists() for path in files.values()):
        return files
    with open(files["csv-ordered"], encoding="utf-8", newline="") as fh:
        header = fh.readline()
        if header != CSV_HEADER:
            raise ValueError(f"{files['csv-ordered']}: unexpected header {header!r}")
        lines = fh.readlines()
    order = list(range(len(lines)))
    random.Random(spec.seed + SHUFFLE_SALT + pass_number).shuffle(order)  # noqa: S311
    if not files["jsonl-ordered"].exists():
        _write(files["jsonl-ordered"], "", (jsonl_line(line) for line in lines))
    shuffled = [lines[i] for i in order]
    del lines
    if not files["csv-shuffled"].exists():
        _write(files["csv-shuffled"], header, shuffled)
    if not files["jsonl-shuffled"].exists():
        _write(files["jsonl-shuffled"], "", (jsonl_line(line) for line in shuffled))
    return files
