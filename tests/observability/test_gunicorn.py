"""The production web process: gunicorn with two workers, the docker-compose hooks and Prometheus'
multiprocess directory. One /metrics adds up both workers' requests, a previous run's files are wiped
at start, and every line gunicorn and the app write is JSON."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from django.conf import settings

from tests.metrics.test_celery_worker import _worker_database_url
from tests.outages import free_port


def _get(url: str, timeout: float = 5) -> str:
    return urllib.request.urlopen(url, timeout=timeout).read().decode()  # noqa: S310 - http://127.0.0.1 only


def _healthz_count(page: str) -> float:
    name = "django_http_requests_total_by_view_transport_method_total{"
    line = next(x for x in page.splitlines() if x.startswith(name) and 'view="healthz"' in x)
    return float(line.rsplit(" ", 1)[1])


def test_two_gunicorn_workers_share_one_metrics_page(django_db_setup, tmp_path):
    directory = tmp_path / "prometheus"
    directory.mkdir()
    (directory / "counter_999999.db").write_bytes(b"left by the previous container")
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": _worker_database_url(),
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
        "LOG_FORMAT": "json",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DATABASE_OWNER_URL", None)
    log = tmp_path / "gunicorn.log"
    command = [
        str(Path(sys.executable).with_name("gunicorn")),
        "cs_platform.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "2",
        "--config",
        "gunicorn.conf.py",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=settings.BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                _get(f"{base}/healthz", timeout=20)  # no abandoned request may count later
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        before = _healthz_count(_get(f"{base}/metrics", timeout=10))
        for _ in range(40):  # spread over the two workers
            _get(f"{base}/healthz")
        page = _get(f"{base}/metrics", timeout=10)
        pids = {path.name.split("_")[-1] for path in directory.glob("counter_*.db")}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)

    assert _healthz_count(page) - before == 40, page
    assert "999999.db" not in pids and len(pids) >= 2, pids  # wiped at start; files of each worker
    records = [json.loads(raw) for raw in log.read_text().splitlines() if raw.strip()]  # every line is JSON
    assert any(r["logger"] == "gunicorn.error" and r["event"].startswith("Booting worker") for r in records)
    assert sum(r["event"] == "request_finished" and r["request"] == "GET /metrics" for r in records) == 2
