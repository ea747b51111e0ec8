"""Strict input edges (issue 12, items 2 and 3): whole-string patterns, column lengths,
ASCII quantities and names that show something, at every entry point."""

from __future__ import annotations

import itertools
import json
import re
import unicodedata
from datetime import date, datetime
from re import _parser as regex_parser
from zoneinfo import available_timezones

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import String, func, select

from app import accounts, auth, ingest, metrics
from app.errors import AppError
from app.extensions import db
from app.ingest.validation import FastPath
from app.metrics import TypeUsage
from app.models import ApiKey, Organization, Partner, UsageEvent, User
from app.periods import Period
from app.timeutil import set_frozen_now

NOW = datetime(2025, 11, 14, 12, 0)
OCT_1 = Period(date(2025, 10, 1), date(2025, 10, 1))
LONGEST_TYPE = "a" * 64  # usage_event.type is String(64)

# Names that show nothing: whitespace, controls (Cc), format characters (Cf: zero-width
# space, direction marks, BOM) and combining marks (Mn, Mc, Me), alone or together.
INVISIBLE_NAMES = [
    "\u200b",  # ZERO WIDTH SPACE (Cf)
    " \u200b\u200b ",  # the same, padded with spaces
    "\u200e\u200f",  # LEFT-TO-RIGHT and RIGHT-TO-LEFT MARK (Cf)
    "\ufeff",  # BYTE ORDER MARK (Cf)
    "\u0301",  # COMBINING ACUTE ACCENT (Mn)
    "\u0903\u20dd",  # DEVANAGARI SIGN VISARGA (Mc), COMBINING ENCLOSING CIRCLE (Me)
    "\x07\x1b",  # BEL, ESC (Cc)
    "\u3000\u2028\t",  # IDEOGRAPHIC SPACE, LINE SEPARATOR, TAB (whitespace)
]


@pytest.fixture
def acme(freeze, make_partner, make_org, api_key):
    """A partner with one organization (externalId a-1) and a full-access key."""
    freeze(NOW)
    partner = make_partner("acme")
    org = make_org(partner, "Alpha", external_id="a-1", created_at=datetime(2025, 1, 1))
    return {"partner": partner, "org": org, "headers": {"X-Partner-API-Key": api_key(partner)}}


def event(org_id, event_id, **changes):
    out = {
        "eventId": event_id,
        "organizationId": org_id,
        "type": "identification",
        "quantity": 1,
        "occurredAt": "2025-10-01T10:00:00Z",
    }
    out.update(changes)
    return out


def post_events(client, acme, events):
    response = client.post(
        "/api/v1/partner/events", headers=acme["headers"], json={"events": events}
    )
    assert response.status_code == 200, response.get_data()[:500]
    return response.get_json()


def stored_types(partner):
    db.session.expire_all()
    return sorted(
        db.session.execute(
            select(UsageEvent.type).where(UsageEvent.partner_id == partner.id)
        ).scalars()
    )


# --- item 2: a type ending in a newline ------------------------------------------------------


def test_a_type_ending_in_a_newline_is_rejected_alone_and_the_call_stores_the_rest(client, acme):
    org_id = acme["org"].id
    body = post_events(
        client,
        acme,
        [
            event(org_id, "ok-1"),
            event(org_id, "nl", type="identification\n"),
            # 65 characters: one more than usage_event.type holds (a 500 on PostgreSQL before).
            event(org_id, "long-nl", type=LONGEST_TYPE + "\n"),
            event(org_id, "crlf", type="page_view\r\n"),
            event(org_id, "ok-2", type=LONGEST_TYPE),
        ],
    )
    assert body["accepted"] == 2
    assert [(r["index"], r["eventId"], r["code"], r["field"]) for r in body["rejected"]] == [
        (1, "nl", "invalid_type", "type"),
        (2, "long-nl", "invalid_type", "type"),
        (3, "crlf", "invalid_type", "type"),
    ]
    assert stored_types(acme["partner"]) == [LONGEST_TYPE, "identification"]
    assert metrics.usage(acme["partner"], OCT_1).by_type == {
        "identification": TypeUsage(quantity=1, events=1),
        LONGEST_TYPE: TypeUsage(quantity=1, events=1),
    }


