"""The serving configuration (issue #16, item 8): gunicorn.conf.py reads its GUNICORN_* variables and
refuses bad ones loudly, and the locust load test (tests/perf/locustfile.py) still imports and lists its
users. Untimed: the load figures come from tests/perf/bench_load.py (`make bench`)."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
CONF = ROOT / "gunicorn.conf.py"
GUNICORN = Path(sys.executable).with_name("gunicorn")


def load(monkeypatch, **env: str) -> dict:
    for key in [k for k in os.environ if k.startswith("GUNICORN_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return runpy.run_path(str(CONF))


def test_defaults_are_cores_plus_one_sync_workers_with_recycling(monkeypatch):
    # What measured best for this CPU-bound app (tests/perf/README.md, bench_load.py).
    conf = load(monkeypatch)
    assert conf["workers"] == min((os.cpu_count() or 1) + 1, 64)
    assert conf["threads"] == 1 and conf["worker_class"] == "sync"
    assert conf["bind"] == ["0.0.0.0:8000"]
    assert conf["timeout"] == 60 and conf["graceful_timeout"] == 30 and conf["keepalive"] == 5
    assert conf["max_requests"] == 2000 and conf["max_requests_jitter"] == 200
    assert conf["preload_app"] is False
    assert conf["accesslog"] is None  # the app's request_finished line is the access log
    # The observability hooks ride along (metrics directory emptied at start, gunicorn's lines as JSON).
    assert callable(conf["on_starting"]) and callable(conf["child_exit"])
    assert conf["logger_class"] == "cs_platform.observability.gunicorn_hooks.StructuredLogger"


def test_values_come_from_the_environment(monkeypatch):
    conf = load(
        monkeypatch,
        GUNICORN_WORKERS="2",
        GUNICORN_THREADS="4",
        GUNICORN_TIMEOUT="120",
        GUNICORN_KEEPALIVE="75",
        GUNICORN_GRACEFUL_TIMEOUT="45",
        GUNICORN_MAX_REQUESTS="0",
        GUNICORN_MAX_REQUESTS_JITTER="0",
        GUNICORN_BIND="127.0.0.1:9000, unix:/tmp/web.sock",
        GUNICORN_ACCESS_LOG="-",
    )
    assert (conf["workers"], conf["threads"], conf["worker_class"]) == (2, 4, "gthread")
    assert (conf["timeout"], conf["keepalive"], conf["graceful_timeout"]) == (120, 75, 45)
    assert (conf["max_requests"], conf["max_requests_jitter"]) == (0, 0)
    assert conf["bind"] == ["127.0.0.1:9000", "unix:/tmp/web.sock"]
    assert conf["accesslog"] == "-"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("GUNICORN_WORKERS", "three", "GUNICORN_WORKERS='three' is not a whole number"),
        ("GUNICORN_WORKERS", "0", "GUNICORN_WORKERS=0 is out of range"),
        ("GUNICORN_THREADS", "1000", "GUNICORN_THREADS=1000 is out of range"),
        ("GUNICORN_TIMEOUT", "1.5", "GUNICORN_TIMEOUT='1.5' is not a whole number"),
        ("GUNICORN_MAX_REQUESTS", "-1", "GUNICORN_MAX_REQUESTS=-1 is out of range"),
        ("GUNICORN_BIND", " , ", "GUNICORN_BIND is empty"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable(monkeypatch, name, value, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        load(monkeypatch, **{name: value})


def test_gunicorn_itself_stops_at_start_on_a_bad_value():
    """What an operator sees: gunicorn exits non-zero and prints the variable, before serving anything."""
    env = {**os.environ, "GUNICORN_THREADS": "lots"}
    done = subprocess.run(
        [str(GUNICORN), "-c", str(CONF), "--check-config", "cs_platform.wsgi:application"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "GUNICORN_THREADS='lots' is not a whole number" in done.stdout + done.stderr


def test_the_locustfile_imports_and_lists_its_users():
    # A subprocess: locust monkey-patches with gevent on import, which must not touch this process.
    env = {key: value for key, value in os.environ.items() if key != "LOAD_PLAN"}
    done = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(ROOT / "tests" / "perf" / "locustfile.py"), "--list"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for user in ("PageUser", "ApiUser", "BulkUser"):
        assert user in done.stdout
