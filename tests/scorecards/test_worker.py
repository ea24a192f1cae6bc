"""The beat side of the weekly scorecard: which tenants are due (their time zone, SCORECARD_WEEKDAY and
SCORECARD_LOCAL_HOUR), queued once per week and only after the transaction commits; the per-tenant task
prepares idempotently and queues one send per delivery."""

from __future__ import annotations

import datetime
from unittest import mock

import pytest
from django.core.cache.backends.locmem import LocMemCache

from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from scorecards import delivery, schedule, tasks
from scorecards.models import ScorecardDelivery
from scorecards.weeks import IsoWeek
from tests import factories

# Not module-wide: the real worker's test needs committed rows, outside the test transaction.
db = pytest.mark.django_db

UTC = datetime.UTC
# Monday 2026-11-23 (ISO week 48), 06:30 UTC.
NOW = datetime.datetime(2026, 11, 23, 6, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def own_cache(monkeypatch):
    # The shared Redis cache of the test settings could hold another run's "prepared" marks.
    monkeypatch.setattr(tasks, "cache", LocMemCache("scorecards-worker-test", {}))


@pytest.mark.parametrize(
    ("zone", "at", "week"),
    [
        ("UTC", NOW, None),  # 06:30 Monday: not yet
        ("UTC", NOW + datetime.timedelta(minutes=30), "2026-W48"),  # 07:00 sharp
        ("Europe/Berlin", NOW, "2026-W48"),  # 07:30 local
        ("America/New_York", NOW, None),  # 01:30 local
        ("America/New_York", NOW + datetime.timedelta(hours=6), "2026-W48"),
        ("Pacific/Auckland", NOW, "2026-W48"),  # 19:30 local
        ("Pacific/Auckland", NOW - datetime.timedelta(hours=13), None),  # 06:30 Monday local
        ("America/Los_Angeles", NOW, "2026-W47"),  # still Sunday 22:30 of week 47 there
        ("Asia/Tokyo", NOW + datetime.timedelta(days=3), "2026-W48"),  # later in the week: still due
    ],
)
def test_week_due_follows_the_tenant_time_zone(zone, at, week):
    tenant = mock.Mock(time_zone=zone)
    due = schedule.scorecard_week_due(tenant, at)
    assert (str(due) if due else None) == week


@pytest.mark.parametrize(
    ("zone", "at", "week"),
    [
        # Berlin left summer time on Sunday 2026-10-25: Monday 07:00 is 06:00 UTC, not 05:00 as a week before.
        ("Europe/Berlin", datetime.datetime(2026, 10, 19, 4, 59, tzinfo=UTC), None),
        ("Europe/Berlin", datetime.datetime(2026, 10, 19, 5, 0, tzinfo=UTC), "2026-W43"),
        ("Europe/Berlin", datetime.datetime(2026, 10, 26, 5, 59, tzinfo=UTC), None),
        ("Europe/Berlin", datetime.datetime(2026, 10, 26, 6, 0, tzinfo=UTC), "2026-W44"),
        # New York entered summer time on Sunday 2026-03-08: Monday 07:00 EDT is 11:00 UTC, not 12:00.
        ("America/New_York", datetime.datetime(2026, 3, 9, 10, 59, tzinfo=UTC), None),
        ("America/New_York", datetime.datetime(2026, 3, 9, 11, 0, tzinfo=UTC), "2026-W11"),
    ],
)
def test_week_due_stays_at_seven_local_across_daylight_saving_changes(zone, at, week):
    tenant = mock.Mock(time_zone=zone)
    due = schedule.scorecard_week_due(tenant, at)
    assert (str(due) if due else None) == week


def test_a_send_hour_inside_the_spring_forward_gap_is_due_once_the_clock_jumps(settings):
    # Europe/London skips 01:00-02:00 on Sunday 2026-03-29. A Sunday 01:00 send is due from the jump on.
    settings.SCORECARD_WEEKDAY, settings.SCORECARD_LOCAL_HOUR = 7, 1
    tenant = mock.Mock(time_zone="Europe/London")
    before = datetime.datetime(2026, 3, 29, 0, 59, tzinfo=UTC)  # 00:59 GMT
    after = datetime.datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 02:00 BST, the instant after 00:59:59 GMT
    assert schedule.scorecard_week_due(tenant, before) is None
    assert str(schedule.scorecard_week_due(tenant, after)) == "2026-W13"


def test_week_due_honours_the_configured_weekday_and_hour(settings):
    settings.SCORECARD_WEEKDAY, settings.SCORECARD_LOCAL_HOUR = 5, 16  # Friday 16:00
    tenant = mock.Mock(time_zone="Europe/London")
    assert schedule.scorecard_week_due(tenant, datetime.datetime(2026, 11, 27, 15, 59, tzinfo=UTC)) is None
    assert str(schedule.scorecard_week_due(tenant, datetime.datetime(2026, 11, 27, 16, 0, tzinfo=UTC))) == "2026-W48"


def _tenant(slug: str, zone: str):
    tenant = factories.TenantFactory(slug=slug, name=slug.title(), time_zone=zone)
    user = factories.UserFactory(username=f"exec@{slug}.test", email=f"exec@{slug}.test")
    factories.MembershipFactory(tenant=tenant, user=user, role=Role.EXECUTIVE)
    return tenant


def _nightly_done(tenant, day: datetime.date) -> None:
    from metrics.models import NightlyRun, RunStatus

    with context.tenant_context(tenant):
        NightlyRun.objects.create(tenant=tenant, run_date=day, status=RunStatus.DONE)


@db
def test_dispatch_waits_for_the_send_days_nightly_run_then_sends_anyway_after_the_wait(
    django_capture_on_commit_callbacks,
):
    berlin = _tenant("w-late", "Europe/Berlin")  # Monday 07:30 local at NOW: due, but no nightly run yet

    def queued_at(at):
        with (
            mock.patch("scorecards.tasks.timezone.now", return_value=at),
            mock.patch.object(tasks.scorecard_tenant_week, "delay"),
            mock.patch.object(tasks.scorecard_send, "apply_async"),
            django_capture_on_commit_callbacks(execute=True),
        ):
            return berlin.pk in tasks.weekly_dispatch.run()

    assert not queued_at(NOW)  # the figures would be Sunday's under Monday's date
    assert queued_at(NOW + datetime.timedelta(hours=5))  # 12:30 local: past the wait, sent with what there is
    _nightly_done(berlin, datetime.date(2026, 11, 23))
    assert queued_at(NOW)  # with the run done, at once


@db
def test_dispatch_queues_each_due_tenant_once_per_week_after_commit(django_capture_on_commit_callbacks):
    berlin = _tenant("w-berlin", "Europe/Berlin")
    tokyo = _tenant("w-tokyo", "Asia/Tokyo")
    new_york = _tenant("w-new-york", "America/New_York")
    empty = factories.TenantFactory(slug="w-empty", name="Empty", time_zone="Asia/Tokyo")  # no recipient
    ours = {berlin.pk, tokyo.pk, new_york.pk, empty.pk}
    for tenant in (berlin, tokyo, new_york, empty):  # Monday's nightly runs are done
        _nightly_done(tenant, datetime.date(2026, 11, 23))

    def dispatch(at):
        with (
            mock.patch("scorecards.tasks.timezone.now", return_value=at),
            mock.patch.object(tasks.scorecard_tenant_week, "delay") as delay,
            mock.patch.object(tasks.scorecard_send, "apply_async"),
        ):
            with django_capture_on_commit_callbacks(execute=True):
                queued = tasks.weekly_dispatch.run()
                delay.assert_not_called()  # only once the transaction commits
        return set(queued) & ours, {c.args for c in delay.call_args_list if c.args[0] in ours}

    queued, calls = dispatch(NOW)
    assert queued == {berlin.pk, tokyo.pk, empty.pk}
    assert calls == {(berlin.pk, "2026-W48"), (tokyo.pk, "2026-W48"), (empty.pk, "2026-W48")}

    # The queued tasks run (sends are queued, not made, here).
    with mock.patch.object(tasks.scorecard_send, "apply_async") as send:
        with django_capture_on_commit_callbacks(execute=True):
            for tenant_id, week in sorted(calls):
                tasks.scorecard_tenant_week.run(tenant_id, week)
    assert len(send.call_args_list) == 2  # Berlin's and Tokyo's executives; the empty tenant has nobody

    # The next tick: those weeks are prepared (the empty one by its mark); New York is now due.
    queued, calls = dispatch(NOW + datetime.timedelta(hours=6, minutes=15))
    assert calls == {(new_york.pk, "2026-W48")}


@db
def test_tenant_week_prepares_idempotently_and_queues_one_send_per_delivery(
    tenant_a, django_capture_on_commit_callbacks
):
    cfo = factories.UserFactory(username="cfo@alpha.test", email="cfo@alpha.test")
    factories.MembershipFactory(tenant=tenant_a.tenant, user=cfo, role=Role.EXECUTIVE)
    week = str(IsoWeek.of(datetime.date.today()))
    with mock.patch.object(tasks.scorecard_send, "apply_async") as send:
        with django_capture_on_commit_callbacks(execute=True):
            first = tasks.scorecard_tenant_week.run(tenant_a.tenant.pk, week)
            send.assert_not_called()
        assert first == {"week": week, "recipients": 2, "created": 2}
        with context.tenant_context(tenant_a.tenant):
            ids = sorted(ScorecardDelivery.objects.values_list("pk", flat=True))
        assert sorted(c.args[0][1] for c in send.call_args_list) == ids
        send.reset_mock()
        with django_capture_on_commit_callbacks(execute=True):
            again = tasks.scorecard_tenant_week.run(tenant_a.tenant.pk, week)
        assert again["created"] == 0
        # Rows still pending are queued again (harmless: a send claims its row); sent ones never are.
        with context.tenant_context(tenant_a.tenant):
            ScorecardDelivery.objects.filter(pk=ids[0]).update(status="sent")
        send.reset_mock()
        with django_capture_on_commit_callbacks(execute=True):
            tasks.scorecard_tenant_week.run(tenant_a.tenant.pk, week)
        assert [c.args[0][1] for c in send.call_args_list] == [ids[1]]


def test_beat_schedule_runs_the_dispatch_every_15_minutes(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["scorecards-weekly-dispatch"]
    assert entry == {"task": "scorecards.weekly_dispatch", "schedule": 15 * 60}
    assert tasks.weekly_dispatch.name == "scorecards.weekly_dispatch"
    assert tasks.scorecard_send.acks_late and tasks.scorecard_send.time_limit < delivery.SENDING_LEASE.total_seconds()


# --- A real worker ---------------------------------------------------------------------------------------------
RETRY_BASE = 0.3


@pytest.fixture
def committed_exec(django_db_setup, django_db_blocker):
    """A committed tenant with one executive (the worker is another process); purged afterwards."""
    from django.db import connections

    from tests.committed import purge_tenant

    with django_db_blocker.unblock():
        tenant = factories.TenantFactory(slug="scorecard-worker", name="Scorecard worker", reference_data=False)
        user = factories.UserFactory(username="exec@scorecard-worker.test", email="exec@scorecard-worker.test")
        factories.MembershipFactory(tenant=tenant, user=user, role=Role.EXECUTIVE)
    yield tenant, user
    with django_db_blocker.unblock():
        connections["default"].close()
        purge_tenant(tenant.pk, [user.pk])


@pytest.mark.skipif(not __import__("django.conf").conf.settings.CELERY_BROKER_URL, reason="no Celery broker")
def test_a_real_worker_retries_through_an_smtp_outage_and_delivers_exactly_once(
    committed_exec, django_db_blocker, tmp_path, monkeypatch
):
    import time

    from django.db import connection

    from tests.metrics.test_celery_worker import worker_pool
    from tests.scorecards.smtp import SmtpServer

    if connection.vendor != "postgresql":
        pytest.skip("the worker test runs on PostgreSQL")
    tenant, user = committed_exec
    server = SmtpServer()  # down until started
    # The worker reads its settings from the environment it inherits.
    monkeypatch.setenv("EMAIL_HOST", "127.0.0.1")
    monkeypatch.setenv("EMAIL_PORT", str(server.port))
    monkeypatch.setenv("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
    monkeypatch.setenv("SCORECARD_RETRY_BASE_SECONDS", str(RETRY_BASE))
    monkeypatch.setenv("SCORECARD_MAX_ATTEMPTS", "8")

    def row():
        with django_db_blocker.unblock(), context.tenant_context(tenant):
            return ScorecardDelivery.objects.get()

    def wait_for(condition, what: str, timeout: float = 30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = condition()
            if found:
                return found
            time.sleep(0.05)
        pytest.fail(f"timed out waiting for {what}: {row()}\n{pool.logs()}")

    with worker_pool(tmp_path) as pool:
        pool.start()
        with django_db_blocker.unblock():
            prepared = delivery.scorecard_deliveries_prepare(tenant=tenant, week=IsoWeek.of(datetime.date.today()))
        (delivery_id,) = prepared.sendable_ids
        # The same task twice (a duplicated message): only one of them may send.
        for _ in range(2):
            tasks.scorecard_send.apply_async((tenant.pk, delivery_id), queue=pool.queue)
        first = wait_for(lambda: (r := row()).status == "retrying" and r, "the first failed attempt")
        assert "Connection refused" in first.last_error or "ConnectionRefused" in first.last_error
        server.start()
        try:
            done = wait_for(lambda: (r := row()).status == "sent" and r, "the delivery")
            time.sleep(3 * RETRY_BASE * 2)  # room for any stray duplicate to (wrongly) send again
        finally:
            server.stop()
    assert [m.rcpt_tos for m in server.messages] == [["exec@scorecard-worker.test"]]
    assert done.attempts >= 2 and done.sent_at is not None and done.message_id
    assert server.messages[0].message["Message-ID"] == done.message_id


@pytest.mark.skipif(not __import__("django.conf").conf.settings.CELERY_BROKER_URL, reason="no Celery broker")
def test_a_retry_message_that_comes_early_is_sent_at_its_due_time_not_left_to_the_sweep(
    committed_exec, django_db_blocker, tmp_path, monkeypatch, settings
):
    """Issue #16 item 7: a send message that reaches a real worker before its row's next_attempt_at
    (the scheduled message lost, and an early one, a sweep's or a duplicate's, or a host clock behind)
    used to find the row "not-claimed" and end, leaving the email to the sweep up to ~27 minutes late.
    Now it puts itself back for the row's due time, and the email goes then."""
    import time

    from django.db import connection
    from django.utils import timezone

    from tests.metrics.test_celery_worker import worker_pool
    from tests.scorecards.smtp import SmtpServer, mail_to

    if connection.vendor != "postgresql":
        pytest.skip("the worker test runs on PostgreSQL")
    tenant, user = committed_exec
    wait = 3.0
    server = SmtpServer()  # down for the first attempt, made in this process
    mail_to(settings, server)
    settings.SCORECARD_RETRY_BASE_SECONDS = wait
    monkeypatch.setenv("EMAIL_HOST", "127.0.0.1")
    monkeypatch.setenv("EMAIL_PORT", str(server.port))
    monkeypatch.setenv("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")

    def row():
        with django_db_blocker.unblock(), context.tenant_context(tenant):
            return ScorecardDelivery.objects.get()

    with worker_pool(tmp_path) as pool:
        pool.start()
        with django_db_blocker.unblock():
            prepared = delivery.scorecard_deliveries_prepare(tenant=tenant, week=IsoWeek.of(datetime.date.today()))
            (delivery_id,) = prepared.sendable_ids
            # Attempt 1 through the service, not the task: SMTP refuses, the row waits `wait` seconds, and no
            # message is queued for the retry (as if the scheduled message had been lost).
            first = delivery.scorecard_delivery_send(tenant=tenant, delivery_id=delivery_id)
        assert first.status == "retrying" and first.next_attempt_at == row().next_attempt_at
        due = first.next_attempt_at
        server.start()
        try:
            tasks.scorecard_send.apply_async((tenant.pk, delivery_id), queue=pool.queue)  # early
            queued_at = timezone.now()
            assert queued_at < due - datetime.timedelta(seconds=1), "the message must come before the row is due"
            deadline = time.monotonic() + wait + 20
            while (sent := row()).status != "sent" and time.monotonic() < deadline:
                time.sleep(0.05)
            assert sent.status == "sent", f"{sent.status}: {pool.logs()}"
            logs = pool.logs()
        finally:
            server.stop()
    # It came early (the worker answered "not-due" and put it back), and went at the due time, not later.
    assert "'not-due'" in logs
    assert due <= sent.sent_at < due + datetime.timedelta(seconds=2), (due, sent.sent_at)
    assert sent.attempts == 2 and [m.rcpt_tos for m in server.messages] == [[user.email]]
