"""The audit log: its filters, pages, CSV and API, one partner's entries only, and the
entries written for API keys (page, API, CLI) and for ingestion (per call, per file)."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from app import audit, auth
from app.extensions import db
from app.models import ApiKey, AuditEntry, Partner, UsageEvent
from tests.views_support import PASSWORD, csrf_token, login

NOW = datetime(2025, 11, 20, 12, 0)  # a Thursday, noon UTC


def add_entry(partner: Partner, at: datetime, **fields: Any) -> AuditEntry:
    """Write an entry as audit.record would, at a chosen moment (for the filters)."""
    values = {
        "actor_kind": "user",
        "actor": "owner@alpha.test",
        "object_type": "organization",
        "action": "update",
        "object_label": "Client",
        "client_address": "192.0.2.1",
    }
    values.update(fields)
    entry = AuditEntry(partner_id=partner.id, occurred_at=at, **values)
    db.session.add(entry)
    db.session.commit()
    return entry


@pytest.fixture
def world(app_ctx, freeze, make_partner, make_org):
    """Alpha (New York time) with an owner, an admin and an analyst; Bravo with its owner.

    Alpha's hand-made entries (times in UTC; New York is UTC-4 until 2 Nov 2025, then -5):
      e1 2025-10-01T03:30Z (30 Sep 23:30 in New York)  user  owner@alpha.test  organization update
      e2 2025-10-01T04:30Z (1 Oct 00:30)   api_key "ci (pk_live_AbCd)" organization status
      e3 2025-10-15T12:00Z (15 Oct 08:00)              cli   cli               rollups rebuild
      e4 2025-11-03T04:59Z (2 Nov 23:59)               user  Admin@Alpha.test  allocation update
    Bravo: one entry of its own, "bravo-secret" in its label.
    """
    freeze(NOW)
    # The setup's own entries (organizations and members made) would only add noise: the
    # log holds the hand-made entries below.
    with audit.suppressed():
        alpha = make_partner("alpha", name="Alpha Agency", tz="America/New_York")
        bravo = make_partner("bravo", name="Bravo Agency")
        org = make_org(alpha, "Alpha Client", external_id="a-1")
        bravo_org = make_org(bravo, "Bravo Client", external_id="b-1")
        for partner, email, role in (
            (alpha, "owner@alpha.test", "owner"),
            (alpha, "admin@alpha.test", "admin"),
            (alpha, "analyst@alpha.test", "analyst"),
            (bravo, "owner@bravo.test", "owner"),
        ):
            auth.create_user(partner, email, PASSWORD, role=role)
    e1 = add_entry(
        alpha, datetime(2025, 10, 1, 3, 30), before={"name": "Old"}, after={"name": "New"}
    )
    e2 = add_entry(
        alpha,
        datetime(2025, 10, 1, 4, 30),
        actor_kind="api_key",
        actor="ci (pk_live_AbCd)",
        action="status",
        before={"status": "active"},
        after={"status": "suspended"},
    )
    e3 = add_entry(
        alpha,
        datetime(2025, 10, 15, 12),
        actor_kind="cli",
        actor="cli",
        object_type="rollups",
        action="rebuild",
        object_label=None,
        client_address=None,
    )
    e4 = add_entry(
        alpha,
        datetime(2025, 11, 3, 4, 59),
        actor="Admin@Alpha.test",
        object_type="allocation",
        before={"credits": 100},
        after={"credits": 1500},
    )
    add_entry(bravo, datetime(2025, 10, 1, 12), object_label="bravo-secret", actor="x@bravo.test")
    return {
        "alpha": alpha,
        "bravo": bravo,
        "org": org,
        "bravo_org": bravo_org,
        "ids": {"e1": e1.id, "e2": e2.id, "e3": e3.id, "e4": e4.id},
    }


def ids_of(world: dict[str, Any], entries: list[dict[str, Any]]) -> list[str]:
    names = {v: k for k, v in world["ids"].items()}
    return [names.get(e["id"], f"other:{e['objectType']}:{e['action']}") for e in entries]


def api(client, key: str, query: str = "") -> Any:
    return client.get(f"/api/v1/partner/audit-log{query}", headers={"X-Partner-API-Key": key})


@pytest.fixture
def admin_key(world):
    _key, plain = auth.create_api_key(world["alpha"], "auditor", ["admin"])
    return plain


# --- filters, pages ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # Newest first; the key made by the fixture is the newest entry (object api_key).
        ("?objectType=organization", ["e2", "e1"]),
        ("?objectType=rollups", ["e3"]),
        ("?action=status", ["e2"]),
        # Part of who, any case: "ADMIN@" finds Admin@Alpha.test only.
        ("?actor=ADMIN@", ["e4"]),
        ("?actor=pk_live_abcd", ["e2"]),
        # 1 Oct in New York is 04:00Z 1 Oct .. 04:00Z 2 Oct: e1 (03:30Z) is 30 Sep there.
        ("?startDate=2025-10-01&endDate=2025-10-01", ["e2"]),
        ("?startDate=2025-09-30&endDate=2025-09-30", ["e1"]),
        # 2 Nov in New York ends at 05:00Z 3 Nov (EST): e4 at 04:59Z is its last minute.
        ("?startDate=2025-11-02&endDate=2025-11-02", ["e4"]),
        ("?endDate=2025-10-14", ["e2", "e1"]),
        ("?startDate=2025-10-15&objectType=allocation", ["e4"]),
        ("?objectType=organization&action=update&actor=owner", ["e1"]),
        ("?actor=nobody", []),
        # Empty values mean no filter.
        ("?actor=&objectType=&action=&startDate=&endDate=", ["e4", "e3", "e2", "e1"]),
    ],
)
def test_the_api_filters_the_log(client, world, admin_key, query, expected):
    answer = api(client, admin_key, query)
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    got = ids_of(world, body["entries"])
    # The admin key of the fixture was made last: without a filter that leaves it out, its
    # entry comes first.
    if got[:1] == ["other:api_key:create"]:
        got = got[1:]
    assert got == expected
    assert body["total"] == len(body["entries"])


def test_an_entry_reads_as_written(client, world, admin_key):
    body = api(client, admin_key, "?objectType=allocation").get_json()
    assert body["entries"] == [
        {
            "id": world["ids"]["e4"],
            "occurredAt": "2025-11-03T04:59:00Z",
            "actorKind": "user",
            "actor": "Admin@Alpha.test",
            "objectType": "allocation",
            "objectId": None,
            "objectLabel": "Client",
            "action": "update",
            "before": {"credits": 100},
            "after": {"credits": 1500},
            "clientAddress": "192.0.2.1",
        }
    ]


def test_pages_newest_first(client, world, admin_key):
    alpha = world["alpha"]
    for n in range(25):  # rollups entries one minute apart: n=24 is the newest
        add_entry(
            alpha,
            datetime(2025, 11, 10, 12, n),
            object_type="rollups",
            action="rebuild",
            object_label=f"run {n}",
        )
    # With e3, 26 rollups entries: pages of 10 hold 10, 10 and 6.
    third = api(client, admin_key, "?objectType=rollups&pageSize=10&page=3").get_json()
    assert (third["total"], third["page"], third["pageSize"]) == (26, 3, 10)
    assert [e["objectLabel"] for e in third["entries"]] == [
        f"run {n}" for n in range(4, -1, -1)
    ] + [None]
    first = api(client, admin_key, "?objectType=rollups&pageSize=10").get_json()
    assert [e["objectLabel"] for e in first["entries"]] == [f"run {n}" for n in range(24, 14, -1)]
    beyond = api(client, admin_key, "?objectType=rollups&pageSize=10&page=4").get_json()
    assert (beyond["entries"], beyond["total"]) == ([], 26)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?objectType=organisation", "objectType"),
        ("?action=Create", "action"),
        ("?action=drop%20table", "action"),
        ("?actor=" + "x" * 301, "actor"),
        ("?startDate=2025-02-30", "startDate"),
        ("?startDate=yesterday", "startDate"),
        ("?endDate=3000-01-01", "endDate"),
        ("?startDate=2025-10-05&endDate=2025-10-01", "endDate"),
        ("?pageSize=101", "pageSize"),
        ("?page=0", "page"),
    ],
)
def test_the_api_answers_400_naming_the_field(client, world, admin_key, query, field):
    answer = api(client, admin_key, query)
    assert answer.status_code == 400
    body = answer.get_json()
    assert (body["code"], body["details"]["field"]) == ("BadRequest", field)


def test_the_api_needs_the_admin_scope(client, world):
    for scopes in (["read"], ["write"], ["read", "write"]):
        _key, plain = auth.create_api_key(world["alpha"], "k", scopes)
        answer = api(client, plain)
        assert answer.status_code == 403
        assert answer.get_json()["details"]["requiredScope"] == "admin"


def test_entries_are_never_editable(app):
    # No route but GET reads the log, on the pages or the API.
    for rule in app.url_map.iter_rules():
        if "audit" in rule.rule:
            assert rule.methods - {"HEAD", "OPTIONS"} == {"GET"}, rule.rule


# --- one partner's entries only -----------------------------------------------------------


def test_another_partners_entries_never_appear(client, world, admin_key):
    for query in ("", "?actor=bravo", "?startDate=2025-10-01&endDate=2025-10-01", "?pageSize=100"):
        text = api(client, admin_key, query).get_data(as_text=True)
        assert "bravo" not in text.lower(), query
    login(client, "owner@alpha.test")
    for path in (
        "/audit-log",
        "/audit-log?actor=bravo",
        "/audit-log.csv",
        "/audit-log.csv?actor=x",
    ):
        answer = client.get(path)
        assert answer.status_code == 200, path
        text = answer.get_data(as_text=True)
        assert "bravo-secret" not in text and "x@bravo.test" not in text, path
    # Bravo's own key sees only Bravo's entries.
    _key, bravo_key = auth.create_api_key(world["bravo"], "b", ["admin"])
    body = api(client, bravo_key).get_json()
    labels = {(e["objectType"], e["objectLabel"]) for e in body["entries"]}
    assert labels == {("organization", "bravo-secret"), ("api_key", "b (" + bravo_key[:12] + ")")}


# --- the page and its CSV -------------------------------------------------------------------


def test_the_page_shows_entries_in_the_partners_time_with_the_change(client, world):
    login(client, "owner@alpha.test")
    page = client.get("/audit-log?objectType=allocation").get_data(as_text=True)
    assert f'data-entry-id="{world["ids"]["e4"]}"' in page
    # 04:59Z on 3 Nov is 23:59 on 2 Nov in New York (EST, UTC-5).
    assert "2 Nov 2025 at 23:59 EST (America/New_York)" in page
    assert "Admin@Alpha.test" in page and "dashboard user" in page
    assert "<del>100</del> → <ins>1,500</ins>" in page
    assert "192.0.2.1" in page
    assert f'data-entry-id="{world["ids"]["e1"]}"' not in page


def test_moments_inside_a_change_are_written_in_words_in_the_partners_time(client, world):
    add_entry(
        world["alpha"],
        datetime(2025, 11, 20, 9),
        object_type="invitation",
        action="invite",
        before=None,
        after={"role": "admin", "expiresAt": "2025-11-27T12:00:00Z"},
    )
    login(client, "owner@alpha.test")
    page = client.get("/audit-log?objectType=invitation").get_data(as_text=True)
    # 12:00Z on 27 Nov is 07:00 in New York (EST, UTC-5); the stored ISO text is not shown.
    assert "<ins>27 Nov 2025 at 07:00 EST (America/New_York)</ins>" in page
    assert "2025-11-27T12:00:00Z" not in page


def test_the_page_puts_a_message_beside_each_bad_filter(client, world):
    login(client, "owner@alpha.test")
    answer = client.get("/audit-log?startDate=someday&objectType=planet&action=Drop!")
    assert answer.status_code == 200
    page = answer.get_data(as_text=True)
    assert 'data-error-for="startDate">“someday” is not a date' in page
    assert 'data-error-for="objectType">objectType must be one of' in page
    assert 'data-error-for="action">action must be a lower-case word' in page
    # The filters in error are left out: every entry is listed.
    for name in ("e1", "e2", "e3", "e4"):
        assert f'data-entry-id="{world["ids"][name]}"' in page
    order = client.get("/audit-log?startDate=2025-10-05&endDate=2025-10-01").get_data(as_text=True)
    assert 'data-error-for="endDate">The end date is before the start date (5 Oct 2025)' in order


def test_the_page_pages(client, world):
    alpha = world["alpha"]
    for n in range(22):
        add_entry(alpha, datetime(2025, 11, 10, 12, n), object_type="rollups", action="rebuild")
    login(client, "owner@alpha.test")
    # 23 rollups entries in pages of 20: the second page holds the 3 oldest, e3 last.
    page = client.get("/audit-log?objectType=rollups&pageSize=20&page=2").get_data(as_text=True)
    assert page.count("data-entry-id=") == 3
    assert "Showing 21–23 of 23" in page
    assert page.rindex("data-entry-id=") == page.index(f'data-entry-id="{world["ids"]["e3"]}"')
    assert 'href="/audit-log?objectType=rollups&amp;pageSize=20&amp;page=1"' in page


def test_the_csv_holds_every_filtered_entry(client, world):
    alpha = world["alpha"]
    add_entry(
        alpha,
        datetime(2025, 10, 20, 9),
        actor="=HYPERLINK(1)",
        action="create",
        object_label="+cmd",
        after={"name": "New, Inc.", "tier": "trial"},
    )
    login(client, "owner@alpha.test")
    answer = client.get("/audit-log.csv?startDate=2025-10-01&endDate=2025-10-31")
    assert answer.status_code == 200
    assert answer.mimetype == "text/csv"
    assert answer.headers["Content-Disposition"] == (
        'attachment; filename="alpha-audit-log-2025-10-01_2025-10-31.csv"'
    )
    rows = list(csv.reader(io.StringIO(answer.get_data(as_text=True))))
    assert rows[0] == [
        "occurredAt",
        "actorKind",
        "actor",
        "objectType",
        "objectId",
        "objectLabel",
        "action",
        "before",
        "after",
        "clientAddress",
    ]
    # 1..31 Oct in New York: the new entry, e3, e2 (e1 is 30 Sep there), newest first.
    assert [r[0] for r in rows[1:]] == [
        "2025-10-20T09:00:00Z",
        "2025-10-15T12:00:00Z",
        "2025-10-01T04:30:00Z",
    ]
    first = rows[1]
    # Formulas are neutralised; before and after are JSON.
    assert first[2] == "'=HYPERLINK(1)" and first[5] == "'+cmd"
    assert (first[7], json.loads(first[8])) == ("", {"name": "New, Inc.", "tier": "trial"})
    assert rows[3][7:] == ['{"status":"active"}', '{"status":"suspended"}', "192.0.2.1"]
    # With no dates, the file is named from the oldest entry's day to today (New York).
    whole = client.get("/audit-log.csv?objectType=rollups")
    assert (
        'filename="alpha-audit-log-2025-09-30_2025-11-20.csv"'
        in whole.headers["Content-Disposition"]
    )
    assert len(list(csv.reader(io.StringIO(whole.get_data(as_text=True))))) == 2


# --- roles ------------------------------------------------------------------------------


def test_an_analyst_is_refused_the_log(client, world):
    login(client, "analyst@alpha.test")
    for path in ("/audit-log", "/audit-log.csv"):
        answer = client.get(path)
        assert answer.status_code == 403, path
        assert "Client" not in answer.get_data(as_text=True)
    # Nor through the JSON API with the session.
    answer = client.get("/api/v1/partner/audit-log")
    assert (answer.status_code, answer.get_json()["code"]) == (403, "Forbidden")
    # Nor is the Manage tab shown to an analyst.
    assert 'data-tab="audit"' not in client.get("/").get_data(as_text=True)


@pytest.mark.parametrize("email", ["owner@alpha.test", "admin@alpha.test"])
def test_owners_and_admins_read_the_log(client, world, email):
    login(client, email)
    page = client.get("/audit-log").get_data(as_text=True)
    assert 'data-tab="audit"' in page and 'aria-current="page">Audit log' in page
    assert client.get("/api/v1/partner/audit-log?objectType=rollups").get_json()["total"] == 1


# --- entries of API keys, by each path ----------------------------------------------------


def key_entries(partner: Partner) -> list[AuditEntry]:
    return list(
        db.session.execute(
            select(AuditEntry)
            .where(AuditEntry.partner_id == partner.id, AuditEntry.object_type == "api_key")
            .order_by(AuditEntry.id)
        ).scalars()
    )


def assert_no_secret(entry: AuditEntry, plain: str) -> None:
    digest = auth.key_digest(plain)
    text = json.dumps([entry.object_label, entry.before, entry.after, entry.object_id])
    assert plain not in text and digest not in text
    assert plain[12:20] not in text  # not even a part past the prefix


def test_keys_made_and_revoked_on_the_page_are_audited(client, world):
    alpha = world["alpha"]
    login(client, "owner@alpha.test")
    token = csrf_token(client.get("/api-keys").get_data(as_text=True))
    made = client.post(
        "/api-keys", data={"name": "Exports", "scopes": ["read"], "csrf_token": token}
    )
    assert made.status_code == 200
    key = db.session.execute(select(ApiKey).where(ApiKey.name == "Exports")).scalar_one()
    plain = made.get_data(as_text=True).split("data-plain-key", 1)[0].rsplit('value="', 1)[1]
    plain = plain.split('"', 1)[0]
    assert plain.startswith("pk_live_")
    assert client.post(f"/api-keys/{key.id}/revoke", data={"csrf_token": token}).status_code == 302
    create, revoke = key_entries(alpha)
    label = f"Exports ({key.prefix})"
    assert (create.actor_kind, create.actor, create.action, create.object_label) == (
        "user",
        "owner@alpha.test",
        "create",
        label,
    )
    assert create.object_id == key.id and create.client_address == "127.0.0.1"
    assert create.before is None
    assert create.after == {
        "name": "Exports",
        "prefix": key.prefix,
        "scopes": ["read"],
        "expiresAt": None,
    }
    assert (revoke.actor, revoke.action, revoke.object_label) == (
        "owner@alpha.test",
        "revoke",
        label,
    )
    assert (revoke.before, revoke.after) == (
        {"status": "active"},
        {"status": "revoked", "scopes": ["read"]},
    )
    for entry in (create, revoke):
        assert_no_secret(entry, plain)


def test_keys_made_and_revoked_through_the_api_are_audited(client, world):
    alpha = world["alpha"]
    _key, admin = auth.create_api_key(alpha, "robot", ["admin"])
    headers = {"X-Partner-API-Key": admin}
    made = client.post(
        "/api/v1/partner/api-keys", headers=headers, json={"name": "ro", "scopes": ["read"]}
    ).get_json()
    assert client.delete(
        f"/api/v1/partner/api-keys/{made['apiKey']['id']}", headers=headers
    ).status_code == (204)
    entries = key_entries(alpha)
    # The fixture's key (made from Python: "cli"), then the API's two.
    assert [(e.actor_kind, e.actor, e.action) for e in entries] == [
        ("cli", "cli", "create"),
        ("api_key", f"robot ({admin[:12]})", "create"),
        ("api_key", f"robot ({admin[:12]})", "revoke"),
    ]
    assert entries[1].after["scopes"] == ["read"]
    assert entries[1].object_label == f"ro ({made['plainKey'][:12]})"
    for entry in entries[1:]:
        assert_no_secret(entry, made["plainKey"])
    # Revoking a revoked key changes nothing and records nothing.
    again = client.delete(f"/api/v1/partner/api-keys/{made['apiKey']['id']}", headers=headers)
    assert again.status_code == 204
    assert len(key_entries(alpha)) == 3


def test_keys_made_by_the_cli_are_audited(runner, world):
    result = runner.invoke(
        args=["create-api-key", "--partner", "alpha", "--name", "nightly", "--scopes", ""]
    )
    assert result.exit_code == 0, result.output
    plain = result.output.strip()
    (entry,) = key_entries(world["alpha"])
    assert (entry.actor_kind, entry.actor, entry.client_address) == ("cli", "cli", None)
    assert entry.after["scopes"] == "full access"
    assert_no_secret(entry, plain)


def test_a_key_and_its_entry_commit_together(world, monkeypatch):
    def fail(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("the audit log is unavailable")

    monkeypatch.setattr(audit, "record", fail)
    with pytest.raises(RuntimeError):
        auth.create_api_key(world["alpha"], "doomed", ["read"])
    db.session.rollback()
    assert db.session.execute(select(ApiKey).where(ApiKey.name == "doomed")).first() is None


# --- entries of ingestion: one per call, one per file -----------------------------------


def event(event_id: str, org: Any, at: str = "2025-11-19T10:00:00Z") -> dict[str, Any]:
    return {
        "eventId": event_id,
        "organizationId": org.id,
        "type": "identification",
        "occurredAt": at,
    }


def events_entries(partner: Partner) -> list[AuditEntry]:
    return list(
        db.session.execute(
            select(AuditEntry)
            .where(AuditEntry.partner_id == partner.id, AuditEntry.object_type == "events")
            .order_by(AuditEntry.id)
        ).scalars()
    )


def test_each_api_call_of_events_gets_one_entry_with_its_counts(client, world):
    alpha, org = world["alpha"], world["org"]
    _key, plain = auth.create_api_key(alpha, "ingest", ["write"])
    headers = {"X-Partner-API-Key": plain}
    first = [event(f"e{i}", org) for i in range(5)] + [event("e0", org)]  # e0 twice
    first.append({"eventId": "bad", "organizationId": org.id, "type": "identification"})
    assert (
        client.post("/api/v1/partner/events", headers=headers, json={"events": first}).json[
            "accepted"
        ]
        == 5
    )
    # Again: all stored already, plus one unknown organization.
    again = [event("e1", org), event("e2", org), {**event("x", org), "organizationId": "nope"}]
    client.post("/api/v1/partner/events", headers=headers, json={"events": again})
    # Nothing valid at all: the call still gets its entry.
    client.post("/api/v1/partner/events", headers=headers, json={"events": [{"eventId": "y"}]})
    entries = events_entries(alpha)
    assert [(e.actor_kind, e.actor, e.action, e.object_label) for e in entries] == [
        ("api_key", f"ingest ({plain[:12]})", "ingest", "API call")
    ] * 3
    assert [e.after for e in entries] == [
        {"received": 7, "accepted": 5, "duplicates": 1, "rejected": 1},
        {"received": 3, "accepted": 0, "duplicates": 2, "rejected": 1},
        {"received": 1, "accepted": 0, "duplicates": 0, "rejected": 1},
    ]
    assert all(e.before is None and e.client_address == "127.0.0.1" for e in entries)


def test_a_call_and_its_entry_commit_together(client, world, monkeypatch):
    alpha, org = world["alpha"], world["org"]
    _key, plain = auth.create_api_key(alpha, "ingest", ["write"])

    def fail(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("the audit log is unavailable")

    monkeypatch.setattr(audit, "record_ingest", fail)
    client.application.config["PROPAGATE_EXCEPTIONS"] = False
    answer = client.post(
        "/api/v1/partner/events",
        headers={"X-Partner-API-Key": plain},
        json={"events": [event("lost", org)]},
    )
    assert answer.status_code == 500
    db.session.rollback()
    assert db.session.execute(select(func.count()).select_from(UsageEvent)).scalar() == 0
    assert events_entries(alpha) == []


def test_each_imported_file_gets_one_entry(runner, world, tmp_path):
    alpha, org = world["alpha"], world["org"]
    lines = [event(f"f{i}", org) for i in range(7)] + [event("f0", org), {"eventId": "z"}]
    path = tmp_path / "october.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    # Batches of 3 lines: three transactions of events, one entry.
    result = runner.invoke(
        args=["ingest", str(path), "--partner", "alpha", "--batch-size", "3", "--no-pipeline"]
    )
    assert result.exit_code == 1  # one line was rejected
    (entry,) = events_entries(alpha)
    assert (entry.actor_kind, entry.actor, entry.action, entry.object_label) == (
        "cli",
        "cli",
        "import",
        "october.jsonl",
    )
    assert entry.after == {
        "file": str(path),
        "format": "jsonl",
        "lines": 9,
        "accepted": 7,
        "duplicates": 1,
        "rejected": 1,
        "complete": True,
    }
    # The same file again, read by a second process: one more entry, all duplicates.
    again = runner.invoke(args=["ingest", str(path), "--partner", "alpha", "--pipeline"])
    assert again.exit_code == 1
    assert [e.after["duplicates"] for e in events_entries(alpha)] == [1, 8]
    assert db.session.execute(select(func.count()).select_from(UsageEvent)).scalar() == 7


def test_an_import_that_stops_records_what_it_stored(runner, world, tmp_path):
    alpha, org = world["alpha"], world["org"]
    path = tmp_path / "broken.jsonl"
    good = "".join(json.dumps(event(f"s{i:04d}", org)) + "\n" for i in range(400))
    # About 40 kB of good lines, then a byte that is not UTF-8: the import stops there,
    # after the batches read before it were stored.
    path.write_bytes(good.encode() + b'{"eventId": "\xff"}\n')
    result = runner.invoke(
        args=["ingest", str(path), "--partner", "alpha", "--batch-size", "10", "--no-pipeline"]
    )
    assert result.exit_code == 1 and "is not UTF-8 text" in result.output
    stored = db.session.execute(select(func.count()).select_from(UsageEvent)).scalar()
    assert 0 < stored < 400
    (entry,) = events_entries(alpha)
    assert entry.after["complete"] is False
    assert (entry.after["accepted"], entry.after["lines"]) == (stored, stored)
    assert entry.after["stoppedAtLine"] == stored + 1
