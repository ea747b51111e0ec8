"""A cold overview in headless Chromium: bytes on the wire and time to the first chart.

    .venv/bin/python -m bench.page              # 7 cold loads, writes bench/results/page.md
    .venv/bin/python -m bench.page --loads 11

Serves the demo data (`flask seed-demo`, in a throwaway SQLite database) with gunicorn
(2 workers) on 127.0.0.1, warms the compressed static files once (`flask compress-static`,
as `make serve` does), signs in outside the browser, then loads `/` in a fresh browser
context each time (empty HTTP cache, as a first visit). Per load it records what the
network delivered (Chromium's encodedDataLength: headers and the body as sent, so
compressed when compressed) for the page, plotly.js, the CSS and the JS, and the time
from navigation start to the first drawn Plotly SVG, read in the page
(performance.now() when a MutationObserver sees the chart).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import tempfile
import time
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import dataset
from .run import CHROMIUM, CHROMIUM_ARGS, RESULTS, Gunicorn, load_average, log, percentile

# Resolves with performance.now() (ms since navigation start) when the first chart is drawn.
FIRST_CHART_PROBE = """
window.__firstChart = new Promise((resolve) => {
  const seen = () => document.querySelector('.js-plotly-plot .main-svg');
  new MutationObserver((_, observer) => {
    if (seen()) { observer.disconnect(); resolve(performance.now()); }
  }).observe(document, {childList: true, subtree: true});
});
"""


def kind_of(url: str) -> str:
    """Return the kind of a fetched URL: page, plotly, css, js or other."""
    path = urllib.parse.urlsplit(url).path
    if "/vendor/plotly" in path:
        return "plotly"
    if path.endswith(".css"):
        return "css"
    if path.endswith(".js"):
        return "js"
    if path == "/":
        return "page"
    return "other"


def flask(database_url: str, instance: str, *args: str) -> str:
    """Run a flask command against database_url and return its output."""
    done = subprocess.run(
        [str(dataset.VENV_BIN / "flask"), *args],
        cwd=dataset.ROOT,
        env=dataset.child_env(database_url, INSTANCE_PATH=instance),
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


def sign_in(context: Any, base: str, email: str, password: str) -> None:
    """Sign in through the context's request client: cookies shared, browser cache untouched."""
    form = context.request.get(base + "/login").text()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form)
    data = {"email": email, "password": password}
    if token:
        data["csrf_token"] = token.group(1)
    answer = context.request.post(base + "/login", form=data, max_redirects=0)
    if answer.status != 302:
        raise RuntimeError(f"sign-in answered {answer.status}")


def cold_load(browser: Any, base: str, email: str, password: str) -> dict[str, Any]:
    """Load / once in a fresh context; return bytes per kind and the first chart's time."""
    context = browser.new_context()
    try:
        sign_in(context, base, email, password)
        page = context.new_page()
        page.add_init_script(FIRST_CHART_PROBE)
        cdp = context.new_cdp_session(page)
        urls: dict[str, str] = {}
        encodings: dict[str, str] = {}
        sizes: dict[str, int] = {}
        cdp.on(
            "Network.responseReceived",
            lambda e: (
                urls.__setitem__(e["requestId"], e["response"]["url"]),
                encodings.__setitem__(
                    e["requestId"],
                    {k.lower(): v for k, v in e["response"]["headers"].items()}.get(
                        "content-encoding", "identity"
                    ),
                ),
            ),
        )
        cdp.on(
            "Network.loadingFinished",
            lambda e: sizes.__setitem__(e["requestId"], int(e["encodedDataLength"])),
        )
        cdp.send("Network.enable")
        page.goto(base + "/", wait_until="commit")
        first_chart_ms = float(page.evaluate("window.__firstChart"))
        page.wait_for_load_state("load")
        by_kind: dict[str, int] = {}
        encoding: dict[str, str] = {}
        for rid, size in sizes.items():
            kind = kind_of(urls.get(rid, ""))
            by_kind[kind] = by_kind.get(kind, 0) + size
            encoding[kind] = encodings.get(rid, "identity")
        return {"first_chart_ms": first_chart_ms, "bytes": by_kind, "encoding": encoding}
    finally:
        context.close()


