"""Guards of the performance design, checked by the SQL emitted (never by timing).

- No analytics figure for a range reads the raw usage_event table: every range is read
  from the daily rollups, so its cost follows the length of the period, not the number
  of events.
- The closed-period cache serves periods that ended before the partner's today, is
  invalidated by every write that can change them (late events, organizations imported
  with a past createdAt, direct rollup writes), and never serves today's figures.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import asdict
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import event, update

from app import billing, cache, metrics
from app.extensions import db
from app.models import Partner, PartnerBucketUsage, PartnerDailyUsage
from app.periods import Period

RAW_TABLE = re.compile(r"\busage_event\b", re.I)
ROLLUPS = re.compile(r"\b(org_daily_usage|org_bucket_usage|partner_daily_usage)\b", re.I)
OCTOBER = Period(date(2025, 10, 1), date(2025, 10, 31))
NOW = datetime(2025, 11, 15, 12, 0)
OPEN = Period(date(2025, 11, 1), date(2025, 11, 15))  # ends today


@contextmanager
def captured_sql():
    """Collect the text of every statement sent to the database inside the block.

    The parameters of each statement are kept in the list's .parameters, in order.
    """
    statements = SqlLog()

    def listener(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)
        statements.parameters.append(parameters)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", listener)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", listener)


class SqlLog(list):
    """A list of SQL texts with their parameters beside it."""

    def __init__(self):
        super().__init__()
        self.parameters = []


def ev(eid, org, etype, qty, when):
    return {
        "eventId": eid,
        "organizationId": org.id,
        "type": etype,
        "quantity": qty,
        "occurredAt": when,
    }


@pytest.fixture
def world(app, freeze, make_partner, make_org, add_events):
    freeze(NOW)
    partner = make_partner("acme", pool=1000, created_at=datetime(2025, 1, 1))
    a = make_org(partner, "Alpha", created_at=datetime(2025, 1, 1))
    b = make_org(partner, "Beta", created_at=datetime(2025, 1, 1))
    result = add_events(
        partner,
        [
            ev("e1", a, "identification", 2, "2025-10-05T10:00:00Z"),
            ev("e2", b, "page_view", 3, "2025-10-06T10:00:00Z"),
            ev("e3", a, "identification", 1, "2025-11-10T10:00:00Z"),
        ],
    )
    assert result.accepted == 3
    return partner, a, b


def test_no_range_figure_reads_the_raw_event_table(app, world):
    partner, a, _b = world
    app.config["CACHE_CLOSED_PERIODS"] = False  # every call really runs its SQL
    with captured_sql() as statements:
        for period in (OCTOBER, OPEN, Period(date(2024, 11, 16), date(2025, 11, 15))):
            metrics.summary(partner, period)
            metrics.summary_with_comparison(partner, period)
            metrics.usage(partner, period)
            metrics.usage(partner, period, event_type="identification", organization_id=a.id)
            for granularity in ("day", "week", "month"):
                metrics.timeseries(partner, period, granularity)
                metrics.timeseries(partner, period, granularity, organization_id=a.id)
            metrics.organization_breakdown(partner, period)
            metrics.organization_breakdown(partner, period, sort="events", order="asc")
            metrics.organization_summary(partner, a, period)
            metrics.series_totals(partner, period)
        billing.current_usage(partner)
        billing.past_periods(partner)
    assert statements, "the figures were computed from some SQL"
    assert any(ROLLUPS.search(s) for s in statements)
    raw = [s for s in statements if RAW_TABLE.search(s)]
    assert raw == []


def test_closed_period_is_served_from_cache_until_a_late_event(app, world, add_events):
    partner, a, _b = world
    first = metrics.summary(partner, OCTOBER)
    # October: e1 identification 2 (Alpha) and e2 page_view 3 (Beta).
    assert (
        first.total_identifications,
        first.total_events,
        first.total_quantity,
        first.organizations_with_activity,
    ) == (2, 2, 5, 2)
    with captured_sql() as statements:
        again = metrics.summary(partner, OCTOBER)
    assert again == first
    assert not any(ROLLUPS.search(s) for s in statements)  # no rollup was read again

    late = add_events(partner, [ev("late", a, "identification", 4, "2025-10-20T08:00:00Z")])
    assert late.accepted == 1
    after = metrics.summary(partner, OCTOBER)
    # 2 + 4 = 6 identifications, 3 events, quantity 5 + 4 = 9.
    assert (after.total_identifications, after.total_events, after.total_quantity) == (
        6,
        3,
        9,
    )


def test_importing_an_organization_with_a_past_creation_date_changes_a_cached_period(
    app, world, make_org
):
    partner, _a, _b = world
    assert metrics.summary(partner, OCTOBER).total_organizations == 2
    make_org(partner, "Gamma", created_at=datetime(2025, 6, 1))
    # Alpha, Beta and now Gamma existed at the end of October 31.
    assert metrics.summary(partner, OCTOBER).total_organizations == 3


def test_a_direct_rollup_write_invalidates_cached_periods(app, world):
    partner, _a, _b = world
    assert metrics.usage(partner, OCTOBER).total_quantity == 5
    # October is a whole month: its totals are read from the monthly partner rollup.
    pbu = PartnerBucketUsage
    db.session.execute(
        update(pbu)
        .where(
            pbu.partner_id == partner.id,
            pbu.grain == "month",
            pbu.bucket_start == date(2025, 10, 1),
            pbu.type == "page_view",
        )
        .values(quantity=10)
    )
    db.session.commit()
    # The page_view month now holds 10 instead of 3: 2 + 10 = 12.
    assert metrics.usage(partner, OCTOBER).total_quantity == 12
    # And a direct write to a daily row is seen by a range that reads that day.
    oct_to_6 = Period(date(2025, 10, 1), date(2025, 10, 6))
    assert metrics.usage(partner, oct_to_6).total_quantity == 5
    db.session.execute(
        update(PartnerDailyUsage)
        .where(
            PartnerDailyUsage.partner_id == partner.id, PartnerDailyUsage.day == date(2025, 10, 6)
        )
        .values(quantity=7)
    )
    db.session.commit()
    assert metrics.usage(partner, oct_to_6).total_quantity == 9  # 2 + 7


def test_todays_figures_are_always_computed_live(app, world):
    partner, _a, _b = world
    metrics.summary(partner, OPEN)
    with captured_sql() as statements:
        live = metrics.summary(partner, OPEN)
    assert any(ROLLUPS.search(s) for s in statements)
    # November 1..15: e3, one identification of quantity 1.
    assert live.total_identifications == 1


def test_the_cache_can_be_turned_off(app, world):
    partner, _a, _b = world
    app.config["CACHE_CLOSED_PERIODS"] = False
    metrics.summary(partner, OCTOBER)
    with captured_sql() as statements:
        metrics.summary(partner, OCTOBER)
    assert any(ROLLUPS.search(s) for s in statements)


def test_a_month_aligned_year_reads_monthly_rows_not_daily_sums(app, world):
    """Per-organization sums and weekly activity counts over whole months and weeks read
    org_bucket_usage; org_daily_usage is only probed for existence or for clipped edges."""
    partner, a, _b = world
    app.config["CACHE_CLOSED_PERIODS"] = False
    year = Period(date(2024, 11, 1), date(2025, 10, 31))
    with captured_sql() as statements:
        items, total = metrics.organization_breakdown(partner, year)
        metrics.organization_figures(partner, year, [a.id])
        points = metrics.timeseries(partner, year, "month")
    assert total == 2 and items[0].identifications == 2  # Alpha's e1 in October
    assert sum(p.organizations_with_activity for p in points) == 2  # both, in October
    summing = re.compile(r"\bsum\(|count\(distinct", re.I)
    over_year = [
        (s, p)
        for s, p in zip(statements, statements.parameters, strict=True)
        if summing.search(s) and _mentions(p, year.start)
    ]
    assert over_year and all(
        "org_bucket_usage" in s
        for s, _p in over_year
        if "org_daily_usage" in s or "org_bucket_usage" in s
    )
    assert [s for s, _p in over_year if "org_daily_usage" in s] == []


def _mentions(parameters, day):
    """Tell whether a statement's parameters hold day (as a date or as ISO text)."""
    values = parameters.values() if isinstance(parameters, dict) else parameters
    return any(v == day or v == day.isoformat() for v in values)


