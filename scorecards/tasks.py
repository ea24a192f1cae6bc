"""Celery entry points for the weekly scorecard. Thin: they look up ids and call scorecards.delivery
(on the shared delivery outbox, cs_platform.outbox) and scorecards.schedule.

Beat runs `scorecards.weekly_dispatch` every 15 minutes. It queues, per tenant whose email is due this
week (SCORECARD_WEEKDAY at SCORECARD_LOCAL_HOUR in the tenant's time zone) and not yet prepared, one
`scorecards.tenant_week` task, which inserts the week's delivery rows and queues one `scorecards.send`
per row. Each send claims its row in the database first, so duplicates of any of these messages (a
second tick, acks_late redelivery after a lost worker) send nothing twice. The same tick sweeps up
deliveries whose message was lost and rows stuck in "sending"."""

from __future__ import annotations

import datetime
import logging

from celery import shared_task
from django.core.cache import cache
from django.db import OperationalError, transaction
from django.utils import timezone

from cs_platform.outbox import MAX_EARLY_REQUEUES, NOT_DUE
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Tenant
from scorecards import delivery, schedule
from scorecards.weeks import IsoWeek

logger = logging.getLogger(__name__)

# One email: a fixed number of queries, a few PNGs, one SMTP exchange (SMTP_TIMEOUT_SECONDS per socket
# operation). The hard limit stays below delivery.SENDING_LEASE, so a killed send is swept, not raced.
SEND_SOFT_LIMIT = 120
SEND_HARD_LIMIT = 150
assert datetime.timedelta(seconds=SEND_HARD_LIMIT) < delivery.SENDING_LEASE
# A week prepared with no recipient leaves no row to find; this mark (kept past the week's end) stops
# the dispatch from preparing it again every 15 minutes. Losing it costs one more idempotent prepare.
_PREPARED_MARK_SECONDS = 9 * 24 * 3600


# Per worker process: the figures and rendering shared by executives of the same tenant and week (see
# delivery.ScorecardViews); entries live ten minutes, so a worker never serves stale figures for long.
_VIEWS = delivery.ScorecardViews(ttl=600)


def _prepared_mark(tenant_id: int, week: str) -> str:
    return f"scorecards:prepared:{tenant_id}:{week}"


@shared_task(name="scorecards.weekly_dispatch", time_limit=300, soft_time_limit=280)
def weekly_dispatch() -> list[int]:
    """For each tenant whose scorecard is due and whose week has no delivery rows yet, queue its
    tenant_week task (fan-out: one tenant's failure never holds up another's). Then the sweep."""
    now = timezone.now()
    tenants = list(Tenant.objects.all())
    due = {tenant.pk: schedule.scorecard_week_due(tenant, now) for tenant in tenants}
    marked = cache.get_many([_prepared_mark(pk, str(week)) for pk, week in due.items() if week is not None])
    queued = []
    for tenant in tenants:
        week = due[tenant.pk]
        if week is None or _prepared_mark(tenant.pk, str(week)) in marked:
            continue
        # Each due tenant's own rows, read inside it (RLS shows one tenant at a time).
        with context.tenant_context(tenant):
            prepared, nightly_done = schedule.scorecard_week_state(week)
        if prepared or schedule.scorecard_waits_for_nightly(tenant, week, now=now, nightly_done=nightly_done):
            continue  # prepared already, or the next tick looks again
        transaction.on_commit(lambda t=tenant.pk, w=str(week): scorecard_tenant_week.delay(t, w))
        queued.append(tenant.pk)
    try:
        delivery.scorecard_deliveries_sweep(enqueue=scorecard_enqueue, now=now)
    except Exception:  # the sweep runs again in 15 minutes; the dispatch must not fail with it
        logger.exception("scorecard sweep failed")
    return queued


@shared_task(
    name="scorecards.tenant_week",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=30,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=5,
    time_limit=600,
    soft_time_limit=570,
)
def scorecard_tenant_week(tenant_id: int, week: str) -> dict:
    """Prepare one tenant's week (idempotent) and queue a send per row waiting to be sent."""
    tenant = Tenant.objects.get(pk=tenant_id)
    with transaction.atomic():
        prepared = delivery.scorecard_deliveries_prepare(tenant=tenant, week=IsoWeek.parse(week))
        scorecard_sends_queue(tenant_id=tenant.pk, delivery_ids=prepared.sendable_ids)
    cache.set(_prepared_mark(tenant.pk, week), 1, _PREPARED_MARK_SECONDS)
    return {"week": week, "recipients": prepared.recipients, "created": prepared.created}


@shared_task(
    name="scorecards.send",
    acks_late=True,
    time_limit=SEND_HARD_LIMIT,
    soft_time_limit=SEND_SOFT_LIMIT,
)
def scorecard_send(tenant_id: int, delivery_id: int, early: int = 0) -> str:
    """One attempt at one delivery. The next attempt after an SMTP failure is a new message (our
    schedule, not Celery's retry) with eta = the next_attempt_at written to the row, and it only sends
    if it claims the row. A message that still comes before the row is due (`not-due`) is queued again
    for that time, at most MAX_EARLY_REQUEUES times, instead of being dropped; one for a row already
    sent, failed or claimed by another worker just ends."""
    tenant = Tenant.objects.get(pk=tenant_id)
    outcome = delivery.scorecard_delivery_send(tenant=tenant, delivery_id=delivery_id, views=_VIEWS)
    if outcome.status == NOT_DUE:
        if early < MAX_EARLY_REQUEUES:
            scorecard_send.apply_async((tenant_id, delivery_id, early + 1), eta=outcome.next_attempt_at)
        else:
            logger.warning("scorecard delivery %s: message early %s times; left to the sweep", delivery_id, early)
    elif outcome.next_attempt_at is not None:
        scorecard_send.apply_async((tenant_id, delivery_id), eta=outcome.next_attempt_at)
    return outcome.status


def scorecard_enqueue(tenant_id: int, delivery_id: int, attempt: int | None) -> None:
    """One send message for a delivery (the outbox's Enqueue): it carries no attempt number, since a
    send claims its row by due time."""
    scorecard_send.apply_async((tenant_id, delivery_id))


def scorecard_sends_queue(*, tenant_id: int, delivery_ids: list[int]) -> None:
    """One send task per delivery, queued once the rows are committed (the worker must see them). A broker
    outage leaves them pending; the beat sweep queues them later."""
    delivery.OUTBOX.queue_on_commit(scorecard_enqueue, tenant_id, delivery_ids, attempt=None)
