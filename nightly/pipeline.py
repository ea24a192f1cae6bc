"""The nightly recompute of one tenant: journeys, escalations, compliance status, then health.

Each step is a set-based, idempotent service (re-running for the same date rewrites the same rows),
so a run killed half-way is simply run again. A PostgreSQL session advisory lock per tenant makes
sure two runs of one tenant never overlap; it is released when the connection goes, so a killed
worker cannot leave it stuck. (For big tenants the lock covers the tenant-wide steps; the health
chunks that follow are keyed upserts, and only the attempt that started them may close the run.)
Each run is recorded in NightlyRun, which the tenant's admins see.

Liveness (issue #16 item 4): the running attempt stamps NightlyRun.heartbeat_at at every step and
health chunk, and a background thread (its own connection) stamps it every NIGHTLY_HEARTBEAT_SECONDS
while a long step runs. A worker killed with kill -9 stops beating; the watchdog (nightly.tasks,
every NIGHTLY_WATCHDOG_SECONDS) then finds the heartbeat older than NIGHTLY_STALE_SECONDS, marks the
run failed (nightly_run_stall, audited), alerts the tenant's admins (nightly_run_alert: an email and
the `nightly_run.failed` webhook event, once per failed attempt) and queues a retry. A task that gets
the lock first checks whether the date is already done, or run by a live attempt, and then stops, so
two colliding tasks never recompute the night twice.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from typing import Any, Protocol

from django.conf import settings
from django.core.mail import get_connection, send_mail
from django.db import connection, connections, transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account
from api.idempotency import idempotency_records_purge
from compliance.services import compliance_status_recompute
from cs_platform import locks
from cs_platform.audit.models import CheckpointReason
from cs_platform.audit.services import audit_checkpoint_create, audit_record
from cs_platform.tenancy import context
from cs_platform.tenancy.clock import tenant_zone
from cs_platform.tenancy.models import Membership, Role
from dashboards.services import segment_snapshots_compute
from journeys.services import decisions_escalate, journey_status_recompute
from metrics.health import health_snapshots_compute
from metrics.models import NightlyRun, RunStatus
from metrics.signals import nightly_run_failed
from webhooks.events import webhook_events_emit

logger = logging.getLogger(__name__)
_LOCK_NAMESPACE = locks.NIGHTLY_TENANT
# Attempts of one date before the run is left failed for an admin (the watchdog and the dispatch retry
# until then).
MAX_ATTEMPTS = NightlyRun.MAX_ATTEMPTS
ALERT_SMTP_TIMEOUT_SECONDS = 30


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
        now = timezone.now()
        # The summary goes too: a page must not show an earlier attempt's figures as this attempt's.
        run.status, run.attempts, run.started_at, run.heartbeat_at, run.finished_at, run.error, run.summary = (
            RunStatus.RUNNING,
            run.attempts + 1,
            now,
            now,
            None,
            "",
            {},
        )
        run.save()
    return run


def run_in_hand(tenant, day: datetime.date, now: datetime.datetime | None = None) -> str | None:
    """Why a task that has just taken the tenant lock need not run `day`: "done" (a colliding task
    finished it while this one waited for the lock), "running" (a live attempt, e.g. a big tenant's
    chord, still beats), or None (run it). One indexed query."""
    with context.tenant_context(tenant):
        run = NightlyRun.objects.filter(run_date=day).first()
    if run is None:
        return None
    if run.status == RunStatus.DONE:
        return "done"
    if run.status == RunStatus.RUNNING and not run.is_stale(now):
        return "running"
    return None


# --- Heartbeat ---------------------------------------------------------------------------------------
def heartbeat_beat(*, tenant, day: datetime.date, attempt: int | None) -> int:
    """Stamp the run's heartbeat (only while this attempt's run is running: a run the watchdog already
    failed stays failed). One UPDATE."""
    with context.tenant_context(tenant):
        return _this_attempt(day, attempt).filter(status=RunStatus.RUNNING).update(heartbeat_at=timezone.now())


@contextmanager
def heartbeat(*, tenant, day: datetime.date, attempt: int | None) -> Iterator[None]:
    """Keep the run's heartbeat fresh while the block runs: a daemon thread with its own database
    connection stamps it every NIGHTLY_HEARTBEAT_SECONDS, so a single step that takes longer than
    NIGHTLY_STALE_SECONDS is not taken for dead. The thread dies with its process, which is the point:
    kill -9 of the worker stops the beats. A hung (but living) step keeps beating until the task's
    hard time limit kills the process. On SQLite (the one-process demo) only the step boundaries beat."""
    if connection.vendor != "postgresql":
        yield
        return
    stop = threading.Event()
    tenant_id = tenant if isinstance(tenant, int) else tenant.pk

    def beat() -> None:
        try:
            while not stop.wait(settings.NIGHTLY_HEARTBEAT_SECONDS):
                try:
                    heartbeat_beat(tenant=tenant_id, day=day, attempt=attempt)
                except Exception:  # noqa: BLE001 - a missed beat is retried; the run itself must go on
                    logger.warning("nightly heartbeat of tenant %s for %s failed", tenant_id, day, exc_info=True)
                    connections.close_all()  # a broken connection is replaced at the next beat
        finally:
            connections.close_all()  # this thread's connection only

    thread = threading.Thread(target=beat, name=f"nightly-heartbeat-{tenant_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)


def _on_threads(calls: list[Callable[[], Any]], *, workers: int) -> list[Any]:
    """Run the calls on `workers` threads, each with its own database connection (closed when its
    call ends), and return their results in order; the first exception is raised. PostgreSQL then
    works on several statements at once: psycopg2 releases the GIL while the server computes."""

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
            status=RunStatus.FAILED,
            finished_at=timezone.now(),
            error="".join(traceback.format_exception_only(type(exc), exc)).strip()[:4000],
        )


def health_summary(results: list[dict], *, chunks: bool = False) -> dict[str, Any]:
    """The health step's part of the run summary, from its chunks' results."""
    bands: dict[str, int] = {}
    for result in results:
        for band, n in result["bands"].items():
            bands[band] = bands.get(band, 0) + n
    summary: dict[str, Any] = {"accounts": sum(r["accounts"] for r in results), "bands": bands}
    if chunks:
        summary["chunks"] = len(results)
    return summary


class FanOut(Protocol):
    """Hands the health chunks to other workers (the Celery chord) instead of scoring them here. It is
    called under the tenant lock, after the tenant-wide steps, and returns what run_tenant returns; the
    run is then closed by whoever finishes the last chunk (finish_run, or fail_run on error)."""

    def __call__(
        self, *, chunks: list[list[int]], summary: dict[str, Any], started: float, attempt: int
    ) -> dict[str, Any]: ...


def run_tenant(
    *,
    tenant,
    day: datetime.date,
    chunk_size: int | None = None,
    workers: int | None = None,
    skip_if_in_hand: bool = False,
    fan_out: FanOut | None = None,
) -> dict[str, Any]:
    """The whole nightly run of one tenant (management command, eager demo, Celery task). Raises
    TenantRunLocked if another run holds the tenant. skip_if_in_hand (the Celery task): once the lock is
    held, a date already done or run by a live attempt is left alone.

    workers: health chunks scored in parallel (PostgreSQL only; default NIGHTLY_WORKERS). Each chunk
    is its own transaction either way. fan_out: when the tenant has more than one chunk, the chunks go
    to it (the Celery chord spreads them over workers) and the run is finished by the last of them."""
    chunk_size = chunk_size or settings.NIGHTLY_CHUNK_SIZE
    workers = workers or settings.NIGHTLY_WORKERS
    started = time.time()
    with tenant_lock(tenant.pk):
        if skip_if_in_hand and (reason := run_in_hand(tenant, day)):
            logger.info("nightly run of %s for %s not repeated: %s", tenant.slug, day, reason)
            return {"skipped": reason}
        attempt = _run_record(tenant, day).attempts
        # The heartbeat covers every step, the closing ones (segments, webhooks, checkpoint) included; a
        # failure in any of them marks the run failed instead of leaving it "running".
        with heartbeat(tenant=tenant, day=day, attempt=attempt):
            try:
                summary = tenant_wide_steps(tenant=tenant, day=day, parallel=workers > 1)
                heartbeat_beat(tenant=tenant, day=day, attempt=attempt)
                chunks = account_chunks(tenant=tenant, chunk_size=chunk_size)
                if fan_out is not None and len(chunks) > 1:
                    return fan_out(chunks=chunks, summary=summary, started=started, attempt=attempt)
                results = _health_chunks(tenant=tenant, day=day, chunks=chunks, workers=workers, attempt=attempt)
                summary["health"] = health_summary(results)
                return finish_run(tenant=tenant, day=day, summary=summary, started=started, attempt=attempt)
            except Exception as exc:
                fail_run(tenant=tenant, day=day, exc=exc, attempt=attempt)
                raise


def health_chunk_run(*, tenant, day: datetime.date, first_id: int, last_id: int, attempt: int | None) -> dict:
    """One chunk of the health step (accounts first_id..last_id), on whichever worker the chord chose.
    The run beats at the chunk's start and end, and while it is scored."""
    with context.tenant_context(tenant):
        ids = list(Account.objects.filter(pk__gte=first_id, pk__lte=last_id).values_list("pk", flat=True))
    heartbeat_beat(tenant=tenant, day=day, attempt=attempt)
    with heartbeat(tenant=tenant, day=day, attempt=attempt):
        result = health_snapshots_compute(tenant=tenant, day=day, account_ids=ids)
    heartbeat_beat(tenant=tenant, day=day, attempt=attempt)
    return result


