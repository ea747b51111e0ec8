"""Print the query plan of every SQL statement the analytics figures emit (EXPLAIN).

    DATABASE_URL=... .venv/bin/python -m bench.explain [--partner bench] [--start D --end D]

Runs the same calls as the perf guard test with the cache off, captures each distinct
statement and prints its plan (EXPLAIN QUERY PLAN on SQLite, EXPLAIN on PostgreSQL):
the way to check that every range query is an index range or seek over the rollups.
"""

from __future__ import annotations

import argparse
import os
import re
from datetime import date

from sqlalchemy import event

from . import dataset


def main() -> None:
    """Capture the statements of the analytics calls and print their plans."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partner", default=dataset.PARTNER_SLUG)
    parser.add_argument("--start", default="2025-01-01")
    parser.add_argument("--end", default="2025-12-31")
    args = parser.parse_args()
    app = dataset.make_app(os.environ["DATABASE_URL"], CACHE_CLOSED_PERIODS=False)
    from app import accounts, billing, metrics
    from app.extensions import db
    from app.periods import Period

    captured: list[tuple[str, object]] = []
    with app.app_context():
        partner = accounts.partner_by_slug(args.partner)
        period = Period(date.fromisoformat(args.start), date.fromisoformat(args.end))

        def listener(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
            if statement.lstrip().upper().startswith("SELECT") and not executemany:
                captured.append((statement, parameters))

        event.listen(db.engine, "before_cursor_execute", listener)
        metrics.summary(partner, period)
        metrics.timeseries(partner, period, "month")
        metrics.organization_breakdown(partner, period, page_size=10)
        metrics.data_freshness(partner)
        billing.current_usage(partner)
        event.remove(db.engine, "before_cursor_execute", listener)
        seen = set()
        sqlite = db.engine.dialect.name == "sqlite"
        with db.engine.connect() as conn:
            for sql, params in captured:
                shape = re.sub(r"\s+", " ", sql)
                if shape in seen or "FROM partner " in shape and "WHERE partner.id" in shape:
                    continue
                seen.add(shape)
                prefix = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
                rows = conn.exec_driver_sql(prefix + sql, params).all()
                print("--", shape[:160])
                for row in rows:
                    print("   ", row[-1] if sqlite else row[0])


if __name__ == "__main__":
    main()
