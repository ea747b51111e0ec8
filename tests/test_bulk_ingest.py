"""POST /partner/events in bulk: gzip bodies (Content-Encoding: gzip) and NDJSON
(application/x-ndjson), and what stays the same on the other endpoints."""

from __future__ import annotations

import gzip
import json
import struct
import zlib
from datetime import datetime
from types import SimpleNamespace

import pytest

from app.api import bodies
from app.extensions import db
from app.models import Organization, UsageEvent

EVENTS = "/api/v1/partner/events"
ORGS = "/api/v1/partner/organizations"
NDJSON = "application/x-ndjson"
MIB = 1024 * 1024


@pytest.fixture
def env(app, client, freeze, make_partner, make_org, api_key):
    freeze(datetime(2025, 10, 20, 12))
    partner = make_partner("acme", pool=1000)
    org = make_org(partner, "Alpha", external_id="a-1", initial_credits=100)
    key = api_key(partner)

    def call(method, url, headers=None, **kwargs):
        sent = {"X-Partner-API-Key": key, **(headers or {})}
        return client.open(url, method=method, headers=sent, **kwargs)

    def post(data, content_type=NDJSON, encoding=None, **headers):
        if encoding is not None:
            headers["Content-Encoding"] = encoding
        return call("POST", EVENTS, data=data, content_type=content_type, headers=headers)

    return SimpleNamespace(partner=partner, org=org, key=key, call=call, post=post)


def _event(env, event_id, **fields):
    event = {
        "eventId": event_id,
        "organizationId": env.org.id,
        "type": "identification",
        "occurredAt": "2025-10-19T10:00:00Z",
    }
    event.update(fields)
    return event


def _ndjson(events):
    return "".join(json.dumps(e) + "\n" for e in events).encode()


def _error(response, status, code, field=None):
    assert response.status_code == status, response.data[:300]
    body = response.get_json()
    assert set(body) == {"code", "message", "details"}
    assert body["code"] == code
    if field is not None:
        assert body["details"]["field"] == field, body
    return body


def _stored(app, partner):
    with app.app_context():
        return db.session.query(UsageEvent).filter(UsageEvent.partner_id == partner.id).count()


def _batch(env, prefix):
    """Three new events, a repeat of the first, and one with an unknown organization."""
    return [
        _event(env, f"{prefix}-1", quantity=4),
        _event(env, f"{prefix}-2", type="page_view"),
        _event(env, f"{prefix}-1", quantity=4),
        _event(env, f"{prefix}-3", organizationId="nope"),
        _event(env, f"{prefix}-4", externalId="a-1", organizationId=None),
    ]


# --- the four forms give the same answer ------------------------------------------------


def test_gzip_and_ndjson_answer_as_the_plain_json_call(app, env):
    # By hand: 1, 2 and 4 are stored, the second 1 is a duplicate, 3 is rejected at index 3.
    expected = {
        "accepted": 3,
        "duplicates": 1,
        "rejected": [
            {
                "index": 3,
                "eventId": None,
                "code": "unknown_organization",
                "message": None,
                "field": "organizationId",
            }
        ],
    }

    def answer(response):
        assert response.status_code == 200, response.data[:300]
        body = response.get_json()
        for rejected in body["rejected"]:
            assert rejected["message"]
            rejected["message"] = None
            rejected["eventId"] = None
        return body

    plain = env.post(json.dumps({"events": _batch(env, "p")}), "application/json")
    zipped_json = env.post(
        gzip.compress(json.dumps({"events": _batch(env, "g")}).encode()),
        "application/json",
        encoding="gzip",
    )
    lines = env.post(_ndjson(_batch(env, "n")))
    zipped_lines = env.post(gzip.compress(_ndjson(_batch(env, "z"))), encoding="gzip")
    for response in (plain, zipped_json, lines, zipped_lines):
        assert answer(response) == expected
    assert _stored(app, env.partner) == 4 * 3
    # Sent again, gzip NDJSON changes nothing: all five are duplicates or rejected.
    again = env.post(gzip.compress(_ndjson(_batch(env, "z"))), encoding="gzip")
    assert (again.get_json()["accepted"], again.get_json()["duplicates"]) == (0, 4)
    assert _stored(app, env.partner) == 12