def _health_chunks(*, tenant, day: datetime.date, chunks: list[list[int]], workers: int, attempt: int) -> list[dict]:
    def chunk(ids: list[int]) -> dict:
        result = health_snapshots_compute(tenant=tenant, day=day, account_ids=ids)
        heartbeat_beat(tenant=tenant, day=day, attempt=attempt)
        return result

    if workers > 1 and len(chunks) > 1 and connection.vendor == "postgresql":
        # As the Celery chord fans chunks out to workers, for the synchronous command.
        return _on_threads([partial(chunk, ids) for ids in chunks], workers=workers)
    return [chunk(ids) for ids in chunks]


# --- Stuck and failed runs: the watchdog's services ----------------------------------------------------
def nightly_runs_needing_attention(*, tenant, now: datetime.datetime | None = None) -> tuple[list[int], list[int]]:
    """(ids of running runs whose heartbeat is older than NIGHTLY_STALE_SECONDS, ids of failed runs of
    the last day whose failure was not alerted yet). One indexed query."""
    now = now or timezone.now()
    cutoff = now - datetime.timedelta(seconds=settings.NIGHTLY_STALE_SECONDS)
    with context.tenant_context(tenant):
        rows = list(
            NightlyRun.objects.filter(
                Q(status=RunStatus.RUNNING)
                & (Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff))
                # Failures before this release (alerted_attempt 0) are not alerted all at once on deploy.
                | Q(
                    status=RunStatus.FAILED,
                    alerted_attempt__lt=F("attempts"),
                    finished_at__gte=now - datetime.timedelta(days=1),
                )
            ).values_list("pk", "status")
        )
    stalled = [pk for pk, status in rows if status == RunStatus.RUNNING]
    return stalled, [pk for pk, status in rows if status == RunStatus.FAILED]