def _sqlite_plan(statements, index):
    """Return SQLite's EXPLAIN QUERY PLAN of a captured statement, its steps joined by |."""
    with db.engine.connect() as conn:
        return " | ".join(
            str(row[-1])
            for row in conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + statements[index], statements.parameters[index]
            )
        )


def _skip_unless_sqlite():
    if db.engine.dialect.name != "sqlite":
        pytest.skip(
            "plans of tiny PostgreSQL tables prefer sequential scans; "
            "the 10M-event plans are in docs/scaling.md"
        )


def test_organizations_with_activity_reads_bitmaps_not_a_probe_per_organization(app, world):
    """A partner's count is one key-range read of partner_activity; org_daily_usage is
    not read (no probe per organization)."""
    partner, _a, _b = world
    _skip_unless_sqlite()
    app.config["CACHE_CLOSED_PERIODS"] = False
    with captured_sql() as statements:
        assert metrics.organizations_with_activity(partner, OCTOBER) == 2  # Alpha and Beta
    assert [s for s in statements if "org_daily_usage" in s] == []
    (index,) = [i for i, s in enumerate(statements) if "partner_activity" in s]
    plan = _sqlite_plan(statements, index)
    assert re.search(r"SEARCH partner_activity USING PRIMARY KEY", plan), plan
    assert "SCAN partner_activity" not in plan


