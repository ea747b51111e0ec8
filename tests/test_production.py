"""Production defaults (issue 12, items 6 and 9): the SECRET_KEY rule, `make serve`'s plan
of workers and rate-limit storage, and TRUSTED_PROXIES."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from app import config as config_module
from app import create_app
from tests.reliability_support import FLASK, ROOT, Databases

BIN = Path(FLASK).parent
SHORT = "x" * 31


# --- item 9: SECRET_KEY -----------------------------------------------------------------------

@pytest.mark.parametrize(("key", "weak"), [
    ("x", True),
    ("x" * 31, True),
    ("x" * 32, False),
    ("é" * 15 + "x", True),     # 16 characters, 31 bytes in UTF-8
    ("é" * 16, False),          # 16 characters, 32 bytes
    (b"\x00" * 32, False),
    ("", True),
])
def test_a_secret_key_needs_32_bytes(key, weak):
    problem = config_module.secret_key_problem(key)
    assert (problem is not None) == weak
    if weak:
        assert "at least 32" in problem


@pytest.fixture
def served_env(tmp_path):
    """The environment of a server or command on an initialised database of our own."""
    databases = Databases("postgresql" if os.environ.get("TEST_DATABASE_URL") else "sqlite",
                          tmp_path)
    url = databases.new()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FLASK_", "DATABASE_", "SECRET_KEY", "TEST_DATABASE",
                                "WORKERS", "RATELIMIT_", "TRUSTED_"))}
    env.update({"FLASK_APP": "app:create_app", "DATABASE_URL": url,
                "INSTANCE_PATH": str(tmp_path / "instance")})
    subprocess.run([FLASK, "init-db"], cwd=ROOT, env=env, check=True,  # noqa: S603
                   capture_output=True, timeout=120)
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
    proc = subprocess.run([FLASK, "run", "--port", str(free_port())], cwd=ROOT,  # noqa: S603
                          env={**served_env, "SECRET_KEY": SHORT}, capture_output=True,
                          text=True, timeout=60, check=False)
    refused(proc)


def test_gunicorn_refuses_a_short_secret_key(served_env):
    proc = subprocess.run(  # noqa: S603
        [str(BIN / "gunicorn"), "--workers", "2", "--bind", f"127.0.0.1:{free_port()}",
         "app:create_app()"], cwd=ROOT, env={**served_env, "SECRET_KEY": SHORT},
        capture_output=True, text=True, timeout=60, check=False)
    refused(proc)
    assert "App failed to load" in proc.stderr  # stopped, not restarting workers forever


def test_cli_commands_only_warn_about_a_short_secret_key(served_env):
    proc = subprocess.run([FLASK, "rollups", "verify"], cwd=ROOT,  # noqa: S603
                          env={**served_env, "SECRET_KEY": SHORT}, capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "Warning: SECRET_KEY is 31 bytes long" in proc.stderr
    proc = subprocess.run([FLASK, "rollups", "verify"], cwd=ROOT,  # noqa: S603
                          env={**served_env, "SECRET_KEY": "y" * 32}, capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0 and "SECRET_KEY" not in proc.stderr, proc.stderr


def test_serving_checks_the_key_outside_debug_and_testing_only(tmp_path, monkeypatch):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.delenv("SECRET_KEY", raising=False)
    weak = create_app({"DATABASE_URL": "sqlite://", "SECRET_KEY": SHORT})
    with pytest.raises(SystemExit) as stopped:
        config_module.check_secret_key(weak, "serve")
    assert stopped.value.code == 4  # gunicorn's "App failed to load": the server stops
    config_module.check_secret_key(weak, "cli")    # warns only
    config_module.check_secret_key(weak, None)     # in-process use (tests, scripts)
    for settings in ({"TESTING": True}, {"DEBUG": True}):
        lenient = create_app({"DATABASE_URL": "sqlite://", "SECRET_KEY": SHORT, **settings})
        config_module.check_secret_key(lenient, "serve")
    # Unset, the generated key (64 characters) is used and accepted.
    generated = create_app({"DATABASE_URL": "sqlite://"})
    config_module.check_secret_key(generated, "serve")
    assert len((tmp_path / "instance" / "secret_key").read_text()) == 64
