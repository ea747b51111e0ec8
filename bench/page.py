"""A cold overview in headless Chromium: bytes on the wire and time to the first chart.

    .venv/bin/python -m bench.page              # 7 cold loads, writes bench/results/page.md
    .venv/bin/python -m bench.page --loads 11
    .venv/bin/python -m bench.page --against 9ee3d9f --loads 11   # writes page-against.md

Serves the demo data (`flask seed-demo`, in a throwaway SQLite database) with gunicorn
(2 workers) on 127.0.0.1, warms the compressed static files once (`flask compress-static`,
as `make serve` does), signs in outside the browser, then loads `/` in a fresh browser
context each time (empty HTTP cache, as a first visit). Per load it records what the
network delivered (Chromium's encodedDataLength: headers and the body as sent, so
compressed when compressed) for the page, plotly.js, the CSS and the JS, and the time
from navigation start to the first drawn Plotly SVG, read in the page
(performance.now() when a MutationObserver sees the chart).

On a machine that other jobs keep busy, a time measured at one moment cannot be compared
with one measured at another: `--against REF` also serves the commit REF (its files from
`git archive`, its own demo database) and alternates the loads between the two, so that
both meet the same load, then writes the two side by side.
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
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
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


def flask(database_url: str, instance: str, *args: str, root: Path = dataset.ROOT) -> str:
    """Run a flask command of the source tree root against database_url; return its output."""
    done = subprocess.run(
        [str(dataset.VENV_BIN / "flask"), *args],
        cwd=root,
        env=dataset.child_env(database_url, INSTANCE_PATH=instance, PYTHONPATH=str(root)),
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


@contextmanager
def demo_server(root: Path, folder: Path) -> Iterator[tuple[Gunicorn, float | None]]:
    """Seed the demo into a database in folder and serve it with the app of the source
    tree root; yield the server and how long compress-static took (None: no such command)."""
    url = f"sqlite:///{folder / 'demo.sqlite3'}"
    flask(url, str(folder), "init-db", root=root)
    flask(url, str(folder), "seed-demo", root=root)
    started = time.perf_counter()
    warm_s: float | None = None
    try:
        flask(url, str(folder), "compress-static", root=root)
        warm_s = time.perf_counter() - started
    except subprocess.CalledProcessError:
        log(f"{root}: no `flask compress-static` in this version: static files sent as they are")
    with Gunicorn(url, root=root, INSTANCE_PATH=str(folder), PYTHONPATH=str(root)) as server:
        yield server, warm_s


def summary(runs: list[dict[str, Any]], warm_s: float | None) -> dict[str, Any]:
    """Return the figures of a list of cold loads (the bytes are the last load's)."""
    times = [r["first_chart_ms"] for r in runs]
    last = runs[-1]
    return {
        "loads": len(runs),
        "first_chart_p50_ms": percentile(times, 50),
        "first_chart_max_ms": max(times),
        "first_chart_ms": [round(t) for t in times],
        "bytes": last["bytes"],
        "bytes_total": sum(last["bytes"].values()),
        "encoding": last["encoding"],
        "compress_static_s": warm_s,
    }


def measure(loads: int, roots: list[Path] | None = None) -> list[dict[str, Any]]:
    """Serve the demo from each source tree (this one by default); return the figures of
    loads cold overview loads of each, the trees taking turns."""
    from playwright.sync_api import sync_playwright

    from app.demo import DEMO_EMAIL, DEMO_PASSWORD

    roots = roots or [dataset.ROOT]
    with tempfile.TemporaryDirectory(prefix="pa-page-") as tmp, ExitStack() as stack:
        served = []
        for number, root in enumerate(roots):
            folder = Path(tmp) / str(number)
            folder.mkdir()
            served.append(stack.enter_context(demo_server(root, folder)))
        runs: list[list[dict[str, Any]]] = [[] for _ in roots]
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                # One load per worker first: each renders the page once (figures computed).
                for server, _warm in served:
                    for _ in range(server.workers):
                        cold_load(browser, server.base, DEMO_EMAIL, DEMO_PASSWORD)
                order = list(range(len(roots)))
                for turn in range(loads):
                    # A then B, then B then A: neither tree always goes first.
                    for index in order if turn % 2 == 0 else order[::-1]:
                        base = served[index][0].base
                        runs[index].append(cold_load(browser, base, DEMO_EMAIL, DEMO_PASSWORD))
            finally:
                browser.close()
    return [summary(r, warm) for r, (_server, warm) in zip(runs, served, strict=True)]


@contextmanager
def source_tree(ref: str) -> Iterator[Path]:
    """Yield a folder holding the files of commit ref (git archive), removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="pa-page-ref-") as folder:
        archive = subprocess.run(
            ["git", "-C", str(dataset.ROOT), "archive", "--format=tar", ref],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
        Path(folder, "instance").mkdir(exist_ok=True)
        yield Path(folder)


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


def render_against(meta: dict[str, Any], ref: str, results: list[dict[str, Any]]) -> str:
    """Return the Markdown of bench/results/page-against.md: REF and this tree side by side."""
    before, after = results

    def kinds(kind: str) -> str:
        return f"{before['bytes'].get(kind, 0):,} | {after['bytes'].get(kind, 0):,}"

    def times(result: dict[str, Any]) -> str:
        return ", ".join(str(t) for t in result["first_chart_ms"])

    return "\n".join(
        [
            f"# A cold overview: {ref} against this tree",
            "",
            f"Run {meta['when']} with `python -m bench.page --against {ref}` on {meta['cpus']} "
            f"CPUs (load average at the end: {meta['load_end']}), {meta['chromium']}. "
            "Each tree serves the demo data with gunicorn (2 workers) on 127.0.0.1; the "
            "cold loads (fresh browser context, signed in beforehand) alternate between the "
            "two, so that both meet the same load.",
            "",
            f"| cold overview | {ref} | this tree |",
            "|---|---|---|",
            f"| plotly.js on the wire | {kinds('plotly')} |",
            f"| page + CSS + JS + favicon | "
            f"{before['bytes_total'] - before['bytes'].get('plotly', 0):,} | "
            f"{after['bytes_total'] - after['bytes'].get('plotly', 0):,} |",
            f"| total | {before['bytes_total']:,} | {after['bytes_total']:,} |",
            f"| first chart p50 (max), n={after['loads']} | "
            f"{before['first_chart_p50_ms']:,.0f} ms ({before['first_chart_max_ms']:,.0f}) | "
            f"{after['first_chart_p50_ms']:,.0f} ms ({after['first_chart_max_ms']:,.0f}) |",
            "",
            f"All loads, {ref}: {times(before)} ms; this tree: {times(after)} ms.",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """Measure, print and write bench/results/page.md (and .json), or page-against.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=7)
    parser.add_argument("--against", metavar="REF", help="a commit to measure beside this tree")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        log(f"{CHROMIUM} is missing (apt-get install -y chromium)")
        return 1
    if args.against:
        log(f"page: {args.loads} cold loads of the overview, {args.against} and this tree")
        with source_tree(args.against) as ref_root:
            results = measure(args.loads, [ref_root, dataset.ROOT])
    else:
        log(f"page: {args.loads} cold loads of the overview")
        results = measure(args.loads)
    chromium = subprocess.run(
        [CHROMIUM, "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    meta = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "load_end": load_average(),
        "chromium": chromium or "?",
    }
    if args.against:
        text = render_against(meta, args.against, results)
        out = Path(args.out or RESULTS / "page-against.md")
        data: dict[str, Any] = {"meta": meta, "against": args.against, "results": results}
    else:
        text = render(meta, results[0])
        out = Path(args.out or RESULTS / "page.md")
        data = {"meta": meta, "result": results[0]}
    print(text)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    out.with_suffix(".json").write_text(json.dumps(data, indent=1))
    log(f"written {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