def test_one_organizations_activity_probes_the_rollup_primary_key(app, world):
    """On SQLite, one organization's EXISTS is an index search, not a scan of the range."""
    partner, a, _b = world
    _skip_unless_sqlite()
    app.config["CACHE_CLOSED_PERIODS"] = False
    with captured_sql() as statements:
        assert metrics.organizations_with_activity(partner, OCTOBER, a.id) == 1
    (index,) = [i for i, s in enumerate(statements) if "org_daily_usage" in s]
    plan = _sqlite_plan(statements, index)
    assert re.search(r"SEARCH org_daily_usage USING (COVERING INDEX|PRIMARY KEY|INDEX)", plan), plan
    assert "SCAN org_daily_usage" not in plan


def test_a_period_ending_today_adds_live_today_to_the_cached_days_before(
    app, world, add_events, make_org
):
    partner, a, b = world
    add_events(partner, [ev("t1", b, "identification", 5, "2025-11-15T09:00:00Z")])
    period = Period(date(2025, 10, 1), date(2025, 11, 15))
    figures = metrics.summary(partner, period)
    # Oct 1..Nov 15: identifications e1 2 + e3 1 + t1 5 = 8; quantity 2 + 3 + 1 + 5 = 11;
    # 4 events; Alpha and Beta active (Beta on Oct 6 and today: counted once).
    # Credits: billing period Nov 1..30, used Nov 1..15 = 1 + 5 = 6, pool 1000 - 6 = 994.
    assert asdict(figures) == {
        "total_organizations": 2,
        "active_organizations": 2,
        "total_identifications": 8,
        "credits_used": 8,
        "credits_remaining": 994,
        "organizations_with_activity": 2,
        "total_quantity": 11,
        "total_events": 4,
    }
    app.config["CACHE_CLOSED_PERIODS"] = False
    assert metrics.summary(partner, period) == figures  # the plain computation agrees
    app.config["CACHE_CLOSED_PERIODS"] = True

    gamma = make_org(partner, "Gamma")  # created today, active today only
    add_events(
        partner,
        [
            ev("t2", a, "page_view", 4, "2025-11-15T10:00:00Z"),
            ev("t3", gamma, "session", 1, "2025-11-15T11:00:00Z"),
        ],
    )
    again = metrics.summary(partner, period)
    # Quantity 11 + 4 + 1 = 16, events 4 + 2 = 6, Gamma makes 3 organizations, all active.
    assert (
        again.total_quantity,
        again.total_events,
        again.organizations_with_activity,
        again.total_organizations,
        again.total_identifications,
    ) == (16, 6, 3, 3, 8)

    # Periods that end later than today: in today's billing period (its credits are the
    # closed days before today plus the live ones) and in the next one (nothing used yet).
    to_month_end = Period(date(2025, 10, 1), date(2025, 11, 30))
    into_december = Period(date(2025, 10, 1), date(2025, 12, 5))
    cached = [metrics.summary(partner, p) for p in (to_month_end, into_december)]
    assert cached[0].credits_remaining == 1000 - (1 + 5)  # e3 and t1, November
    assert cached[1].credits_remaining == 1000  # December: nothing used yet
    app.config["CACHE_CLOSED_PERIODS"] = False
    assert [metrics.summary(partner, p) for p in (to_month_end, into_december)] == cached