def test_flask_ingest_rejects_a_type_ending_in_a_newline_and_goes_on(runner, acme, tmp_path):
    path = tmp_path / "events.jsonl"
    lines = [
        event(None, "j1", externalId="a-1", organizationId=None),
        event(None, "j2", externalId="a-1", organizationId=None, type=LONGEST_TYPE + "\n"),
        event(None, "j3", externalId="a-1", organizationId=None, type="session"),
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = runner.invoke(args=["ingest", str(path), "--partner", "acme"])
    assert result.exit_code == 1, (result.output, result.exception)
    assert result.stdout.splitlines() == [
        "line 2: invalid_type: type must be [a-z][a-z0-9_]{0,63}, nothing before or after "
        "(for example identification, page_view)",
        "accepted: 2",
        "duplicates: 0",
        "rejected: 1",
    ]
    assert stored_types(acme["partner"]) == ["identification", "session"]


def test_the_fast_path_leaves_a_type_ending_in_a_newline_to_validate_event(acme):
    resolver = ingest.OrgResolver(acme["partner"].id)
    fast = FastPath(resolver, "UTC", NOW)
    raw = event(acme["org"].id, "e", type="identification\n")
    assert fast.row(raw) is None
    row, rejection = ingest.validate_event(raw, resolver, "UTC", NOW)
    assert row is None and (rejection.code, rejection.field) == ("invalid_type", "type")


@pytest.mark.parametrize("slug", ["acme2\n", "acme2\r\n", "x" * 100 + "\n"])
def test_a_slug_ending_in_a_newline_is_refused(app_ctx, slug):
    with pytest.raises(AppError) as caught:
        accounts.create_partner("Acme 2", slug, 100)
    assert (caught.value.code, caught.value.field) == ("BadRequest", "slug")
    assert db.session.execute(select(func.count()).select_from(Partner)).scalar() == 0


def test_a_whole_number_query_value_ending_in_a_newline_is_a_400(client, acme):
    response = client.get("/api/v1/partner/organizations?page=1%0A", headers=acme["headers"])
    assert response.status_code == 400
    body = response.get_json()
    assert (body["code"], body["details"]["field"]) == ("BadRequest", "page")


def test_a_usage_type_filter_ending_in_a_newline_is_a_400(client, acme):
    response = client.get("/api/v1/partner/usage?type=identification%0A", headers=acme["headers"])
    assert response.status_code == 400
    assert response.get_json()["details"]["field"] == "type"


def test_a_report_month_ending_in_a_newline_is_not_found(client, acme, add_events):
    add_events(acme["partner"], [event(acme["org"].id, "r1")])
    assert client.get("/api/v1/partner/reports/2025-10", headers=acme["headers"]).status_code == 200
    for month in ("2025-10%0A", "%D9%A2%D9%A0%D9%A2%D9%A5-%D9%A1%D9%A0"):  # and "٢٠٢٥-١٠"
        response = client.get(f"/api/v1/partner/reports/{month}", headers=acme["headers"])
        assert response.status_code == 404, month
        assert response.get_json()["details"]["field"] == "month"


def _longest(regex: re.Pattern[str]) -> int:
    """Return the most characters regex can match (from the regex itself)."""
    return regex_parser.parse(regex.pattern).getwidth()[1]


def test_every_validated_string_fits_its_column():
    def length(column):
        assert isinstance(column.type, String)
        return column.type.length

    assert _longest(ingest.TYPE_RE) == length(UsageEvent.__table__.c.type) == 64
    assert ingest.MAX_EVENT_ID_LENGTH == length(UsageEvent.__table__.c.event_id)
    assert _longest(accounts.SLUG_RE) == length(Partner.__table__.c.slug)
    assert _longest(accounts.CURRENCY_RE) == length(Partner.__table__.c.currency)
    for column in (
        Partner.__table__.c.name,
        Organization.__table__.c.name,
        Organization.__table__.c.external_id,
        ApiKey.__table__.c.name,
    ):
        assert accounts.MAX_NAME <= length(column)
    assert max(len(name) for name in available_timezones()) <= length(Partner.__table__.c.timezone)


# --- property: whatever the validators accept fits every column --------------------------

PROFILE = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_serial = itertools.count()
TAILS = st.sampled_from(["", "", "\n", "\r\n", " ", "\x00", "\u200b", "\u0661"])
TYPES = st.one_of(
    st.builds(lambda n, tail: "a" * n + tail, st.sampled_from([1, 14, 63, 64, 65]), TAILS),
    st.builds(
        lambda name, tail: name + tail,
        st.sampled_from(["identification", "page_view", "session"]),
        TAILS,
    ),
    st.text(max_size=70),
)
EVENT_IDS = st.one_of(
    st.builds(lambda n, tail: "e" * n + tail, st.sampled_from([1, 254, 255, 256]), TAILS),
    st.text(min_size=1, max_size=260),
)
QUANTITY_VALUES = st.one_of(
    st.integers(-2, 10**10),
    st.booleans(),
    st.none(),
    st.builds(
        lambda digits, tail: digits + tail,
        st.sampled_from(
            [
                "0",
                "12",
                "1000000000",
                "1000000001",
                "0000000007",
                "99999999999",
                "-0",
                "+5",
                "\u0661\u0662",
                "\uff17",
            ]
        ),
        st.sampled_from(["", " ", "\n"]),
    ),
)
RAW_EVENTS = st.lists(
    st.fixed_dictionaries(
        {
            "eventId": EVENT_IDS,
            "type": TYPES,
            "quantity": QUANTITY_VALUES,
            "occurredAt": st.sampled_from(
                ["2025-10-01T10:00:00Z", "2025-10-01T10:00:00\n", "2025-10-01 10:00:00+05:45"]
            ),
        }
    ),
    min_size=1,
    max_size=8,
)


def _fits(value, column) -> bool:
    return len(value) <= column.type.length and ingest.storable_text(value)


@PROFILE
@given(raws=RAW_EVENTS)
def test_whatever_ingestion_accepts_fits_every_column(app_ctx, raws):
    """Stored through the real ingestion: on the PostgreSQL pass a value that does not fit
    fails the insert (StringDataRightTruncation), on SQLite the length check does."""
    set_frozen_now(NOW)
    partner = accounts.create_partner("P", f"edge-{next(_serial)}", 1000)
    org = accounts.create_organization(
        partner, "O", external_id="o-1", created_at=datetime(2025, 1, 1)
    )
    resolver = ingest.OrgResolver(partner.id)
    events = [{**raw, "organizationId": org.id} for raw in raws]
    for raw in events:
        row, _rejection = ingest.validate_event(dict(raw), resolver, "UTC", NOW)
        fast = FastPath(resolver, "UTC", NOW).row(dict(raw))
        for found in (row, fast):
            if found is not None:
                table = UsageEvent.__table__.c
                assert _fits(found["type"], table.type), raw
                assert re.fullmatch(r"[a-z][a-z0-9_]*", found["type"]), raw
                assert _fits(found["event_id"], table.event_id), raw
                assert type(found["quantity"]) is int
                assert 0 <= found["quantity"] <= 1_000_000_000
    result = ingest.ingest_batch(partner, list(enumerate(events)))
    stored = db.session.execute(
        select(func.count()).select_from(UsageEvent).where(UsageEvent.partner_id == partner.id)
    ).scalar()
    assert stored == result.accepted
    assert result.accepted + result.duplicates + result.rejected_count == len(events)


def _shows(char: str) -> bool:
    """Not whitespace, a control, a format or a combining character (issue 12, item 3)."""
    return not char.isspace() and unicodedata.category(char) not in {"Cc", "Cf", "Mn", "Mc", "Me"}


NAMES = st.one_of(
    st.text(max_size=210),
    st.builds(
        lambda name, pad: pad + name + pad,
        st.sampled_from(INVISIBLE_NAMES + ["Ab"]),
        st.sampled_from(["", " ", "\u200b", "\x00"]),
    ),
)


@PROFILE
@given(name=NAMES, key_name=NAMES)
def test_whatever_the_name_rule_accepts_shows_something_and_fits_its_column(
    app_ctx, name, key_name
):
    set_frozen_now(NOW)
    partner = accounts.create_partner("P", f"name-{next(_serial)}", 1000)
    for check, value in (
        (lambda v: accounts.create_organization(partner, v).name, name),
        (lambda v: auth.create_api_key(partner, v)[0].name, key_name),
    ):
        try:
            stored = check(value)
        except AppError as exc:
            assert (exc.code, exc.field) == ("BadRequest", "name")
            db.session.rollback()
            continue
        assert stored == value.strip()
        assert len(stored) <= 200 and ingest.storable_text(stored)
        assert stored == "" or any(_shows(c) for c in stored), repr(stored)


# --- item 3: quantities --------------------------------------------------------------------

BAD_QUANTITIES = [
    "-0",
    "\u0661\u0662",
    "\uff17",
    "+5",
    " 3 ",
    "3\n",
    "",
    "0x10",
    "1e3",
    "12345678901",
    "1000000001",
    "\u00b2",
]


def test_the_api_refuses_every_quantity_text_but_ascii_digits(client, acme):
    org_id = acme["org"].id
    events = [event(org_id, f"bad-{i}", quantity=q) for i, q in enumerate(BAD_QUANTITIES)]
    events += [
        event(org_id, "zeros", quantity="0000000012"),
        event(org_id, "max", quantity="1000000000"),
        event(org_id, "zero", quantity="0"),
        event(org_id, "int", quantity=7),
        event(org_id, "bool", quantity=True),
    ]
    body = post_events(client, acme, events)
    assert body["accepted"] == 4
    assert [(r["index"], r["code"], r["field"]) for r in body["rejected"]] == [
        *((i, "invalid_quantity", "quantity") for i in range(len(BAD_QUANTITIES))),
        (len(BAD_QUANTITIES) + 4, "invalid_quantity", "quantity"),
    ]
    # 12 + 1,000,000,000 + 0 + 7
    assert metrics.usage(acme["partner"], OCT_1).total_quantity == 1_000_000_019


def test_the_file_import_refuses_every_quantity_text_but_ascii_digits(runner, acme, tmp_path):
    path = tmp_path / "events.csv"
    rows = [
        "eventId,organizationId,externalId,type,quantity,occurredAt",
        "c1,,a-1,identification,-0,2025-10-01T10:00:00Z",
        "c2,,a-1,identification,\u0661\u0662,2025-10-01T10:00:00Z",
        "c3,,a-1,identification,\uff17,2025-10-01T10:00:00Z",
        "c4,,a-1,identification,+5,2025-10-01T10:00:00Z",
        'c5,,a-1,identification," 3 ",2025-10-01T10:00:00Z',
        "c6,,a-1,identification,0005,2025-10-01T10:00:00Z",
        "c7,,a-1,identification,,2025-10-01T10:00:00Z",
    ]  # an empty cell means 1
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = runner.invoke(args=["ingest", str(path), "--partner", "acme"])
    assert result.exit_code == 1, (result.output, result.exception)
    out = result.stdout.splitlines()
    assert [line.split(": ")[0:2] for line in out[:5]] == [
        [f"line {n}", "invalid_quantity"] for n in range(2, 7)
    ]
    assert out[0] == "line 2: invalid_quantity: quantity must not be negative"
    assert out[5:] == ["accepted: 2", "duplicates: 0", "rejected: 5"]
    assert metrics.usage(acme["partner"], OCT_1).total_quantity == 5 + 1


@pytest.mark.parametrize("quantity", BAD_QUANTITIES + [True, False, 1.0, -1, 1_000_000_001])
def test_the_fast_path_and_validate_event_refuse_the_same_quantities(acme, quantity):
    resolver = ingest.OrgResolver(acme["partner"].id)
    raw = event(acme["org"].id, "q", quantity=quantity)
    assert FastPath(resolver, "UTC", NOW).row(dict(raw)) is None
    row, rejection = ingest.validate_event(dict(raw), resolver, "UTC", NOW)
    assert row is None and (rejection.code, rejection.field) == ("invalid_quantity", "quantity")


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        ("0", 0),
        ("0000000012", 12),
        ("1000000000", 1_000_000_000),
        (0, 0),
        (1_000_000_000, 1_000_000_000),
        (None, 1),
    ],
)
def test_the_quantity_rule_accepts_ascii_digits_and_json_integers(quantity, expected):
    assert ingest.parse_quantity(quantity) == expected


