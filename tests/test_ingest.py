"""Ingestion: validation, exactly-once storage, rollups kept in step."""

import io
import json
from dataclasses import asdict
from datetime import date, datetime

import pytest
from sqlalchemy import func, select

from app import accounts, ingest, metrics, rollups
from app.database import write_transaction
from app.extensions import db
from app.ingest import storage
from app.models import UsageEvent
from app.periods import Period


def test_batch_stores_valid_events_and_counts_duplicates(
    make_partner, make_org, add_events, freeze
):
    freeze(datetime(2025, 10, 20, 12))
    partner = make_partner()
    org = make_org(partner, "Alpha", external_id="a-1")
    events = [
        {
            "eventId": "e1",
            "organizationId": org.id,
            "type": "identification",
            "quantity": 3,
            "occurredAt": "2025-10-01T10:00:00Z",
        },
        {
            "eventId": "e2",
            "externalId": "a-1",
            "type": "page_view",
            "occurredAt": "2025-10-01T11:00:00",
        },
        {
            "eventId": "e1",
            "organizationId": org.id,
            "type": "identification",
            "quantity": 3,
            "occurredAt": "2025-10-01T10:00:00Z",
        },
        {
            "eventId": "bad",
            "organizationId": org.id,
            "type": "Page-View",
            "occurredAt": "2025-10-01T10:00:00Z",
        },
    ]
    result = add_events(partner, events)
    assert (result.accepted, result.duplicates) == (2, 1)
    assert [(r.index, r.event_id, r.code) for r in result.rejected] == [(3, "bad", "invalid_type")]
    again = add_events(partner, events[:2])
    assert (again.accepted, again.duplicates) == (0, 2)
    figures = metrics.usage(partner, Period(date(2025, 10, 1), date(2025, 10, 1)))
    # e1 (3 identifications) + e2 (page_view, quantity defaults to 1)
    assert asdict(figures) == {
        "total_quantity": 4,
        "total_events": 2,
        "by_type": {
            "identification": {"quantity": 3, "events": 1},
            "page_view": {"quantity": 1, "events": 1},
        },
    }
    assert rollups.verify(partner.id) == []


# --- helpers --------------------------------------------------------------------------------

NOW = datetime(2025, 11, 14, 12, 0)


@pytest.fixture
def setup(freeze, make_partner, make_org):
    freeze(NOW)
    partner = make_partner("ing")
    alpha = make_org(partner, "Alpha", external_id="a-1", created_at=datetime(2025, 1, 1))
    bravo = make_org(partner, "Bravo", external_id="b-1", created_at=datetime(2025, 1, 1))
    return partner, alpha, bravo


def good(org, **changes):
    event = {
        "eventId": "ok",
        "organizationId": org.id,
        "type": "identification",
        "quantity": 1,
        "occurredAt": "2025-10-01T10:00:00Z",
    }
    event.update(changes)
    return {k: v for k, v in event.items() if v is not _DROP}


_DROP = object()


def reject_one(add_events, partner, event):
    result = add_events(partner, [event])
    assert result.accepted == 0
    assert len(result.rejected) == 1
    return result.rejected[0]


def stored_count(partner):
    return db.session.execute(
        select(func.count()).select_from(UsageEvent).where(UsageEvent.partner_id == partner.id)
    ).scalar()


# --- every rejection reason -------------------------------------------------------------


@pytest.mark.parametrize("raw", [None, 5, "text", ["a"], True])
def test_non_object_is_rejected(setup, add_events, raw):
    partner, _a, _b = setup
    rej = reject_one(add_events, partner, raw)
    assert (rej.code, rej.field, rej.index) == ("invalid_event", "event", 0)


@pytest.mark.parametrize("event_id", [_DROP, None, "", "   ", True, 1.5, ["x"], "x" * 256])
def test_bad_event_id(setup, add_events, event_id):
    partner, alpha, _b = setup
    rej = reject_one(add_events, partner, good(alpha, eventId=event_id))
    assert (rej.code, rej.field) == ("invalid_event_id", "eventId")


