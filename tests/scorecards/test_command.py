"""`manage.py send_scorecards`: synchronous sending through a real SMTP server, idempotent re-runs,
--dry-run (renders, lists, writes nothing), --to (a test copy of every email, no delivery recorded),
and clear errors for an unknown tenant or a malformed week."""

from __future__ import annotations

import datetime
import io
from unittest import mock

import pytest
from django.core.management import CommandError, call_command

from cs_platform.audit.models import AuditEvent
from cs_platform.outbox import DeliveryStatus
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from scorecards.models import ScorecardDelivery
from scorecards.weeks import IsoWeek
from tests import factories
from tests.scorecards.smtp import SmtpServer, mail_to

pytestmark = pytest.mark.django_db

TODAY = datetime.date.today()
WEEK = str(IsoWeek.of(TODAY))


def _nightly_done(tenant, day: datetime.date) -> None:
    from metrics.models import NightlyRun, RunStatus

    with context.tenant_context(tenant):
        NightlyRun.objects.create(tenant=tenant, run_date=day, status=RunStatus.DONE)


@pytest.fixture
def two_executives(tenant_a, settings):
    # The current week is sendable whatever the hour the suite runs at: today is its send day, the send
    # hour is midnight, and today's nightly run is done (the guard's own tests below undo each of these).
    settings.SCORECARD_WEEKDAY, settings.SCORECARD_LOCAL_HOUR = TODAY.isoweekday(), 0
    _nightly_done(tenant_a.tenant, TODAY)
    cfo = factories.UserFactory(username="cfo@alpha.test", email="cfo@alpha.test")
    factories.MembershipFactory(tenant=tenant_a.tenant, user=cfo, role=Role.EXECUTIVE)
    account = factories.AccountFactory(tenant=tenant_a.tenant, name="Lakeside Mutual")
    factories.DecisionFactory(tenant=tenant_a.tenant, account=account, owner=tenant_a.user(Role.CSM))
    return tenant_a


def _run(*args) -> str:
    out = io.StringIO()
    call_command("send_scorecards", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def _state(world) -> tuple[list, int]:
    with context.tenant_context(world.tenant):
        rows = list(ScorecardDelivery.objects.order_by("email").values_list("email", "status", "attempts"))
        return rows, AuditEvent.objects.count()


def test_sends_each_recipient_once_and_a_second_run_sends_nothing(two_executives, smtp):
    world = two_executives
    out = _run("--tenant", "alpha", "--week", WEEK)
    assert "2 recipient(s), 2 new delivery row(s), 2 to send" in out and "sent 2" in out
    assert sorted(m.rcpt_tos[0] for m in smtp.messages) == ["cfo@alpha.test", "executive@alpha.test"]
    rows, events = _state(world)
    assert rows == [("cfo@alpha.test", "sent", 1), ("executive@alpha.test", "sent", 1)]

    out = _run("--tenant", "alpha", "--week", WEEK)
    assert "0 new delivery row(s), 0 to send" in out and "nothing to send" in out
    assert len(smtp.messages) == 2
    assert _state(world) == (rows, events)  # nothing written either


def test_default_week_is_the_tenants_current_week(two_executives, smtp):
    _run("--tenant", "alpha")
    rows, _ = _state(two_executives)
    with context.tenant_context(two_executives.tenant):
        assert set(ScorecardDelivery.objects.values_list("week", flat=True)) == {WEEK}
    assert len(rows) == 2


def test_dry_run_renders_and_lists_but_sends_and_writes_nothing(two_executives, smtp):
    before = _state(two_executives)
    out = _run("--tenant", "alpha", "--week", WEEK, "--dry-run")
    assert "2 recipient(s) (dry run: nothing is sent)" in out
    for line in (line for line in out.splitlines() if "@alpha.test" in line):
        assert "(executive, segments all)" in line and "bytes" in line and "image(s)" in line
    assert smtp.messages == []
    assert _state(two_executives) == before == ([], before[1])


def test_to_sends_a_test_copy_of_every_email_without_recording_deliveries(two_executives, smtp):
    world = two_executives
    out = _run("--tenant", "alpha", "--week", WEEK, "--to", "qa@vendor.test")
    assert "2 test email(s) sent to qa@vendor.test; no delivery recorded" in out
    assert [m.rcpt_tos for m in smtp.messages] == [["qa@vendor.test"], ["qa@vendor.test"]]
    subjects = sorted(str(m.message["Subject"]).strip() for m in smtp.messages)
    assert subjects[0].startswith("[Test copy of cfo@alpha.test]")
    assert subjects[1].startswith("[Test copy of executive@alpha.test]")
    assert all(m.message["List-Unsubscribe"] is None for m in smtp.messages)  # it would unsubscribe them
    rows, _ = _state(world)
    assert rows == []  # the real send of the week still happens
    with context.tenant_context(world.tenant):
        event = AuditEvent.objects.get(action="scorecard.test_send")
    assert event.after == {"week": WEEK, "to": "qa@vendor.test", "emails": 2}
    _run("--tenant", "alpha", "--week", WEEK)
    assert len(smtp.collector.to("executive@alpha.test")) == 1


def test_smtp_down_is_reported_and_a_later_run_sends_exactly_once(two_executives, settings):
    server = SmtpServer()
    mail_to(settings, server)
    with pytest.raises(CommandError, match="2 email.s. not sent"):
        _run("--tenant", "alpha", "--week", WEEK)
    rows, _ = _state(two_executives)
    assert [(status, attempts) for _, status, attempts in rows] == [("retrying", 1), ("retrying", 1)]
    server.start()
    try:
        out = _run("--tenant", "alpha", "--week", WEEK)  # the operator does not wait for the backoff
        assert "sent 2" in out
        _run("--tenant", "alpha", "--week", WEEK)
    finally:
        server.stop()
    assert sorted(m.rcpt_tos[0] for m in server.messages) == ["cfo@alpha.test", "executive@alpha.test"]
    rows, _ = _state(two_executives)
    assert {status for _, status, _ in rows} == {DeliveryStatus.SENT}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tenant", "nope"], "Unknown tenant slug 'nope'. Known tenants: alpha"),
        (["--tenant", "alpha", "--week", "2026-48"], "--week: '2026-48' is not an ISO week such as 2026-W48"),
        (["--tenant", "alpha", "--week", "2026-W54"], "--week: '2026-W54': 2026 has no week 54"),
        (["--tenant", "alpha", "--to", "not-an-address"], "--to 'not-an-address' is not an email address"),
    ],
)
def test_clear_errors(tenant_a, args, message):
    with pytest.raises(CommandError) as excinfo:
        _run(*args)
    assert message in str(excinfo.value)


