"""Worker log lines on a real Celery worker (prefork, Redis broker, JSON logs): a task's lines carry the
task name and id and the request id of the request that queued it; a pool process killed under a task
(kill -9, as the OOM killer does) is logged as `task_worker_lost` naming the task, and the task runs again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import pytest
import structlog
from django.conf import settings

from cs_platform.celery import app as celery_app
from tests.metrics.test_celery_worker import Worker, _broker_forget, _worker_database_url
from tests.observability import tasks


def _json_lines(text: str) -> list[dict]:
    lines = []
    for raw in text.splitlines():
        try:
            lines.append(json.loads(raw))
        except ValueError:
            continue  # Celery's start-up banner is printed, not logged
    return lines


@pytest.fixture
def worker(tmp_path):
    queue = f"obs-test-{uuid.uuid4().hex[:12]}"
    name = f"w{uuid.uuid4().hex[:10]}@obs-test"
    log = tmp_path / "worker.log"
    env = {**os.environ, "DATABASE_URL": _worker_database_url(), "PYTHONUNBUFFERED": "1", "LOG_FORMAT": "json"}
    env.pop("DATABASE_OWNER_URL", None)
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "cs_platform",
        "worker",
        "--pool=prefork",
        "--concurrency=1",
        "-l",
        "info",
        "-Q",
        queue,
        "-n",
        name,
        "--without-mingle",
        "--without-gossip",
        "--include",
        "tests.observability.tasks",
    ]
    _broker_forget(queue)
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=settings.BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    started = Worker(name=name, process=process, log=log)
    try:
        deadline = time.monotonic() + 30
        while not celery_app.control.ping(destination=[name], timeout=0.5):
            assert process.poll() is None, started.output()
            assert time.monotonic() < deadline, started.output()
        started.queue = queue
        yield started
    finally:
        started.stop()
        print(started.output())
        _broker_forget(queue, [name])


def _wait_for_line(worker, predicate, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [line for line in _json_lines(worker.output()) if predicate(line)]
        if found:
            return found[0]
        time.sleep(0.05)
    pytest.fail(f"no such log line; the worker logged:\n{worker.output()}")


def test_task_lines_carry_task_name_id_and_the_queuing_request_id(worker):
    # As inside a request: django_structlog's RequestMiddleware binds the request id to the context, and
    # its publish signal hands it to the task in the message headers.
    with structlog.contextvars.bound_contextvars(request_id="req-obs-0001"):
        result = tasks.log_line.apply_async(("hello",), queue=worker.queue)
    assert result.get(timeout=30) == "hello"
    line = _wait_for_line(worker, lambda x: x.get("event") == "task says hello")
    assert line["level"] == "warning" and line["logger"] == "tests.observability.tasks"
    assert (line["task"], line["task_id"], line["request_id"]) == (
        "tests.observability.log_line",
        result.id,
        "req-obs-0001",
    )
    assert "timestamp" in line
    succeeded = _wait_for_line(worker, lambda x: x.get("event") == "task_succeeded")
    assert succeeded["task_id"] == result.id and succeeded["task"] == "tests.observability.log_line"


def test_a_worker_lost_under_a_task_is_logged_naming_the_task(worker, tmp_path):
    marker = tmp_path / "killed-once"
    result = tasks.lose_worker.apply_async((str(marker),), queue=worker.queue)
    # The pool process dies; the message goes back to the queue (acks_late, reject_on_worker_lost) and a
    # new pool process finishes it.
    assert result.get(timeout=60) == "finished on redelivery"
    assert marker.exists()
    lost = _wait_for_line(worker, lambda x: x.get("event") == "task_worker_lost")
    assert lost["level"] == "error"
    assert (lost["task"], lost["task_id"]) == ("tests.observability.lose_worker", result.id)
    assert "signal 9" in lost["error"] and lost["requeued"] is True