def test_x_gzip_and_charset_parameters_are_understood(env):
    response = env.post(
        gzip.compress(_ndjson([_event(env, "x1")])),
        content_type="application/x-ndjson; charset=utf-8",
        encoding="x-gzip",
    )
    assert response.get_json() == {"accepted": 1, "duplicates": 0, "rejected": []}


def test_several_gzip_members_are_one_body(env):
    body = gzip.compress(_ndjson([_event(env, "m1")])) + gzip.compress(
        _ndjson([_event(env, "m2"), _event(env, "m3")])
    )
    assert env.post(body, encoding="gzip").get_json()["accepted"] == 3


# --- NDJSON lines -----------------------------------------------------------------------


def test_ndjson_bad_lines_are_rejected_with_their_line_index(env):
    deep = {"eventId": "deep", "x": json.loads("[" * 40 + "]" * 40)}
    lines = [
        json.dumps(_event(env, "ok-0")),  # 0
        "",  # 1 blank
        "{not json",  # 2
        '"just a string"',  # 3
        "[1, 2]",  # 4
        "   \t",  # 5 blank (spaces and a tab)
        json.dumps(_event(env, "ok-6")) + "\r",  # 6, CRLF line end
        json.dumps(_event(env, "nul\u0000id")),  # 7: \u0000 escape in eventId
        json.dumps(_event(env, "lone", type="\ud800")),  # 8: lone surrogate escape
        json.dumps(deep),  # 9: 41 levels deep
        '{"eventId": "nan", "quantity": NaN}',  # 10
        json.dumps(_event(env, "bad-type", type="Page View")),  # 11
        json.dumps(_event(env, "ok-12")),  # 12
    ]
    response = env.post(("\n".join(lines) + "\n\n").encode())
    assert response.status_code == 200, response.data[:300]
    body = response.get_json()
    assert (body["accepted"], body["duplicates"]) == (3, 0)
    got = [(r["index"], r["eventId"], r["code"], r.get("field")) for r in body["rejected"]]
    assert got == [
        (2, None, "invalid_json", None),
        (3, None, "invalid_event", "event"),
        (4, None, "invalid_event", "event"),
        (7, None, "invalid_text", "eventId"),
        (8, "lone", "invalid_text", "type"),
        (9, "deep", "invalid_event", "x" + "[0]" * 32),
        (10, None, "invalid_json", None),
        (11, "bad-type", "invalid_type", "type"),
    ]
    messages = {r["index"]: r["message"] for r in body["rejected"]}
    assert messages[2].startswith("not valid JSON")
    assert "NUL" in messages[7]
    assert "32 levels" in messages[9]


def test_ndjson_line_index_counts_blank_lines_and_ignores_a_bom(env):
    text = "\ufeff\n\n" + json.dumps(_event(env, "b", quantity=-1)) + "\n"
    response = env.post(text.encode())
    assert [(r["index"], r["code"]) for r in response.get_json()["rejected"]] == [
        (2, "invalid_quantity")
    ]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b'{"eventId": "a"}\n\xff\xfe\n', "body"),  # not UTF-8
        (b"", "body"),
        (b"\n \n\r\n", "body"),  # blank lines only
    ],
)
def test_ndjson_bodies_that_cannot_be_read_answer_400(app, env, data, field):
    _error(env.post(data), 400, "BadRequest", field)
    _error(env.post(gzip.compress(data), encoding="gzip"), 400, "BadRequest", field)
    assert _stored(app, env.partner) == 0


def test_ndjson_takes_1000_events_and_refuses_1001_as_the_json_form_does(app, env):
    events = [_event(env, f"e{i}") for i in range(1001)]
    too_many_json = env.post(json.dumps({"events": events}), "application/json")
    json_error = _error(too_many_json, 400, "BadRequest", "events")
    too_many_lines = env.post(gzip.compress(_ndjson(events)), encoding="gzip")
    lines_error = _error(too_many_lines, 400, "BadRequest", "events")
    assert json_error["details"]["field"] == lines_error["details"]["field"]
    assert "1,000" in lines_error["message"]
    assert _stored(app, env.partner) == 0
    # 1,000 event lines and blank lines between them are fine.
    body = "\n\n".join(json.dumps(e) for e in events[:1000]).encode()
    assert env.post(body).get_json() == {"accepted": 1000, "duplicates": 0, "rejected": []}
    assert _stored(app, env.partner) == 1000


