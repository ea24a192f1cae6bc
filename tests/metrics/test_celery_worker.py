"""The nightly engine on a real Redis broker and a real prefork Celery worker (no eager mode).

The worker is a subprocess started here on the test database as the app role, exactly as production
workers run, so it only sees committed rows: the worker tests commit their data under
django_db_blocker.unblock() and the owner purges it afterwards (tests/committed.py), once every
worker has stopped. Each test's workers consume a queue of their own, which is also their default
queue, so the chord a big tenant fans out stays on it and nothing else on the shared test broker
reaches them. The lock, dispatch and recompute tests run in-process on the ordinary `db` fixture.
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock
from urllib.parse import quote

import pytest
import redis
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection, connections
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account
from cs_platform import locks
from cs_platform.audit.models import AuditEvent
from cs_platform.celery import app as celery_app
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from dashboards.models import SegmentSnapshot
from metrics.models import HealthSnapshot, KpiMeasurement, NightlyRun, RunStatus, SurveyResponse
from nightly import pipeline as nightly
from nightly.tasks import nightly_dispatch, nightly_tenant
from segments.models import Segment
from tests import factories
from tests.committed import owner_connection, purge_tenant

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="workers and advisory locks need PostgreSQL")
needs_broker = pytest.mark.skipif(not settings.CELERY_BROKER_URL, reason="no Celery broker configured")

DAY = datetime.date(2026, 3, 10)
DAY_ISO = DAY.isoformat()
LOCK_NAMESPACE = locks.NIGHTLY_TENANT  # pg_advisory_lock(namespace, tenant_id): the per-tenant nightly lock
VISIBILITY_TIMEOUT = 5  # seconds before a message a dead worker never acknowledged is delivered again
CHUNK = 50
WORKER_START_TIMEOUT = 30


# --- Committed data -----------------------------------------------------------------------------------
@pytest.fixture
def committed(django_db_setup, django_db_blocker):
    """Ids of tenants a test committed. Purged by the owner at the very end: fixtures that start
    workers depend on this one, so every worker has stopped before its data goes."""
    tenant_ids: list[int] = []
    yield tenant_ids
    with django_db_blocker.unblock():
        connections["default"].close()
        for tenant_id in tenant_ids:
            purge_tenant(tenant_id)


def _nps_score(index: int) -> int:
    return 10 if index % 2 == 0 else 0  # promoters and detractors: NPS +100 and -100


def _committed_tenant(committed: list[int], slug: str, n_accounts: int):
    tenant = factories.TenantFactory(slug=slug, name=f"Worker test {slug}")
    committed.append(tenant.pk)
    with context.tenant_context(tenant):
        segments = list(Segment.objects.order_by("code").prefetch_related("kpis"))
        accounts = Account.objects.bulk_create(
            Account(
                tenant=tenant,
                name=f"Worker Institution {i:05d}",
                segment=segments[i % len(segments)],
                renewal_date=DAY + datetime.timedelta(days=30 + i % 300),
            )
            for i in range(n_accounts)
        )
        SurveyResponse.objects.bulk_create(
            SurveyResponse(
                tenant=tenant,
                account=a,
                survey_type="nps",
                score=_nps_score(i),
                responded_on=DAY - datetime.timedelta(days=5),
            )
            for i, a in enumerate(accounts)
        )
        kpis = {s.pk: list(s.kpis.all()) for s in segments}
        KpiMeasurement.objects.bulk_create(
            KpiMeasurement(tenant=tenant, account=a, kpi=k, measured_on=DAY - datetime.timedelta(days=3), value=60)
            for a in accounts[::3]
            for k in kpis[a.segment_id]
        )
    return tenant, accounts


@pytest.fixture
def small_tenant(committed, django_db_blocker):
    with django_db_blocker.unblock():
        return _committed_tenant(committed, "worker-small", 60)


@pytest.fixture
def big_tenant(committed, django_db_blocker):
    with django_db_blocker.unblock():
        return _committed_tenant(committed, "worker-big", 30 * CHUNK)


# --- Workers ---------------------------------------------------------------------------------------
def _unacked_for(client: redis.Redis, queue: str) -> set[bytes]:
    """Delivery tags of the queue's messages a worker has taken but not acknowledged. kombu's Redis
    transport keeps them in the "unacked" hash ({tag: [message, exchange, routing key]}) until the
    ack, and puts them back on their queue once the visibility timeout has passed."""
    tags = set()
    for tag, raw in client.hscan_iter("unacked"):
        try:
            _, exchange, routing_key = json.loads(raw)
        except ValueError:
            continue
        if queue in (exchange, routing_key):
            tags.add(tag)
    return tags


def _broker_forget(queue: str, worker_names: list[str] = ()) -> None:
    """Remove the queue, its bindings, any of its messages a killed worker left unacknowledged and
    the remote-control bindings of the test's (possibly killed) workers."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        for key in client.scan_iter(match=f"*{queue}*"):
            client.delete(key)
        for tag in _unacked_for(client, queue):
            client.zrem("unacked_index", tag)
            client.hdel("unacked", tag)
        for member in client.sscan_iter("_kombu.binding.celery.pidbox"):
            if any(name.encode() in member for name in worker_names):
                client.srem("_kombu.binding.celery.pidbox", member)
    finally:
        client.close()


