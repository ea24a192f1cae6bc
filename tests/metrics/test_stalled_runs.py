"""Stuck nightly runs (issue #16 item 4), in-process on the database: stale detection by heartbeat, the
stall service and its audit event, the watchdog's alert (a real SMTP server, the webhook event) sent
once per failed attempt, colliding tasks that stop once the date is done, and the pages. The kill -9 of
a real worker is in test_celery_worker.py (g)."""

from __future__ import annotations

import datetime
import logging
import time

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from cs_platform.audit.models import AuditEvent
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from metrics.models import HealthSnapshot, NightlyRun, RunStatus
from nightly import pipeline as nightly
from nightly.tasks import nightly_tenant, nightly_watchdog
from tests import factories
from tests.scorecards.smtp import SmtpServer, mail_to
from webhooks.models import WebhookDelivery, WebhookEndpoint

DAY = datetime.date(2026, 11, 20)
STALE = 60.0


@pytest.fixture(autouse=True)
def short_stale(settings):
    settings.NIGHTLY_STALE_SECONDS = STALE


def _run(world, day=DAY, **fields) -> NightlyRun:
    with context.tenant_context(world.tenant):
        return NightlyRun.objects.create(tenant=world.tenant, run_date=day, **fields)


def _reload(world, run: NightlyRun) -> NightlyRun:
    with context.tenant_context(world.tenant):
        return NightlyRun.objects.get(pk=run.pk)


def _ago(seconds: float, now=None) -> datetime.datetime:
    return (now or timezone.now()) - datetime.timedelta(seconds=seconds)


def _endpoint(world) -> WebhookEndpoint:
    with context.tenant_context(world.tenant):
        return WebhookEndpoint.objects.create(
            tenant=world.tenant,
            url="https://hooks.example.test/cs",
            events=["nightly_run.failed"],
            secret="whsec_x",
            created_by=world.user(Role.ADMIN),
        )


def _events(world, action: str) -> list[AuditEvent]:
    with context.tenant_context(world.tenant):
        return list(AuditEvent.objects.filter(action=action).order_by("seq"))


@pytest.mark.django_db
def test_a_run_is_stale_by_its_heartbeat_not_by_when_it_started(tenant_a):
    now = timezone.now()
    day = DAY
    runs = {}
    for name, fields in {
        "beating": {"status": RunStatus.RUNNING, "started_at": _ago(7200, now), "heartbeat_at": _ago(10, now)},
        "silent": {"status": RunStatus.RUNNING, "started_at": _ago(7200, now), "heartbeat_at": _ago(STALE + 5, now)},
        "never_beat": {"status": RunStatus.RUNNING, "started_at": _ago(STALE + 5, now)},
        "done": {"status": RunStatus.DONE, "started_at": _ago(7200, now), "heartbeat_at": _ago(7000, now)},
        "failed": {"status": RunStatus.FAILED, "attempts": 1, "finished_at": _ago(30, now)},
        "failed_alerted": {
            "status": RunStatus.FAILED,
            "attempts": 1,
            "alerted_attempt": 1,
            "finished_at": _ago(30, now),
        },
        "failed_long_ago": {"status": RunStatus.FAILED, "attempts": 1, "finished_at": _ago(3 * 86400, now)},
    }.items():
        runs[name] = _run(tenant_a, day, **fields)
        day -= datetime.timedelta(days=1)
    assert not runs["beating"].is_stale(now) and runs["silent"].is_stale(now) and runs["never_beat"].is_stale(now)
    stalled, unalerted = nightly.nightly_runs_needing_attention(tenant=tenant_a.tenant, now=now)
    assert sorted(stalled) == sorted([runs["silent"].pk, runs["never_beat"].pk])
    assert unalerted == [runs["failed"].pk]


@pytest.mark.django_db
def test_stalling_a_run_fails_it_with_a_readable_error_and_an_audit_event_once(tenant_a):
    now = timezone.now()
    silent = _run(tenant_a, status=RunStatus.RUNNING, attempts=1, heartbeat_at=_ago(STALE + 30, now))
    beating = _run(
        tenant_a, DAY - datetime.timedelta(days=1), status=RunStatus.RUNNING, attempts=1, heartbeat_at=_ago(5, now)
    )

    stalled = nightly.nightly_run_stall(tenant=tenant_a.tenant, run_id=silent.pk, now=now)
    assert stalled is not None and stalled.status == RunStatus.FAILED and stalled.finished_at == now
    assert stalled.error.startswith("Stalled: attempt 1 stopped sending heartbeats at ")
    assert f"none for {int(STALE + 30)} s; the limit is 60 s" in stalled.error
    [event] = _events(tenant_a, "nightly_run.stalled")
    assert event.object_id == str(silent.pk) and event.before["status"] == "running"
    assert event.after["status"] == "failed" and event.after["run_date"] == DAY.isoformat()

    # Already failed, or alive: nothing changes and nothing more is audited.
    assert nightly.nightly_run_stall(tenant=tenant_a.tenant, run_id=silent.pk, now=now) is None
    assert nightly.nightly_run_stall(tenant=tenant_a.tenant, run_id=beating.pk, now=now) is None
    assert _reload(tenant_a, beating).status == RunStatus.RUNNING
    assert len(_events(tenant_a, "nightly_run.stalled")) == 1
    # A late heartbeat of the dead attempt (a worker thought dead, still running) does not revive it.
    assert nightly.heartbeat_beat(tenant=tenant_a.tenant, day=DAY, attempt=1) == 0
    assert _reload(tenant_a, silent).status == RunStatus.FAILED


