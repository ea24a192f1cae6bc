"""Readiness checks (django-health-check). Each check's public message is short and fixed: it names what
failed, never a host, a password, a tenant or an exception text (those go to the log).

Upper layers add checks with `register_readiness_check` (the `monitoring` app adds the nightly run age)."""

from __future__ import annotations

import dataclasses
import datetime

from asgiref.sync import sync_to_async
from django.conf import settings
from health_check import checks as library
from health_check.base import HealthCheck
from health_check.exceptions import HealthCheckException, ServiceUnavailable

from cs_platform.observability import selectors

_extra_checks: list[tuple[str, type[HealthCheck]]] = []


def register_readiness_check(name: str, check: type[HealthCheck]) -> None:
    if name not in dict(_extra_checks):
        _extra_checks.append((name, check))


def readiness_checks() -> list[tuple[str, HealthCheck]]:
    """(public name, check) in the order /readyz reports them."""
    checks: list[tuple[str, HealthCheck]] = [("database", Database()), ("cache", Cache())]
    if not settings.CELERY_TASK_ALWAYS_EAGER:  # the demo has no broker and no beat: nothing to check
        checks += [("broker", Broker()), ("beat", BeatTick())]
    checks += [(name, check()) for name, check in _extra_checks]
    return checks


@dataclasses.dataclass
class Database(library.Database):
    """SELECT 1 on a connection of its own; the driver's message (host, port) stays in the log."""

    timeout = datetime.timedelta(seconds=5)

    def run(self):
        try:
            super().run()
        except HealthCheckException as exc:
            raise ServiceUnavailable("database unavailable") from exc


@dataclasses.dataclass
class Cache(library.Cache):
    """Sets and reads a key in the default cache (Redis)."""

    timeout: datetime.timedelta = dataclasses.field(default=datetime.timedelta(seconds=5), repr=False)

    async def run(self):
        try:
            await super().run()
        except HealthCheckException as exc:
            raise ServiceUnavailable("cache unavailable") from exc


@dataclasses.dataclass
class Broker(HealthCheck):
    """Opens a connection to the Celery broker (no worker needed: the worker has its own healthcheck)."""

    timeout = datetime.timedelta(seconds=5)

    def run(self):
        from kombu import Connection

        try:
            with Connection(settings.CELERY_BROKER_URL, connect_timeout=3) as connection:
                connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=3)
        except Exception as exc:  # kombu raises OperationalError, OSError, redis errors...
            raise ServiceUnavailable("broker unavailable") from exc


@dataclasses.dataclass
class BeatTick(HealthCheck):
    """The last beat tick (observability.beat_tick, every minute) is at most READINESS_BEAT_MAX_AGE_SECONDS old.
    Read on the request's own thread and connection (thread_sensitive)."""

    timeout = datetime.timedelta(seconds=5)

    async def run(self):
        try:
            age = await sync_to_async(selectors.heartbeat_age_seconds, thread_sensitive=True)(selectors.BEAT)
        except Exception as exc:
            raise ServiceUnavailable("beat tick unreadable") from exc
        limit = settings.READINESS_BEAT_MAX_AGE_SECONDS
        if age is None:
            raise ServiceUnavailable("no beat tick recorded yet")
        if age > limit:
            raise ServiceUnavailable(f"last beat tick {int(age)} s ago (limit {limit} s)")