def _worker_database_url() -> str:
    db = connections["default"].settings_dict  # NAME is the test database by now
    password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
    host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    return f"postgres://{quote(db['USER'], safe='')}{password}@{host}/{db['NAME']}"


@dataclasses.dataclass
class Worker:
    name: str
    process: subprocess.Popen
    log: Path

    def kill(self) -> None:
        """SIGKILL the main process and its pool children at once, as when a machine dies."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # warm shutdown
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.kill()  # and anything left in its process group

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class Workers:
    def __init__(self, tmp_path: Path):
        self.queue = f"nightly-test-{uuid.uuid4().hex[:12]}"
        self.tmp_path = tmp_path
        self.started: list[Worker] = []
        self.broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)

    def start(self, env: dict[str, str] | None = None) -> Worker:
        """`env`: extra settings for this worker (e.g. a short heartbeat), over the test's environment."""
        name = f"w{uuid.uuid4().hex[:10]}@nightly-test"
        log = self.tmp_path / f"{name.split('@')[0]}.log"
        env = {
            **os.environ,
            "DATABASE_URL": _worker_database_url(),
            "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        env.pop("DATABASE_OWNER_URL", None)  # the worker is the app role and nothing else
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "cs_platform",
            "worker",
            "--pool=prefork",
            "--concurrency=1",
            "-l",
            "info",
            "-Q",
            self.queue,
            "-n",
            name,
            "--without-mingle",
            "--without-gossip",
            # Tasks the worker sends itself (the chord's chunks and callback) go to the default queue.
            "--",
            f"task.default_queue={self.queue}",
        ]
        with log.open("wb") as out:
            process = subprocess.Popen(
                command, cwd=settings.BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        worker = Worker(name=name, process=process, log=log)
        self.started.append(worker)
        deadline = time.monotonic() + WORKER_START_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"the worker exited with {process.returncode}:\n{worker.output()}")
            if celery_app.control.ping(destination=[name], timeout=0.5):
                return worker
        pytest.fail(f"the worker did not answer a ping within {WORKER_START_TIMEOUT} s:\n{worker.output()}")

    def in_flight(self) -> set[bytes]:
        return _unacked_for(self.broker, self.queue)

    def logs(self) -> str:
        return "\n".join(f"----- worker {w.name} -----\n{w.output()}" for w in self.started)


@contextmanager
def worker_pool(tmp_path: Path) -> Iterator[Workers]:
    """A pool on a queue of its own; on leaving, every worker it started is stopped (killed if need be),
    their logs are printed (so a failing test shows them) and the broker forgets the queue."""
    pool = Workers(tmp_path)
    _broker_forget(pool.queue)
    try:
        yield pool
    finally:
        for worker in pool.started:
            worker.stop()
        print(pool.logs())
        pool.broker.close()
        _broker_forget(pool.queue, [w.name for w in pool.started])


@pytest.fixture
def workers(committed, tmp_path):
    """Start workers with workers.start(); all are stopped afterwards, before the committed data is purged."""
    with worker_pool(tmp_path) as pool:
        yield pool


def _wait_for(condition: Callable[[], object], *, timeout: float, what: str, workers: Workers, every: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"timed out after {timeout} s waiting for {what}\n{workers.logs()}")


