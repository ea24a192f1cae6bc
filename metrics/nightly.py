"""The nightly recompute of one tenant: journeys, escalations, compliance status, then health.

Each step is a set-based, idempotent service (re-running for the same date rewrites the same rows),
so a run killed half-way is simply run again. A PostgreSQL session advisory lock per tenant makes
sure two runs of one tenant never overlap; it is released when the connection goes, so a killed
worker cannot leave it stuck. (For big tenants the lock covers the tenant-wide steps; the health
chunks that follow are keyed upserts, and only the attempt that started them may close the run.)
Each run is recorded in NightlyRun, which the tenant's admins see.
"""

from __future__ import annotations

import datetime
import logging
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from accounts.models import Account
from compliance.services import compliance_status_recompute
from cs_platform.audit.models import CheckpointReason
from cs_platform.audit.services import audit_checkpoint_create
from cs_platform.tenancy import context
from journeys.services import decisions_escalate, journey_status_recompute
from metrics.models import NightlyRun, RunStatus
from metrics.services import health_snapshots_compute

logger = logging.getLogger(__name__)
_LOCK_NAMESPACE = 7_402_312


class TenantRunLocked(RuntimeError):
    """Another run of this tenant holds the lock; the task retries later."""


@contextmanager
def tenant_lock(tenant_id: int) -> Iterator[None]:
    if connection.vendor != "postgresql":
        yield  # the SQLite demo runs one process
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_LOCK_NAMESPACE, tenant_id])
        if not cursor.fetchone()[0]:
            raise TenantRunLocked(f"tenant {tenant_id} is already being recomputed")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_LOCK_NAMESPACE, tenant_id])


def account_chunks(*, tenant, chunk_size: int) -> list[list[int]]:
    with context.tenant_context(tenant):
        ids = list(Account.objects.order_by("pk").values_list("pk", flat=True))
    return [ids[i : i + chunk_size] for i in range(0, len(ids), chunk_size)]


def _run_record(tenant, day: datetime.date) -> NightlyRun:
    with context.tenant_context(tenant):
        run, _ = NightlyRun.objects.get_or_create(tenant=tenant, run_date=day)
        run.status, run.attempts, run.started_at, run.finished_at, run.error = (
            RunStatus.RUNNING, run.attempts + 1, timezone.now(), None, "",
        )  # fmt: skip
        run.save()
    return run


