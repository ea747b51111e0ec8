"""What keeping the closed-period figures in Redis costs a cached API request.

    .venv/bin/python -m bench.cache_store [--requests 2000]

Seeds the demo partner into a throwaway SQLite file, then times GET /partner/analytics
(a closed month, with compare=previous) and GET /partner/analytics/timeseries (the same
month by day) through the app in this process, every figure already cached: once with the
per-process store (CACHE_URL unset) and once with Redis at 127.0.0.1:6379 (CACHE_URL, as
`make serve` sets it when that Redis answers). Prints requests per second of each and the
difference; the target is a Redis cost of at most 10 % of the rate.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from . import dataset

REDIS = "redis://127.0.0.1:6379/14"


def rate(url: str, cache_url: str | None, requests: int) -> dict[str, float]:
    """Return requests per second of the two cached calls with the given figure store."""
    from app import cache
    from app.demo import seed_demo
    from app.extensions import db

    app = dataset.make_app(url, CACHE_URL=cache_url)
    with app.app_context():
        key = seed_demo().api_key
        cache.clear()
    client = app.test_client()
    headers = {"X-Partner-API-Key": key}
    paths = [
        "/api/v1/partner/analytics?startDate=2026-10-01&endDate=2026-10-31&compare=previous",
        "/api/v1/partner/analytics/timeseries?startDate=2026-10-01&endDate=2026-10-31",
    ]
    figures = {}
    for path in paths:
        for _ in range(20):  # fill the store and warm up
            assert client.get(path, headers=headers).status_code == 200
        started = time.perf_counter()
        for _ in range(requests):
            client.get(path, headers=headers)
        figures[path.split("?")[0].rsplit("/", 1)[-1]] = requests / (time.perf_counter() - started)
    with app.app_context():
        cache.clear()
        db.engine.dispose()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args(argv)
    from app.serving import storage_answers

    if not storage_answers(REDIS):
        print("no Redis answers on 127.0.0.1:6379", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="pa_cache_") as folder:
        url = f"sqlite:///{Path(folder) / 'cache.sqlite3'}"
        dataset.init_schema(url)
        local = rate(url, None, args.requests)
        shared = rate(url, REDIS, args.requests)
    print("| request (cached, closed month) | per-process store | Redis | cost of Redis |")
    print("|---|---|---|---|")
    for name in local:
        cost = 1 - shared[name] / local[name]
        print(f"| {name} | {local[name]:,.0f} req/s | {shared[name]:,.0f} req/s | {cost:.1%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