def test_integer_event_id_is_its_decimal_text_and_255_chars_are_fine(setup, add_events):
    partner, alpha, _b = setup
    result = add_events(
        partner,
        [good(alpha, eventId=123), good(alpha, eventId="123"), good(alpha, eventId="y" * 255)],
    )
    # 123 and "123" are the same event.
    assert (result.accepted, result.duplicates, result.rejected) == (2, 1, [])


def test_organization_reasons(setup, add_events, make_partner, make_org):
    partner, alpha, bravo = setup
    other = make_org(make_partner("someone-else"), "Theirs", external_id="t-1")
    cases = [
        (good(alpha, organizationId=None), "missing_organization", "organizationId"),
        (good(alpha, organizationId=""), "missing_organization", "organizationId"),
        (
            good(alpha, organizationId="0b7c3d3e-0000-0000-0000-000000000000"),
            "unknown_organization",
            "organizationId",
        ),
        # Another partner's organization is unknown here, by id and by externalId.
        (good(alpha, organizationId=other.id), "unknown_organization", "organizationId"),
        (good(alpha, organizationId=None, externalId="t-1"), "unknown_organization", "externalId"),
        (good(alpha, organizationId=None, externalId="nope"), "unknown_organization", "externalId"),
        (good(alpha, organizationId=42), "unknown_organization", "organizationId"),
        (good(alpha, externalId="b-1"), "organization_mismatch", "externalId"),
    ]
    for event, code, field in cases:
        rej = reject_one(add_events, partner, event)
        assert (rej.code, rej.field, rej.event_id) == (code, field, "ok"), event
    # Both naming the same organization is fine, and externalId alone is enough.
    result = add_events(
        partner,
        [
            good(alpha, eventId="both", externalId="a-1"),
            good(alpha, eventId="ext", organizationId=None, externalId="b-1"),
        ],
    )
    assert (result.accepted, result.rejected) == (2, [])
    assert (
        metrics.usage(
            partner, Period(date(2025, 10, 1), date(2025, 10, 1)), organization_id=bravo.id
        ).total_events
        == 1
    )


@pytest.mark.parametrize(
    "etype",
    [_DROP, None, "", "Page_View", "page-view", "1abc", "_x", "a" * 65, 7, "identification "],
)
def test_bad_type(setup, add_events, etype):
    partner, alpha, _b = setup
    rej = reject_one(add_events, partner, good(alpha, type=etype))
    assert (rej.code, rej.field) == ("invalid_type", "type")


def test_custom_types_are_accepted(setup, add_events):
    partner, alpha, _b = setup
    result = add_events(
        partner,
        [good(alpha, eventId="t1", type="a" * 64), good(alpha, eventId="t2", type="form_submit_2")],
    )
    assert (result.accepted, result.rejected) == (2, [])


@pytest.mark.parametrize(
    ("quantity", "message"),
    [
        (-1, "negative"),
        ("-3", "negative"),
        (1.5, "whole"),
        (1.0, "whole"),  # a float is not a whole number, even when it looks like one
        ("1.5", "whole"),
        ("abc", "whole"),
        (True, "whole"),
        ([1], "whole"),
        (1_000_000_001, "at most"),
        (10**30, "at most"),
        ("9999999999999", "at most"),  # more than 10 digits as text
    ],
)
def test_bad_quantity(setup, add_events, quantity, message):
    partner, alpha, _b = setup
    rej = reject_one(add_events, partner, good(alpha, quantity=quantity))
    assert (rej.code, rej.field) == ("invalid_quantity", "quantity")
    assert message in rej.message


