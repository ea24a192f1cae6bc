"""Tasks for the observability tests only: the worker test loads them with `celery worker --include`."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

from celery import shared_task

logger = logging.getLogger("tests.observability.tasks")


@shared_task(name="tests.observability.fail", time_limit=30, soft_time_limit=25)
def fail() -> None:
    raise RuntimeError("this task fails on purpose")


@shared_task(name="tests.observability.log_line", time_limit=30, soft_time_limit=25)
def log_line(text: str) -> str:
    logger.warning("task says %s", text)
    return text


@shared_task(name="tests.observability.lose_worker", acks_late=True, time_limit=60, soft_time_limit=55)
def lose_worker(marker: str) -> str:
    """The first delivery kills its own pool process (as the OOM killer would); the redelivery finishes."""
    path = Path(marker)
    if not path.exists():
        path.write_text("killed once")
        os.kill(os.getpid(), signal.SIGKILL)
    return "finished on redelivery"
