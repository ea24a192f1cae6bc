"""Gunicorn hooks for Prometheus' multiprocess mode (docker-compose: `-c python:cs_platform.observability.
gunicorn_hooks`). With PROMETHEUS_MULTIPROC_DIR set, each gunicorn worker writes its metric values to files
there and /metrics aggregates them: the directory must start empty (values of a previous container's
processes would be added in), and a worker that exits leaves its files for counters and histograms (they
stay part of the totals) while its live gauges are dropped."""

from __future__ import annotations

import os
import shutil


def on_starting(server) -> None:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory, exist_ok=True)


def child_exit(server, worker) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def _structured_formatter():
    import structlog

    from cs_platform.observability.logs import config

    debug = os.environ.get("DEBUG", "").strip().lower() in {"1", "true", "yes", "on"}
    fmt = (os.environ.get("LOG_FORMAT") or ("console" if debug else "json")).strip().lower()
    spec = dict(config(level=os.environ.get("LOG_LEVEL", "INFO").upper(), fmt=fmt)["formatters"]["structured"])
    spec.pop("()")
    return structlog.stdlib.ProcessorFormatter(**spec)


try:
    from gunicorn.glogging import Logger as _GunicornLogger
except ImportError:  # imported outside gunicorn (tests of this module)
    _GunicornLogger = object


class StructuredLogger(_GunicornLogger):
    """gunicorn's own lines (boot, worker timeouts and exits) in the app's format (LOG_FORMAT), so a
    "WORKER TIMEOUT" is a JSON line like every other."""

    def setup(self, cfg):
        super().setup(cfg)
        formatter = _structured_formatter()
        for handler in self.error_log.handlers:
            handler.setFormatter(formatter)


logger_class = "cs_platform.observability.gunicorn_hooks.StructuredLogger"