def test_quantity_defaults_and_limits(setup, add_events):
    partner, alpha, _b = setup
    result = add_events(
        partner,
        [
            good(alpha, eventId="q0", quantity=0),
            good(alpha, eventId="qmax", quantity=1_000_000_000),
            good(alpha, eventId="qnone", quantity=None),  # default 1
            good(alpha, eventId="qmissing", quantity=_DROP),  # default 1
            good(alpha, eventId="qtext", quantity="12"),  # CSV gives text
        ],
    )
    assert (result.accepted, result.rejected) == (5, [])
    figures = metrics.usage(partner, Period(date(2025, 10, 1), date(2025, 10, 1)))
    assert figures.total_quantity == 0 + 1_000_000_000 + 1 + 1 + 12
    assert figures.total_events == 5


@pytest.mark.parametrize(
    "occurred",
    [
        _DROP,
        None,
        "",
        "yesterday",
        1759312800,
        "2025-10-01",  # a bare date is refused
        "2025-13-01T10:00:00Z",
        "2025-10-01T24:30:00Z",
        "2025-10-01T10:00:00+25:00",
        "0001-01-01T00:00:00+01:00",  # would leave the calendar when converted to UTC
        "1999-12-31T23:59:59Z",
        "2000-01-01T00:30:00+01:00",  # = 1999-12-31 23:30 UTC
        "2025-11-14T13:00:01Z",  # more than one hour ahead of the clock (12:00)
        "2025-11-14T15:00:01+02:00",  # the same instant with an offset
    ],
)
def test_bad_occurred_at(setup, add_events, occurred):
    partner, alpha, _b = setup
    rej = reject_one(add_events, partner, good(alpha, occurredAt=occurred))
    assert (rej.code, rej.field) == ("invalid_occurred_at", "occurredAt")


def test_occurred_at_edges_accepted(setup, add_events):
    partner, alpha, _b = setup
    result = add_events(
        partner,
        [
            good(alpha, eventId="t-2000", occurredAt="2000-01-01T00:00:00Z"),
            good(alpha, eventId="t-future-ok", occurredAt="2025-11-14T13:00:00Z"),  # exactly +1h
            good(alpha, eventId="t-space", occurredAt="2025-10-01 10:00:00"),
            good(alpha, eventId="t-frac", occurredAt="2025-10-01T10:00:00.123456+00:00"),
        ],
    )
    assert (result.accepted, result.rejected) == (4, [])


def test_rejections_keep_positions_and_event_ids(setup, add_events):
    partner, alpha, _b = setup
    result = add_events(
        partner,
        [
            good(alpha, eventId="a"),
            good(alpha, eventId="b", quantity=-1),
            "not an object",
            good(alpha, eventId="c"),
            good(alpha, eventId="d", type="BAD"),
        ],
    )
    assert result.accepted == 2
    assert [(r.index, r.event_id, r.code) for r in result.rejected] == [
        (1, "b", "invalid_quantity"),
        (2, None, "invalid_event"),
        (4, "d", "invalid_type"),
    ]
    assert result.rejected[0].as_json() == {
        "index": 1,
        "eventId": "b",
        "code": "invalid_quantity",
        "message": "quantity must not be negative",
        "field": "quantity",
    }


