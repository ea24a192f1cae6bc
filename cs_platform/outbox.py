"""One delivery outbox for what the platform sends on its own schedule: webhook deliveries
(webhooks.delivery) and weekly scorecard emails (scorecards.delivery). Each kind keeps one row per
message in a table of its own (OutboxRow's columns plus what it sends and a `last_error` text) and
wires its Celery tasks in its tasks.py; this module holds the rules they share, and knows neither
Celery nor any domain app.

Life of a row (DeliveryStatus):

    pending -> sending -> sent | failed | skipped
               sending -> retrying (next_attempt_at = now + retry delay) -> sending -> ...
               sending, lease run out (the worker died) -> retrying, queued again (LostLease.RETRY)
                                                        or failed, for a person (LostLease.FAIL)

- Claim: one conditional UPDATE moves a waiting row (pending or retrying) to "sending", counts the
  attempt and sets next_attempt_at to the end of the lease; of two workers holding the same message
  exactly one claims it. A message that carries its attempt number (webhooks) claims that attempt and
  no other, so a duplicate of an attempt already made claims nothing and an early message is simply
  sent early; one that carries none (emails) claims only a row that is due.
- Finish: the outcome is written only while the row is still "sending" that attempt, so a worker that
  outlived its lease changes nothing once the row was taken back.
- Retry delay: capped exponential backoff with jitter, base * 2**(attempt-1) seconds, at most the cap,
  plus up to JITTER of it so receivers that come back are not hit by every queued retry at once.
  Settings per kind: <PREFIX>_RETRY_BASE_SECONDS, <PREFIX>_RETRY_MAX_SECONDS, <PREFIX>_MAX_ATTEMPTS.
- Requeue: the next attempt is a new task message whose eta is the very next_attempt_at written to the
  row. A message that still comes before its row is due answers NOT_DUE and its task puts it back for
  that time, at most MAX_EARLY_REQUEUES times (each message has at most one successor, so duplicates
  never multiply).
- Sweep (beat, every few minutes): rows whose lease ran out are retried or failed as the kind says, and
  waiting rows whose message was lost (overdue by STALE_GRACE) are queued again. It spans tenants and
  reads each tenant's rows inside it (RLS shows the app role one tenant at a time).
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import logging
import random
from collections.abc import Callable, Iterable

from django.conf import settings
from django.db import models, transaction
from django.db.models import F, Q
from django.utils import timezone

from cs_platform.tenancy import context
from cs_platform.tenancy.models import Tenant

logger = logging.getLogger(__name__)


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # waiting for its first attempt
    SENDING = "sending", "Sending"  # claimed by a worker; next_attempt_at is the end of its lease
    RETRYING = "retrying", "Retrying"  # an attempt failed; the next is due at next_attempt_at
    SENT = "sent", "Sent"  # the receiver accepted it (HTTP 2xx, SMTP 250)
    FAILED = "failed", "Failed"  # given up: for a person to look at, and retry
    SKIPPED = "skipped", "Skipped"  # nothing to send any more when it was due


# Plain strings: they meet the database's values in dicts and labels (an enum member hashes by its name).
WAITING = (DeliveryStatus.PENDING.value, DeliveryStatus.RETRYING.value)  # what a message may claim
UNFINISHED = (DeliveryStatus.PENDING.value, DeliveryStatus.SENDING.value, DeliveryStatus.RETRYING.value)  # backlog

# What a message that claimed nothing answers (the row's status is unchanged).
NOT_CLAIMED = "not-claimed"  # sent, failed, skipped, being sent, or that attempt was made already
NOT_DUE = "not-due"  # waiting, but for a later time: the task puts the message back for it

JITTER = 0.1
MAX_EARLY_REQUEUES = 3
STALE_GRACE = datetime.timedelta(minutes=15)  # how late a queued message may be before the sweep re-queues
SWEEP_BATCH = 5000  # rows per sweep and kind, in all tenants

# Queues one task message for a row: (tenant id, row id, number of the attempt it is for, None when the
# kind claims by due time and the number does not matter). The app's tasks.py supplies it.
Enqueue = Callable[[int, int, int | None], None]


class OutboxRow(models.Model):
    """The columns the outbox works on. A concrete model adds what it sends and `last_error`."""

    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True


def due(now: datetime.datetime) -> Q:
    """Rows a message may claim at `now`: waiting, with no due time or one that has come."""
    return Q(status__in=WAITING) & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))


def retry_delay(attempt: int, *, base: float, cap: float, jitter: float = JITTER) -> float:
    """Seconds to wait after failed attempt `attempt` (1-based): base * 2**(attempt-1), at most `cap`,
    plus up to `jitter` of it."""
    delay = min(base * 2 ** (attempt - 1), cap)
    return delay * (1 + random.uniform(0, jitter))  # noqa: S311 - jitter, not cryptography


class LostLease(enum.Enum):
    """What the sweep does with a row whose worker died mid-attempt (its lease ran out)."""

    RETRY = "retry"  # at least once: attempt again (a receiver can drop a duplicate by its id)
    FAIL = "fail"  # at most once: it may have gone out, so a person decides whether to send it again


@dataclasses.dataclass(frozen=True)
class NextAttempt:
    status: str  # RETRYING, or FAILED when no attempt follows
    retry_in: float | None = None
    at: datetime.datetime | None = None  # the row's next_attempt_at, and the next message's eta


@dataclasses.dataclass(frozen=True)
class SweepResult:
    requeued: int  # messages queued: lost ones, and rows taken back from a dead worker (RETRY)
    lease_failed: int  # rows whose lease ran out, failed (FAIL, or RETRY past the last attempt)


@dataclasses.dataclass(frozen=True)
class Outbox:
    """One kind of delivery: its table, its settings' prefix, how long a worker holds a claimed row, and
    what a lost lease means for it."""

    model: type[OutboxRow]
    settings_prefix: str
    lease: datetime.timedelta  # longer than the task's hard time limit: only a dead worker loses it
    on_lost_lease: LostLease
    lost_lease_error: str  # the row's last_error when the sweep takes it back

    # Settings are read when used, so a change (a test's override) applies at once.
    @property
    def max_attempts(self) -> int:
        return getattr(settings, f"{self.settings_prefix}_MAX_ATTEMPTS")

    def retry_delay(self, attempt: int) -> float:
        return retry_delay(
            attempt,
            base=getattr(settings, f"{self.settings_prefix}_RETRY_BASE_SECONDS"),
            cap=getattr(settings, f"{self.settings_prefix}_RETRY_MAX_SECONDS"),
        )

    def after_failure(
        self, attempt: int, *, permanent: bool = False, now: datetime.datetime | None = None
    ) -> NextAttempt:
        """What follows failed attempt `attempt`: another after the retry delay, or none when the error
        is permanent or that was the last attempt."""
        if permanent or attempt >= self.max_attempts:
            return NextAttempt(status=DeliveryStatus.FAILED)
        retry_in = self.retry_delay(attempt)
        at = (now or timezone.now()) + datetime.timedelta(seconds=retry_in)
        return NextAttempt(status=DeliveryStatus.RETRYING, retry_in=retry_in, at=at)

    # --- One attempt (in the row's tenant) ---------------------------------------------------------------
    def claim(self, pk: int, *, now: datetime.datetime, attempt: int | None = None, due_only: bool = True) -> bool:
        """Move the row to "sending", count the attempt and start the lease, in one committed UPDATE.
        `attempt`: the number the message carries, if any; only that attempt is claimed. `due_only`:
        only a row whose next attempt is due (False: an admin's "retry now", the command)."""
        rows = self.model.objects.filter(due(now) if due_only else Q(status__in=WAITING), pk=pk)
        if attempt is not None:
            rows = rows.filter(attempts=attempt - 1)
        claimed = rows.update(
            status=DeliveryStatus.SENDING, attempts=F("attempts") + 1, next_attempt_at=now + self.lease
        )
        return bool(claimed)

    def due_later(self, pk: int, *, now: datetime.datetime) -> datetime.datetime | None:
        """When the row is due, if it is waiting for a time after `now` (a message that came early)."""
        rows = self.model.objects.filter(pk=pk, status__in=WAITING, next_attempt_at__gt=now)
        return rows.values_list("next_attempt_at", flat=True).first()

    def finish(
        self, pk: int, *, attempt: int, status: str, next_attempt_at: datetime.datetime | None = None, **fields
    ) -> bool:
        """Write attempt `attempt`'s outcome, if the row is still sending that attempt (False: the sweep
        took it back after the lease, and another attempt or a person owns it now)."""
        rows = self.model.objects.filter(pk=pk, status=DeliveryStatus.SENDING, attempts=attempt)
        return bool(rows.update(status=status, next_attempt_at=next_attempt_at, **fields))

    # --- Queueing -------------------------------------------------------------------------------------
    def queue_on_commit(self, enqueue: Enqueue, tenant_id: int, pks: Iterable[int], *, attempt: int | None) -> None:
        """One message per row, sent once the rows are committed (the worker must see them). A broker
        outage leaves them waiting: the sweep queues them later."""
        pks = list(pks)
        if not pks:
            return

        def send() -> None:
            for pk in pks:
                try:
                    enqueue(tenant_id, pk, attempt)
                except Exception:  # a broker outage must not fail the request or run that made the rows
                    logger.exception("could not queue %s %s; the sweep will", self.model._meta.label, pk)

        transaction.on_commit(send)

    # --- The sweep (beat) -----------------------------------------------------------------------------
    def sweep(
        self,
        *,
        enqueue: Enqueue,
        now: datetime.datetime | None = None,
        on_failed: Callable[[int, list[OutboxRow]], None] | None = None,
    ) -> SweepResult:
        """Across tenants: take back rows whose lease ran out (retried and queued, or failed, as the kind
        says; `on_failed(tenant_id, rows)` runs in the same transaction, to audit them), then queue again
        waiting rows whose message was lost: pending for STALE_GRACE without a due time, or overdue by
        it. A message that was merely late does no harm: its attempt is claimed in the database, so
        only one of the two sends."""
        now = now or timezone.now()
        cutoff = now - STALE_GRACE
        queue: list[tuple[int, int, int]] = []  # (tenant id, row id, next attempt number)
        failed = 0
        for tenant_id in Tenant.objects.order_by("pk").values_list("pk", flat=True):
            with transaction.atomic(), context.tenant_context(tenant_id):
                failed += self._take_back(tenant_id, now, queue, on_failed)
                if len(queue) < SWEEP_BATCH:
                    lost = (
                        self.model.objects.filter(status__in=WAITING)
                        .filter(Q(next_attempt_at__isnull=True, created_at__lt=cutoff) | Q(next_attempt_at__lt=cutoff))
                        .order_by("pk")
                        .values_list("pk", "attempts")[: SWEEP_BATCH - len(queue)]
                    )
                    queue += [(tenant_id, pk, attempts + 1) for pk, attempts in lost]
        for tenant_id, pk, attempt in queue:
            enqueue(tenant_id, pk, attempt)
        if queue:
            logger.warning(
                "re-queued %s %s rows whose message was lost or worker stopped", len(queue), self.model._meta.label
            )
        return SweepResult(requeued=len(queue), lease_failed=failed)

    def _take_back(
        self,
        tenant_id: int,
        now: datetime.datetime,
        queue: list[tuple[int, int, int]],
        on_failed: Callable[[int, list[OutboxRow]], None] | None,
    ) -> int:
        """Rows of the current tenant whose lease ran out: queued again (RETRY, attempts left) or failed.
        Locked and skipped if locked, so two sweeps never handle the same row. Returns how many failed."""
        expired = list(
            self.model.objects.select_for_update(skip_locked=True)
            .filter(status=DeliveryStatus.SENDING, next_attempt_at__lt=now)
            .order_by("pk")[:SWEEP_BATCH]
        )
        if not expired:
            return 0
        if self.on_lost_lease is LostLease.RETRY:
            give_up = [row for row in expired if row.attempts >= self.max_attempts]
        else:
            give_up = expired
        given_up = {row.pk for row in give_up}
        again = [row for row in expired if row.pk not in given_up]
        if again:
            self.model.objects.filter(pk__in=[row.pk for row in again]).update(
                status=DeliveryStatus.RETRYING, next_attempt_at=now, last_error=self.lost_lease_error
            )
            queue += [(tenant_id, row.pk, row.attempts + 1) for row in again]
        if give_up:
            self.model.objects.filter(pk__in=[row.pk for row in give_up]).update(
                status=DeliveryStatus.FAILED, next_attempt_at=None, last_error=self.lost_lease_error
            )
            if on_failed is not None:
                on_failed(tenant_id, give_up)
        return len(give_up)