# --- item 3: names ---------------------------------------------------------------------------


def _api_org_create(client, acme, name):
    return client.post(
        "/api/v1/partner/organizations", headers=acme["headers"], json={"name": name}
    )


def _api_org_patch(client, acme, name):
    return client.patch(
        f"/api/v1/partner/organizations/{acme['org'].id}",
        headers=acme["headers"],
        json={"name": name},
    )


def _api_key_create(client, acme, name):
    return client.post("/api/v1/partner/api-keys", headers=acme["headers"], json={"name": name})


@pytest.mark.parametrize("name", INVISIBLE_NAMES)
@pytest.mark.parametrize("call", [_api_org_create, _api_org_patch, _api_key_create])
def test_the_api_refuses_a_name_that_shows_nothing(client, acme, call, name):
    before = _names()
    response = call(client, acme, name)
    assert response.status_code == 400, response.get_data()[:300]
    body = response.get_json()
    assert (body["code"], body["details"]["field"]) == ("BadRequest", "name")
    assert "visible character" in body["message"] or "required" in body["message"]
    assert _names() == before


def _names():
    db.session.expire_all()
    return (
        sorted(db.session.execute(select(Organization.name)).scalars()),
        sorted(db.session.execute(select(ApiKey.name)).scalars()),
        sorted(db.session.execute(select(Partner.name)).scalars()),
    )


