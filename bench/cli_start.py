"""How long a `flask` command takes from start to exit (issue 18, item 3).

    .venv/bin/python -m bench.cli_start [--runs 5] [--against DIR]

Times `flask --help` and `flask create-org` (against a scratch SQLite file made with
`flask init-db` and `flask create-partner`) as real processes, and beside them the floor:
`python -c 'import flask, sqlalchemy'`. With --against, the same commands run from another
checkout of the code (with its own `app/`, the same Python) alternately with this one, so
both see the same load. Prints the median wall time and the median CPU time (user +
system, which load from other processes changes less) of each, and the load average.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLOOR = "import flask, sqlalchemy"


def timed(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Run a command to its end; return its wall and CPU (user + system) seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(args, cwd=cwd, env=env, check=True, capture_output=True)  # noqa: S603
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu


def load() -> str:
    """Return the 1, 5 and 15 minute load averages."""
    return " / ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    """Time the commands from this checkout (and another one) and print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--against", type=Path, help="another checkout, timed alternately")
    options = parser.parse_args()
    flask = str(Path(sys.executable).with_name("flask"))
    checkouts = {"this": ROOT} | ({"against": options.against} if options.against else {})
    with tempfile.TemporaryDirectory() as folder:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "DATABASE_"))}
        env |= {
            "DATABASE_URL": f"sqlite:///{folder}/cli.sqlite3",
            "INSTANCE_PATH": f"{folder}/instance",
        }
        timed([flask, "init-db"], ROOT, env)
        timed([flask, "create-partner", "--name", "B", "--slug", "b", "--pool", "9"], ROOT, env)
        commands = {
            "flask --help": [flask, "--help"],
            "flask create-org": [flask, "create-org", "--partner", "b", "--name", "Org"],
        }
        figures: dict[tuple[str, str], list[tuple[float, float]]] = {}
        print(f"load average at start: {load()}")
        for run in range(options.runs):
            for label, command in commands.items():
                for name, cwd in checkouts.items():
                    # A name of its own for each organization the run creates.
                    args = [*command[:-1], f"{command[-1]} {name} {run}"]
                    if label == "flask --help":
                        args = command
                    figures.setdefault((label, name), []).append(timed(args, cwd, env))
            floor = [sys.executable, "-c", FLOOR]
            figures.setdefault((f"python -c '{FLOOR}'", "this"), []).append(timed(floor, ROOT, env))
        print(f"load average at end: {load()}")
    print("\n| command | checkout | median wall | median CPU | runs (wall s) |")
    print("|---|---|---|---|---|")
    for (label, name), values in figures.items():
        walls = [wall for wall, _ in values]
        cpus = [cpu for _, cpu in values]
        print(
            f"| `{label}` | {name} | {statistics.median(walls):.2f} s | "
            f"{statistics.median(cpus):.2f} s | {', '.join(f'{w:.2f}' for w in walls)} |"
        )


if __name__ == "__main__":
    main()