def _snapshot_count(tenant) -> int:
    with context.tenant_context(tenant):
        return HealthSnapshot.objects.filter(snapshot_date=DAY).count()


def _run(tenant, day: datetime.date = DAY) -> NightlyRun | None:
    with context.tenant_context(tenant):
        return NightlyRun.objects.filter(run_date=day).first()


def _duplicates(tenant) -> list[dict]:
    with context.tenant_context(tenant):
        return list(
            HealthSnapshot.objects.filter(snapshot_date=DAY)
            .values("account_id")
            .annotate(n=Count("id"))
            .filter(n__gt=1)
        )


# --- a. A run on the worker -------------------------------------------------------------------------
@needs_broker
def test_a_worker_run_scores_every_account_once_and_records_the_run(small_tenant, workers, django_db_blocker):
    tenant, accounts = small_tenant
    workers.start()

    summary = nightly_tenant.apply_async((tenant.pk, DAY_ISO), queue=workers.queue).get(timeout=60)

    assert summary["health"]["accounts"] == len(accounts) == sum(summary["health"]["bands"].values())
    with django_db_blocker.unblock():
        with context.tenant_context(tenant):
            rows = {
                account_id: (pk, components)
                for pk, account_id, components in HealthSnapshot.objects.filter(snapshot_date=DAY).values_list(
                    "pk", "account_id", "components"
                )
            }
            assert HealthSnapshot.objects.count() == len(accounts)  # and nothing for another date
            # The chord's last step stored the day's per-segment figures the portfolio reads.
            segments = {
                segment_id: figures["accounts"]
                for segment_id, figures in SegmentSnapshot.objects.filter(snapshot_date=DAY).values_list(
                    "segment_id", "figures"
                )
            }
            assert len(segments) == Segment.objects.count() and sum(segments.values()) == len(accounts)
        run = _run(tenant)
    assert set(rows) == {a.pk for a in accounts}
    # The worker scored the committed survey data of each account (NPS +100 or -100).
    nps = {a: next(c["raw"] for c in components if c["measure"] == "nps") for a, (_, components) in rows.items()}
    assert nps == {a.pk: 100.0 if _nps_score(i) == 10 else -100.0 for i, a in enumerate(accounts)}
    assert (run.status, run.attempts, run.error) == (RunStatus.DONE, 1, "")
    assert run.finished_at is not None and run.summary == summary

    # Queued again as the dispatch would, the done date is left alone (a colliding task stops once it
    # has the lock); an operator's forced re-run on the worker rewrites the same rows.
    assert nightly_tenant.apply_async((tenant.pk, DAY_ISO), queue=workers.queue).get(timeout=60) == {"skipped": "done"}
    again = nightly_tenant.apply_async((tenant.pk, DAY_ISO), {"force": True}, queue=workers.queue).get(timeout=60)
    assert again["health"] == summary["health"]
    with django_db_blocker.unblock():
        with context.tenant_context(tenant):
            pks = dict(HealthSnapshot.objects.filter(snapshot_date=DAY).values_list("account_id", "pk"))
            assert SegmentSnapshot.objects.count() == len(segments)  # rewritten, not added
        run = _run(tenant)
    assert pks == {account_id: pk for account_id, (pk, _) in rows.items()}
    assert (run.status, run.attempts, run.summary) == (RunStatus.DONE, 2, again)


def test_a_chunk_that_fails_marks_the_run_failed_instead_of_leaving_it_running(committed, workers, django_db_blocker):
    """The chord's error callback: a chunk raising on the worker closes the run as failed, with the
    error an admin can read, rather than leaving it "running" forever."""
    from segments.models import Scorecard, ScorecardMeasure

    with django_db_blocker.unblock():
        tenant, _ = _committed_tenant(committed, "worker-broken", 12)
        with context.tenant_context(tenant):
            # A measure the engine does not know, written around the validating service on purpose.
            card = Scorecard.objects.get(segment__code="bank")
            ScorecardMeasure.objects.create(tenant=tenant, scorecard=card, measure="bogus", weight=5)
    workers.start()
    assert nightly_tenant.apply_async((tenant.pk, DAY_ISO, 4), queue=workers.queue).get(timeout=60) == {
        "chunks": 3,
        "attempt": 1,
    }
    with django_db_blocker.unblock():
        run = _wait_for(
            lambda: (r := _run(tenant)).status == RunStatus.FAILED and r,
            timeout=60,
            what="the run to be marked failed",
            workers=workers,
        )
    assert "bogus" in run.error and run.finished_at is not None