def _on_threads(calls: list[Callable[[], Any]], *, workers: int) -> list[Any]:
    """Run the calls on `workers` threads, each with its own database connection (closed when its
    call ends), and return their results in order; the first exception is raised. PostgreSQL then
    works on several statements at once: psycopg2 releases the GIL while the server computes."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    def run(call: Callable[[], Any]) -> Any:
        try:
            return call()
        finally:
            connections.close_all()  # this thread's connections only

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="nightly") as pool:
        return list(pool.map(run, calls))


def tenant_wide_steps(*, tenant, day: datetime.date, parallel: bool = False) -> dict[str, Any]:
    """Journeys (with escalations) and compliance first: health reads their results. The two are
    independent (different tables; the audit chain serialises their events itself), so with
    `parallel` they run side by side on two connections."""

    def journeys() -> dict[str, Any]:
        return {
            "escalations": decisions_escalate(tenant=tenant, day=day),
            "journeys": journey_status_recompute(tenant=tenant, day=day),
        }

    def compliance() -> dict[str, Any]:
        return {"compliance": compliance_status_recompute(tenant=tenant, day=day)}

    if parallel and connection.vendor == "postgresql":
        first, second = _on_threads([journeys, compliance], workers=2)
        return {**first, **second}
    return {**journeys(), **compliance()}


def _this_attempt(day: datetime.date, attempt: int | None):
    runs = NightlyRun.objects.filter(run_date=day)
    # A late finisher of an older attempt must not close (or fail) a newer attempt's run.
    return runs if attempt is None else runs.filter(attempts=attempt)


def finish_run(
    *, tenant, day: datetime.date, summary: dict[str, Any], started: float, attempt: int | None = None
) -> dict[str, Any]:
    from api.idempotency import idempotency_records_purge
    from dashboards.services import segment_snapshots_compute
    from webhooks.services import webhook_events_emit

    # After every health chunk: the portfolio's per-segment figures read today's snapshots.
    summary["segments"] = segment_snapshots_compute(tenant=tenant, day=day)
    # Last: band changes need every chunk's snapshots; compliance and escalations ran before them.
    summary["webhooks"] = webhook_events_emit(tenant=tenant, day=day)
    # Expired Idempotency-Key answers are a replay cache, not records (the stored rows and their
    # audit events are); the count lands in this run's summary.
    summary["idempotency_purged"] = idempotency_records_purge(tenant=tenant)
    # Last of all: sign the chain head with every event this run recorded (status changes, escalations).
    checkpoint = audit_checkpoint_create(tenant=tenant, reason=CheckpointReason.NIGHTLY)
    summary["audit_checkpoint"] = {"number": checkpoint.number, "seq": checkpoint.seq}
    summary["seconds"] = round(time.time() - started, 3)
    with context.tenant_context(tenant):
        _this_attempt(day, attempt).update(status=RunStatus.DONE, finished_at=timezone.now(), summary=summary, error="")
    return summary


def fail_run(*, tenant, day: datetime.date, exc: BaseException, attempt: int | None = None) -> None:
    logger.error("nightly recompute of %s for %s failed: %s", tenant.slug, day, exc, exc_info=exc)
    with context.tenant_context(tenant):
        _this_attempt(day, attempt).update(
            status=RunStatus.FAILED, finished_at=timezone.now(),
            error="".join(traceback.format_exception_only(type(exc), exc)).strip()[:4000],
        )  # fmt: skip


def run_tenant(
    *, tenant, day: datetime.date, chunk_size: int | None = None, workers: int | None = None
) -> dict[str, Any]:
    """The whole nightly run of one tenant, synchronously (management command, eager demo, small
    tenants on a worker). Raises TenantRunLocked if another run holds the tenant.

    workers: health chunks scored in parallel (PostgreSQL only; default NIGHTLY_WORKERS). Each chunk
    is its own transaction either way, as when the chord runs them on several Celery workers."""
    chunk_size = chunk_size or settings.NIGHTLY_CHUNK_SIZE
    workers = workers or settings.NIGHTLY_WORKERS
    started = time.time()
    with tenant_lock(tenant.pk):
        _run_record(tenant, day)
        try:
            summary = tenant_wide_steps(tenant=tenant, day=day, parallel=workers > 1)
            chunks = account_chunks(tenant=tenant, chunk_size=chunk_size)
            if workers > 1 and len(chunks) > 1 and connection.vendor == "postgresql":
                # As the Celery chord fans chunks out to workers, for the synchronous command.
                results = _on_threads(
                    [partial(health_snapshots_compute, tenant=tenant, day=day, account_ids=ids) for ids in chunks],
                    workers=workers,
                )
            else:
                results = [health_snapshots_compute(tenant=tenant, day=day, account_ids=ids) for ids in chunks]
            bands: dict[str, int] = {}
            for result in results:
                for band, n in result["bands"].items():
                    bands[band] = bands.get(band, 0) + n
            summary["health"] = {"accounts": sum(r["accounts"] for r in results), "bands": bands}
        except Exception as exc:
            fail_run(tenant=tenant, day=day, exc=exc)
            raise
        return finish_run(tenant=tenant, day=day, summary=summary, started=started)


def local_run_date(tenant, now: datetime.datetime | None = None) -> datetime.date | None:
    """The date a tenant's nightly run is for, if it is due: from 02:00 local time onwards."""
    import zoneinfo

    local = (now or timezone.now()).astimezone(zoneinfo.ZoneInfo(tenant.time_zone))
    return local.date() if local.hour >= settings.NIGHTLY_LOCAL_HOUR else None


def local_today(tenant) -> datetime.date:
    import zoneinfo

    return timezone.now().astimezone(zoneinfo.ZoneInfo(tenant.time_zone)).date()