def test_a_batch_commits_all_or_nothing(setup, add_events, monkeypatch):
    partner, alpha, _b = setup

    def broken(*_args, **_kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(rollups, "add_counts", broken)
    with pytest.raises(RuntimeError):
        add_events(partner, [good(alpha, eventId="x1"), good(alpha, eventId="x2")])
    monkeypatch.undo()
    assert stored_count(partner) == 0
    # Retrying the same batch afterwards stores it once.
    result = add_events(partner, [good(alpha, eventId="x1"), good(alpha, eventId="x2")])
    assert (result.accepted, result.duplicates) == (2, 0)
    assert rollups.verify(partner.id) == []


def test_events_for_suspended_or_canceled_organizations_count(setup, add_events):
    partner, alpha, bravo = setup
    accounts.set_status(partner, alpha, "suspended")
    accounts.set_status(partner, bravo, "canceled")
    result = add_events(partner, [good(alpha, eventId="s1"), good(bravo, eventId="c1")])
    assert (result.accepted, result.rejected) == (2, [])


# --- files --------------------------------------------------------------------------------


def test_jsonl_lines_and_bad_lines():
    text = (
        "\n".join(
            [
                '{"eventId": "1", "type": "identification"}',
                "",
                "{not json",
                '{"eventId": "2", "quantity": NaN}',
                '{"eventId": "3", "quantity": Infinity}',
                '{"eventId": "4", "quantity": -Infinity}',
                "[1, 2]",
                '  {"eventId": "5"}  ',
            ]
        )
        + "\n"
    )
    pairs = list(ingest.iter_jsonl(io.StringIO(text)))
    assert [n for n, _ in pairs] == [1, 3, 4, 5, 6, 7, 8]  # the blank line 2 is skipped
    assert pairs[0][1] == {"eventId": "1", "type": "identification"}
    for number, item in pairs[1:5]:
        assert isinstance(item, ingest.Rejection)
        assert (item.index, item.code) == (number, "invalid_json")
    assert "NaN" in pairs[2][1].message
    assert pairs[5][1] == [1, 2]  # valid JSON; refused later as not an object
    assert pairs[6][1] == {"eventId": "5"}


def test_deeply_nested_json_line_is_a_rejection_not_a_crash():
    text = "[" * 100_000 + "\n" + '{"eventId": "after"}\n'
    pairs = list(ingest.iter_jsonl(io.StringIO(text)))
    assert (pairs[0][0], pairs[0][1].code) == (1, "invalid_json")
    assert pairs[1] == (2, {"eventId": "after"})


def test_csv_parsing():
    text = (
        "\ufeffeventId,organizationId,externalId,type,quantity,occurredAt\r\n"
        "e1,,a-1,identification,3,2025-10-01T10:00:00Z\r\n"
        "\r\n"
        'e2,,a-1,page_view,,"2025-10-01T10:00:00+02:00"\r\n'
        "e3,,a-1,page_view\r\n"
        'e4,,"a\n1",page_view,1,2025-10-01T10:00:00Z\r\n'
        "e5,,a-1,session,1,2025-10-01T10:00:00Z,extra\r\n"
    )
    pairs = list(ingest.iter_csv(io.StringIO(text, newline="")))
    assert [n for n, _ in pairs] == [2, 4, 5, 6, 8]  # the record on line 6 spans two lines
    assert pairs[0][1] == {
        "eventId": "e1",
        "organizationId": None,
        "externalId": "a-1",
        "type": "identification",
        "quantity": "3",
        "occurredAt": "2025-10-01T10:00:00Z",
    }
    assert pairs[1][1]["quantity"] is None
    assert (pairs[2][1].code, pairs[2][1].index) == ("invalid_csv", 5)
    assert "found 4" in pairs[2][1].message
    assert pairs[3][1]["externalId"] == "a\n1"
    assert (pairs[4][1].code, pairs[4][1].index) == ("invalid_csv", 8)


def test_csv_with_a_subset_of_columns_in_any_order():
    text = "occurredAt,type,externalId,eventId\n2025-10-01T10:00:00Z,page_view,a-1,e1\n"
    pairs = list(ingest.iter_csv(io.StringIO(text)))
    assert pairs == [
        (
            2,
            {
                "occurredAt": "2025-10-01T10:00:00Z",
                "type": "page_view",
                "externalId": "a-1",
                "eventId": "e1",
            },
        )
    ]


@pytest.mark.parametrize(
    ("header", "words"),
    [
        ("id,org,kind,qty,at", ["eventId", "type", "occurredAt"]),
        ("eventId,type,quantity,occurredAt", ["organizationId or externalId"]),
        ("eventId,organizationId,type,occurredAt,color", ["unknown", "color"]),
    ],
)
def test_wrong_csv_header(header, words):
    with pytest.raises(ingest.FileFormatError) as info:
        list(ingest.iter_csv(io.StringIO(header + "\nx,y,z,w,v\n")))
    assert str(info.value).startswith("line 1:")
    for word in words:
        assert word in str(info.value)


def test_empty_csv_yields_nothing():
    assert list(ingest.iter_csv(io.StringIO(""))) == []


def test_detect_format():
    assert ingest.detect_format("events.CSV", None) == "csv"
    assert ingest.detect_format("events.jsonl", None) == "jsonl"
    assert ingest.detect_format("-", None) == "jsonl"
    assert ingest.detect_format("-", "csv") == "csv"


def test_stream_in_small_batches_with_repeats(setup):
    partner, alpha, _b = setup
    lines = [json.dumps(good(alpha, eventId=f"s{i % 4}", quantity=i % 4)) for i in range(10)]
    lines.insert(5, "{broken")
    handed: list[tuple[int, int]] = []
    result = ingest.ingest_stream(
        partner,
        ingest.iter_jsonl(io.StringIO("\n".join(lines))),
        batch_size=3,
        on_batch=lambda n, r: handed.append((n, len(r.rejected))),
    )
    # 11 lines: ids s0..s3 are new once each; 6 later lines repeat them; line 6 is broken.
    assert (result.accepted, result.duplicates, result.rejected_count) == (4, 6, 1)
    assert handed == [(3, 0), (6, 1), (9, 0), (11, 0)]
    assert result.rejected == []  # handed out batch by batch, not kept
    figures = metrics.usage(partner, Period(date(2025, 10, 1), date(2025, 10, 1)))
    assert asdict(figures) == {
        "total_quantity": 0 + 1 + 2 + 3,
        "total_events": 4,
        "by_type": {"identification": {"quantity": 6, "events": 4}},
    }
    again = ingest.ingest_stream(partner, ingest.iter_jsonl(io.StringIO("\n".join(lines))))
    assert (again.accepted, again.duplicates, again.rejected_count) == (0, 10, 1)
    assert [(r.index, r.code) for r in again.rejected] == [(6, "invalid_json")]
    assert rollups.verify(partner.id) == []


def test_data_freshness_is_the_newest_receipt_and_never_moves_back(setup, add_events, freeze):
    partner, org, _bravo = setup
    assert metrics.data_freshness(partner) is None
    freeze(datetime(2025, 10, 20, 9, 0))
    assert add_events(partner, [good(org, eventId="f1")]).accepted == 1
    assert metrics.data_freshness(partner) == datetime(2025, 10, 20, 9, 0)
    freeze(datetime(2025, 10, 20, 11, 30))
    assert add_events(partner, [good(org, eventId="f2")]).accepted == 1
    assert metrics.data_freshness(partner) == datetime(2025, 10, 20, 11, 30)
    # A call that only repeats stored events stores nothing and moves nothing.
    freeze(datetime(2025, 10, 20, 12, 0))
    assert add_events(partner, [good(org, eventId="f1")]).duplicates == 1
    assert metrics.data_freshness(partner) == datetime(2025, 10, 20, 11, 30)
    # Rows stored with an earlier receipt time (as the demo backfills them) keep the newest.
    row = dict(
        ingest.validate_event(
            good(org, eventId="f3"),
            ingest.OrgResolver(partner.id),
            "UTC",
            datetime(2025, 10, 20, 12, 0),
        )[0],
        received_at=datetime(2025, 10, 1, 0, 0),
    )
    with write_transaction():
        assert ingest.store_rows(partner.id, [row], datetime(2025, 10, 20, 12, 0)) == 1
    assert metrics.data_freshness(partner) == datetime(2025, 10, 20, 11, 30)


def test_binary_copy_types_follow_the_event_columns():
    """The PostgreSQL path packs each column in binary by a declared type: keep them in step."""
    from sqlalchemy import BigInteger, Date, DateTime, String

    expected = {String: "varchar", BigInteger: "int8", DateTime: "timestamp", Date: "date"}
    table = UsageEvent.__table__
    declared = [expected[type(table.c[name].type)] for name in storage.EVENT_COLUMNS]
    assert declared == storage.PG_EVENT_TYPES