def measure(loads: int) -> dict[str, Any]:
    """Serve the demo and return the figures of loads cold overview loads."""
    from playwright.sync_api import sync_playwright

    from app.demo import DEMO_EMAIL, DEMO_PASSWORD

    with tempfile.TemporaryDirectory(prefix="pa-page-") as folder:
        url = f"sqlite:///{Path(folder) / 'demo.sqlite3'}"
        dataset.init_schema(url)
        flask(url, folder, "seed-demo")
        started = time.perf_counter()
        warm_s: float | None = None
        try:
            flask(url, folder, "compress-static")
            warm_s = time.perf_counter() - started
        except subprocess.CalledProcessError:
            log("no `flask compress-static` in this version: static files sent as they are")
        runs = []
        with Gunicorn(url, INSTANCE_PATH=folder) as server, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                # One load per worker first: each renders the page once (figures computed).
                for _ in range(server.workers):
                    cold_load(browser, server.base, DEMO_EMAIL, DEMO_PASSWORD)
                for _ in range(loads):
                    runs.append(cold_load(browser, server.base, DEMO_EMAIL, DEMO_PASSWORD))
            finally:
                browser.close()
    times = [r["first_chart_ms"] for r in runs]
    last = runs[-1]
    return {
        "loads": loads,
        "first_chart_p50_ms": percentile(times, 50),
        "first_chart_max_ms": max(times),
        "first_chart_ms": [round(t) for t in times],
        "bytes": last["bytes"],
        "bytes_total": sum(last["bytes"].values()),
        "encoding": last["encoding"],
        "compress_static_s": warm_s,
    }


def render(meta: dict[str, Any], result: dict[str, Any]) -> str:
    """Return the Markdown of bench/results/page.md."""
    b = result["bytes"]
    enc = result["encoding"]

    def row(kind: str, label: str) -> str:
        return f"| {label} | {b.get(kind, 0):,} | {enc.get(kind, '—')} |"

    plotly_verdict = "met" if b.get("plotly", 0) <= 1_200_000 else "missed"
    chart_verdict = "met" if result["first_chart_p50_ms"] <= 500 else "missed"
    return "\n".join(
        [
            "# A cold overview in headless Chromium",
            "",
            f"Run {meta['when']} with `make bench-page` on {meta['cpus']} CPUs "
            f"(load average at the end: {meta['load_end']}). Demo data (`flask seed-demo`), "
            "gunicorn with 2 workers on 127.0.0.1, Chromium "
            f"{meta['chromium']}; each load in a fresh browser context (empty cache), "
            "signed in beforehand. "
            + (
                f"`flask compress-static` took {result['compress_static_s']:.1f} s before "
                "the server started."
                if result["compress_static_s"] is not None
                else "No compressed static files (no `flask compress-static`)."
            ),
            "",
            "| transferred (last load) | bytes on the wire | content-encoding |",
            "|---|---|---|",
            row("page", "overview HTML `/`"),
            row("plotly", "plotly.js"),
            row("css", "CSS"),
            row("js", "charts.js"),
            row("other", "other (favicon, ...)"),
            f"| **total** | **{result['bytes_total']:,}** | |",
            "",
            f"plotly.js on the wire: {b.get('plotly', 0):,} bytes (aim ≤ 1,200,000 with "
            f"brotli): {plotly_verdict}.",
            "",
            f"Time to the first chart (navigation start to the first drawn Plotly SVG, "
            f"n={result['loads']}): **p50 {result['first_chart_p50_ms']:.0f} ms**, max "
            f"{result['first_chart_max_ms']:.0f} ms (aim p50 ≤ 500 ms): {chart_verdict}. "
            f"All loads: {', '.join(str(t) for t in result['first_chart_ms'])} ms.",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """Measure, print and write bench/results/page.md (and .json)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=7)
    parser.add_argument("--out", default=str(RESULTS / "page.md"))
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        log(f"{CHROMIUM} is missing (apt-get install -y chromium)")
        return 1
    log(f"page: {args.loads} cold loads of the overview")
    result = measure(args.loads)
    chromium = subprocess.run(
        [CHROMIUM, "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    meta = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "load_end": load_average(),
        "chromium": chromium or "?",
    }
    text = render(meta, result)
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "result": result}, indent=1))
    log(f"written {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