# --- b. A worker killed mid-run -----------------------------------------------------------------------
@needs_broker
def test_a_worker_killed_mid_run_loses_nothing_and_a_rerun_duplicates_nothing(big_tenant, workers, django_db_blocker):
    tenant, accounts = big_tenant
    total, chunks = len(accounts), len(accounts) // CHUNK
    first = workers.start()
    # chunk_size < accounts: the task runs the tenant-wide steps, then a chord of 30 chunk tasks.
    assert nightly_tenant.apply_async((tenant.pk, DAY_ISO, CHUNK), queue=workers.queue).get(timeout=60) == {
        "chunks": chunks,
        "attempt": 1,
    }

    with django_db_blocker.unblock():
        _wait_for(lambda: _snapshot_count(tenant) >= 2 * CHUNK, timeout=60, what="two chunks", workers=workers)
        # Kill while a chunk is being scored (each takes 0.1 s or more), not at a chunk boundary: once
        # a chunk the worker took is still unacknowledged 20 ms later (acks_late).
        seen = workers.in_flight()
        while True:
            taken = _wait_for(
                lambda known=seen: workers.in_flight() - known,
                timeout=30,
                what="a chunk unacknowledged while it runs",
                workers=workers,
                every=0.002,
            )
            seen.update(taken)
            time.sleep(0.02)
            if taken & workers.in_flight():
                first.kill()
                break
        killed_at = time.monotonic()
        partial = _snapshot_count(tenant)
        run = _run(tenant)
    unacknowledged = workers.in_flight()
    assert 0 < partial < total, f"{partial} of {total} snapshots when killed: the run must be caught half-way"
    assert (run.status, run.attempts) == (RunStatus.RUNNING, 1)

    time.sleep(max(0.0, killed_at + VISIBILITY_TIMEOUT + 0.5 - time.monotonic()))
    workers.start()
    if unacknowledged:
        # The fresh worker gets the killed worker's unacknowledged chunk again (the visibility timeout
        # has passed) and the chunks still queued: the interrupted run completes by itself.
        with django_db_blocker.unblock():
            run = _wait_for(
                lambda: (r := _run(tenant)).status == RunStatus.DONE and _snapshot_count(tenant) == total and r,
                timeout=60,
                what="the interrupted run to be finished by redelivery",
                workers=workers,
            )
        assert (run.attempts, run.error) == (1, "")
        assert run.summary["health"]["accounts"] == total and run.summary["health"]["chunks"] == chunks
    else:  # pragma: no cover - only if this process stalled between the check and the kill above
        warnings.warn("the worker was killed with no chunk in flight: redelivery not checked", stacklevel=1)

    # Running the date again rewrites every snapshot in place: still one per account.
    rerun_at = timezone.now()

    def _rewritten() -> int:
        with context.tenant_context(tenant):
            return HealthSnapshot.objects.filter(snapshot_date=DAY, computed_at__gte=rerun_at).count()

    assert nightly_tenant.apply_async((tenant.pk, DAY_ISO, CHUNK), {"force": True}, queue=workers.queue).get(
        timeout=60
    ) == {"chunks": chunks, "attempt": 2}
    with django_db_blocker.unblock():
        run = _wait_for(
            lambda: (r := _run(tenant)).status == RunStatus.DONE and r.attempts == 2 and _rewritten() == total and r,
            timeout=60,
            what="the re-run to finish",
            workers=workers,
        )
        with context.tenant_context(tenant):
            snapshots = list(HealthSnapshot.objects.filter(snapshot_date=DAY).values_list("account_id", "computed_at"))
        duplicates = _duplicates(tenant)
    assert duplicates == []
    assert len(snapshots) == total and {a for a, _ in snapshots} == {a.pk for a in accounts}
    assert all(computed_at >= rerun_at for _, computed_at in snapshots), "the re-run must rewrite every snapshot"
    assert run.error == "" and run.summary["health"]["accounts"] == total


