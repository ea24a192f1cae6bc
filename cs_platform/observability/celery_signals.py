"""Celery task durations and failures as Prometheus metrics, and a worker-lost error that names its task.

Celery's own line for a pool process killed under a task ("Task handler raised error: WorkerLostError(
'Worker exited prematurely: signal 9 (SIGKILL) Job: 3.')") names neither the task nor its id, and with
acks_late + reject_on_worker_lost (our settings) the message is requeued without a task_failure signal.
LoggedRequest, the Request class of every task (cs_platform.celery), logs `task_worker_lost` with the
task's name and id first, and counts it as a failure."""

from __future__ import annotations

import time

import structlog
from celery import signals
from celery.exceptions import WorkerLostError
from celery.worker.request import Request

from cs_platform.observability import metrics

logger = structlog.get_logger("cs_platform.observability.celery")
_started: dict[str, float] = {}


def _task_started(task_id=None, **_kwargs) -> None:
    if task_id:
        _started[task_id] = time.monotonic()


def _task_finished(task_id=None, task=None, state=None, **_kwargs) -> None:
    started = _started.pop(task_id, None) if task_id else None
    if started is not None and task is not None:
        metrics.task_duration().labels(task=task.name, state=state or "UNKNOWN").observe(time.monotonic() - started)


def _task_failed(sender=None, exception=None, **_kwargs) -> None:
    name = getattr(sender, "name", None) or "unknown"
    metrics.task_failures().labels(task=name, exception=type(exception).__name__).inc()


def connect() -> None:
    signals.task_prerun.connect(_task_started, dispatch_uid="cs_metrics_prerun", weak=False)
    signals.task_postrun.connect(_task_finished, dispatch_uid="cs_metrics_postrun", weak=False)
    signals.task_failure.connect(_task_failed, dispatch_uid="cs_metrics_failure", weak=False)


def _lost(request: Request, exc: BaseException) -> bool:
    if isinstance(exc, WorkerLostError):
        return True
    # Billiard 4.3+ reports a child's exit as SystemExit; Celery treats it as a lost worker unless it
    # cancelled or revoked the task itself.
    return isinstance(exc, SystemExit | KeyboardInterrupt) and not (
        request._already_cancelled or request._already_revoked
    )


class LoggedRequest(Request):
    def on_failure(self, exc_info, send_failed_event=True, return_ok=False):
        exc = getattr(exc_info.exception, "exc", exc_info.exception)  # ExceptionWithTraceback wraps it
        if _lost(self, exc):
            logger.error(
                "task_worker_lost",
                task=self.task_name,
                task_id=self.id,
                error=str(exc) or type(exc).__name__,
                requeued=bool(self.task.acks_late and self.task.reject_on_worker_lost),
            )
            metrics.task_failures().labels(task=self.task_name, exception="WorkerLostError").inc()
        return super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)
