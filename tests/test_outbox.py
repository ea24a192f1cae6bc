"""The delivery outbox (cs_platform.outbox) on the real database, for both kinds that use it: webhook
deliveries and weekly scorecard emails. Backoff, claim and lease, finish, the sweep across tenants, and
the queueing after commit; the migration that brought webhook deliveries to the shared vocabulary."""

from __future__ import annotations

import datetime
import importlib
import types

import pytest
from django.apps import apps
from django.db import connection
from django.utils import timezone

from cs_platform import outbox
from cs_platform.outbox import DeliveryStatus
from cs_platform.tenancy import context
from monitoring.selectors import delivery_backlog
from scorecards import delivery as scorecard_delivery
from scorecards.models import ScorecardDelivery
from tests import factories
from tests.observability.helpers import captured_logs
from webhooks import delivery as webhook_delivery
from webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db

OUTBOXES = {"webhook": webhook_delivery.OUTBOX, "email": scorecard_delivery.OUTBOX}


@pytest.fixture(params=sorted(OUTBOXES))
def kind(request) -> str:
    return request.param


def _make(kind: str, world, **fields):
    """A row of `kind` in `world`'s tenant; every field the outbox reads can be given."""
    if kind == "webhook":
        return factories.WebhookDeliveryFactory(tenant=world.tenant, **fields)
    return factories.ScorecardDeliveryFactory(tenant=world.tenant, **fields)


def _read(world, row):
    with context.tenant_context(world.tenant):
        return type(row).objects.get(pk=row.pk)


class _Queue:
    """An Enqueue that records the messages it was asked to send."""

    def __init__(self) -> None:
        self.messages: list[tuple[int, int, int | None]] = []

    def __call__(self, tenant_id: int, pk: int, attempt: int | None) -> None:
        self.messages.append((tenant_id, pk, attempt))


# --- One vocabulary, one schedule ---------------------------------------------------------------------
def test_both_kinds_share_one_status_vocabulary():
    for model in (WebhookDelivery, ScorecardDelivery):
        assert model._meta.get_field("status").choices == DeliveryStatus.choices, model
    assert outbox.WAITING == ("pending", "retrying")
    assert outbox.UNFINISHED == ("pending", "sending", "retrying")


def test_the_retry_delay_doubles_up_to_the_cap_with_up_to_a_tenth_of_jitter():
    for attempt, wait in enumerate([2, 4, 8, 16, 32, 60, 60, 60], start=1):
        waits = [outbox.retry_delay(attempt, base=2, cap=60) for _ in range(50)]
        assert all(wait <= w <= wait * 1.1 for w in waits), (attempt, min(waits), max(waits))
        # Jittered: receivers that come back are not hit by every queued retry in the same second.
        assert len(set(waits)) > 1, attempt