# --- c. The per-tenant lock ---------------------------------------------------------------------------
@pytest.mark.django_db
def test_a_held_tenant_lock_stops_a_second_run_of_that_tenant_only():
    tenant = factories.TenantFactory(slug="lock-held", name="Lock held")
    other = factories.TenantFactory(slug="lock-other", name="Lock other")
    for _ in range(3):
        factories.AccountFactory(tenant=tenant)
    later = DAY + datetime.timedelta(days=1)

    with owner_connection() as holder, holder.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (holder_pid,) = cursor.fetchone()
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", [LOCK_NAMESPACE, other.pk])
        # Another tenant's run does not hold this one up.
        assert nightly.run_tenant(tenant=tenant, day=DAY)["health"]["accounts"] == 3

        cursor.execute("SELECT pg_advisory_lock(%s, %s)", [LOCK_NAMESPACE, tenant.pk])
        with pytest.raises(nightly.TenantRunLocked, match=f"tenant {tenant.pk} is already being recomputed"):
            nightly.run_tenant(tenant=tenant, day=later)
        with context.tenant_context(tenant):
            assert not NightlyRun.objects.filter(run_date=later).exists()
            assert not HealthSnapshot.objects.filter(snapshot_date=later).exists()

    # The holder's session is gone (as when a worker dies): so is its lock. Closing a connection does
    # not wait for its server process to exit and drop its locks, so wait for that process to go.
    _wait_for_backend_exit(holder_pid)
    assert nightly.run_tenant(tenant=tenant, day=later)["health"]["accounts"] == 3
    assert _run(tenant, later).status == RunStatus.DONE