def test_a_cached_api_request_reads_the_key_partner_and_version_in_one_query(
    app, client, world, api_key, add_events
):
    partner, a, _b = world
    headers = {"X-Partner-API-Key": api_key(partner)}
    url = "/api/v1/partner/analytics?startDate=2025-10-01&endDate=2025-10-31"
    first = client.get(url, headers=headers)
    assert first.status_code == 200
    with captured_sql() as statements:
        again = client.get(url, headers=headers)
    assert again.get_json() == first.get_json()
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    # The key, its partner and the data version: one statement, and nothing else read.
    assert len(selects) == 1, selects
    assert re.search(r"\bapi_key\b", selects[0]) and re.search(
        r"\bpartner_data_version\b", selects[0]
    )
    # The key's last use was written by the first request, under a minute ago: no write.
    assert not [s for s in statements if s.lstrip().upper().startswith("UPDATE")]
    # The version read with the key still sees a write made since: a late October event.
    assert (
        add_events(partner, [ev("late2", a, "identification", 5, "2025-10-21T08:00:00Z")]).accepted
        == 1
    )
    after = client.get(url, headers=headers).get_json()
    # October had 2 identifications (e1); 2 + 5 = 7.
    assert (first.get_json()["totalIdentifications"], after["totalIdentifications"]) == (2, 7)


def test_recording_a_keys_use_costs_one_update_once_a_minute(app, client, world, api_key, freeze):
    partner, _a, _b = world
    headers = {"X-Partner-API-Key": api_key(partner)}
    url = "/api/v1/partner/analytics?startDate=2025-10-01&endDate=2025-10-31"
    assert client.get(url, headers=headers).status_code == 200  # at NOW: written
    for seconds, writes in ((59, 0), (60, 1), (61, 0), (125, 1)):
        freeze(NOW + timedelta(seconds=seconds))
        with captured_sql() as statements:
            assert client.get(url, headers=headers).status_code == 200
        selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
        updates = [s for s in statements if s.lstrip().upper().startswith("UPDATE")]
        assert len(selects) == 1, (seconds, selects)
        # Written at NOW; due again a minute later (+60), then not before +120 (+125 is).
        assert len(updates) == writes, (seconds, updates)
        assert all(re.search(r"\bapi_key\b", s) for s in updates)


# --- the figure store: one Redis for every worker, or none at all -----------------------------