@pytest.mark.django_db
def test_the_watchdog_fails_a_silent_run_alerts_once_and_queues_a_retry(
    tenant_a, tenant_b, smtp, django_capture_on_commit_callbacks
):
    _endpoint(tenant_a)
    silent = _run(tenant_a, status=RunStatus.RUNNING, attempts=1, started_at=_ago(600), heartbeat_at=_ago(STALE + 1))
    # Another tenant's live run is left alone.
    live = _run(tenant_b, status=RunStatus.RUNNING, attempts=1, heartbeat_at=_ago(1))

    with django_capture_on_commit_callbacks() as callbacks:
        counts = nightly_watchdog.run()
    # Counted across every tenant of the test database: only tenant_a's run was silent.
    assert counts == {"stalled": 1, "retried": 1, "alerted": 1}
    assert len(callbacks) == 2  # the retry of the date, and the webhook delivery
    run = _reload(tenant_a, silent)
    assert (run.status, run.alerted_attempt) == (RunStatus.FAILED, 1)
    assert _reload(tenant_b, live).status == RunStatus.RUNNING

    [message] = smtp.messages
    assert message.rcpt_tos == ["admin@alpha.test"]  # the tenant's admins only
    subject = message.message["Subject"]
    assert subject == "[Alpha Customer Success] Nightly recompute of 2026-11-20 failed (attempt 1 of 3)"
    body = message.message.get_content()
    assert run.error in body and "retries it automatically" in body
    assert "http://" in body and reverse("nightly_runs") in body
    with context.tenant_context(tenant_a.tenant):
        [delivery] = WebhookDelivery.objects.filter(event_type="nightly_run.failed")
    assert delivery.payload["type"] == "nightly_run.failed" and delivery.payload["tenant"] == "alpha"
    assert delivery.payload["data"] == {
        "run_date": "2026-11-20",
        "attempt": 1,
        "max_attempts": 3,
        "will_retry": True,
        "started_at": run.started_at.isoformat(),
        "failed_at": run.finished_at.isoformat(),
        "last_heartbeat_at": run.heartbeat_at.isoformat(),
        "error": run.error,
    }
    [alert] = _events(tenant_a, "nightly_run.alert")
    assert alert.after == {"run_date": "2026-11-20", "attempt": 1, "emails": 1}

    # Every further tick: nothing more (one alert per failed attempt, not per tick).
    for _ in range(2):
        with django_capture_on_commit_callbacks() as callbacks:
            assert nightly_watchdog.run() == {"stalled": 0, "retried": 0, "alerted": 0}
        assert callbacks == []
    assert len(smtp.messages) == 1 and len(_events(tenant_a, "nightly_run.alert")) == 1


@pytest.mark.django_db
def test_the_last_attempt_is_not_retried_and_a_failure_by_exception_is_alerted_too(
    tenant_a, smtp, django_capture_on_commit_callbacks
):
    _run(tenant_a, status=RunStatus.RUNNING, attempts=3, heartbeat_at=_ago(STALE + 1))
    failed = _run(
        tenant_a,
        DAY - datetime.timedelta(days=1),
        status=RunStatus.FAILED,
        attempts=1,
        finished_at=_ago(5),
        error="OperationalError: server closed the connection",
    )
    with django_capture_on_commit_callbacks() as callbacks:
        counts = nightly_watchdog.run()
    assert counts == {"stalled": 1, "retried": 0, "alerted": 2}
    assert callbacks == []  # no retry queued (attempts used up); no endpoint, so no delivery either
    bodies = {m.message["Subject"]: m.message.get_content() for m in smtp.messages}
    last = bodies["[Alpha Customer Success] Nightly recompute of 2026-11-20 failed (attempt 3 of 3)"]
    assert "No attempt is left" in last
    other = bodies["[Alpha Customer Success] Nightly recompute of 2026-11-19 failed (attempt 1 of 3)"]
    assert failed.error in other

    # The failed date's next attempt fails too: that is a new failure, alerted again.
    with context.tenant_context(tenant_a.tenant):
        NightlyRun.objects.filter(pk=failed.pk).update(attempts=2, finished_at=timezone.now())
    assert nightly_watchdog.run()["alerted"] == 1 and len(smtp.messages) == 3


