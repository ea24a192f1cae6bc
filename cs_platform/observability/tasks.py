"""Celery entry points of the observability app."""

from __future__ import annotations

from celery import shared_task

from cs_platform.observability.selectors import BEAT
from cs_platform.observability.services import heartbeat_record


@shared_task(name="observability.beat_tick", time_limit=30, soft_time_limit=25, ignore_result=True)
def beat_tick() -> None:
    """Beat queues this every minute; a worker running it proves beat, the broker, a worker and the
    database all work. /readyz fails when the tick is older than READINESS_BEAT_MAX_AGE_SECONDS."""
    heartbeat_record(name=BEAT)
