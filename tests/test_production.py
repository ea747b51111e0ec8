"""Production defaults (issue 12, items 6 and 9): the SECRET_KEY rule, `make serve`'s plan
of workers and rate-limit storage, and TRUSTED_PROXIES."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from app import config as config_module
from app import create_app, serving
from tests.reliability_support import FLASK, ROOT, Databases

BIN = Path(FLASK).parent
SHORT = "x" * 31


# --- item 9: SECRET_KEY -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "weak"),
    [
        ("x", True),
        ("x" * 31, True),
        ("x" * 32, False),
        ("é" * 15 + "x", True),  # 16 characters, 31 bytes in UTF-8
        ("é" * 16, False),  # 16 characters, 32 bytes
        (b"\x00" * 32, False),
        ("", True),
    ],
)
def test_a_secret_key_needs_32_bytes(key, weak):
    problem = config_module.secret_key_problem(key)
    assert (problem is not None) == weak
    if weak:
        assert "at least 32" in problem


@pytest.fixture
def served_env(tmp_path):
    """The environment of a server or command on an initialised database of our own."""
    databases = Databases(
        "postgresql" if os.environ.get("TEST_DATABASE_URL") else "sqlite", tmp_path
    )
    url = databases.new()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            (
                "FLASK_",
                "DATABASE_",
                "SECRET_KEY",
                "TEST_DATABASE",
                "WORKERS",
                "RATELIMIT_",
                "TRUSTED_",
            )
        )
    }
    env.update(
        {
            "FLASK_APP": "app:create_app",
            "DATABASE_URL": url,
            "INSTANCE_PATH": str(tmp_path / "instance"),
        }
    )
    subprocess.run(
        [FLASK, "init-db"],
        cwd=ROOT,
        env=env,
        check=True,  # noqa: S603
        capture_output=True,
        timeout=120,
    )
    yield env
    databases.drop_all()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def refused(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode != 0, proc.stderr
    assert "refusing to serve: SECRET_KEY is 31 bytes long; at least 32" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_flask_run_refuses_a_short_secret_key(served_env):
    proc = subprocess.run(
        [FLASK, "run", "--port", str(free_port())],
        cwd=ROOT,  # noqa: S603
        env={**served_env, "SECRET_KEY": SHORT},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    refused(proc)


def gunicorn(env: dict[str, str], workers: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [
            str(BIN / "gunicorn"),
            "--workers",
            str(workers),
            "--bind",
            f"127.0.0.1:{free_port()}",
            "app:create_app()",
        ],
        cwd=ROOT,
        env={**env, "SECRET_KEY": SHORT},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("workers", [1, 2])
def test_gunicorn_refuses_a_short_secret_key(served_env, workers):
    # gunicorn.conf.py checks in the master before it forks: the server stops with
    # "App failed to load" (4), no worker started, no traceback (two workers refusing at
    # once used to crash the master with its HaltServer traceback and exit 1).
    proc = gunicorn(served_env, workers)
    refused(proc)
    assert proc.returncode == 4, proc.stderr
    assert "Booting worker" not in proc.stderr


def test_cli_commands_only_warn_about_a_short_secret_key(served_env):
    proc = subprocess.run(
        [FLASK, "rollups", "verify"],
        cwd=ROOT,  # noqa: S603
        env={**served_env, "SECRET_KEY": SHORT},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Warning: SECRET_KEY is 31 bytes long" in proc.stderr
    proc = subprocess.run(
        [FLASK, "rollups", "verify"],
        cwd=ROOT,  # noqa: S603
        env={**served_env, "SECRET_KEY": "y" * 32},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0 and "SECRET_KEY" not in proc.stderr, proc.stderr


def test_serving_checks_the_key_outside_debug_and_testing_only(tmp_path, monkeypatch):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.delenv("SECRET_KEY", raising=False)
    weak = create_app({"DATABASE_URL": "sqlite://", "SECRET_KEY": SHORT})
    with pytest.raises(SystemExit) as stopped:
        config_module.check_secret_key(weak, "serve")
    assert stopped.value.code == 4  # gunicorn's "App failed to load": the server stops
    config_module.check_secret_key(weak, "cli")  # warns only
    config_module.check_secret_key(weak, None)  # in-process use (tests, scripts)
    for settings in ({"TESTING": True}, {"DEBUG": True}):
        lenient = create_app({"DATABASE_URL": "sqlite://", "SECRET_KEY": SHORT, **settings})
        config_module.check_secret_key(lenient, "serve")
    # Unset, the generated key (64 characters) is used and accepted.
    generated = create_app({"DATABASE_URL": "sqlite://"})
    config_module.check_secret_key(generated, "serve")
    assert len((tmp_path / "instance" / "secret_key").read_text()) == 64


# --- item 6: TRUSTED_PROXIES ------------------------------------------------------------------


def login_posts(app, forwarded_for: str, proto: str | None = None):
    """POST /login with an empty form (400, counted by the per-address limit)."""
    headers = {"X-Forwarded-For": forwarded_for}
    if proto:
        headers["X-Forwarded-Proto"] = proto
    return app.test_client().post(
        "/login", data={}, headers=headers, environ_base={"REMOTE_ADDR": "10.9.9.9"}
    )


@pytest.mark.parametrize("hops", [0, 1])
def test_limits_key_on_the_client_behind_trusted_proxies_only(app, hops):
    app = create_app(
        {
            **{k: app.config[k] for k in ("DATABASE_URL", "SECRET_KEY")},
            "TESTING": True,
            "WTF_CSRF_ENABLED": False,
            "LOGIN_RATE_LIMIT": "2 per minute",
            "TRUSTED_PROXIES": hops,
        }
    )
    assert [login_posts(app, "203.0.113.1").status_code for _ in range(3)] == [400, 400, 429]
    other_client = login_posts(app, "203.0.113.2").status_code
    # Behind one trusted proxy, another client has its own count; with none, every
    # request comes from the proxy's address (10.9.9.9) and X-Forwarded-For is ignored.
    assert other_client == (400 if hops else 429)


def test_two_hops_take_the_address_the_outer_proxy_saw(app):
    app = create_app(
        {
            **{k: app.config[k] for k in ("DATABASE_URL", "SECRET_KEY")},
            "TESTING": True,
            "WTF_CSRF_ENABLED": False,
            "LOGIN_RATE_LIMIT": "2 per minute",
            "TRUSTED_PROXIES": 2,
        }
    )
    # The client may prepend anything; the two proxies appended what they saw.
    codes = [
        login_posts(app, f"{spoof}, 198.51.100.7, 10.0.0.2").status_code
        for spoof in ("1.1.1.1", "2.2.2.2", "3.3.3.3")
    ]
    assert codes == [400, 400, 429]
    # Another client, seen by the same outer proxy: a count of its own.
    assert login_posts(app, "198.51.100.8, 10.0.0.2").status_code == 400


@pytest.mark.parametrize("hops", [0, 1])
def test_https_at_the_proxy_turns_on_secure_cookies_and_hsts(app, hops):
    app = create_app(
        {
            **{k: app.config[k] for k in ("DATABASE_URL", "SECRET_KEY")},
            "TESTING": True,
            "TRUSTED_PROXIES": hops,
        }
    )
    client = app.test_client()
    response = client.get(
        "/login", headers={"X-Forwarded-For": "203.0.113.1", "X-Forwarded-Proto": "https"}
    )
    assert response.status_code == 200
    cookie = client.get_cookie("session")
    assert cookie is not None
    assert cookie.secure is bool(hops)
    assert ("Strict-Transport-Security" in response.headers) is bool(hops)


# --- item 6: make serve ----------------------------------------------------------------------


class Probe:
    """A fake storage check: answers for the URIs in up; remembers what was asked."""

    def __init__(self, *up: str) -> None:
        self.up = set(up)
        self.asked: list[str] = []

    def __call__(self, uri: str) -> bool:
        self.asked.append(uri)
        return uri in self.up


def test_serve_uses_the_local_redis_when_no_storage_is_set():
    probe = Probe("redis://127.0.0.1:6379")
    plan = serving.plan_serve(None, None, 2, probe)
    assert plan == serving.ServePlan(workers=5, storage_uri="redis://127.0.0.1:6379")
    assert probe.asked == ["redis://127.0.0.1:6379"]
    assert serving.plan_serve(None, "3", 8, probe) == serving.ServePlan(3, LOCAL)


LOCAL = "redis://127.0.0.1:6379"


@pytest.mark.parametrize(
    ("storage", "workers", "cores"),
    [
        (None, None, 2),  # no storage set, no Redis: 5 workers would each count alone
        (None, "2", 1),
        ("memory://", None, 1),  # memory set explicitly: the same problem, Redis or not
        ("memory://", "4", 1),
    ],
)
def test_serve_refuses_several_workers_with_in_memory_limits(storage, workers, cores):
    with pytest.raises(serving.ServeRefused) as refused:
        serving.plan_serve(storage, workers, cores, Probe() if storage is None else Probe(LOCAL))
    expected = int(workers) if workers else 2 * cores + 1
    assert f"refusing to start {expected} workers with in-memory rate limits" in str(refused.value)
    assert "WORKERS=1" in str(refused.value)


@pytest.mark.parametrize("storage", [None, "memory://"])
def test_one_worker_may_count_in_memory(storage):
    assert serving.plan_serve(storage, "1", 4, Probe()) == serving.ServePlan(1, None)


def test_a_configured_storage_is_used_when_it_answers():
    probe = Probe("redis://cache.internal:6380/2")
    plan = serving.plan_serve("redis://cache.internal:6380/2", None, 2, probe)
    assert plan == serving.ServePlan(5, None)
    with pytest.raises(serving.ServeRefused, match="does not answer"):
        serving.plan_serve("redis://:hunter2@gone.internal:6379", None, 2, probe)
    try:
        serving.plan_serve("redis://:hunter2@gone.internal:6379", None, 2, probe)
    except serving.ServeRefused as exc:
        assert "hunter2" not in str(exc)


@pytest.mark.parametrize("workers", ["0", "-3", "many", "2.5"])
def test_workers_must_be_a_whole_number_of_at_least_one(workers):
    with pytest.raises(serving.ServeRefused, match="WORKERS"):
        serving.plan_serve(None, workers, 2, Probe(LOCAL))


def test_the_storage_may_be_set_in_instance_config(tmp_path):
    (tmp_path / "config.py").write_text('RATELIMIT_STORAGE_URI = "memory://"\n')
    assert serving.configured_storage({}, str(tmp_path)) == "memory://"
    assert serving.configured_storage({"RATELIMIT_STORAGE_URI": LOCAL}, str(tmp_path)) == LOCAL
    assert serving.configured_storage({}, str(tmp_path / "none")) is None


def run_serve(env: dict[str, str], **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [str(BIN / "python"), "-m", "app.serving", "--dry-run", "127.0.0.1:8000"],
        cwd=ROOT,
        env={**env, "SECRET_KEY": "k" * 32, **extra},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_make_serve_runs_the_checked_start(served_env):
    make = subprocess.run(
        ["make", "-n", "serve", "HOST=127.0.0.1", "PORT=8000"],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "-m app.serving 127.0.0.1:8000" in make.stdout
    assert "gunicorn" not in make.stdout.replace("app.serving", "")
    # Memory set explicitly and three workers: refused before gunicorn starts, saying why.
    proc = run_serve(served_env, RATELIMIT_STORAGE_URI="memory://", WORKERS="3")
    assert proc.returncode == 2 and proc.stdout == ""
    assert "refusing to start 3 workers with in-memory rate limits" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run_serve(served_env, RATELIMIT_STORAGE_URI="memory://", WORKERS="1")
    assert proc.returncode == 0, proc.stderr
    assert shlex.split(proc.stdout)[1:] == [
        "--workers",
        "1",
        "--bind",
        "127.0.0.1:8000",
        "--access-logfile",
        "-",
        "app:create_app()",
    ]
    proc = run_serve(served_env, SECRET_KEY="short")
    assert proc.returncode == 2 and "SECRET_KEY is 5 bytes long" in proc.stderr


def test_make_serve_finds_the_local_redis(served_env):
    if not serving.storage_answers(LOCAL):
        pytest.skip("no Redis answers on 127.0.0.1:6379")
    proc = run_serve(served_env)
    assert proc.returncode == 0, proc.stderr
    workers = 2 * (os.cpu_count() or 1) + 1
    assert shlex.split(proc.stdout)[1:3] == ["--workers", str(workers)]
    assert f"{workers} workers, rate limits in redis://127.0.0.1:6379" in proc.stderr


def test_storage_answers_checks_for_real():
    assert not serving.storage_answers("redis://127.0.0.1:1")  # nothing listens on port 1
    assert serving.storage_answers("memory://")


def test_two_workers_started_by_make_serve_share_their_limits(served_env, tmp_path):
    if not serving.storage_answers(LOCAL):
        pytest.skip("no Redis answers on 127.0.0.1:6379")
    instance = Path(served_env["INSTANCE_PATH"])
    instance.mkdir(exist_ok=True)
    # Counters of our own in a Redis that other test runs may share.
    # (tmp_path's name repeats from run to run: a run a minute later would find its counts.)
    (instance / "config.py").write_text(f'RATELIMIT_KEY_PREFIX = "t-{uuid.uuid4().hex}"\n')
    port = free_port()
    env = {**served_env, "SECRET_KEY": "k" * 32, "WORKERS": "2", "API_RATE_LIMIT": "3 per minute"}
    server = subprocess.Popen(  # noqa: S603
        [str(BIN / "python"), "-m", "app.serving", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/login", timeout=2)  # noqa: S310
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, (
                    "the server did not start"
                )
                time.sleep(0.2)
        codes = []
        for _ in range(6):
            # A new connection each time: either worker may answer.
            try:
                urllib.request.urlopen(base + "/api/v1/partner/me", timeout=10)  # noqa: S310
            except urllib.error.HTTPError as exc:
                codes.append(exc.code)
        # Requests without a key are counted per address: 3 a minute in all, not per worker.
        assert codes == [401, 401, 401, 429, 429, 429]
    finally:
        server.terminate()
        _out, err = server.communicate(timeout=60)
    assert "2 workers, rate limits in redis://127.0.0.1:6379" in err