@pytest.mark.django_db
def test_an_smtp_outage_does_not_crash_the_watchdog_and_the_alert_is_not_repeated(tenant_a, settings, caplog):
    mail_to(settings, SmtpServer())  # never started: connections are refused
    _endpoint(tenant_a)
    run = _run(tenant_a, status=RunStatus.RUNNING, attempts=1, heartbeat_at=_ago(STALE + 1))
    with caplog.at_level(logging.WARNING, logger="nightly.pipeline"):
        assert nightly_watchdog.run() == {"stalled": 1, "retried": 1, "alerted": 1}
    assert any(
        r.levelno == logging.WARNING and "could not be emailed" in r.getMessage() and r.exc_info for r in caplog.records
    )
    # The page shows the failure, the webhook event was recorded; the email is not retried every tick.
    assert _reload(tenant_a, run).alerted_attempt == 1
    with context.tenant_context(tenant_a.tenant):
        assert WebhookDelivery.objects.filter(event_type="nightly_run.failed").count() == 1
    assert nightly_watchdog.run()["alerted"] == 0


# --- Two colliding tasks --------------------------------------------------------------------------------
@pytest.mark.django_db
def test_a_task_that_gets_the_lock_after_the_date_is_done_does_not_recompute_it(tenant_a):
    tenant = tenant_a.tenant
    for _ in range(3):
        factories.AccountFactory(tenant=tenant)
    first = nightly_tenant.run(tenant.pk, DAY.isoformat())
    assert first["health"]["accounts"] == 3
    with context.tenant_context(tenant):
        computed = dict(HealthSnapshot.objects.filter(snapshot_date=DAY).values_list("account_id", "computed_at"))
    # The colliding task waited for the lock (TenantRunLocked, retried) and finds the date done.
    assert nightly_tenant.run(tenant.pk, DAY.isoformat()) == {"skipped": "done"}
    run = _reload(tenant_a, NightlyRun(pk=first_run_pk(tenant_a)))
    assert (run.status, run.attempts, run.summary) == (RunStatus.DONE, 1, first)
    with context.tenant_context(tenant):
        assert (
            dict(HealthSnapshot.objects.filter(snapshot_date=DAY).values_list("account_id", "computed_at")) == computed
        )
    # An operator's forced re-run does run again.
    assert nightly_tenant.run(tenant.pk, DAY.isoformat(), force=True)["health"]["accounts"] == 3
    assert _reload(tenant_a, run).attempts == 2


def first_run_pk(world) -> int:
    with context.tenant_context(world.tenant):
        return NightlyRun.objects.get(run_date=DAY).pk


@pytest.mark.django_db
def test_a_task_leaves_a_live_attempt_alone_but_takes_over_a_dead_one(tenant_a):
    tenant = tenant_a.tenant
    factories.AccountFactory(tenant=tenant)
    # E.g. a big tenant's chord still scoring its chunks: the run beats, so another task stops.
    run = _run(tenant_a, status=RunStatus.RUNNING, attempts=1, heartbeat_at=_ago(1))
    assert nightly_tenant.run(tenant.pk, DAY.isoformat()) == {"skipped": "running"}
    assert _reload(tenant_a, run).attempts == 1
    # Silent past the stale limit: its worker is gone; the task runs the date (attempt 2).
    with context.tenant_context(tenant):
        NightlyRun.objects.filter(pk=run.pk).update(heartbeat_at=_ago(STALE + 1))
    assert nightly_tenant.run(tenant.pk, DAY.isoformat())["health"]["accounts"] == 1
    run = _reload(tenant_a, run)
    assert (run.status, run.attempts, run.alerted_attempt) == (RunStatus.DONE, 2, 0)


# --- The heartbeat thread ----------------------------------------------------------------------------------
def test_the_heartbeat_thread_stamps_the_run_while_the_block_runs_and_stops_after(
    django_db_setup, django_db_blocker, settings
):
    """The thread has its own connection, so the run is committed (and purged by the owner afterwards)."""
    from django.db import connections

    from tests.committed import purge_tenant

    if connection.vendor != "postgresql":
        pytest.skip("the heartbeat thread runs on PostgreSQL only")
    settings.NIGHTLY_HEARTBEAT_SECONDS = 0.05
    with django_db_blocker.unblock():
        tenant = factories.TenantFactory(slug="heartbeat-thread", name="Heartbeat thread", reference_data=False)
        try:
            old = _ago(3600)
            with context.tenant_context(tenant):
                run = NightlyRun.objects.create(
                    tenant=tenant, run_date=DAY, status=RunStatus.RUNNING, attempts=1, heartbeat_at=old
                )

            def beat():
                with context.tenant_context(tenant):
                    return NightlyRun.objects.get(pk=run.pk).heartbeat_at

            with nightly.heartbeat(tenant=tenant, day=DAY, attempt=1):
                time.sleep(0.4)  # a long step: no boundary beat, only the thread's
                during = beat()
            assert during > old and timezone.now() - during < datetime.timedelta(seconds=1)
            after = beat()
            time.sleep(0.3)
            assert beat() == after  # the thread has stopped with the block

            # Another attempt's heartbeat thread does not keep this attempt's run alive.
            with nightly.heartbeat(tenant=tenant, day=DAY, attempt=2):
                time.sleep(0.3)
            assert beat() == after
        finally:
            connections["default"].close()
            purge_tenant(tenant.pk)


