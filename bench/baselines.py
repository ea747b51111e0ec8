"""What a partner would build instead: the summary by plain SQL, DuckDB or chDB over raw events."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

# The summary's event figures straight from usage_event, as a partner's engineer would
# write them: one pass for the sums by type, one for the distinct organizations, one for
# the credits of the billing period (spec section 2).
RAW_BY_TYPE = text(
    "SELECT type, SUM(quantity), COUNT(*) FROM usage_event "
    "WHERE partner_id = :p AND local_date BETWEEN :s AND :e GROUP BY type"
)
RAW_ACTIVE = text(
    "SELECT COUNT(DISTINCT organization_id) FROM usage_event "
    "WHERE partner_id = :p AND local_date BETWEEN :s AND :e"
)
RAW_CREDITS = text(
    "SELECT SUM(quantity) FROM usage_event "
    "WHERE partner_id = :p AND type = 'identification' AND local_date BETWEEN :s AND :e"
)


def raw_sql_summary(partner: Any, period: Any) -> dict[str, Any]:
    """Return summary()'s figures computed from the raw events (needs an app context)."""
    from app import metrics, periods
    from app.extensions import db

    args = {"p": partner.id, "s": period.start, "e": period.end}
    by_type = {r[0]: (int(r[1]), int(r[2])) for r in db.session.execute(RAW_BY_TYPE, args)}
    active = db.session.execute(RAW_ACTIVE, args).scalar() or 0
    bp = periods.billing_period(partner, period.end)
    used = (
        db.session.execute(RAW_CREDITS, {"p": partner.id, "s": bp.start, "e": period.end}).scalar()
        or 0
    )
    db.session.rollback()
    counts = metrics.organization_counts(partner, period.end)
    out: dict[str, Any] = {
        "totalOrganizations": counts.total_organizations,
        "activeOrganizations": counts.active_organizations,
    }
    ident = by_type.get("identification", (0, 0))[0]
    out.update(
        {
            "totalIdentifications": ident,
            "creditsUsed": ident,
            "creditsRemaining": partner.credit_pool_total - int(used),
            "organizationsWithActivity": int(active),
            "totalQuantity": sum(q for q, _ in by_type.values()),
            "totalEvents": sum(n for _, n in by_type.values()),
        }
    )
    return out


def event_figures(
    by_type: dict[str, tuple[int, int]], active: int, used: int | None
) -> dict[str, int]:
    """Return the event figures of summary() from a column engine's three answers.

    by_type maps an event type to its (sum of quantity, count of events) in the period,
    active is the number of distinct organizations with events in it, and used is the
    sum of identifications from the billing period's start to the period's end.
    """
    ident = by_type.get("identification", (0, 0))[0]
    return {
        "totalIdentifications": int(ident),
        "organizationsWithActivity": int(active),
        "creditsUsedInBillingPeriod": int(used or 0),
        "totalQuantity": sum(int(q) for q, _ in by_type.values()),
        "totalEvents": sum(int(n) for _, n in by_type.values()),
    }


def matches_product(figures: dict[str, int], product: Any, pool: int) -> bool:
    """Return whether a column engine's event figures equal the product's summary.

    product is metrics.summary()'s answer for the same period, and pool the partner's
    credit pool: the credits remaining are the pool less the billing period's use.
    """
    return (
        figures["totalIdentifications"] == product.total_identifications
        and figures["organizationsWithActivity"] == product.organizations_with_activity
        and figures["totalQuantity"] == product.total_quantity
        and figures["totalEvents"] == product.total_events
        and pool - figures["creditsUsedInBillingPeriod"] == product.credits_remaining
    )