def nightly_run_stall(*, tenant, run_id: int, now: datetime.datetime | None = None) -> NightlyRun | None:
    """Mark a running run whose heartbeat stopped as failed, with an error an admin can read, and audit
    it ("nightly_run.stalled"). Returns the run, or None if it beat, finished or was failed meanwhile
    (the row is locked, so a late heartbeat or finish and this cannot both win)."""
    now = now or timezone.now()
    with transaction.atomic(), context.tenant_context(tenant):
        run = NightlyRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or not run.is_stale(now):
            return None
        since = run.last_sign_of_life()
        before = {"status": run.status, "attempts": run.attempts, "heartbeat_at": since.isoformat()}
        run.status, run.finished_at = RunStatus.FAILED, now
        run.error = (
            f"Stalled: attempt {run.attempts} stopped sending heartbeats at {since:%Y-%m-%d %H:%M:%S} UTC "
            f"(none for {int((now - since).total_seconds())} s; the limit is {settings.NIGHTLY_STALE_SECONDS:g} s). "
            "Its worker was killed or lost."
        )
        run.save(update_fields=["status", "finished_at", "error"])
        audit_record(
            tenant=tenant,
            actor=None,
            action="nightly_run.stalled",
            obj=run,
            before=before,
            after={
                "status": run.status,
                "attempts": run.attempts,
                "run_date": run.run_date.isoformat(),
                "error": run.error,
            },
        )
    logger.error("nightly run of tenant %s for %s stalled: %s", run.tenant_id, run.run_date, run.error)
    return run


