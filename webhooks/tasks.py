"""The Celery tasks that deliver webhooks. Thin: a delivery's attempt and the sweep run in
webhooks.delivery on the shared outbox (cs_platform.outbox); here they are queued. Arguments are ids,
never rows."""

from __future__ import annotations

from celery import shared_task

from cs_platform.tenancy.models import Tenant
from webhooks import delivery


@shared_task(
    name="webhooks.deliver",
    acks_late=True,
    time_limit=delivery.ATTEMPT_SECONDS + 10,
    soft_time_limit=delivery.ATTEMPT_SECONDS,
)
def webhook_deliver(tenant_id: int, delivery_id: int, attempt: int = 1) -> str:
    """Attempt `attempt` of a delivery. The next attempt is a new message rather than a Celery retry,
    so the schedule is the outbox's (capped exponential backoff with jitter), and its eta is the very
    next_attempt_at written to the row and shown in the attempt log (not a countdown computed
    separately). A message delivered twice (acks_late after a lost worker) cannot send twice: the
    attempt number is claimed in the database first."""
    tenant = Tenant.objects.get(pk=tenant_id)
    outcome = delivery.delivery_attempt(tenant=tenant, delivery_id=delivery_id, attempt=attempt)
    if outcome.next_attempt_at is not None:
        webhook_deliver.apply_async((tenant_id, delivery_id, attempt + 1), eta=outcome.next_attempt_at)
    return outcome.status


def webhook_enqueue(tenant_id: int, delivery_id: int, attempt: int | None) -> None:
    """One message for attempt `attempt` of a delivery (the outbox's Enqueue)."""
    webhook_deliver.apply_async((tenant_id, delivery_id, attempt or 1))


def deliveries_queue(tenant_id: int, delivery_ids: list[int]) -> None:
    """The first attempt of new deliveries, queued once their rows are committed."""
    delivery.OUTBOX.queue_on_commit(webhook_enqueue, tenant_id, delivery_ids, attempt=1)


@shared_task(name="webhooks.requeue_stale", time_limit=300, soft_time_limit=280)
def webhook_requeue_stale() -> int:
    """Periodic safety net (beat, every few minutes): re-queue deliveries whose message was lost or
    whose worker stopped."""
    return delivery.deliveries_requeue_stale(enqueue=webhook_enqueue)