class DuckBaseline:
    """The raw events in DuckDB (columnar, vectorized, both cores), loaded from the CSVs."""

    def __init__(self, files: list[Path]) -> None:
        import duckdb

        started = time.perf_counter()
        self.version = duckdb.__version__
        self.con = duckdb.connect()
        names = ", ".join(f"'{f}'" for f in files)
        # Duplicate deliveries are identical lines: DISTINCT keeps each event once, as
        # the product does. Every generated timestamp is UTC (Z), so its first ten
        # characters are the partner's (UTC) local date.
        self.con.execute(
            "CREATE TABLE usage_event AS SELECT DISTINCT eventId AS event_id, "
            "externalId AS organization, type, quantity, "
            "CAST(substr(occurredAt, 1, 10) AS DATE) AS local_date "
            f"FROM read_csv([{names}], header=true, columns={{'eventId': 'VARCHAR', "
            "'externalId': 'VARCHAR', 'type': 'VARCHAR', 'quantity': 'BIGINT', "
            "'occurredAt': 'VARCHAR'})"
        )
        self.rows = self.con.execute("SELECT COUNT(*) FROM usage_event").fetchone()[0]
        self.load_s = time.perf_counter() - started

    def summary(self, period: Any, billing_start: Any) -> dict[str, int]:
        """Return the event figures of summary() for a period."""
        s, e = period.start, period.end
        by_type = {
            r[0]: (int(r[1]), int(r[2]))
            for r in self.con.execute(
                "SELECT type, SUM(quantity), COUNT(*) FROM usage_event "
                "WHERE local_date BETWEEN ? AND ? GROUP BY type",
                [s, e],
            ).fetchall()
        }
        active = self.con.execute(
            "SELECT COUNT(DISTINCT organization) FROM usage_event WHERE local_date BETWEEN ? AND ?",
            [s, e],
        ).fetchone()[0]
        used = self.con.execute(
            "SELECT SUM(quantity) FROM usage_event WHERE type = 'identification' "
            "AND local_date BETWEEN ? AND ?",
            [billing_start, e],
        ).fetchone()[0]
        return event_figures(by_type, active, used)


# ClickHouse types the CSV's five columns as DuckDB's read_csv is told to.
CH_CSV_COLUMNS = "eventId String, externalId String, type String, quantity Int64, occurredAt String"


class ChBaseline:
    """The raw events in ClickHouse's embedded build, chDB (in memory, all cores).

    Loaded from the same CSVs as DuckBaseline into a Memory table, as DuckDB's is, with
    the few distinct types and organizations as LowCardinality strings (dictionary
    encoded). A MergeTree table sorted by day, ClickHouse's usual home for events, was
    slower here: its sparse index skips nothing when the 365 days cover every row, and
    its parts are files (p50 381 ms against 279 ms for the three queries over the 10M
    events, measured alternately on the same loaded machine).
    """

    def __init__(self, files: list[Path]) -> None:
        import chdb

        started = time.perf_counter()
        self.version = chdb.engine_version
        self.con = chdb.connect(":memory:")
        self.con.query(
            "CREATE TABLE usage_event (event_id String, organization LowCardinality(String), "
            "type LowCardinality(String), quantity Int64, local_date Date) ENGINE = Memory"
        )
        scans = " UNION ALL ".join(
            f"SELECT * FROM file('{f}', CSVWithNames, '{CH_CSV_COLUMNS}')" for f in files
        )
        # The same rules as DuckBaseline: identical duplicate lines kept once, the date
        # from the UTC timestamp's first ten characters.
        self.con.query(
            "INSERT INTO usage_event SELECT DISTINCT eventId, externalId, type, quantity, "
            f"toDate(substring(occurredAt, 1, 10)) FROM ({scans})"
        )
        self.rows = int(self._rows("SELECT count() FROM usage_event", {})[0][0])
        self.load_s = time.perf_counter() - started

    def _rows(self, sql: str, params: dict[str, Any]) -> list[list[str]]:
        """Return the rows of a query as lists of text fields (TabSeparated)."""
        out = self.con.query(sql, "TabSeparated", params=params)
        return [line.split("\t") for line in str(out).splitlines()]

    def summary(self, period: Any, billing_start: Any) -> dict[str, int]:
        """Return the event figures of summary() for a period."""
        span = {"s": period.start.isoformat(), "e": period.end.isoformat()}
        by_type = {
            r[0]: (int(r[1]), int(r[2]))
            for r in self._rows(
                "SELECT type, sum(quantity), count() FROM usage_event "
                "WHERE local_date BETWEEN {s:Date} AND {e:Date} GROUP BY type",
                span,
            )
        }
        # Distinct organizations by GROUP BY, as ClickHouse users write it: over a
        # LowCardinality column it groups dictionary positions, where count(DISTINCT)
        # (uniqExact) hashes every string: 667 against 19 ms (medians) over the 10M events.
        active = self._rows(
            "SELECT count() FROM (SELECT organization FROM usage_event "
            "WHERE local_date BETWEEN {s:Date} AND {e:Date} GROUP BY organization)",
            span,
        )[0][0]
        used = self._rows(
            "SELECT sum(quantity) FROM usage_event WHERE type = 'identification' "
            "AND local_date BETWEEN {s:Date} AND {e:Date}",
            {"s": billing_start.isoformat(), "e": period.end.isoformat()},
        )[0][0]
        return event_figures(by_type, int(active), int(used))