def nightly_run_alert(*, tenant, run_id: int) -> bool:
    """Tell the tenant's admins that a run failed: the `nightly_run.failed` webhook event (the webhooks
    app listens to metrics.signals.nightly_run_failed) and an email to every active admin. Once per
    failed attempt: the claim (alerted_attempt := attempts) is one conditional UPDATE, so ticks and
    duplicate watchdogs alert once. The email goes after the commit; an SMTP failure is logged, not
    raised (the run's failure is on the runs page and the admins' home regardless)."""
    with transaction.atomic(), context.tenant_context(tenant):
        claimed = NightlyRun.objects.filter(
            pk=run_id, status=RunStatus.FAILED, alerted_attempt__lt=F("attempts")
        ).update(alerted_attempt=F("attempts"))
        if not claimed:
            return False
        run = NightlyRun.objects.get(pk=run_id)
        recipients = _admin_emails()
        audit_record(
            tenant=tenant,
            actor=None,
            action="nightly_run.alert",
            obj=run,
            after={"run_date": run.run_date.isoformat(), "attempt": run.attempts, "emails": len(recipients)},
        )
        nightly_run_failed.send(sender=NightlyRun, tenant=tenant, run=run)
    _alert_email_send(tenant, run, recipients)
    return True


def _admin_emails() -> list[str]:
    """The current tenant's active admins' addresses (one query)."""
    emails = Membership.objects.filter(role=Role.ADMIN, is_active=True, user__is_active=True).values_list(
        "user__email", flat=True
    )
    return sorted({email for email in emails if email})


def _alert_email_send(tenant, run: NightlyRun, recipients: list[str]) -> bool:
    if not recipients:
        return False
    values = {
        "tenant": tenant,
        "run": run,
        "max_attempts": MAX_ATTEMPTS,
        "retried": run.attempts < MAX_ATTEMPTS,
        "link": f"{settings.SITE_URL}{reverse('nightly_runs')}",
    }
    subject = " ".join(render_to_string("metrics/email/nightly_failed_subject.txt", values).split())
    body = render_to_string("metrics/email/nightly_failed.txt", values)
    try:
        send_mail(
            subject,
            body,
            settings.DEFAULT_FROM_EMAIL,
            recipients,
            connection=get_connection(timeout=ALERT_SMTP_TIMEOUT_SECONDS),
        )
    except Exception:  # noqa: BLE001 - SMTP down must not crash the watchdog; the page shows the failure
        logger.warning(
            "nightly failure alert for tenant %s, %s could not be emailed", tenant.slug, run.run_date, exc_info=True
        )
        return False
    return True


def local_run_date(tenant, now: datetime.datetime | None = None) -> datetime.date | None:
    """The date a tenant's nightly run is for, if it is due: from 02:00 local time onwards."""
    local = (now or timezone.now()).astimezone(tenant_zone(tenant))
    return local.date() if local.hour >= settings.NIGHTLY_LOCAL_HOUR else None
