"""Celery entry points for the nightly pipeline. Thin: they look up ids and call nightly.pipeline.

The task names keep their "metrics." prefix from before the pipeline had its own app: they are what the
beat schedule, queued messages and the task metrics' labels refer to."""

from __future__ import annotations

import datetime
import logging

from celery import chord, shared_task
from django.conf import settings
from django.db import OperationalError, transaction
from django.utils import timezone

from cs_platform.tenancy import context
from cs_platform.tenancy.models import Tenant
from metrics.models import NightlyRun, RunStatus
from nightly import pipeline as nightly

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = nightly.MAX_ATTEMPTS


@shared_task(name="metrics.nightly_dispatch", time_limit=300, soft_time_limit=280)
def nightly_dispatch() -> list[int]:
    """Beat calls this every 15 minutes. For each tenant whose local time is past 02:00 and whose run
    for its local date has not succeeded (nor is running), queue that tenant's run. Fan-out: one task
    per tenant, so one tenant's failure never holds up another's."""
    queued = []
    now = timezone.now()
    for tenant in Tenant.objects.all():
        day = nightly.local_run_date(tenant, now)
        if day is None:
            continue
        # Read inside the tenant: RLS shows the app role one tenant at a time. One indexed query per due
        # tenant, every 15 minutes.
        with context.tenant_context(tenant):
            run = NightlyRun.objects.filter(run_date=day).first()
        # A running run counts as alive while it beats (NIGHTLY_STALE_SECONDS); the watchdog fails and
        # retries one that stopped beating well before this 15-minute tick comes round.
        if run is not None and (
            run.status == RunStatus.DONE
            or (run.status == RunStatus.RUNNING and not run.is_stale(now))
            or (run.status == RunStatus.FAILED and run.attempts >= MAX_ATTEMPTS)
        ):
            continue
        transaction.on_commit(lambda t=tenant.pk, d=day: nightly_tenant.delay(t, d.isoformat()))
        queued.append(tenant.pk)
    return queued


@shared_task(
    bind=True,
    name="metrics.nightly_tenant",
    acks_late=True,
    autoretry_for=(nightly.TenantRunLocked, OperationalError),
    retry_backoff=30,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=5,
    time_limit=3600,
    soft_time_limit=3500,
)
def nightly_tenant(self, tenant_id: int, day_iso: str, chunk_size: int | None = None, force: bool = False) -> dict:
    """One tenant's nightly run, through the same pipeline as `manage.py recompute`. Small tenants are
    scored in this task; for big ones the health chunks fan out as a chord that finishes the run.

    Once it holds the tenant lock, a task finds the date already done (a colliding task finished it
    while this one waited: TenantRunLocked retries) or run by a live attempt, and stops: the night is
    not recomputed twice. force=True (an operator's deliberate re-run) runs it regardless."""
    tenant = Tenant.objects.get(pk=tenant_id)

    def fan_out(*, chunks: list[list[int]], summary: dict, started: float, attempt: int) -> dict:
        header = [nightly_health_chunk.s(tenant_id, day_iso, ids[0], ids[-1], attempt) for ids in chunks]
        finish = nightly_finish.s(tenant_id, day_iso, summary, started, attempt)
        # If a chunk fails for good, the run is marked failed (visible to admins) instead of hanging.
        transaction.on_commit(
            lambda: chord(header)(finish.on_error(nightly_chunks_failed.s(tenant_id, day_iso, attempt)))
        )
        return {"chunks": len(chunks), "attempt": attempt}

    return nightly.run_tenant(
        tenant=tenant,
        day=datetime.date.fromisoformat(day_iso),
        chunk_size=chunk_size or settings.NIGHTLY_CHUNK_SIZE,
        skip_if_in_hand=not force,
        fan_out=fan_out,
    )


@shared_task(
    name="metrics.nightly_health_chunk",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=10,
    max_retries=5,
    time_limit=1800,
    soft_time_limit=1700,
)
def nightly_health_chunk(tenant_id: int, day_iso: str, first_id: int, last_id: int, attempt: int | None = None) -> dict:
    tenant = Tenant.objects.get(pk=tenant_id)
    day = datetime.date.fromisoformat(day_iso)
    return nightly.health_chunk_run(tenant=tenant, day=day, first_id=first_id, last_id=last_id, attempt=attempt)


@shared_task(name="metrics.nightly_chunks_failed", time_limit=60, soft_time_limit=50)
def nightly_chunks_failed(request, exc, traceback, tenant_id: int, day_iso: str, attempt: int) -> None:
    tenant = Tenant.objects.get(pk=tenant_id)
    nightly.fail_run(tenant=tenant, day=datetime.date.fromisoformat(day_iso), exc=exc, attempt=attempt)


@shared_task(name="metrics.nightly_finish", acks_late=True, time_limit=300, soft_time_limit=280)
def nightly_finish(
    results: list[dict], tenant_id: int, day_iso: str, summary: dict, started: float, attempt: int | None = None
) -> dict:
    summary["health"] = nightly.health_summary(results, chunks=True)
    tenant = Tenant.objects.get(pk=tenant_id)
    day = datetime.date.fromisoformat(day_iso)
    with nightly.heartbeat(tenant=tenant, day=day, attempt=attempt):
        return nightly.finish_run(tenant=tenant, day=day, summary=summary, started=started, attempt=attempt)


@shared_task(name="metrics.nightly_watchdog", time_limit=300, soft_time_limit=280)
def nightly_watchdog() -> dict[str, int]:
    """Beat runs this every NIGHTLY_WATCHDOG_SECONDS. Per tenant (one indexed query): a running run
    whose heartbeat is older than NIGHTLY_STALE_SECONDS is marked failed (its worker died) and queued
    again while attempts remain; every failed run not alerted yet is alerted (email and webhook, once
    per failed attempt). One tenant's trouble never holds up another's."""
    now = timezone.now()
    counts = {"stalled": 0, "retried": 0, "alerted": 0}
    for tenant in Tenant.objects.all():
        try:
            stalled_ids, failed_ids = nightly.nightly_runs_needing_attention(tenant=tenant, now=now)
            for run_id in stalled_ids:
                run = nightly.nightly_run_stall(tenant=tenant, run_id=run_id, now=now)
                if run is None:
                    continue
                counts["stalled"] += 1
                failed_ids.append(run_id)
                if run.attempts < MAX_ATTEMPTS:
                    counts["retried"] += 1
                    transaction.on_commit(lambda t=tenant.pk, d=run.run_date: nightly_tenant.delay(t, d.isoformat()))
            for run_id in failed_ids:
                counts["alerted"] += nightly.nightly_run_alert(tenant=tenant, run_id=run_id)
        except Exception:  # noqa: BLE001 - the next tick tries this tenant again
            logger.exception("nightly watchdog failed for tenant %s", tenant.pk)
    return counts
