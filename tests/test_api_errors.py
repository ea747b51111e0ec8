"""The JSON API's failures: every error path answers the JSON envelope, never HTML or a 500."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta

import pytest

from app import auth, create_app
from app.extensions import db

NOW = datetime(2025, 10, 20, 12)

# A fixed, well-formed UUID that no test creates (a random one would give the test a
# different id in every process, which pytest-xdist refuses).
UNKNOWN_ID = "3f2b8c1e-5d4a-4e6b-9c7d-0a1b2c3d4e5f"


@pytest.fixture
def env(app, client, freeze, make_partner, make_org, api_key):
    freeze(NOW)
    partner = make_partner("acme", pool=1000)
    org = make_org(partner, "Alpha", external_id="a-1", initial_credits=100)
    key = api_key(partner)

    def call(method, url, key=key, **kwargs):
        headers = kwargs.pop("headers", {})
        if key is not None:
            headers["X-Partner-API-Key"] = key
        return client.open(url, method=method, headers=headers, **kwargs)

    class Env:
        pass

    e = Env()
    e.partner, e.org, e.key, e.call, e.client = partner, org, key, call, client
    return e


def _error(response, status, code, field=None):
    """Assert the JSON envelope; return its body."""
    assert response.status_code == status, response.data[:300]
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"code", "message", "details"}
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    if field is not None:
        assert body["details"]["field"] == field, body
    return body


# --- dates ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "field", "value", "message"),
    [
        (
            "startDate=2025-02-30",
            "startDate",
            "2025-02-30",
            "startDate must be a date (YYYY-MM-DD) or an ISO 8601 timestamp",
        ),
        (
            "startDate=yesterday",
            "startDate",
            "yesterday",
            "startDate must be a date (YYYY-MM-DD) or an ISO 8601 timestamp",
        ),
        (
            "endDate=2025-13-01",
            "endDate",
            "2025-13-01",
            "endDate must be a date (YYYY-MM-DD) or an ISO 8601 timestamp",
        ),
        (
            "endDate=2025-10-01T25:00:00Z",
            "endDate",
            "2025-10-01T25:00:00Z",
            "endDate must be a date (YYYY-MM-DD) or an ISO 8601 timestamp",
        ),
        (
            "startDate=1969-12-31",
            "startDate",
            "1969-12-31",
            "startDate must be between 1970-01-01 and 2999-12-31",
        ),
        (
            "startDate=2025-10-10&endDate=2025-10-01",
            "startDate",
            "2025-10-10",
            "startDate must not be after endDate",
        ),
        # 2015-10-13 .. 2025-10-20: 3,653 days for the ten years (leap days 2016, 2020, 2024)
        # + 7 + 1 = 3,661 days, one over the limit.
        (
            "startDate=2015-10-13&endDate=2025-10-20",
            "startDate",
            "2015-10-13",
            "the period spans 3661 days; at most 3660 are allowed",
        ),
    ],
)
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/partner/analytics",
        "/api/v1/partner/usage",
        "/api/v1/partner/analytics/timeseries",
        "/api/v1/partner/analytics/organizations",
    ],
)
def test_bad_dates_answer_400_naming_the_field(env, path, query, field, value, message):
    body = _error(env.call("GET", f"{path}?{query}"), 400, "BadRequest", field)
    assert body == {
        "code": "BadRequest",
        "message": message,
        "details": {"field": field, "value": value},
    }


def test_the_longest_period_is_allowed_and_empty_dates_mean_the_default(env):
    # 2015-10-14 .. 2025-10-20 is exactly 3,660 days.
    ok = env.call("GET", "/api/v1/partner/analytics?startDate=2015-10-14&endDate=2025-10-20")
    assert ok.status_code == 200
    empty = env.call("GET", "/api/v1/partner/analytics?startDate=&endDate=")
    assert (empty.get_json()["startDate"], empty.get_json()["endDate"]) == (
        "2025-09-20",
        "2025-10-20",
    )


def test_bad_dates_on_one_organizations_analytics(env):
    _error(
        env.call("GET", f"/api/v1/partner/organizations/{env.org.id}/analytics?endDate=soon"),
        400,
        "BadRequest",
        "endDate",
    )


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("granularity=hour", "granularity"),
        ("compare=next", "compare"),
        ("organizationId=" + "x" * 201, "organizationId"),
    ],
)
def test_bad_series_parameters(env, query, field):
    _error(
        env.call("GET", f"/api/v1/partner/analytics/timeseries?{query}"), 400, "BadRequest", field
    )


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("sort=revenue", "sort"),
        ("order=up", "order"),
        ("status=gone", "status"),
    ],
)
def test_bad_breakdown_parameters(env, query, field):
    _error(
        env.call("GET", f"/api/v1/partner/analytics/organizations?{query}"),
        400,
        "BadRequest",
        field,
    )


def test_bad_usage_type(env):
    _error(env.call("GET", "/api/v1/partner/usage?type=Page-View"), 400, "BadRequest", "type")


# --- numbers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("usage=abc", "usage must be a whole number written with digits only"),
        ("usage=1.5", "usage must be a whole number written with digits only"),
        ("usage=-1", "usage must be a whole number written with digits only"),
        ("usage=1e3", "usage must be a whole number written with digits only"),
        ("usage=", "usage must be a whole number written with digits only"),
        ("usage=10000000000001", "usage: Input should be less than or equal to 1000000000000"),
        ("", "usage is required"),
    ],
)
def test_calculate_needs_a_whole_number(env, query, message):
    body = _error(
        env.call("GET", f"/api/v1/partner/billing/calculate?{query}"), 400, "BadRequest", "usage"
    )
    assert body["message"] == message


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("pageSize=0", "pageSize"),
        ("pageSize=101", "pageSize"),
        ("pageSize=ten", "pageSize"),
        ("page=0", "page"),
        ("page=-1", "page"),
        ("page=99999999999999999999", "page"),
    ],
)
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/partner/organizations",
        "/api/v1/partner/analytics/organizations",
        "/api/v1/partner/billing/periods",
        "/api/v1/partner/api-keys",
    ],
)
def test_page_size_out_of_range(env, path, query, field):
    _error(env.call("GET", f"{path}?{query}"), 400, "BadRequest", field)


def test_page_size_edges_are_allowed(env):
    for query in ("pageSize=1", "pageSize=100", "page=1000000"):
        assert env.call("GET", f"/api/v1/partner/organizations?{query}").status_code == 200


# --- unknown ids ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("PATCH", "", {"name": "x"}),
        ("DELETE", "", None),
        ("GET", "/analytics", None),
        ("PUT", "/status", {"status": "active"}),
        ("PUT", "/tier", {"tier": "paid"}),
        ("PUT", "/credits", {"credits": 1}),
        ("GET", "/credits/history", None),
    ],
)
@pytest.mark.parametrize("org_id", [UNKNOWN_ID, "not-a-uuid", "x" * 300])
def test_unknown_organization_answers_404(env, method, suffix, body, org_id):
    response = env.call(method, f"/api/v1/partner/organizations/{org_id}{suffix}", json=body)
    _error(response, 404, "NotFound", "organizationId")


@pytest.mark.parametrize("path", ["/api/v1/partner/usage", "/api/v1/partner/analytics/timeseries"])
def test_unknown_organization_filter_answers_404(env, path):
    body = _error(
        env.call("GET", f"{path}?organizationId={uuid.uuid4()}"), 404, "NotFound", "organizationId"
    )
    assert body["message"] == "organization not found"


def test_unknown_api_key_id_answers_404(env):
    _error(env.call("DELETE", f"/api/v1/partner/api-keys/{uuid.uuid4()}"), 404, "NotFound", "id")


# --- bodies -----------------------------------------------------------------------------

ORGS = "/api/v1/partner/organizations"


@pytest.mark.parametrize(
    ("data", "content_type", "status", "code"),
    [
        ("{bad json", "application/json", 400, "BadRequest"),
        ('{"name": "x",}', "application/json", 400, "BadRequest"),
        ("", "application/json", 400, "BadRequest"),
        ("[1, 2]", "application/json", 400, "BadRequest"),
        ('"Alpha"', "application/json", 400, "BadRequest"),
        ("null", "application/json", 400, "BadRequest"),
        ('{"name": NaN}', "application/json", 400, "BadRequest"),
        ('{"name": "x", "initialCredits": Infinity}', "application/json", 400, "BadRequest"),
        ('{"name": "x", "initialCredits": 1e999}', "application/json", 400, "BadRequest"),
        (
            '{"name": "x", "initialCredits": ' + "9" * 5000 + "}",
            "application/json",
            400,
            "BadRequest",
        ),
        (b'{"name": "\xff\xfe"}', "application/json", 400, "BadRequest"),
        ('{"name": "x"}', "text/plain", 415, "UnsupportedMediaType"),
        ("name=x", "application/x-www-form-urlencoded", 415, "UnsupportedMediaType"),
    ],
)
def test_malformed_bodies(env, data, content_type, status, code):
    response = env.call("POST", ORGS, data=data, content_type=content_type)
    body = _error(response, status, code)
    assert body["details"]["field"] in ("body", "Content-Type")
    assert env.call("GET", f"{ORGS}?search=x").get_json()["total"] == 0


def test_a_body_without_content_type_is_refused(env):
    response = env.client.post(ORGS, data='{"name": "x"}', headers={"X-Partner-API-Key": env.key})
    _error(response, 415, "UnsupportedMediaType", "Content-Type")


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({}, "name", "name is required"),
        ({"name": 5}, "name", "name: Input should be a valid string"),
        ({"name": ""}, "name", None),
        ({"name": "   "}, "name", "name is required"),
        ({"name": "x" * 201}, "name", None),
        ({"name": "x", "initialCredits": "5"}, "initialCredits", None),
        ({"name": "x", "initialCredits": 1.5}, "initialCredits", None),
        ({"name": "x", "initialCredits": True}, "initialCredits", None),
        ({"name": "x", "initialCredits": -1}, "initialCredits", None),
        ({"name": "x", "initialCredits": 10**30}, "initialCredits", None),
        ({"name": "x", "tier": "gold"}, "tier", None),
        ({"name": "x", "productType": "B2G"}, "productType", None),
        ({"name": "x", "metadata": [1]}, "metadata", None),
        ({"name": "x", "createdAt": "last week"}, "createdAt", None),
        (
            {"name": "x", "createdAt": "2025-10-21"},
            "createdAt",
            "createdAt must not be in the future",
        ),
        ({"name": "x", "createdAt": "2025-02-30"}, "createdAt", None),
        ({"name": "a\u0000b"}, "name", "name contains a NUL character"),
        ({"name": "\ud800"}, "name", "name is not valid Unicode text"),
        ({"name": "x", "metadata": {"k\u0000": 1}}, "metadata.k\u0000", None),
    ],
)
def test_invalid_organization_bodies_name_the_field(env, payload, field, message):
    data = json.dumps(payload)  # json.dumps escapes the lone surrogate as \ud800
    body = _error(
        env.call("POST", ORGS, data=data, content_type="application/json"), 400, "BadRequest", field
    )
    if message is not None:
        assert body["message"] == message
    assert env.call("GET", ORGS).get_json()["total"] == 1


@pytest.mark.parametrize(
    "raw, field, message",
    [
        # A lone surrogate sent as raw bytes (UTF-8 encoded with surrogatepass), no \\u escape.
        (
            '{"name": "bad \ud800 text"}'.encode("utf-8", "surrogatepass"),
            "name",
            "name is not valid Unicode text",
        ),
        # The same kind of body in UTF-16, which json.loads also reads.
        (
            '{"name": "x", "metadata": {"k": "a\\u0000b"}}'.encode("utf-16"),
            "metadata.k",
            "metadata.k contains a NUL character",
        ),
        (
            '{"name": "\ud800"}'.encode("utf-16-le", "surrogatepass"),
            "name",
            "name is not valid Unicode text",
        ),
    ],
)
def test_unstorable_text_without_an_escape_is_refused(env, raw, field, message):
    body = _error(
        env.call("POST", ORGS, data=raw, content_type="application/json"), 400, "BadRequest", field
    )
    assert body["message"] == message
    assert env.call("GET", ORGS).get_json()["total"] == 1


def test_nesting_is_refused_exactly_past_the_limit(env):
    from app.api.guards import MAX_DEPTH

    def nested(levels):
        value: object = "leaf"
        for _ in range(levels):
            value = {"a": value}
        return value

    # The body is level 0 and metadata level 1: metadata nesting n puts the leaf at n + 1,
    # and a leaf at level MAX_DEPTH + 1 is one too deep.
    ok = env.call("POST", ORGS, json={"name": "deep-ok", "metadata": nested(MAX_DEPTH - 1)})
    assert ok.status_code == 201, ok.get_json()
    body = _error(
        env.call("POST", ORGS, json={"name": "deep-no", "metadata": nested(MAX_DEPTH)}),
        400,
        "BadRequest",
    )
    assert "nested" in body["message"]


def test_deeply_nested_bodies_are_refused(env):
    nested: dict = {}
    for _ in range(200):
        nested = {"a": nested}
    body = _error(env.call("POST", ORGS, json={"name": "x", "metadata": nested}), 400, "BadRequest")
    assert "nested" in body["message"]
    deeper = "[" * 100_000 + "]" * 100_000
    _error(
        env.call("POST", ORGS, data=deeper, content_type="application/json"),
        400,
        "BadRequest",
        "body",
    )


def test_text_that_the_database_cannot_store_in_query_parameters(env):
    _error(env.call("GET", f"{ORGS}?search=a%00b"), 400, "BadRequest", "search")


def test_oversized_batch(env):
    events = [
        {
            "eventId": f"e{i}",
            "organizationId": env.org.id,
            "type": "identification",
            "occurredAt": "2025-10-01T00:00:00Z",
        }
        for i in range(1001)
    ]
    body = _error(
        env.call("POST", "/api/v1/partner/events", json={"events": events}),
        400,
        "BadRequest",
        "events",
    )
    assert "1000" in body["message"]
    # Nothing of it was stored: the same 1,000 first events are all new.
    ok = env.call("POST", "/api/v1/partner/events", json={"events": events[:1000]})
    assert ok.get_json()["accepted"] == 1000


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "events"),
        ({"events": "e1"}, "events"),
        ({"events": {"a": 1}}, "events"),
    ],
)
def test_events_body_must_hold_a_list(env, payload, field):
    _error(env.call("POST", "/api/v1/partner/events", json=payload), 400, "BadRequest", field)


def test_body_over_the_size_limit_answers_413_json(app, env):
    app.config["MAX_CONTENT_LENGTH"] = 2000
    response = env.call(
        "POST", ORGS, data=json.dumps({"name": "x" * 5000}), content_type="application/json"
    )
    body = _error(response, 413, "PayloadTooLarge")
    assert body["message"] == "the request body is too large"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"credits": "5"}, "credits"),
        ({"credits": -1}, "credits"),
        ({"credits": 10**13}, "credits"),
        ({}, "credits"),
        ({"credits": 5, "notes": "x" * 2001}, "notes"),
    ],
)
def test_invalid_allocation_bodies(env, payload, field):
    _error(env.call("PUT", f"{ORGS}/{env.org.id}/credits", json=payload), 400, "BadRequest", field)


def test_status_and_tier_bodies(env):
    _error(
        env.call("PUT", f"{ORGS}/{env.org.id}/status", json={"status": "deleted"}),
        400,
        "BadRequest",
        "status",
    )
    _error(
        env.call("PUT", f"{ORGS}/{env.org.id}/tier", json={"tier": None}), 400, "BadRequest", "tier"
    )
    _error(
        env.call("PATCH", f"{ORGS}/{env.org.id}", json={"status": None}),
        400,
        "BadRequest",
        "status",
    )
    _error(
        env.call("PATCH", f"{ORGS}/{env.org.id}", json={"name": "  "}), 400, "BadRequest", "name"
    )


def test_patch_with_a_bad_name_changes_nothing(env):
    _error(
        env.call("PATCH", f"{ORGS}/{env.org.id}", json={"status": "suspended", "name": " "}),
        400,
        "BadRequest",
        "name",
    )
    assert env.call("GET", f"{ORGS}/{env.org.id}").get_json()["status"] == "active"


# --- business rules ---------------------------------------------------------------------


def test_duplicate_external_id_is_a_conflict(env):
    body = _error(
        env.call("POST", ORGS, json={"name": "Other", "externalId": "a-1"}),
        409,
        "Conflict",
        "externalId",
    )
    assert body["details"]["value"] == "a-1"
    other = env.call("POST", ORGS, json={"name": "Other", "externalId": "o-1"}).get_json()
    _error(
        env.call("PATCH", f"{ORGS}/{other['id']}", json={"externalId": "a-1"}),
        409,
        "Conflict",
        "externalId",
    )


def test_over_max_organizations_is_422(app, client, freeze, make_partner, api_key):
    freeze(NOW)
    partner = make_partner("small", max_organizations=1)
    headers = {"X-Partner-API-Key": api_key(partner)}
    assert client.post(ORGS, json={"name": "One"}, headers=headers).status_code == 201
    body = _error(
        client.post(ORGS, json={"name": "Two"}, headers=headers),
        422,
        "UnprocessableEntity",
        "maxOrganizations",
    )
    assert body["details"]["maxOrganizations"] == 1


def test_trial_tier_over_the_cap_and_credits_for_a_canceled_org_are_422(env):
    paid = env.call(
        "POST", ORGS, json={"name": "Paid", "tier": "paid", "initialCredits": 600}
    ).get_json()
    _error(
        env.call("PUT", f"{ORGS}/{paid['id']}/tier", json={"tier": "trial"}),
        422,
        "UnprocessableEntity",
        "tier",
    )
    env.call("DELETE", f"{ORGS}/{env.org.id}")
    _error(
        env.call("PUT", f"{ORGS}/{env.org.id}/credits", json={"credits": 5}),
        422,
        "UnprocessableEntity",
        "credits",
    )


def test_api_key_bodies(env):
    keys = "/api/v1/partner/api-keys"
    _error(env.call("POST", keys, json={"scopes": ["superuser"]}), 400, "BadRequest", "scopes[0]")
    _error(env.call("POST", keys, json={"scopes": "read"}), 400, "BadRequest", "scopes")
    _error(
        env.call("POST", keys, json={"expiresAt": "2025-10-20T11:59:59Z"}),
        400,
        "BadRequest",
        "expiresAt",
    )
    _error(env.call("POST", keys, json={"expiresAt": "next year"}), 400, "BadRequest", "expiresAt")
    _error(env.call("POST", keys, json={"expiresAt": ""}), 400, "BadRequest", "expiresAt")
    assert env.call("GET", keys).get_json()["total"] == 1


# --- routing ----------------------------------------------------------------------------


def test_unrouted_urls_and_methods_answer_json(env):
    _error(env.call("GET", "/api/v1/nothing-here"), 404, "NotFound")
    _error(env.call("GET", "/api/v1/partner/organizations/"), 404, "NotFound")
    _error(env.call("GET", "/api/v2/partner/analytics"), 404, "NotFound")
    response = env.call("DELETE", "/api/v1/partner/analytics")
    _error(response, 405, "MethodNotAllowed")
    assert "GET" in response.headers["Allow"]


# --- authentication and scopes ------------------------------------------------------------


def test_missing_and_unknown_keys_answer_401(env):
    body = _error(env.call("GET", "/api/v1/partner/analytics", key=None), 401, "Unauthorized")
    assert body == {
        "code": "Unauthorized",
        "message": "the X-Partner-API-Key header is required",
        "details": {"field": "X-Partner-API-Key", "value": None},
    }
    for bad in ("pk_live_nope", "abc", "", "pk_live_" + "x" * 500, env.key + "x"):
        response = env.call("GET", "/api/v1/partner/analytics", key=bad)
        assert response.status_code == 401
    # The header name is case-insensitive; the key itself is not.
    assert (
        env.client.get("/api/v1/partner/me", headers={"x-partner-api-key": env.key}).status_code
        == 200
    )
    assert env.call("GET", "/api/v1/partner/me", key=env.key.upper()).status_code == 401


def test_revoked_and_expired_keys_answer_401(env, freeze):
    key_row = auth.find_api_key(env.key)
    auth.revoke_api_key(key_row)
    body = _error(env.call("GET", "/api/v1/partner/me"), 401, "Unauthorized")
    assert body["message"] == "the API key is unknown, revoked or expired"
    _k, expiring = auth.create_api_key(env.partner, "soon", [], NOW + timedelta(hours=1))
    assert env.call("GET", "/api/v1/partner/me", key=expiring).status_code == 200
    freeze(NOW + timedelta(hours=1))
    _error(env.call("GET", "/api/v1/partner/me", key=expiring), 401, "Unauthorized")


@pytest.mark.parametrize(
    ("scopes", "reads", "writes", "admin"),
    [
        (["read"], True, False, False),
        (["write"], True, True, False),
        (["read", "write"], True, True, False),
        (["admin"], True, True, True),
        ([], True, True, True),  # no scopes: full access
    ],
)
def test_scopes(env, api_key, scopes, reads, writes, admin):
    key = api_key(env.partner, scopes)

    def status(method, url, **kwargs):
        return env.call(method, url, key=key, **kwargs).status_code

    assert status("GET", "/api/v1/partner/analytics") == (200 if reads else 403)
    assert status("GET", f"{ORGS}/{env.org.id}") == (200 if reads else 403)
    assert status("POST", "/api/v1/partner/events", json={"events": []}) == (200 if writes else 403)
    assert status("PUT", f"{ORGS}/{env.org.id}/credits", json={"credits": 50}) == (
        200 if writes else 403
    )
    assert status("GET", "/api/v1/partner/api-keys") == (200 if admin else 403)
    assert status("POST", "/api/v1/partner/api-keys", json={"name": "n"}) == (201 if admin else 403)


def test_forbidden_names_the_missing_scope(env, api_key):
    key = api_key(env.partner, ["read"])
    body = _error(
        env.call("POST", "/api/v1/partner/events", key=key, json={"events": []}), 403, "Forbidden"
    )
    assert body == {
        "code": "Forbidden",
        "message": "this API key lacks the 'write' scope",
        "details": {"field": "X-Partner-API-Key", "requiredScope": "write", "scopes": ["read"]},
    }
    # A forbidden request changes nothing.
    env.call("PUT", f"{ORGS}/{env.org.id}/credits", key=key, json={"credits": 7})
    assert env.call("GET", f"{ORGS}/{env.org.id}").get_json()["credits"] == 100


def _operations(client):
    document = client.get("/api/v1/openapi.json").get_json()
    for path, operations in document["paths"].items():
        for method in operations:
            url = path.replace("{id}", str(uuid.uuid4())).replace("{month}", "2025-10")
            yield method.upper(), url


def test_every_documented_operation_needs_a_key(env):
    operations = list(_operations(env.client))
    assert len(operations) >= 23
    for method, url in operations:
        response = env.call(
            method, url, key=None, json={} if method in ("POST", "PUT", "PATCH") else None
        )
        body = _error(response, 401, "Unauthorized")
        assert body["details"]["field"] == "X-Partner-API-Key", (method, url)
        assert "X-RateLimit-Limit" in response.headers


def test_the_openapi_document_is_public(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.get_json()["info"]["title"] == "Partner Analytics API"


# --- rate limit -------------------------------------------------------------------------


@pytest.fixture
def limited(app, env):
    """A second app on the same database allowing 3 API requests per minute."""
    small = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": app.config["DATABASE_URL"],
            "SECRET_KEY": "test",
            "API_RATE_LIMIT": "3 per minute",
            "RATELIMIT_STORAGE_URI": "memory://",
        }
    )
    yield small.test_client()
    with small.app_context():
        db.engine.dispose()


def test_rate_limit_headers_and_429(env, limited):
    headers = {"X-Partner-API-Key": env.key}
    before = int(time.time())
    remaining = []
    for _ in range(3):
        response = limited.get("/api/v1/partner/me", headers=headers)
        assert response.status_code == 200
        assert response.headers["X-RateLimit-Limit"] == "3"
        remaining.append(int(response.headers["X-RateLimit-Remaining"]))
        reset = int(response.headers["X-RateLimit-Reset"])
        # A Unix time within the one-minute window that started with the first request.
        assert before <= reset <= int(time.time()) + 61
    assert remaining == [2, 1, 0]
    over = limited.get("/api/v1/partner/analytics", headers=headers)
    body = _error(over, 429, "TooManyRequests")
    assert 0 < int(over.headers["Retry-After"]) <= 60
    assert over.headers["X-RateLimit-Remaining"] == "0"
    assert body["details"] == {}
    # One window for every endpoint of the API, errors included.
    assert limited.get("/api/v1/partner/organizations/x", headers=headers).status_code == 429


def test_rate_limit_is_per_partner(env, limited, make_partner, api_key):
    other = api_key(make_partner("other"))
    for _ in range(3):
        limited.get("/api/v1/partner/me", headers={"X-Partner-API-Key": env.key})
    assert (
        limited.get("/api/v1/partner/me", headers={"X-Partner-API-Key": env.key}).status_code == 429
    )
    response = limited.get("/api/v1/partner/me", headers={"X-Partner-API-Key": other})
    assert response.status_code == 200
    assert response.headers["X-RateLimit-Remaining"] == "2"


def test_requests_without_a_valid_key_are_limited_by_address(env, limited):
    for guess in ("pk_live_a", "pk_live_b", None):
        headers = {"X-Partner-API-Key": guess} if guess else {}
        assert limited.get("/api/v1/partner/me", headers=headers).status_code == 401
    _error(
        limited.get("/api/v1/partner/me", headers={"X-Partner-API-Key": "pk_live_c"}),
        429,
        "TooManyRequests",
    )
    # The partner's own window is separate from the guesses made from this address.
    assert (
        limited.get("/api/v1/partner/me", headers={"X-Partner-API-Key": env.key}).status_code == 200
    )


def test_no_input_gives_a_500_or_html(env):
    """A sweep of odd inputs over every endpoint: the answer is always the JSON envelope."""
    odd_values = [
        "",
        "%00",
        "%ff",
        "🙂",
        "-1",
        "1e309",
        "NaN",
        "null",
        "[]",
        "9" * 40,
        "2025-10-01T00:00:00+99:00",
        "0000-00-00",
        "9999-12-31T23:59:59-23:59",
    ]
    params = [
        "startDate",
        "endDate",
        "page",
        "pageSize",
        "usage",
        "type",
        "organizationId",
        "granularity",
        "sort",
        "order",
        "status",
        "search",
        "externalId",
        "compare",
    ]
    for method, url in _operations(env.client):
        url = url.replace(url.split("/")[-1], env.org.id) if "organizations/" in url else url
        for value in odd_values:
            query = "&".join(f"{p}={value}" for p in params)
            response = env.call(
                method, f"{url}?{query}", data=value, content_type="application/json"
            )
            assert response.status_code < 500, (method, url, value)
            if response.status_code == 204:
                assert response.data == b""
            else:
                assert response.mimetype == "application/json", (method, url, value)


def test_retry_after_only_on_429(make_partner, api_key, client):
    partner = make_partner()
    ok = client.get("/api/v1/partner/me", headers={"X-Partner-API-Key": api_key(partner)})
    assert ok.status_code == 200
    assert "X-RateLimit-Limit" in ok.headers
    assert "Retry-After" not in ok.headers
