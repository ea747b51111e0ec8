"""Alert rules: the API, firing once per crossing (also under concurrent ingests), the
resolution and the firing again, the time-based rules of the sweep, webhooks and e-mail.

Expected values are worked out by hand in the comments."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from app import accounts, alerts, billing, mail, outbox
from app.extensions import db
from app.ingest import ingest_batch
from app.models import AlertEvent, AlertState, AuditEntry, MailMessage, WebhookMessage
from app.timeutil import set_frozen_now
from tests.views_support import csrf_token, login

NOW = datetime(2025, 10, 20, 12)
PASSWORD = "correct horse battery"
API = "/api/v1/partner/alerts"


def ident(event_id: str, org, quantity: int, day: int = 10, month: int = 10) -> dict:
    return {
        "eventId": event_id,
        "organizationId": org.id,
        "type": "identification",
        "quantity": quantity,
        "occurredAt": f"2025-{month:02d}-{day:02d}T10:00:00Z",
    }


@pytest.fixture
def world(app, freeze, make_partner, make_org, make_user, api_key):
    freeze(NOW)
    alpha = make_partner("alpha", pool=1000, name="Alpha Agency")
    bravo = make_partner("bravo", pool=1000, name="Bravo Agency")
    org = make_org(alpha, "Org One", initial_credits=200)
    other = make_org(alpha, "Org Two", initial_credits=100)
    owner = make_user(alpha, "owner@alpha.test", PASSWORD)
    # The owner chose every alert kind by e-mail.
    mail.save_preferences(owner, list(alerts.EVENT_TYPES), monthly_report=False)
    # A webhook subscribed to every alert event.
    outbox_types = list(alerts.EVENT_TYPES.values())
    from app import webhooks

    webhooks.configure(alpha, "http://127.0.0.1:9/hooks", True, outbox_types)
    db.session.commit()
    return {
        "alpha": alpha,
        "bravo": bravo,
        "org": org,
        "other": other,
        "owner": owner,
        "key": api_key(alpha, ["admin"]),
        "write_key": api_key(alpha, ["write"]),
        "bravo_key": api_key(bravo, ["admin"]),
    }


@pytest.fixture(autouse=True)
def no_deliveries(monkeypatch):
    """The worker's immediate mode would send at once: keep the outboxes' rows to count."""
    from app import worker

    monkeypatch.setattr(worker, "schedule_delivery", lambda *a, **k: None)
    monkeypatch.setattr(worker, "schedule_mail", lambda *a, **k: None)


def call(client, method, path, key, body=None):
    return client.open(path, method=method, json=body, headers={"X-Partner-API-Key": key})


def rule(partner, kind, threshold=0):
    return alerts.create_rule(partner, kind, threshold)


def fired(kind: str | None = None) -> list[AlertEvent]:
    db.session.rollback()
    q = select(AlertEvent).where(AlertEvent.action == "fired").order_by(AlertEvent.id)
    if kind:
        q = q.where(AlertEvent.kind == kind)
    return list(db.session.execute(q).scalars())


def messages(event_type: str) -> list[dict]:
    db.session.rollback()
    rows = db.session.execute(
        select(WebhookMessage).where(WebhookMessage.event_type == event_type)
    ).scalars()
    return [json.loads(m.body) for m in rows]


def mails(kind: str = "alert") -> list[MailMessage]:
    db.session.rollback()
    return list(db.session.execute(select(MailMessage).where(MailMessage.kind == kind)).scalars())


# --- the API ---------------------------------------------------------------------------


def test_the_api_creates_lists_changes_and_deletes_rules(client, world):
    key = world["key"]
    made = call(client, "POST", API, key, {"kind": "pool_usage", "threshold": 80})
    assert made.status_code == 201, made.get_json()
    body = made.get_json()
    assert body["kind"] == "pool_usage" and body["threshold"] == 80 and body["enabled"] is True
    assert body["eventType"] == "billing.pool.threshold"
    listed = call(client, "GET", API, key).get_json()["alerts"]
    assert [r["id"] for r in listed] == [body["id"]]
    changed = call(
        client, "PUT", f"{API}/{body['id']}", key, {"kind": "pool_usage", "threshold": 90}
    )
    assert changed.status_code == 200 and changed.get_json()["threshold"] == 90
    assert call(client, "DELETE", f"{API}/{body['id']}", key).status_code == 204
    assert call(client, "GET", API, key).get_json()["alerts"] == []
    # Every change is audited as an "alert".
    db.session.rollback()
    actions = db.session.execute(
        select(AuditEntry.action).where(AuditEntry.object_type == "alert").order_by(AuditEntry.id)
    ).scalars()
    assert list(actions) == ["created", "updated", "deleted"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "nope", "threshold": 5}, "kind"),
        ({"kind": "pool_usage"}, "threshold"),
        ({"kind": "pool_usage", "threshold": 0}, "threshold"),
        ({"kind": "pool_usage", "threshold": 1001}, "threshold"),
        ({"kind": "stale_data", "threshold": "5"}, "threshold"),
        ({"kind": "inactive_org", "threshold": 366}, "threshold"),
    ],
)
def test_bad_rules_answer_400_naming_the_field(client, world, body, field):
    answer = call(client, "POST", API, world["key"], body)
    assert answer.status_code == 400
    assert field in json.dumps(answer.get_json())


def test_the_api_needs_admin_and_hides_other_partners_rules(client, world):
    theirs = rule(world["bravo"], "pool_usage", 50)
    assert call(client, "GET", API, world["write_key"]).status_code == 403
    assert (
        call(
            client, "POST", API, world["write_key"], {"kind": "pool_usage", "threshold": 5}
        ).status_code
        == 403
    )
    assert (
        call(
            client,
            "PUT",
            f"{API}/{theirs.id}",
            world["key"],
            {"kind": "pool_usage", "threshold": 5},
        ).status_code
        == 404
    )
    assert call(client, "DELETE", f"{API}/{theirs.id}", world["key"]).status_code == 404
    assert call(client, "GET", f"{API}/history", world["key"]).get_json()["total"] == 0


# --- firing once per crossing ------------------------------------------------------------


def test_an_ingest_crossing_the_pool_threshold_fires_exactly_once(app_ctx, world):
    alpha, org = world["alpha"], world["org"]
    rule(alpha, "pool_usage", 80)
    # 700 of 1,000 is 70 %: below 80 %.
    assert ingest_batch(alpha, list(enumerate([ident("a", org, 700)]))).accepted == 1
    assert fired() == []
    # 850 is 85 %: crosses 80 % once.
    ingest_batch(alpha, list(enumerate([ident("b", org, 150)])))
    # 950: still above, no second firing; a duplicate changes nothing either.
    ingest_batch(alpha, list(enumerate([ident("c", org, 100), ident("b", org, 150)])))
    events = fired("pool_usage")
    assert len(events) == 1
    assert events[0].data["creditPoolUsed"] == 850
    assert events[0].data["usedPercent"] == 85.0
    hooks = messages("billing.pool.threshold")
    assert len(hooks) == 1
    assert hooks[0]["data"]["billingPeriodStart"] == "2025-10-01"
    assert hooks[0]["data"]["creditPoolTotal"] == 1000
    sent = mails()
    assert [m.recipient for m in sent] == ["owner@alpha.test"]
    assert "Pool usage reaches 80 % of the pool" in sent[0].subject


def test_concurrent_ingests_crossing_together_fire_once(app, world):
    alpha_id = world["alpha"].id
    org_id = world["org"].id
    rule(world["alpha"], "pool_usage", 80)
    db.session.commit()
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def ingest(n: int) -> None:
        set_frozen_now(NOW)
        with app.app_context():
            from app.models import Organization, Partner

            partner = db.session.get(Partner, alpha_id)
            org = db.session.get(Organization, org_id)
            barrier.wait()
            try:
                # Four batches of 250 on different days: 1,000 in all, 80 % is crossed by
                # whichever batch brings the sum to 1,000 - 250k >= 800, i.e. the 4th.
                ingest_batch(partner, list(enumerate([ident(f"t{n}", org, 250, day=1 + n)])))
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

    threads = [threading.Thread(target=ingest, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(fired("pool_usage")) == 1
    assert len(messages("billing.pool.threshold")) == 1
    assert fired("pool_usage")[0].data["creditPoolUsed"] == 1000


def test_the_state_key_lets_one_of_two_firings_through(app_ctx, world):
    alpha = world["alpha"]
    r = rule(alpha, "pool_usage", 10)
    finding = alerts.Finding("", "", "2025-10-01", {"x": 1})
    from app.database import write_transaction

    with write_transaction():
        first = alerts.fire(alpha, r, finding, NOW)
        second = alerts.fire(alpha, r, finding, NOW)
    assert (first, second) == (True, False)
    assert db.session.execute(select(func.count()).select_from(AlertState)).scalar_one() == 1


def test_an_organization_fires_once_per_organization(app_ctx, world):
    alpha, org, other = world["alpha"], world["org"], world["other"]
    rule(alpha, "org_allocation", 50)
    # Org One: 120 of 200 = 60 % (fires); Org Two: 40 of 100 = 40 % (does not).
    ingest_batch(alpha, list(enumerate([ident("a", org, 120), ident("b", other, 40)])))
    assert [e.subject for e in fired("org_allocation")] == [org.id]
    # Org Two reaches 50 of 100 = 50 %: fires for it; Org One does not fire again.
    ingest_batch(alpha, list(enumerate([ident("c", other, 10), ident("d", org, 10)])))
    assert sorted(e.subject for e in fired("org_allocation")) == sorted([org.id, other.id])
    data = {
        m["data"]["organizationId"]: m["data"]
        for m in messages("organization.allocation.threshold")
    }
    assert data[other.id]["creditsUsed"] == 50 and data[other.id]["creditsAllocated"] == 100


def test_resolves_when_the_pool_is_raised_and_fires_again_after(app_ctx, world):
    alpha, org = world["alpha"], world["org"]
    rule(alpha, "pool_usage", 80)
    ingest_batch(alpha, list(enumerate([ident("a", org, 900)])))
    assert len(fired()) == 1
    # The pool goes to 2,000: 900 is 45 %, the sweep resolves the rule.
    alpha.credit_pool_total = 2000
    db.session.commit()
    alerts.evaluate_partner(alpha)
    db.session.rollback()
    state = db.session.execute(select(AlertState)).scalar_one()
    assert state.state == "resolved"
    # 1,700 of 2,000 = 85 %: the resolved rule fires again in the same period.
    ingest_batch(alpha, list(enumerate([ident("b", org, 800)])))
    assert len(fired("pool_usage")) == 2
    assert db.session.execute(select(AlertState.state)).scalar_one() == "firing"


def test_a_new_billing_period_fires_again_and_resolves_the_old(app_ctx, world):
    alpha, org = world["alpha"], world["org"]
    rule(alpha, "pool_usage", 80)
    ingest_batch(alpha, list(enumerate([ident("a", org, 900)])))
    set_frozen_now(datetime(2025, 11, 3, 12))
    alerts.evaluate_partner(alpha)  # November has used nothing: October's firing resolves
    db.session.rollback()
    assert db.session.execute(select(AlertState.state)).scalar_one() == "resolved"
    ingest_batch(alpha, list(enumerate([ident("b", org, 800, day=2, month=11)])))
    keys = sorted(e.data["billingPeriodStart"] for e in fired("pool_usage"))
    assert keys == ["2025-10-01", "2025-11-01"]


def test_projected_exhaustion_uses_the_credits_pages_projection(app_ctx, world):
    alpha, org = world["alpha"], world["org"]
    rule(alpha, "projected_exhaustion")
    # Oct 13..19 are the 7 complete days before the 20th: 35 a day there is 245 in the
    # window, 35/day; used 245; projected 245 + 12 days (20th..31st) x 35 = 665 < 1,000.
    ingest_batch(alpha, list(enumerate([ident(f"w{d}", org, 35, day=d) for d in range(13, 20)])))
    assert fired() == []
    # 400 more on the 19th: window 645 -> rate 645/7; 645 + 12 x 645/7 = 1750.7 > 1,000.
    ingest_batch(alpha, list(enumerate([ident("big", org, 400, day=19)])))
    events = fired("projected_exhaustion")
    assert len(events) == 1
    expected = billing.projection(alpha)
    assert expected.projected_identifications == 1751
    assert events[0].data["projectedIdentifications"] == 1751
    assert events[0].data["runoutDate"] == expected.runout_date.isoformat()


def test_stale_data_fires_once_per_quiet_spell(app_ctx, world):
    alpha, org = world["alpha"], world["org"]
    rule(alpha, "stale_data", 6)
    ingest_batch(alpha, list(enumerate([ident("a", org, 1)])))  # received at 12:00
    set_frozen_now(NOW + timedelta(hours=5))
    alerts.sweep()
    assert fired() == []
    set_frozen_now(NOW + timedelta(hours=6))
    alerts.sweep()
    alerts.sweep()
    assert len(fired("stale_data")) == 1
    assert messages("data.stale")[0]["data"]["lastReceivedAt"] == "2025-10-20T12:00:00Z"
    # An event arrives: resolved; six quiet hours later, a new spell fires again.
    ingest_batch(alpha, list(enumerate([ident("b", org, 1)])))
    alerts.sweep()
    assert db.session.execute(select(AlertState.state)).scalar_one() == "resolved"
    set_frozen_now(NOW + timedelta(hours=12))
    alerts.sweep()
    assert len(fired("stale_data")) == 2


def test_inactive_org_counts_whole_quiet_days(app_ctx, world):
    alpha, org, other = world["alpha"], world["org"], world["other"]
    rule(alpha, "inactive_org", 3)
    # Org One's last event on Oct 16: Oct 17, 18, 19 are 3 complete quiet days -> fires.
    # Org Two's on Oct 17: only 2 (18, 19) -> does not.
    ingest_batch(alpha, list(enumerate([ident("a", org, 1, day=16), ident("b", other, 1, day=17)])))
    alerts.sweep()
    assert [e.subject for e in fired("inactive_org")] == [org.id]
    assert messages("organization.inactive")[0]["data"]["daysWithoutEvents"] == 3
    assert messages("organization.inactive")[0]["data"]["lastEventDate"] == "2025-10-16"


def test_a_disabled_rule_does_not_fire(app_ctx, world):
    alpha, org = world["alpha"], world["org"]
    r = rule(alpha, "pool_usage", 10)
    alerts.update_rule(alpha, r.id, "pool_usage", 10, False)
    ingest_batch(alpha, list(enumerate([ident("a", org, 900)])))
    alerts.sweep()
    assert fired() == []


def test_no_webhook_no_message_but_the_history_and_mail_still(app_ctx, world, make_org):
    bravo = world["bravo"]
    org = make_org(bravo, "B Org")
    rule(bravo, "pool_usage", 50)
    ingest_batch(bravo, list(enumerate([ident("a", org, 600)])))
    assert len(fired()) == 1
    assert messages("billing.pool.threshold") == []
    assert mails() == []  # nobody at Bravo chose alert e-mails


def test_the_firing_rolls_back_with_the_ingest(app_ctx, world, monkeypatch):
    alpha, org = world["alpha"], world["org"]
    rule(alpha, "pool_usage", 10)

    def boom(*args, **kwargs):
        raise RuntimeError("crash after the firing was written")

    monkeypatch.setattr(outbox, "dispatch_after_commit", boom)
    with pytest.raises(RuntimeError):
        ingest_batch(alpha, list(enumerate([ident("a", org, 900)])))
    assert fired() == []
    assert db.session.execute(select(func.count()).select_from(AlertState)).scalar_one() == 0
    assert accounts.get_organization(alpha, org.id) is not None


# --- the pages ---------------------------------------------------------------------------


def page_token(client, path="/alerts") -> str:
    return csrf_token(client.get(path).get_data(as_text=True))


def test_the_page_adds_edits_deletes_rules_and_shows_the_history(client, world):
    login(client, "owner@alpha.test", PASSWORD)
    page = client.get("/alerts")
    assert page.status_code == 200
    assert "No rules yet" in page.get_data(as_text=True)
    # A bad threshold: the message is beside the field, nothing is added.
    bad = client.post(
        "/alerts/rules",
        data={
            "kind": "pool_usage",
            "threshold": "eighty",
            "enabled": "y",
            "csrf_token": page_token(client),
        },
    )
    assert bad.status_code == 400
    assert 'data-error-for="threshold"' in bad.get_data(as_text=True)
    too_big = client.post(
        "/alerts/rules",
        data={
            "kind": "pool_usage",
            "threshold": "5,000",
            "enabled": "y",
            "csrf_token": page_token(client),
        },
    )
    assert too_big.status_code == 400 and "1 to 1000" in too_big.get_data(as_text=True)
    added = client.post(
        "/alerts/rules",
        data={
            "kind": "pool_usage",
            "threshold": "80",
            "enabled": "y",
            "csrf_token": page_token(client),
        },
    )
    assert added.status_code == 302 and added.headers["Location"].endswith("/alerts#rules")
    shown = client.get("/alerts").get_data(as_text=True)
    assert "Rule added" in shown or "Alert rule added." in shown
    assert "Pool usage reaches 80 % of the pool" in shown
    rule_id = alerts.list_rules(world["alpha"])[0].id
    prefix = f"r{rule_id[:8]}"
    saved = client.post(
        f"/alerts/rules/{rule_id}",
        data={
            f"{prefix}-kind": "pool_usage",
            f"{prefix}-threshold": "90",
            f"{prefix}-enabled": "y",
            f"{prefix}-csrf_token": page_token(client),
            "csrf_token": page_token(client),
        },
    )
    assert saved.status_code == 302, saved.get_data(as_text=True)[:500]
    db.session.rollback()
    assert alerts.get_rule(world["alpha"], rule_id).threshold == 90
    # Delete without the confirmation: refused, the rule stays.
    d = f"d{rule_id[:8]}"
    unconfirmed = client.post(
        f"/alerts/rules/{rule_id}/delete", data={f"{d}-csrf_token": page_token(client)}
    )
    assert unconfirmed.status_code == 400
    assert "tick the box" in unconfirmed.get_data(as_text=True)
    confirmed = client.post(
        f"/alerts/rules/{rule_id}/delete",
        data={f"{d}-confirm": "y", f"{d}-csrf_token": page_token(client)},
    )
    assert confirmed.status_code == 302
    db.session.rollback()
    assert alerts.list_rules(world["alpha"]) == []


def test_the_history_shows_firings_in_the_partners_timezone(client, world, app):
    alpha, org = world["alpha"], world["org"]
    alpha.timezone = "Europe/Berlin"
    db.session.commit()
    rule(alpha, "pool_usage", 50)
    ingest_batch(alpha, list(enumerate([ident("a", org, 600)])))
    login(client, "owner@alpha.test", PASSWORD)
    text = client.get("/alerts").get_data(as_text=True)
    # 12:00 UTC on 20 Oct 2025 is 14:00 in Berlin (CEST, UTC+2).
    assert "20 Oct 2025 at 14:00 CEST (Europe/Berlin)" in text
    assert 'data-action="fired"' in text


def test_send_test_sends_a_webhook_and_an_email_to_the_signed_in_user(client, world):
    login(client, "owner@alpha.test", PASSWORD)
    answer = client.post("/alerts/test", data={"csrf_token": page_token(client)})
    assert answer.status_code == 302
    assert len(messages("test")) == 1
    assert [m.recipient for m in mails("test")] == ["owner@alpha.test"]


def test_analysts_cannot_open_alerts_but_choose_their_email(client, world):
    from app import auth

    auth.create_user(world["alpha"], "analyst@alpha.test", PASSWORD, role="analyst")
    login(client, "analyst@alpha.test", PASSWORD)
    assert client.get("/alerts").status_code == 403
    page = client.get("/account/email")
    assert page.status_code == 200
    assert (
        client.post(
            "/alerts/test", data={"csrf_token": page_token(client, "/account/email")}
        ).status_code
        == 403
    )
    # No CSRF token: refused, nothing saved.
    assert client.post("/account/email", data={"monthly_report": "y"}).status_code == 400
    saved = client.post(
        "/account/email",
        data={
            "alert_kinds": ["stale_data", "pool_usage"],
            "monthly_report": "y",
            "csrf_token": page_token(client, "/account/email"),
        },
    )
    assert saved.status_code == 302 and saved.headers["Location"].endswith("/account/email#choices")
    assert mail.recipients(world["alpha"].id, "stale_data") == [
        "analyst@alpha.test",
        "owner@alpha.test",
    ]
    assert mail.recipients(world["alpha"].id, None) == ["analyst@alpha.test"]
    bad = client.post(
        "/account/email",
        data={"alert_kinds": ["nope"], "csrf_token": page_token(client, "/account/email")},
    )
    assert bad.status_code == 400 and 'data-error-for="alert_kinds"' in bad.get_data(as_text=True)


def test_another_partners_rule_is_not_found_on_the_page(client, world):
    theirs = rule(world["bravo"], "pool_usage", 50)
    db.session.commit()
    login(client, "owner@alpha.test", PASSWORD)
    token = page_token(client)
    d = f"d{theirs.id[:8]}"
    answer = client.post(
        f"/alerts/rules/{theirs.id}/delete", data={f"{d}-confirm": "y", f"{d}-csrf_token": token}
    )
    assert answer.status_code == 404
    db.session.rollback()
    assert alerts.list_rules(world["bravo"]) != []
