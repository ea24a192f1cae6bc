"""Gunicorn settings for the web app, read from the environment (issue #16, item 8: capacity).

    gunicorn -c gunicorn.conf.py cs_platform.wsgi:application

What was measured (tests/perf/bench_load.py, tests/perf/README.md): this app's requests are CPU-bound
(~45-70 ms of CPU each, three quarters of it Python), so two cores saturate at ~41 requests/s whatever
the worker model. 2 x 4 gthread, 3 x 2, 4 x 1 and 3 x 1 sync measured within noise of each other under
load, and on a quiet machine 3 sync workers had the better tail (threads of one process share the GIL,
so CPU-bound requests interleave and finish late together). Hence the default: cores + 1 sync workers.
GUNICORN_THREADS > 1 (gthread) pays off only when requests wait on I/O. Sizing: README ("Sizing").

Every variable is optional; a value that is not a number in range stops gunicorn at start with a
message naming the variable (gunicorn prints "Error: ..." and exits 1), never a silently ignored typo.

| variable | default | meaning |
| --- | --- | --- |
| GUNICORN_BIND | 0.0.0.0:8000 | address(es) to listen on, comma-separated |
| GUNICORN_WORKERS | CPU count + 1 (1-64) | worker processes |
| GUNICORN_THREADS | 1 (1-64) | threads per worker; above 1 the worker class is gthread |
| GUNICORN_TIMEOUT | 60 s | a worker silent this long is killed (gthread: a hung worker; sync: a slow request) |
| GUNICORN_GRACEFUL_TIMEOUT | 30 s | on restart/stop, time for requests in flight to finish |
| GUNICORN_KEEPALIVE | 5 s | idle keep-alive connections (behind a proxy: above the proxy's) |
| GUNICORN_MAX_REQUESTS | 2000 (0 = never) | a worker is recycled after this many requests (bounds leaks) |
| GUNICORN_MAX_REQUESTS_JITTER | 200 | random extra, so workers do not all recycle at once |
| GUNICORN_ACCESS_LOG | empty (none) | access log file, "-" for stdout; off by default, as the app logs one
  request_finished JSON line per request (with request id, tenant, user, status and duration) |

The Prometheus multiprocess hooks and gunicorn's own log lines in the app's format (LOG_FORMAT) come from
cs_platform.observability.gunicorn_hooks, imported below.
"""

from __future__ import annotations

import os

# Server hooks and the logger class, picked up by name from this module's namespace: the multiprocess
# metrics directory is emptied at start and dead workers' gauges dropped; gunicorn's lines become JSON.
from cs_platform.observability.gunicorn_hooks import child_exit, logger_class, on_starting  # noqa: F401


def _int_env(name: str, default: int, *, low: int, high: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a whole number (expected {low} to {high})") from None
    if not low <= value <= high:
        raise ValueError(f"{name}={value} is out of range (expected {low} to {high})")
    return value


bind = [part.strip() for part in os.environ.get("GUNICORN_BIND", "0.0.0.0:8000").split(",") if part.strip()]
if not bind:
    raise ValueError("GUNICORN_BIND is empty (expected e.g. 0.0.0.0:8000)")
workers = _int_env("GUNICORN_WORKERS", min((os.cpu_count() or 1) + 1, 64), low=1, high=64)
threads = _int_env("GUNICORN_THREADS", 1, low=1, high=64)
worker_class = "gthread" if threads > 1 else "sync"
timeout = _int_env("GUNICORN_TIMEOUT", 60, low=5, high=3600)
graceful_timeout = _int_env("GUNICORN_GRACEFUL_TIMEOUT", 30, low=1, high=3600)
keepalive = _int_env("GUNICORN_KEEPALIVE", 5, low=1, high=600)
max_requests = _int_env("GUNICORN_MAX_REQUESTS", 2000, low=0, high=10_000_000)
max_requests_jitter = _int_env("GUNICORN_MAX_REQUESTS_JITTER", 200, low=0, high=1_000_000)
# The heartbeat file on tmpfs: on a container's overlay filesystem a blocked disk write could make the
# arbiter think a busy worker is dead.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108 - tmpfs, gunicorn's own file
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "").strip() or None
# Each worker imports the app itself (no preload): nothing opened at import time (a connection, a
# metrics registry, a logging handler) can end up shared between forked workers.
preload_app = False