def test_ndjson_is_refused_by_other_endpoints(env):
    response = env.call("POST", ORGS, data=b'{"name": "x"}\n', content_type=NDJSON)
    _error(response, 415, "UnsupportedMediaType", "Content-Type")


def test_the_events_415_for_other_types_names_both_forms(env):
    body = _error(env.post(b"x", content_type="text/plain"), 415, "UnsupportedMediaType")
    assert NDJSON in body["message"]


# --- gzip -------------------------------------------------------------------------------


def test_the_size_limit_applies_to_the_inflated_body(app, env):
    app.config["MAX_CONTENT_LENGTH"] = 2000
    event = json.dumps(_event(env, "s1")).encode() + b"\n"
    # Exactly 2,000 bytes once inflated (the event, then blank lines): accepted.
    exact = event + b"\n" * (2000 - len(event))
    assert len(gzip.compress(exact)) < 200
    assert env.post(gzip.compress(exact), encoding="gzip").get_json()["accepted"] == 1
    # One byte more: 413, though the compressed body is small.
    body = _error(env.post(gzip.compress(exact + b"\n"), encoding="gzip"), 413, "PayloadTooLarge")
    assert body["details"]["limit"] == 2000
    assert _stored(app, env.partner) == 1


def _zero_bomb(mebibytes):
    """A valid gzip of mebibytes MiB of zeros, built from one compressed MiB repeated
    (zlib would take seconds to compress a GiB): full flushes make each MiB's deflate
    block the same, an empty final block and the gzip trailer end it."""
    block = bytes(MIB)
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    first = packer.compress(block) + packer.flush(zlib.Z_FULL_FLUSH)
    again = packer.compress(block) + packer.flush(zlib.Z_FULL_FLUSH)
    final = zlib.compressobj(9, zlib.DEFLATED, -15).flush()
    crc = 0
    for _ in range(mebibytes):
        crc = zlib.crc32(block, crc)
    size = (mebibytes * MIB) & 0xFFFFFFFF
    return first + again * (mebibytes - 1) + final + struct.pack("<II", crc, size)


def test_the_zero_bomb_builder_makes_valid_gzip():
    assert gzip.decompress(_zero_bomb(3)) == bytes(3 * MIB)


@pytest.fixture(scope="module")
def bomb():
    data = _zero_bomb(1024)  # 1 GiB of zeros
    assert len(data) < 1.1 * MIB
    return data


REAL_DECOMPRESSOBJ = zlib.decompressobj


class CountingInflater:
    """zlib.decompressobj, counting the bytes it hands out."""

    produced = 0
    calls = 0

    def __init__(self, *args, **kwargs):
        self._real = REAL_DECOMPRESSOBJ(*args, **kwargs)

    def decompress(self, data, max_length=0):
        out = self._real.decompress(data, max_length)
        CountingInflater.produced += len(out)
        CountingInflater.calls += 1
        return out

    def __getattr__(self, name):
        return getattr(self._real, name)


@pytest.fixture
def counting(monkeypatch):
    CountingInflater.produced = CountingInflater.calls = 0
    monkeypatch.setattr(bodies.zlib, "decompressobj", CountingInflater)
    return CountingInflater


def test_a_decompression_bomb_is_refused_without_inflating_it(app, env, bomb, counting):
    limit = app.config["MAX_CONTENT_LENGTH"]
    assert limit == 4 * MIB
    body = _error(env.post(bomb, encoding="gzip"), 413, "PayloadTooLarge", "body")
    assert "inflates to more than 4,194,304 bytes" in body["message"]
    # Inflating stopped one byte past the limit: 4 MiB + 1 of the bomb's 1 GiB.
    assert counting.produced == limit + 1
    assert _stored(app, env.partner) == 0