def _wait_for_backend_exit(pid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    with owner_connection() as conn, conn.cursor() as cursor:
        while True:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
            if cursor.fetchone()[0] == 0:
                return
            assert time.monotonic() < deadline, f"PostgreSQL backend {pid} still running after {timeout} s"
            time.sleep(0.02)


# --- d. Dispatch --------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_dispatch_queues_each_due_tenant_for_its_local_date(django_capture_on_commit_callbacks):
    now = datetime.datetime(2026, 3, 10, 1, 0, tzinfo=datetime.UTC)
    yesterday = DAY - datetime.timedelta(days=1)

    def tenant(slug: str, time_zone: str, *runs: dict):
        created = factories.TenantFactory(slug=slug, name=f"Dispatch {slug}", time_zone=time_zone, reference_data=False)
        with context.tenant_context(created):
            for run in runs:
                NightlyRun.objects.create(tenant=created, **{"started_at": now - datetime.timedelta(hours=3), **run})
        return created

    utc = tenant("d-utc", "UTC")  # 01:00: not yet
    berlin = tenant("d-berlin", "Europe/Berlin")  # 02:00 sharp: due
    # 21:00 on 9 March: due for 9 March, although 10 March (the UTC date) is done.
    new_york = tenant("d-new-york", "America/New_York", {"run_date": DAY, "status": RunStatus.DONE})
    tokyo = tenant("d-tokyo", "Asia/Tokyo", {"run_date": DAY, "status": RunStatus.DONE, "attempts": 1})
    sydney = tenant(
        "d-sydney",
        "Australia/Sydney",
        {"run_date": yesterday, "status": RunStatus.DONE, "attempts": 1},
        {"run_date": DAY, "status": RunStatus.FAILED, "attempts": 2},
    )
    singapore = tenant("d-singapore", "Asia/Singapore", {"run_date": DAY, "status": RunStatus.FAILED, "attempts": 3})
    running = {"run_date": DAY, "status": RunStatus.RUNNING, "attempts": 1}
    # Started 10 minutes ago and beat a minute ago (NIGHTLY_STALE_SECONDS is 5 minutes): alive.
    alive = {"started_at": now - datetime.timedelta(minutes=10), "heartbeat_at": now - datetime.timedelta(minutes=1)}
    kolkata = tenant("d-kolkata", "Asia/Kolkata", {**running, **alive})
    # Its worker died two hours ago (no heartbeat since): the run is stale.
    dubai = tenant("d-dubai", "Asia/Dubai", {**running, "started_at": now - datetime.timedelta(hours=2)})
    ours = {t.pk for t in (utc, berlin, new_york, tokyo, sydney, singapore, kolkata, dubai)}

    def dispatch(at: datetime.datetime) -> tuple[set[int], set[tuple[int, str]]]:
        with (
            mock.patch("nightly.tasks.timezone.now", return_value=at),
            mock.patch("nightly.tasks.nightly_tenant.delay") as delay,
        ):
            with django_capture_on_commit_callbacks(execute=True) as callbacks:
                queued = nightly_dispatch.run()
                delay.assert_not_called()  # only once the transaction commits
            assert len(callbacks) == len(queued)
        sent = {call.args for call in delay.call_args_list if call.args[0] in ours}
        assert all(not call.kwargs for call in delay.call_args_list)
        return set(queued) & ours, sent

    queued, sent = dispatch(now)
    assert sent == {
        (berlin.pk, "2026-03-10"),
        (new_york.pk, "2026-03-09"),
        (sydney.pk, "2026-03-10"),
        (dubai.pk, "2026-03-10"),
    }
    assert queued == {pk for pk, _ in sent}

    # An hour later it is 02:00 in UTC too, and Kolkata's run has not beaten for 61 minutes: stale.
    queued, sent = dispatch(now + datetime.timedelta(hours=1))
    assert sent == {
        (utc.pk, "2026-03-10"),
        (berlin.pk, "2026-03-10"),
        (new_york.pk, "2026-03-09"),
        (sydney.pk, "2026-03-10"),
        (kolkata.pk, "2026-03-10"),
        (dubai.pk, "2026-03-10"),
    }
    assert queued == {pk for pk, _ in sent} and not {tokyo.pk, singapore.pk} & queued


# --- e. One tenant's failure ------------------------------------------------------------------------
@pytest.mark.django_db
def test_recompute_all_reports_a_failing_tenant_and_still_runs_the_others(client):
    broken = factories.TenantFactory(slug="a-broken", name="Broken tenant")  # first in slug order
    healthy = factories.TenantFactory(slug="b-healthy", name="Healthy tenant")
    for t in (broken, healthy):
        for _ in range(3):
            factories.AccountFactory(tenant=t)
    admin = factories.UserFactory(username="admin@a-broken.test")
    factories.MembershipFactory(tenant=broken, user=admin, role=Role.ADMIN)
    compute = nightly.health_snapshots_compute

    def failing_for_broken(*, tenant, **kwargs):
        if tenant.pk == broken.pk:
            raise RuntimeError(f"scoring blew up for {tenant.slug}")
        return compute(tenant=tenant, **kwargs)

    out, err = io.StringIO(), io.StringIO()
    with (
        mock.patch("nightly.pipeline.health_snapshots_compute", side_effect=failing_for_broken),
        pytest.raises(CommandError) as raised,
    ):
        call_command("recompute", "--all", "--date", DAY_ISO, stdout=out, stderr=err)

    assert "a-broken" in str(raised.value) and "b-healthy" not in str(raised.value)
    assert "a-broken 2026-03-10: FAILED: scoring blew up for a-broken" in err.getvalue()
    assert "b-healthy 2026-03-10: 3 accounts scored" in out.getvalue()
    with context.tenant_context(healthy):
        assert HealthSnapshot.objects.filter(snapshot_date=DAY).count() == 3
    assert _run(healthy).status == RunStatus.DONE
    with context.tenant_context(broken):
        assert not HealthSnapshot.objects.exists()
    failed = _run(broken)
    assert (failed.status, failed.attempts) == (RunStatus.FAILED, 1) and failed.finished_at is not None
    assert failed.error == "RuntimeError: scoring blew up for a-broken"
    # The failed run released the tenant's lock.
    with owner_connection() as other, other.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [LOCK_NAMESPACE, broken.pk])
        assert cursor.fetchone()[0]
    # The tenant's admins see why it failed.
    client.force_login(admin)
    client.get(reverse("home"))
    body = client.get(reverse("nightly_runs")).content.decode()
    assert "RuntimeError: scoring blew up for a-broken" in body and "run-failed" in body