def test_each_kind_reads_its_own_settings_when_it_needs_them(settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS, settings.WEBHOOK_RETRY_MAX_SECONDS = 1.0, 5.0
    settings.SCORECARD_RETRY_BASE_SECONDS, settings.SCORECARD_RETRY_MAX_SECONDS = 10.0, 15.0
    assert 1.0 <= webhook_delivery.OUTBOX.retry_delay(1) <= 1.1
    assert 5.0 <= webhook_delivery.OUTBOX.retry_delay(10) <= 5.5  # capped
    assert 10.0 <= scorecard_delivery.OUTBOX.retry_delay(1) <= 11.0
    assert 15.0 <= scorecard_delivery.OUTBOX.retry_delay(3) <= 16.5  # capped


def test_a_failure_is_retried_until_the_last_attempt_or_a_permanent_error(settings, kind):
    settings.WEBHOOK_MAX_ATTEMPTS = settings.SCORECARD_MAX_ATTEMPTS = 3
    box = OUTBOXES[kind]
    now = timezone.now()
    again = box.after_failure(2, now=now)
    assert again.status == DeliveryStatus.RETRYING and again.retry_in > 0
    assert again.at == now + datetime.timedelta(seconds=again.retry_in)  # the row's due time and the eta
    assert box.after_failure(3, now=now) == outbox.NextAttempt(status=DeliveryStatus.FAILED)
    assert box.after_failure(1, permanent=True, now=now) == outbox.NextAttempt(status=DeliveryStatus.FAILED)


# --- Claim, lease, finish -------------------------------------------------------------------------------
def test_a_claim_is_won_once_and_holds_the_row_for_the_lease(tenant_a, kind):
    box = OUTBOXES[kind]
    row = _make(kind, tenant_a)
    now = timezone.now()
    with context.tenant_context(tenant_a.tenant):
        assert box.claim(row.pk, now=now)
        # A duplicate message, due or not, finds the row being sent.
        assert not box.claim(row.pk, now=now)
        assert not box.claim(row.pk, now=now, due_only=False)
    claimed = _read(tenant_a, row)
    assert (claimed.status, claimed.attempts, claimed.next_attempt_at) == (DeliveryStatus.SENDING, 1, now + box.lease)


def test_a_message_without_an_attempt_number_claims_only_a_row_that_is_due(tenant_a, kind):
    box = OUTBOXES[kind]
    now = timezone.now()
    due = now + datetime.timedelta(minutes=1)
    row = _make(kind, tenant_a, status=DeliveryStatus.RETRYING, attempts=1, next_attempt_at=due)
    with context.tenant_context(tenant_a.tenant):
        assert not box.claim(row.pk, now=now)
        assert box.due_later(row.pk, now=now) == due  # the task puts the message back for then
        assert box.claim(row.pk, now=due)
        assert box.due_later(row.pk, now=due) is None
    other = _make(kind, tenant_a, status=DeliveryStatus.RETRYING, attempts=1, next_attempt_at=due)
    with context.tenant_context(tenant_a.tenant):
        assert box.claim(other.pk, now=now, due_only=False)  # "retry now", the command
    assert _read(tenant_a, other).attempts == 2


def test_a_message_with_an_attempt_number_claims_that_attempt_only_early_or_not(tenant_a, kind):
    box = OUTBOXES[kind]
    now = timezone.now()
    later = now + datetime.timedelta(hours=1)
    row = _make(kind, tenant_a, status=DeliveryStatus.RETRYING, attempts=2, next_attempt_at=later)
    with context.tenant_context(tenant_a.tenant):
        assert not box.claim(row.pk, now=now, attempt=2, due_only=False)  # a duplicate of attempt 2
        assert not box.claim(row.pk, now=now, attempt=4, due_only=False)
        assert box.claim(row.pk, now=now, attempt=3, due_only=False)  # early: sent early, not dropped
    assert _read(tenant_a, row).attempts == 3


def test_an_outcome_is_written_only_while_the_row_is_still_that_attempts(tenant_a, kind):
    box = OUTBOXES[kind]
    row = _make(kind, tenant_a)
    now = timezone.now()
    with context.tenant_context(tenant_a.tenant):
        assert box.claim(row.pk, now=now)
        assert not box.finish(row.pk, attempt=2, status=DeliveryStatus.SENT)  # not the attempt claimed
        assert box.finish(row.pk, attempt=1, status=DeliveryStatus.SENT, last_error="")
        assert not box.finish(row.pk, attempt=1, status=DeliveryStatus.FAILED, last_error="late")
    done = _read(tenant_a, row)
    assert (done.status, done.attempts, done.next_attempt_at, done.last_error) == (DeliveryStatus.SENT, 1, None, "")


# --- The sweep ------------------------------------------------------------------------------------------
def test_the_sweep_queues_lost_messages_in_every_tenant(tenant_a, tenant_b, kind):
    box = OUTBOXES[kind]
    now = timezone.now()
    hour_ago = now - datetime.timedelta(hours=1)
    lost = _make(kind, tenant_a, created_at=hour_ago)  # the broker was down when it was committed
    _make(kind, tenant_a)  # fresh: its message is on its way
    overdue = _make(kind, tenant_a, status=DeliveryStatus.RETRYING, attempts=2, next_attempt_at=hour_ago)
    _make(
        kind,
        tenant_a,
        status=DeliveryStatus.RETRYING,
        attempts=1,
        next_attempt_at=now - outbox.STALE_GRACE + datetime.timedelta(minutes=1),  # late, within the grace
        created_at=hour_ago,
    )
    _make(kind, tenant_a, status=DeliveryStatus.SENT, attempts=1, created_at=hour_ago)
    _make(kind, tenant_a, status=DeliveryStatus.FAILED, attempts=3, created_at=hour_ago)
    lost_b = _make(kind, tenant_b, created_at=hour_ago)

    queue = _Queue()
    result = box.sweep(enqueue=queue, now=now)

    # Each message is for the row's next attempt, in the row's own tenant.
    assert sorted(queue.messages) == sorted(
        [(tenant_a.tenant.pk, lost.pk, 1), (tenant_a.tenant.pk, overdue.pk, 3), (tenant_b.tenant.pk, lost_b.pk, 1)]
    )
    assert result == outbox.SweepResult(requeued=3, lease_failed=0)
    assert _read(tenant_a, overdue).status == DeliveryStatus.RETRYING  # the message claims it, not the sweep


def test_a_webhook_whose_worker_died_is_attempted_again_after_the_lease(tenant_a, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    box = webhook_delivery.OUTBOX
    now = timezone.now()
    second = now - datetime.timedelta(seconds=1)
    expired = _make("webhook", tenant_a, status=DeliveryStatus.SENDING, attempts=1, next_attempt_at=second)
    last = _make("webhook", tenant_a, status=DeliveryStatus.SENDING, attempts=3, next_attempt_at=second)
    alive = _make("webhook", tenant_a, status=DeliveryStatus.SENDING, attempts=1, next_attempt_at=now + box.lease)

    queue = _Queue()
    result = box.sweep(enqueue=queue, now=now)

    assert queue.messages == [(tenant_a.tenant.pk, expired.pk, 2)]
    assert result == outbox.SweepResult(requeued=1, lease_failed=1)
    again = _read(tenant_a, expired)
    assert (again.status, again.next_attempt_at, again.last_error) == (
        DeliveryStatus.RETRYING,
        now,
        box.lost_lease_error,
    )
    failed = _read(tenant_a, last)  # that was its last attempt
    assert (failed.status, failed.next_attempt_at, failed.last_error) == (
        DeliveryStatus.FAILED,
        None,
        box.lost_lease_error,
    )
    assert _read(tenant_a, alive).status == DeliveryStatus.SENDING  # its worker is still within the lease
    # The dead worker's late outcome changes nothing; the queued message claims attempt 2.
    with context.tenant_context(tenant_a.tenant):
        assert not box.finish(expired.pk, attempt=1, status=DeliveryStatus.SENT)
        assert box.claim(expired.pk, now=now, attempt=2, due_only=False)


def test_an_email_whose_worker_died_is_failed_for_a_person_not_resent(tenant_a):
    box = scorecard_delivery.OUTBOX
    now = timezone.now()
    stuck = _make("email", tenant_a, status=DeliveryStatus.SENDING, attempts=1, next_attempt_at=now)
    seen: list[tuple[int, list[int]]] = []

    queue = _Queue()
    result = box.sweep(
        enqueue=queue,
        now=now + datetime.timedelta(seconds=1),
        on_failed=lambda tenant_id, rows: seen.append((tenant_id, [row.pk for row in rows])),
    )

    assert queue.messages == [] and result == outbox.SweepResult(requeued=0, lease_failed=1)
    assert seen == [(tenant_a.tenant.pk, [stuck.pk])]
    failed = _read(tenant_a, stuck)
    assert failed.status == DeliveryStatus.FAILED and failed.last_error == scorecard_delivery.STUCK_ERROR
    with context.tenant_context(tenant_a.tenant):
        assert not box.claim(stuck.pk, now=now, due_only=False)


def test_a_second_sweep_finds_nothing_more_to_do(tenant_a, kind):
    box = OUTBOXES[kind]
    now = timezone.now()
    _make(kind, tenant_a, status=DeliveryStatus.SENDING, attempts=1, next_attempt_at=now - datetime.timedelta(hours=1))
    first = box.sweep(enqueue=_Queue(), now=now)
    assert first.requeued + first.lease_failed == 1
    queue = _Queue()
    assert box.sweep(enqueue=queue, now=now) == outbox.SweepResult(requeued=0, lease_failed=0)
    assert queue.messages == []


# --- Queueing -------------------------------------------------------------------------------------------
def test_messages_are_queued_after_the_commit_and_a_broker_error_loses_none_but_that_one(
    django_capture_on_commit_callbacks,
):
    sent: list[tuple] = []

    def enqueue(tenant_id: int, pk: int, attempt: int | None) -> None:
        if pk == 2:
            raise ConnectionError("the broker is down")
        sent.append((tenant_id, pk, attempt))

    with captured_logs() as logs, django_capture_on_commit_callbacks(execute=True):
        webhook_delivery.OUTBOX.queue_on_commit(enqueue, 7, [1, 2, 3], attempt=1)
        assert sent == []  # the worker must find the rows committed
    assert sent == [(7, 1, 1), (7, 3, 1)]
    (line,) = [x for x in logs.lines() if x["logger"] == "cs_platform.outbox"]
    assert line["level"] == "error" and "could not queue webhooks.WebhookDelivery 2; the sweep will" in line["event"]


# --- What changed in the database -------------------------------------------------------------------------
def test_the_migration_renames_succeeded_webhooks_to_sent_in_every_tenant(tenant_a, tenant_b):
    """Row-Level Security holds for whoever migrates (here the app role), so the rename works tenant by
    tenant; done in one statement it would change nothing."""
    migration = importlib.import_module("webhooks.migrations.0003_outbox_status_vocabulary")
    rows = [(world, _make("webhook", world)) for world in (tenant_a, tenant_b)]
    for world, row in rows:
        with context.tenant_context(world.tenant):
            WebhookDelivery.objects.filter(pk=row.pk).update(status="succeeded")
    schema_editor = types.SimpleNamespace(connection=connection)

    migration.forwards(apps, schema_editor)
    assert [_read(world, row).status for world, row in rows] == ["sent", "sent"]
    migration.backwards(apps, schema_editor)
    assert [_read(world, row).status for world, row in rows] == ["succeeded", "succeeded"]


def test_the_backlog_counts_deliveries_being_sent_of_both_kinds(tenant_a):
    old = timezone.now() - datetime.timedelta(minutes=5)
    for kind in OUTBOXES:
        _make(kind, tenant_a, status=DeliveryStatus.SENDING, attempts=1, next_attempt_at=timezone.now(), created_at=old)
    sending = {(row.kind, row.waiting) for row in delivery_backlog() if row.status == DeliveryStatus.SENDING}
    assert sending == {("webhook", 1), ("scorecard_email", 1)}