# --- The guard against an early real send -----------------------------------------------------------
def test_a_week_whose_send_moment_has_not_come_is_refused_and_nothing_is_written(two_executives, smtp):
    later = str(IsoWeek.of(TODAY + datetime.timedelta(days=14)))
    before = _state(two_executives)
    with pytest.raises(CommandError) as excinfo:
        _run("--tenant", "alpha", "--week", later)
    assert f"The emails of {later} are due" in str(excinfo.value) and "--force" in str(excinfo.value)
    assert smtp.messages == [] and _state(two_executives) == before
    # Previewing it is fine: dry runs and test copies record no delivery.
    assert "dry run: nothing is sent" in _run("--tenant", "alpha", "--week", later, "--dry-run")


def test_the_current_week_waits_for_its_send_hour(two_executives, smtp, settings):
    monday = IsoWeek.of(TODAY).monday
    settings.SCORECARD_WEEKDAY, settings.SCORECARD_LOCAL_HOUR = 1, 7
    early = datetime.datetime.combine(monday, datetime.time(6, 59), tzinfo=datetime.UTC)
    with mock.patch("scorecards.schedule.timezone.now", return_value=early):
        with pytest.raises(CommandError, match=rf"due Monday {monday:%Y-%m-%d} 07:00 UTC"):
            _run("--tenant", "alpha", "--week", WEEK)
    assert smtp.messages == []


def test_the_current_week_waits_for_its_send_days_nightly_run_unless_forced(two_executives, smtp):
    from metrics.models import NightlyRun

    with context.tenant_context(two_executives.tenant):
        NightlyRun.objects.filter(run_date=TODAY).delete()
    with pytest.raises(CommandError) as excinfo:
        _run("--tenant", "alpha", "--week", WEEK)
    assert f"The nightly run of {TODAY:%Y-%m-%d}" in str(excinfo.value)
    assert f"recompute --tenant alpha --date {TODAY:%Y-%m-%d}" in str(excinfo.value)
    assert smtp.messages == [] and _state(two_executives)[0] == []

    err = io.StringIO()
    call_command("send_scorecards", "--tenant", "alpha", "--week", WEEK, "--force", stdout=io.StringIO(), stderr=err)
    assert "--force: sending although: The nightly run" in err.getvalue()
    assert sorted(m.rcpt_tos[0] for m in smtp.messages) == ["cfo@alpha.test", "executive@alpha.test"]


def test_a_past_week_can_always_be_sent(two_executives, smtp):
    from metrics.models import NightlyRun

    with context.tenant_context(two_executives.tenant):
        NightlyRun.objects.all().delete()  # no nightly at all: the figures are whatever there was
    previous = str(IsoWeek.of(TODAY).previous())
    assert "sent 2" in _run("--tenant", "alpha", "--week", previous)