def _redis_answers() -> bool:
    from app.serving import storage_answers

    return storage_answers("redis://127.0.0.1:6379")


def _second_worker(app, cache_url):
    """Another app on the same database, as another gunicorn worker would be."""
    from app import create_app

    config = {k: app.config[k] for k in ("TESTING", "DATABASE_URL", "SECRET_KEY")}
    return create_app({**config, "CACHE_URL": cache_url, "RATELIMIT_STORAGE_URI": "memory://"})


def test_workers_sharing_a_redis_serve_each_others_cached_figures(app, world, add_events):
    if not _redis_answers():
        pytest.skip("no Redis answers on 127.0.0.1:6379")
    partner, a, _b = world
    # Entries are keyed by the database's URL: this test's database is its own.
    url = "redis://127.0.0.1:6379/15"
    first, second = _second_worker(app, url), _second_worker(app, url)
    try:
        with first.app_context():
            computed = metrics.summary(db.session.get(Partner, partner.id), OCTOBER)
        with second.app_context(), captured_sql() as statements:
            shared = metrics.summary(db.session.get(Partner, partner.id), OCTOBER)
        assert shared == computed
        # October by hand: e1 identification 2 (Alpha), e2 page_view 3 (Beta).
        assert (shared.total_identifications, shared.total_events) == (2, 2)
        assert not any(ROLLUPS.search(s) for s in statements)  # the first worker's entry
        late = add_events(partner, [ev("late", a, "identification", 4, "2025-10-20T08:00:00Z")])
        assert late.accepted == 1
        with second.app_context():
            after = metrics.summary(db.session.get(Partner, partner.id), OCTOBER)
        assert (after.total_identifications, after.total_events) == (6, 3)  # 2 + 4, 2 + 1
    finally:
        for worker in (first, second):
            with worker.app_context():
                cache.clear()
                db.engine.dispose()


def test_a_figure_store_that_does_not_answer_leaves_the_figures_live(app, world):
    partner, _a, _b = world
    worker = _second_worker(app, "redis://127.0.0.1:1/0")  # nothing listens on port 1
    try:
        with worker.app_context():
            for _ in range(2):
                figures = metrics.summary(db.session.get(Partner, partner.id), OCTOBER)
                assert (figures.total_identifications, figures.total_quantity) == (2, 5)
    finally:
        with worker.app_context():
            db.engine.dispose()


def test_redis_url_is_the_default_of_limits_and_cache_and_each_can_differ():
    from app.config import use_redis_url

    config = {"REDIS_URL": "redis://cache.internal:6379/0"}
    use_redis_url(config)
    assert config["RATELIMIT_STORAGE_URI"] == config["CACHE_URL"] == "redis://cache.internal:6379/0"
    config = {"REDIS_URL": "redis://a:6379/0", "CACHE_URL": "redis://b:6379/1"}
    use_redis_url(config)
    assert (config["RATELIMIT_STORAGE_URI"], config["CACHE_URL"]) == (
        "redis://a:6379/0",
        "redis://b:6379/1",
    )
    config = {}
    use_redis_url(config)
    assert (config["RATELIMIT_STORAGE_URI"], config["CACHE_URL"]) == ("memory://", None)


def test_cache_keys_name_the_period_and_the_arguments_not_their_repr(app):
    from app.cache import _key

    partner = Partner(id="p-1")
    key = _key(metrics.summary, partner, (OCTOBER, date(2025, 11, 15)), (), {"b": 1, "a": 2})
    assert key.startswith("app.metrics:summary:p-1:2025-10-01..2025-10-31:2025-11-15:")
    # The same arguments in another order are the same entry; other values another one.
    assert key == _key(
        metrics.summary, partner, (OCTOBER, date(2025, 11, 15)), (), {"a": 2, "b": 1}
    )
    assert key != _key(
        metrics.summary, partner, (OCTOBER, date(2025, 11, 15)), (), {"a": 2, "b": 2}
    )
