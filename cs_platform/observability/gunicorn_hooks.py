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