def test_inflate_gzip_reads_only_what_it_needs_of_a_bomb(bomb, counting):
    limit = 100_000
    read = []
    position = 0

    def reader(size):
        nonlocal position
        chunk = bomb[position : position + size]
        position += len(chunk)
        read.append(len(chunk))
        return chunk

    with pytest.raises(bodies.InflatedTooLarge):
        bodies.inflate_gzip(reader, limit)
    # One 64 KiB chunk of the ~1 MB bomb inflates to far more than 100,000 bytes.
    assert read == [bodies.CHUNK]
    assert counting.produced == limit + 1


def test_a_bomb_without_a_key_is_not_inflated(client, bomb, counting):
    response = client.post(
        EVENTS,
        data=bomb,
        content_type=NDJSON,
        headers={"Content-Encoding": "gzip"},
    )
    _error(response, 401, "Unauthorized", "X-Partner-API-Key")
    assert counting.calls == 0


@pytest.mark.parametrize(
    "data",
    # mtime=0: the bytes (and the test ids) are the same in every pytest-xdist worker.
    [
        b'{"eventId": "x"}\n',  # not compressed at all
        gzip.compress(b'{"eventId": "x"}\n', mtime=0)[:-6],  # truncated
        gzip.compress(b'{"eventId": "x"}\n', mtime=0) + b"garbage",  # trailing bytes
        zlib.compress(b'{"eventId": "x"}\n'),  # zlib (deflate), not gzip
    ],
    ids=["plain", "truncated", "trailing-bytes", "zlib"],
)
def test_a_body_that_is_not_gzip_answers_400_naming_content_encoding(app, env, data):
    body = _error(env.post(data, encoding="gzip"), 400, "BadRequest", "Content-Encoding")
    assert body["details"]["value"] == "gzip"
    assert _stored(app, env.partner) == 0


@pytest.mark.parametrize("encoding", ["br", "deflate", "compress", "gzip, gzip"])
def test_other_encodings_answer_415_naming_content_encoding(env, encoding):
    import brotli

    data = brotli.compress(_ndjson([_event(env, "b1")]))
    _error(env.post(data, encoding=encoding), 415, "UnsupportedMediaType", "Content-Encoding")
    json_body = json.dumps({"events": []})
    response = env.post(json_body, "application/json", encoding=encoding)
    _error(response, 415, "UnsupportedMediaType", "Content-Encoding")


def test_identity_encoding_is_no_encoding(env):
    response = env.post(_ndjson([_event(env, "i1")]), encoding="identity")
    assert response.get_json()["accepted"] == 1


# --- the other endpoints do as before ---------------------------------------------------


def test_other_endpoints_do_not_inflate_gzip(app, env):
    # A gzip body is not JSON to them: 400 naming body, and nothing is created.
    packed = gzip.compress(json.dumps({"name": "Zipped"}).encode())
    response = env.call(
        "POST",
        ORGS,
        data=packed,
        content_type="application/json",
        headers={"Content-Encoding": "gzip"},
    )
    _error(response, 400, "BadRequest", "body")
    # A plain body is read as it is, whatever Content-Encoding says (they never decode).
    plain = env.call(
        "POST",
        ORGS,
        data=json.dumps({"name": "Plain"}),
        content_type="application/json",
        headers={"Content-Encoding": "br"},
    )
    assert plain.status_code == 201, plain.data[:300]
    with app.app_context():
        names = sorted(o.name for o in db.session.query(Organization))
    assert names == ["Alpha", "Plain"]
    # Reads ignore the header.
    listed = env.call("GET", ORGS, headers={"Content-Encoding": "gzip"})
    assert listed.status_code == 200


# --- the document -----------------------------------------------------------------------


def test_the_openapi_document_describes_the_bulk_forms(client):
    document = client.get("/api/v1/openapi.json").get_json()
    operation = document["paths"]["/api/v1/partner/events"]["post"]
    assert "application/x-ndjson" in operation["description"]
    assert "Content-Encoding: gzip" in operation["description"]
    rejected = document["components"]["schemas"]["Rejected"]["properties"]
    assert "line index" in rejected["index"]["description"]
    assert "invalid_json" in rejected["code"]["description"]
