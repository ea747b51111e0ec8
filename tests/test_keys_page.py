"""The API keys page: the table, making a key (shown once), revoking after a confirmation,
and what each role may do there."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from app import auth
from app.extensions import db
from app.models import ApiKey
from tests.views_support import PASSWORD, csrf_token, login

NOW = datetime(2025, 11, 20, 12, 0)


@pytest.fixture
def world(app_ctx, freeze, make_partner):
    """Alpha (UTC) with an owner, an admin and an analyst, and four keys made an hour apart
    from 08:00: "reader" (read, used 5 minutes ago), "robot" (admin), "everything" (no
    scopes: full access), "old" (read, expired an hour ago). Bravo with one key of its own."""
    freeze(NOW)
    alpha = make_partner("alpha", name="Alpha Agency")
    bravo = make_partner("bravo", name="Bravo Agency")
    for email, role in (
        ("owner@alpha.test", "owner"),
        ("admin@alpha.test", "admin"),
        ("analyst@alpha.test", "analyst"),
    ):
        auth.create_user(alpha, email, PASSWORD, role=role)
    keys = {}
    for hour, (name, scopes) in enumerate(
        (("reader", ["read"]), ("robot", ["admin"]), ("everything", None), ("old", ["read"])),
        start=8,
    ):
        freeze(datetime(2025, 11, 20, hour))
        key, _plain = auth.create_api_key(alpha, name, scopes)
        keys[name] = key.id
    freeze(NOW)
    reader = db.session.get(ApiKey, keys["reader"])
    reader.last_used_at = NOW - timedelta(minutes=5)
    db.session.get(ApiKey, keys["old"]).expires_at = NOW - timedelta(hours=1)
    bravo_key, _plain = auth.create_api_key(bravo, "bravo-secret-key", ["read"])
    db.session.commit()
    return {"alpha": alpha, "keys": keys, "bravo_key": bravo_key.id}


def key_named(name: str) -> ApiKey:
    db.session.expire_all()
    return db.session.execute(select(ApiKey).where(ApiKey.name == name)).scalar_one()


def key_count() -> int:
    return int(db.session.execute(select(func.count()).select_from(ApiKey)).scalar() or 0)


def row_of(page: str, key_id: str) -> str:
    start = page.index(f'data-key-id="{key_id}"')
    return page[start : page.index("</tr>", start)]


def make(client, token: str, name: str, scopes: list[str]) -> Any:
    return client.post("/api-keys", data={"name": name, "scopes": scopes, "csrf_token": token})


def test_the_table_lists_the_partners_keys(client, world):
    login(client, "owner@alpha.test")
    page = client.get("/api-keys").get_data(as_text=True)
    keys = world["keys"]
    reader = row_of(page, keys["reader"])
    assert 'data-status="active"' in reader
    assert f"<code>{key_named('reader').prefix}…</code>" in reader
    assert 'data-scopes="read"' in reader and "5 minutes ago" in reader
    assert "20 Nov 2025 at 08:00 (UTC)" in reader  # created
    assert "full access" in row_of(page, keys["everything"])
    assert "never" in row_of(page, keys["robot"])
    old = row_of(page, keys["old"])
    assert 'data-status="expired"' in old and "20 Nov 2025 at 11:00 (UTC)" in old
    # Newest first; another partner's key is not there.
    names = re.findall(r'<td class="name">([^<]+)</td>', page)
    assert names == ["old", "everything", "robot", "reader"]
    assert "bravo-secret-key" not in page
    # No key's plain text or digest is on the page.
    for key_id in keys.values():
        assert db.session.get(ApiKey, key_id).key_hash not in page
    assert "data-plain-key" not in page


def test_a_new_key_is_shown_once_and_works(client, world):
    login(client, "owner@alpha.test")
    token = csrf_token(client.get("/api-keys").get_data(as_text=True))
    answer = make(client, token, "  Billing export ", ["read", "write"])
    assert answer.status_code == 200
    page = answer.get_data(as_text=True)
    plain = re.search(r'value="(pk_live_[^"]+)"[^>]*data-plain-key', page).group(1)
    key = key_named("Billing export")
    assert key.scope_list == ["read", "write"]
    assert key.key_hash == auth.key_digest(plain) and plain.startswith(key.prefix)
    assert "Copy it now: it is shown only this once." in page
    assert 'data-copy="new-key-value"' in page and "js/copy.js" in page
    assert answer.headers["Cache-Control"] == "no-store"
    # It works against the API, with its scopes.
    me = client.get("/api/v1/partner/me", headers={"X-Partner-API-Key": plain})
    assert me.status_code == 200 and me.get_json()["apiKey"]["name"] == "Billing export"
    # Never again: the page that follows shows the key in the table, not its text.
    again = client.get("/api-keys").get_data(as_text=True)
    assert plain not in again and plain[12:] not in again
    assert f'data-key-id="{key.id}"' in again


@pytest.mark.parametrize(
    ("name", "scopes", "field", "message"),
    [
        ("", ["read"], "name", "Give the key a name"),
        ("ok", [], "scopes", "Choose at least one scope"),
        ("ok", ["read", "root"], "scopes", "unknown scope 'root'"),
        ("x" * 201, ["read"], "name", "name"),
    ],
)
def test_a_bad_key_form_shows_the_message_beside_the_field(
    client, world, name, scopes, field, message
):
    login(client, "owner@alpha.test")
    token = csrf_token(client.get("/api-keys").get_data(as_text=True))
    before = key_count()
    answer = make(client, token, name, scopes)
    assert answer.status_code == 400
    page = answer.get_data(as_text=True)
    error = re.search(rf'data-error-for="{field}">([^<]*)<', page)
    assert error and message in html.unescape(error.group(1))
    assert key_count() == before
    assert "data-plain-key" not in page


def test_the_forms_need_their_csrf_token(client, world):
    login(client, "owner@alpha.test")
    before = key_count()
    assert client.post("/api-keys", data={"name": "x", "scopes": ["read"]}).status_code == 400
    reader = world["keys"]["reader"]
    assert client.post(f"/api-keys/{reader}/revoke").status_code == 400
    assert key_count() == before and key_named("reader").revoked_at is None


def test_revoking_asks_first_then_the_key_answers_401(client, world):
    alpha = world["alpha"]
    _key, plain = auth.create_api_key(alpha, "to-revoke", ["read"])
    key_id = key_named("to-revoke").id
    assert client.get("/api/v1/partner/me", headers={"X-Partner-API-Key": plain}).status_code == 200
    login(client, "owner@alpha.test")
    page = client.get("/api-keys").get_data(as_text=True)
    assert f'href="/api-keys?revoke={key_id}#revoke"' in page
    confirm = client.get(f"/api-keys?revoke={key_id}").get_data(as_text=True)
    assert f'data-confirm-revoke="{key_id}"' in confirm
    assert "Revoke “to-revoke”" in confirm and "401 Unauthorized" in confirm
    assert key_named("to-revoke").revoked_at is None  # asking changes nothing
    token = csrf_token(confirm)
    done = client.post(f"/api-keys/{key_id}/revoke", data={"csrf_token": token})
    assert (done.status_code, done.headers["Location"]) == (302, "/api-keys#keys")
    assert key_named("to-revoke").revoked_at == NOW
    after = client.get("/api-keys").get_data(as_text=True)
    assert "revoked: it answers 401 from now on" in after
    assert 'data-status="revoked"' in row_of(after, key_id)
    refused = client.get("/api/v1/partner/me", headers={"X-Partner-API-Key": plain})
    assert refused.status_code == 401


def test_another_partners_key_is_not_found(client, world):
    login(client, "owner@alpha.test")
    token = csrf_token(client.get("/api-keys").get_data(as_text=True))
    other = world["bravo_key"]
    assert client.get(f"/api-keys?revoke={other}").status_code == 404
    answer = client.post(f"/api-keys/{other}/revoke", data={"csrf_token": token})
    assert answer.status_code == 404
    assert "bravo-secret-key" not in answer.get_data(as_text=True)
    db.session.expire_all()
    assert key_named("bravo-secret-key").revoked_at is None


def test_an_admin_makes_keys_up_to_write_and_revokes_only_those(client, world):
    keys = world["keys"]
    login(client, "admin@alpha.test")
    page = client.get("/api-keys").get_data(as_text=True)
    assert re.search(r'value="admin" id="scope-admin"\s+disabled', page)
    assert "only an owner gives the admin scope" in page
    # The admin and full-access keys have no Revoke link for an admin.
    assert "data-revoke" not in row_of(page, keys["robot"])
    assert "data-revoke" not in row_of(page, keys["everything"])
    assert "data-revoke" in row_of(page, keys["reader"])
    token = csrf_token(page)
    before = key_count()
    refused = make(client, token, "sneaky", ["read", "admin"])
    assert refused.status_code == 403 and key_count() == before
    assert make(client, token, "writer", ["read", "write"]).status_code == 200
    assert key_named("writer").scope_list == ["read", "write"]
    for name in ("robot", "everything"):
        assert client.get(f"/api-keys?revoke={keys[name]}").status_code == 403
        posted = client.post(f"/api-keys/{keys[name]}/revoke", data={"csrf_token": token})
        assert posted.status_code == 403
        assert key_named(name).revoked_at is None
    ok = client.post(f"/api-keys/{keys['reader']}/revoke", data={"csrf_token": token})
    assert ok.status_code == 302 and key_named("reader").revoked_at == NOW


def test_an_owner_makes_admin_keys(client, world):
    login(client, "owner@alpha.test")
    page = client.get("/api-keys").get_data(as_text=True)
    assert not re.search(r'id="scope-admin"\s+disabled', page)
    assert make(client, csrf_token(page), "ops", ["admin"]).status_code == 200
    assert key_named("ops").scope_list == ["admin"]
    token = csrf_token(page)
    robot = world["keys"]["robot"]
    assert client.post(f"/api-keys/{robot}/revoke", data={"csrf_token": token}).status_code == 302


def test_an_analyst_is_refused_every_key_action(client, world):
    login(client, "analyst@alpha.test")
    token = csrf_token(client.get("/").get_data(as_text=True))
    before = key_count()
    reader = world["keys"]["reader"]
    for method, path in (
        ("GET", "/api-keys"),
        ("GET", f"/api-keys?revoke={reader}"),
        ("POST", "/api-keys"),
        ("POST", f"/api-keys/{reader}/revoke"),
    ):
        answer = client.open(
            path, method=method, data={"name": "x", "scopes": ["read"], "csrf_token": token}
        )
        assert answer.status_code == 403, (method, path)
        assert "pk_live_" not in answer.get_data(as_text=True)
    assert key_count() == before and key_named("reader").revoked_at is None
    assert 'data-tab="keys"' not in client.get("/").get_data(as_text=True)