@pytest.mark.parametrize("name", INVISIBLE_NAMES)
@pytest.mark.parametrize(
    "args",
    [
        ["create-partner", "--slug", "other", "--pool", "10", "--name"],
        ["create-org", "--partner", "acme", "--name"],
        ["create-api-key", "--partner", "acme", "--name"],
    ],
)
def test_the_cli_refuses_a_name_that_shows_nothing(runner, acme, args, name):
    before = _names()
    result = runner.invoke(args=[*args, name])
    assert result.exit_code == 1, (result.output, result.exception)
    assert (
        "name must contain a visible character" in result.output
        or "name is required" in result.output
    )
    assert "Traceback" not in result.output
    assert _names() == before


def test_names_are_stripped_and_may_hold_invisible_characters_beside_visible_ones(client, acme):
    created = _api_org_create(client, acme, "  \u200bZeta\u0301 \t")
    assert created.status_code == 201
    assert created.get_json()["name"] == "\u200bZeta\u0301"
    key = _api_key_create(client, acme, " ops key ")
    assert key.status_code == 201 and key.get_json()["apiKey"]["name"] == "ops key"
    unnamed = _api_key_create(client, acme, "")
    assert unnamed.status_code == 201 and unnamed.get_json()["apiKey"]["name"] == ""


def test_a_name_longer_than_its_column_is_refused_by_the_cli(runner, acme):
    result = runner.invoke(args=["create-api-key", "--partner", "acme", "--name", "k" * 201])
    assert result.exit_code == 1 and "at most 200 characters" in result.output
    assert db.session.execute(select(func.count()).select_from(ApiKey)).scalar() == 1


@pytest.mark.parametrize(
    "email",
    [
        "\u200b@example.com",
        "ann@\u200b",
        "ann @example.com",
        "ann@exa\u200bmple.com",
        "@example.com",
    ],
)
def test_a_user_email_that_shows_nothing_on_one_side_is_refused(runner, acme, email):
    result = runner.invoke(
        args=[
            "create-user",
            "--partner",
            "acme",
            "--email",
            email,
            "--password",
            "correct horse battery",
        ]
    )
    assert result.exit_code == 1 and "valid email address" in result.output
    assert db.session.execute(select(func.count()).select_from(User)).scalar() == 0
