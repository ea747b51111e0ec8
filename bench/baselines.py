"""What a partner would build instead: the summary by plain SQL or DuckDB over raw events."""

from __future__ import annotations

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


class DuckBaseline:
    """The raw events in DuckDB (columnar, vectorized, both cores), loaded from the CSVs."""

    def __init__(self, files: list[Path]) -> None:
        import duckdb

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
        ident = by_type.get("identification", (0, 0))[0]
        return {
            "totalIdentifications": ident,
            "organizationsWithActivity": int(active),
            "creditsUsedInBillingPeriod": int(used or 0),
            "totalQuantity": sum(q for q, _ in by_type.values()),
            "totalEvents": sum(n for _, n in by_type.values()),
        }
