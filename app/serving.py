"""`make serve`: plan gunicorn's workers and rate-limit storage, refusing unsafe settings.

`python -m app.serving HOST:PORT` is what `make serve` runs: it decides the worker count
and the rate-limit storage (plan_serve), refuses what would be unsafe, then becomes
gunicorn.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import flask

from . import config as config_module

LOCAL_REDIS = "redis://127.0.0.1:6379"


class ServeRefused(Exception):
    """Serving with these settings would be unsafe; the message says why and what to do."""


@dataclass(frozen=True)
class ServePlan:
    """How `make serve` starts gunicorn."""

    workers: int
    # Set in gunicorn's environment when the plan chose it (None: keep the configured one).
    storage_uri: str | None


def plan_serve(
    configured_storage: str | None,
    workers_text: str | None,
    cores: int,
    storage_answers: Callable[[str], bool],
) -> ServePlan:
    """Decide the worker count and the rate-limit storage; raise ServeRefused if unsafe.

    In-memory limits are counted by each worker on its own, so with N workers every limit
    would be N times looser: more than one worker needs a shared storage. When none is
    configured, a Redis answering on 127.0.0.1:6379 is used.
    """
    if workers_text in (None, ""):
        workers = 2 * cores + 1
    else:
        try:
            workers = int(workers_text)
        except ValueError:
            workers = 0
        if workers < 1:
            raise ServeRefused(f"WORKERS={workers_text!r} is not a whole number of at least 1")
    if configured_storage and not configured_storage.startswith("memory://"):
        if not storage_answers(configured_storage):
            raise ServeRefused(
                f"the rate-limit storage RATELIMIT_STORAGE_URI="
                f"{without_password(configured_storage)} does not answer"
            )
        return ServePlan(workers, None)
    if configured_storage is None and storage_answers(LOCAL_REDIS):
        return ServePlan(workers, LOCAL_REDIS)
    if workers == 1:
        return ServePlan(1, None)
    why = (
        "RATELIMIT_STORAGE_URI is memory://"
        if configured_storage
        else f"RATELIMIT_STORAGE_URI is not set and no Redis answers at {LOCAL_REDIS}"
    )
    raise ServeRefused(
        f"refusing to start {workers} workers with in-memory rate limits ({why}): each worker "
        f"would count on its own, so every limit would be {workers} times looser. Start "
        f"Redis on 127.0.0.1:6379, set RATELIMIT_STORAGE_URI to a shared storage (e.g. "
        f"redis://host:6379), or run one worker (WORKERS=1 make serve)"
    )


def storage_answers(uri: str) -> bool:
    """Tell whether the rate-limit storage at uri answers (limits' own health check)."""
    from limits.storage import storage_from_string

    options = (
        {"socket_connect_timeout": 2, "socket_timeout": 2}
        if uri.startswith(("redis://", "rediss://"))
        else {}
    )
    try:
        return bool(storage_from_string(uri, **options).check())
    except Exception:  # noqa: BLE001  (an unusable URI is a storage that does not answer)
        return False


def without_password(uri: str) -> str:
    """Return uri with any credentials replaced by ***, for messages."""
    scheme, sep, rest = uri.partition("://")
    userinfo, at, host = rest.rpartition("@")
    return f"{scheme}{sep}***@{host}" if sep and at else uri


def configured_storage(environ: Mapping[str, str], instance_path: str) -> str | None:
    """Return RATELIMIT_STORAGE_URI as set in the environment or instance/config.py, else
    REDIS_URL (the default of every Redis use) as set there."""
    instance = flask.Config(instance_path)
    instance.from_pyfile("config.py", silent=True)
    for name in ("RATELIMIT_STORAGE_URI", "REDIS_URL"):
        value = environ.get(name) or instance.get(name)
        if value:
            return str(value)
    return None


def main(argv: list[str] | None = None) -> int:
    """Check the settings, then replace this process with gunicorn (or print its command)."""
    parser = argparse.ArgumentParser(
        prog="python -m app.serving", description="Start gunicorn with safe production settings."
    )
    parser.add_argument("bind", help="HOST:PORT")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the gunicorn command instead of running it"
    )
    parser.add_argument(
        "--worker",
        action="store_true",
        help="start the worker (flask worker) with the settings gunicorn gets, instead",
    )
    args = parser.parse_args(argv)

    from . import create_app

    app = create_app()
    try:
        problem = config_module.secret_key_problem(app.config["SECRET_KEY"])
        if problem:
            raise ServeRefused(f"refusing to serve: {problem}")
        plan = plan_serve(
            configured_storage(os.environ, app.instance_path),
            os.environ.get("WORKERS"),
            os.cpu_count() or 1,
            storage_answers,
        )
    except ServeRefused as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    env = dict(os.environ)
    if plan.storage_uri:
        # The local Redis found for the limits serves the figure cache too (REDIS_URL).
        env["RATELIMIT_STORAGE_URI"] = plan.storage_uri
        env.setdefault("REDIS_URL", plan.storage_uri)
    if args.worker:
        # The worker's queue must be the one the web workers enqueue to: the same REDIS_URL.
        flask_bin = str(Path(sys.executable).parent / "flask")
        if args.dry_run:
            print(shlex.join([flask_bin, "worker"]))
            return 0
        os.execve(flask_bin, [flask_bin, "worker"], env)  # noqa: S606  (our own flask)
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    command = [
        gunicorn,
        "--workers",
        str(plan.workers),
        "--bind",
        args.bind,
        "--access-logfile",
        "-",
        "app:create_app()",
    ]
    storage = plan.storage_uri or app.config["RATELIMIT_STORAGE_URI"]
    print(
        f"gunicorn: {plan.workers} workers, rate limits in {without_password(storage)}",
        file=sys.stderr,
    )
    if args.dry_run:
        print(shlex.join(command))
        return 0
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(gunicorn, command, env)  # noqa: S606  (our own gunicorn, fixed arguments)
    return 0  # pragma: no cover  (execve does not return)


if __name__ == "__main__":
    sys.exit(main())