# --- The pages --------------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_the_runs_page_shows_a_stuck_run_and_no_stale_summary(client, tenant_a):
    _run(
        tenant_a,
        DAY - datetime.timedelta(days=1),
        status=RunStatus.DONE,
        attempts=1,
        summary={"health": {"accounts": 41, "bands": {"green": 41}}, "seconds": 3.2},
    )
    _run(tenant_a, status=RunStatus.RUNNING, attempts=1, started_at=_ago(900), heartbeat_at=_ago(STALE + 240))
    client.force_login(tenant_a.user(Role.ADMIN))
    client.get(reverse("home"))
    body = client.get(reverse("nightly_runs")).content.decode()
    assert "The nightly run of 2026-11-20 is stuck" in body and "has sent no heartbeat since" in body
    assert '<span class="badge failed">Stuck</span>' in body
    assert body.count("41 accounts scored") == 1  # the done run's own row only


@pytest.mark.django_db
def test_a_failed_run_shows_its_error_not_the_previous_summary_on_the_runs_page_and_the_admins_home(client, tenant_a):
    _run(
        tenant_a,
        status=RunStatus.FAILED,
        attempts=2,
        finished_at=timezone.now(),
        error="Stalled: attempt 2 stopped sending heartbeats <b>x</b>",
        summary={"health": {"accounts": 41, "bands": {"green": 41}}},  # left over by an earlier attempt
    )
    client.force_login(tenant_a.user(Role.ADMIN))
    home = client.get(reverse("home")).content.decode()
    assert "The nightly run of 2026-11-20 failed" in home and "(attempt 2 of 3)" in home
    assert "&lt;b&gt;x&lt;/b&gt;" in home and "<b>x</b>" not in home  # escaped
    assert reverse("nightly_runs") in home
    body = client.get(reverse("nightly_runs")).content.decode()
    assert "The nightly run of 2026-11-20 failed" in body and "41 accounts scored" not in body

    # Executives land on the same portfolio without the operations notice.
    client.force_login(tenant_a.user(Role.EXECUTIVE))
    assert "The nightly run of" not in client.get(reverse("home")).content.decode()


@pytest.mark.django_db
def test_a_done_or_live_latest_run_shows_no_notice(client, tenant_a):
    _run(tenant_a, DAY - datetime.timedelta(days=1), status=RunStatus.FAILED, attempts=1, error="old failure")
    _run(tenant_a, status=RunStatus.RUNNING, attempts=1, heartbeat_at=_ago(1))
    client.force_login(tenant_a.user(Role.ADMIN))
    assert "The nightly run of" not in client.get(reverse("home")).content.decode()


# --- Settings -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"NIGHTLY_STALE_SECONDS": "20"}, "NIGHTLY_STALE_SECONDS=20.0 must be at least three heartbeats"),
        ({"NIGHTLY_HEARTBEAT_SECONDS": "0"}, "NIGHTLY_HEARTBEAT_SECONDS and NIGHTLY_WATCHDOG_SECONDS must be positive"),
        ({"NIGHTLY_WATCHDOG_SECONDS": "soon"}, "Setting NIGHTLY_WATCHDOG_SECONDS='soon' is not valid"),
    ],
)
def test_bad_heartbeat_settings_stop_start_up_with_one_line(env, expected):
    from tests.test_settings import _manage

    result = _manage("check", DEBUG="true", **env)
    assert result.returncode == 2 and result.stderr.startswith(f"Configuration error: {expected}"), result.stderr


def test_beat_runs_the_watchdog_every_minute_by_default():
    from cs_platform import settings as project  # the module's values, not a test's overrides

    entry = project.CELERY_BEAT_SCHEDULE["nightly-watchdog"]
    assert entry == {"task": "metrics.nightly_watchdog", "schedule": 60.0}
    assert (project.NIGHTLY_HEARTBEAT_SECONDS, project.NIGHTLY_STALE_SECONDS) == (30.0, 300.0)