# --- f. Parallel health chunks in the synchronous command -----------------------------------------------
def test_recompute_with_workers_scores_each_account_once_like_a_sequential_run(committed, django_db_blocker):
    """--workers scores chunks on threads with their own connections (so the data is committed);
    the snapshots are those of a one-thread run, one per account, and a chunk's failure fails the run."""
    with django_db_blocker.unblock():
        tenant, accounts = _committed_tenant(committed, "threads", 40)
        out = io.StringIO()
        call_command(
            "recompute", "--tenant", "threads", "--date", DAY_ISO, "--chunk-size", "6", "--workers", "1", stdout=out
        )
        with context.tenant_context(tenant):
            sequential = dict(HealthSnapshot.objects.filter(snapshot_date=DAY).values_list("account_id", "total"))
            HealthSnapshot.objects.filter(snapshot_date=DAY).delete()
        call_command(
            "recompute", "--tenant", "threads", "--date", DAY_ISO, "--chunk-size", "6", "--workers", "3", stdout=out
        )
        assert "threads 2026-03-10: 40 accounts scored" in out.getvalue()
        with context.tenant_context(tenant):
            parallel = list(HealthSnapshot.objects.filter(snapshot_date=DAY).values_list("account_id", "total"))
            chunk_events = AuditEvent.objects.filter(action="health.recompute", after__date=DAY_ISO).count()
        assert len(parallel) == 40 and dict(parallel) == sequential and set(sequential) == {a.pk for a in accounts}
        assert chunk_events == 2 * 7  # 40 accounts in chunks of 6: 7 chunks, each audited, in both runs
        assert _run(tenant).status == RunStatus.DONE

        compute = nightly.health_snapshots_compute

        def third_chunk_fails(*, account_ids, **kwargs):
            if account_ids[0] == accounts[12].pk:
                raise RuntimeError("chunk 3 failed")
            return compute(account_ids=account_ids, **kwargs)

        with mock.patch("nightly.pipeline.health_snapshots_compute", side_effect=third_chunk_fails):
            with pytest.raises(CommandError):
                call_command(
                    "recompute",
                    "--tenant",
                    "threads",
                    "--date",
                    DAY_ISO,
                    "--chunk-size",
                    "6",
                    "--workers",
                    "3",
                    stdout=out,
                    stderr=io.StringIO(),
                )
        failed = _run(tenant)
        assert failed.status == RunStatus.FAILED and failed.error == "RuntimeError: chunk 3 failed"
    with pytest.raises(CommandError, match="--workers must be between 1 and 64"):
        call_command("recompute", "--tenant", "threads", "--workers", "0")


# --- g. A worker killed with kill -9 mid-run: heartbeat expiry, alert, retry (issue #16 item 4) -----------
HEARTBEAT, STALE = 0.3, 2.0  # seconds: the worker's NIGHTLY_HEARTBEAT_SECONDS and NIGHTLY_STALE_SECONDS


