"""A pipelined file import's batch, stored chunk by chunk in one transaction.

The reader cuts batches of exactly --batch-size lines into chunks; the importer stores
each chunk as it comes and adds the rollups once per batch, from the reader's rollup rows
less those of the rows the database already held (stored before, or repeated from an
earlier chunk of the batch). Expected counts are worked out by hand in comments.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from conftest import BACKEND
from sqlalchemy import select

from app import ingest, rollups
from app.extensions import db
from app.ingest import storage
from app.models import OrgDailyUsage
from tests.test_partner_lock import event

NOW = datetime(2025, 10, 20, 12, 0)


def test_chunks_cut_batches_of_exactly_the_batch_size():
    pairs = [(i, f"line {i}") for i in range(1, 13)]
    got = [
        (lines, [line for line, _raw in chunk], ends)
        for lines, chunk, ends in storage.chunks(pairs, 5, 2)
    ]
    # Batches of 5 lines (1-5, 6-10, 11-12), each cut into chunks of at most 2.
    assert got == [
        (2, [1, 2], False),
        (4, [3, 4], False),
        (5, [5], True),
        (7, [6, 7], False),
        (9, [8, 9], False),
        (10, [10], True),
        (12, [11, 12], True),
    ]


def test_the_last_full_chunk_of_the_input_ends_its_batch():
    pairs = [(i, None) for i in range(1, 5)]
    got = [(lines, ends) for lines, _chunk, ends in storage.chunks(pairs, 10, 2)]
    assert got == [(2, False), (4, True)]
    assert list(storage.chunks([], 10, 2)) == []
    assert [lines for lines, _batch in storage.batches(pairs, 3)] == [3, 4]


def test_subtracted_rollup_rows_are_those_of_the_difference():
    received = datetime(2025, 10, 20, 12, 0)
    d18, d19 = date(2025, 10, 18), date(2025, 10, 19)
    sums = {
        ("o1", d18, "identification", received): [3, 2],  # two events: 1 and 2
        ("o1", d18, "page_view", received): [4, 1],
        ("o2", d19, "identification", received): [5, 1],
    }
    held = {
        ("o1", d18, "identification", received): [2, 1],
        ("o1", d18, "page_view", received): [4, 1],  # all of it: its rows go
    }
    rest = {
        ("o1", d18, "identification", received): [1, 1],
        ("o2", d19, "identification", received): [5, 1],
    }
    got = rollups.subtract_rows(
        rollups.rollup_rows("p", sums, "UTC"), rollups.rollup_rows("p", held, "UTC")
    )
    assert got == rollups.rollup_rows("p", rest, "UTC")


def test_a_batch_leaves_out_stored_rows_and_repeats_of_an_earlier_chunk(
    app, freeze, make_partner, make_org, add_events
):
    freeze(NOW)
    partner = make_partner()
    a, b = make_org(partner, "A").id, make_org(partner, "B").id
    partner_id = partner.id
    assert add_events(partner, [event("old", a, "2025-10-18T10:00:00Z", 5)]).accepted == 1
    resolver = ingest.OrgResolver(partner.id)
    sums: dict[Any, list[int]] = {}
    parts = []
    # Chunk 1: "old" again with other content (a duplicate), and x. Chunk 2: x again with
    # other content (a repeat of chunk 1), and y.
    for lines, events in (
        (
            2,
            [
                event("old", b, "2025-10-19T10:00:00Z", 7),
                event("x", a, "2025-10-18T11:00:00Z", 2),
            ],
        ),
        (
            4,
            [
                event("x", b, "2025-10-19T11:00:00Z", 9),
                event("y", b, "2025-10-19T12:00:00Z", 3),
            ],
        ),
    ):
        result = ingest.IngestResult()
        rows = ingest.prepare_batch(
            list(enumerate(events, start=lines - 1)), resolver, "UTC", NOW, result
        )
        ingest.order_rows(partner.id, rows, NOW)
        ingest.sum_rows(rows, into=sums)
        if BACKEND == "sqlite":
            params = storage.sqlite_params(rows, storage.sqlite_formatters())
            parts.append(("chunk", (lines, lines - 1, [], params, result)))
        else:
            parts.append(("chunk", (lines, lines - 1, rows, None, result)))
    parts.append(("end", rollups.rollup_rows(partner.id, sums, "UTC")))
    first, rest = parts[0][1], iter(parts[1:])
    stored_tz, results = storage.store_chunked_batch(
        partner_id, "UTC", first, rest, 0.0, ingest.IngestResult()
    )
    assert stored_tz == "UTC"
    assert [(lines, r.accepted, r.duplicates) for lines, r in results] == [(2, 1, 1), (4, 1, 1)]
    # By hand: A on the 18th holds old (5) and x (2): 7 in 2 events; B on the 19th holds y
    # (3) alone; the two duplicates' other organization and days count nothing.
    db.session.remove()
    daily = {
        (r.organization_id, r.day): (r.quantity, r.events)
        for r in db.session.execute(select(OrgDailyUsage)).scalars().all()
    }
    assert daily == {(a, date(2025, 10, 18)): (7, 2), (b, date(2025, 10, 19)): (3, 1)}
    assert rollups.verify(partner_id) == []