@needs_broker
def test_a_run_whose_worker_is_killed_is_failed_by_heartbeat_expiry_alerted_once_and_retried_to_done(
    small_tenant, workers, django_db_blocker, settings
):
    """The whole worker (main process and pool child) is SIGKILLed while the run waits on a lock the
    test holds (the audit checkpoint, the run's last step). Its heartbeat thread had kept the run alive
    while it waited; after the kill the beats stop, and within NIGHTLY_STALE_SECONDS (plus a watchdog
    tick) the watchdog on a fresh worker marks the run failed, audited as nightly_run.stalled, emails the
    tenant's admin through a real SMTP server, records the nightly_run.failed webhook delivery, and
    queues a retry that completes the date. Further ticks alert nobody again."""
    from tests.scorecards.smtp import SmtpServer
    from webhooks.models import WebhookDelivery, WebhookEndpoint

    tenant, accounts = small_tenant
    settings.NIGHTLY_STALE_SECONDS = STALE  # for this process's reads of is_stale
    admin_email = f"admin-{uuid.uuid4().hex[:8]}@stalled.test"
    with django_db_blocker.unblock():
        admin = factories.UserFactory(username=admin_email)
        with context.tenant_context(tenant):
            factories.MembershipFactory(tenant=tenant, user=admin, role=Role.ADMIN)
            # Written around the validating service: nothing here is delivered for real (the host never
            # resolves); the test checks the event's delivery row.
            WebhookEndpoint.objects.create(
                tenant=tenant,
                url="https://hooks.stalled.invalid/cs",
                events=["nightly_run.failed"],
                secret="whsec_t",
                created_by=admin,
            )
    smtp = SmtpServer().start()
    env = {
        "NIGHTLY_HEARTBEAT_SECONDS": str(HEARTBEAT),
        "NIGHTLY_STALE_SECONDS": str(STALE),
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp.port),
        # The killed worker's unacknowledged message must not come back before the watchdog has acted
        # (it would then be a retry of its own, which is fine, but not what this test checks).
        "CELERY_VISIBILITY_TIMEOUT": "600",
    }
    try:
        first = workers.start(env)
        with owner_connection() as holder, holder.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", [locks.AUDIT_CHECKPOINT, tenant.pk])
            nightly_tenant.apply_async((tenant.pk, DAY_ISO), queue=workers.queue)
            with django_db_blocker.unblock():
                # Scored, then stuck on the checkpoint lock; the heartbeat thread keeps stamping meanwhile.
                _wait_for(
                    lambda: _snapshot_count(tenant) == len(accounts),
                    timeout=60,
                    what="the health step",
                    workers=workers,
                )
                beat = _run(tenant).heartbeat_at
                _wait_for(
                    lambda: (r := _run(tenant)).heartbeat_at > beat and r.status == RunStatus.RUNNING,
                    timeout=10,
                    what="a heartbeat while the step waits",
                    workers=workers,
                )
                first.kill()
                killed_at = timezone.now()
                stuck = _run(tenant)
            assert (stuck.status, stuck.attempts) == (RunStatus.RUNNING, 1)
        # The lock is released with the holder's connection; the dead worker's session lock with its backend.

        second = workers.start(env)
        assert second.process.poll() is None

        def tick():
            from nightly.tasks import nightly_watchdog

            nightly_watchdog.apply_async(queue=workers.queue).get(timeout=30)
            return _run(tenant).status != RunStatus.RUNNING

        with django_db_blocker.unblock():
            _wait_for(tick, timeout=STALE + 20, what="the watchdog to fail the stalled run", workers=workers, every=0.2)
            failed_at = timezone.now()
            # Marked failed within the stale time plus one watchdog tick of this test (0.2 s + its run).
            assert (failed_at - killed_at).total_seconds() < STALE + 5
            with context.tenant_context(tenant):
                stalled = list(AuditEvent.objects.filter(action="nightly_run.stalled").values_list("after", flat=True))
                deliveries = list(
                    WebhookDelivery.objects.filter(event_type="nightly_run.failed").values_list("payload", flat=True)
                )
            assert len(stalled) == 1 and stalled[0]["attempts"] == 1 and "Stalled" in stalled[0]["error"]
            assert len(deliveries) == 1
            assert deliveries[0]["data"]["run_date"] == DAY_ISO and deliveries[0]["data"]["attempt"] == 1
            assert deliveries[0]["data"]["will_retry"] is True

            # The retry the watchdog queued runs the date to the end on the fresh worker.
            done = _wait_for(
                lambda: (r := _run(tenant)).status == RunStatus.DONE and r,
                timeout=60,
                what="the retry to finish",
                workers=workers,
            )
            assert done.attempts == 2 and done.error == "" and done.summary["health"]["accounts"] == len(accounts)
            assert _duplicates(tenant) == []
            _wait_for(lambda: smtp.messages, timeout=10, what="the alert email", workers=workers)
            # More ticks: the failure was alerted once; the done run needs nothing.
            for _ in range(3):
                tick()
            with context.tenant_context(tenant):
                assert WebhookDelivery.objects.filter(event_type="nightly_run.failed").count() == 1
                assert AuditEvent.objects.filter(action="nightly_run.alert").count() == 1
    finally:
        smtp.stop()
        for worker in workers.started:
            worker.stop()  # before the user goes (the fixture stops them again, a no-op)
        with django_db_blocker.unblock():
            purge_tenant(tenant.pk, [admin.pk])  # the user too; the fixture purges the (now empty) tenant again
    [message] = smtp.messages
    assert message.rcpt_tos == [admin_email]
    assert f"Nightly recompute of {DAY_ISO} failed (attempt 1 of 3)" in message.message["Subject"]
    body = message.message.get_content()
    assert "Stalled: attempt 1 stopped sending heartbeats" in body and "retries it automatically" in body
