"""The Celery task that delivers one webhook. Thin: it runs one attempt (webhooks.services) and, if
another is due, queues it with the backoff delay. Arguments are ids, never rows."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from cs_platform.tenancy.models import Tenant
from webhooks import services

# Connect and read timeouts can each take WEBHOOK_TIMEOUT_SECONDS, plus two small database writes.
_TIME_LIMIT = 2 * settings.WEBHOOK_TIMEOUT_SECONDS + 30


@shared_task(
    name="webhooks.deliver",
    acks_late=True,
    time_limit=_TIME_LIMIT + 10,
    soft_time_limit=_TIME_LIMIT,
)
def webhook_deliver(tenant_id: int, delivery_id: int, attempt: int = 1) -> str:
    """Attempt `attempt` of a delivery. The next attempt is a new message rather than a Celery retry,
    so the schedule is ours (WEBHOOK_RETRY_BASE_SECONDS * 2**(attempt-1), jittered), and its eta is
    the very next_attempt_at written to the row and shown in the attempt log (not a countdown computed
    separately). A message delivered twice (acks_late after a lost worker) cannot send twice: the
    attempt number is claimed in the database first. Unlike a scorecard email, an attempt is claimed
    by its number, not its due time, so a message that comes early is sent early, never dropped."""
    tenant = Tenant.objects.get(pk=tenant_id)
    outcome = services.delivery_attempt(tenant=tenant, delivery_id=delivery_id, attempt=attempt)
    if outcome.next_attempt_at is not None:
        webhook_deliver.apply_async((tenant_id, delivery_id, attempt + 1), eta=outcome.next_attempt_at)
    return outcome.status


@shared_task(name="webhooks.requeue_stale", time_limit=300, soft_time_limit=280)
def webhook_requeue_stale() -> int:
    """Periodic safety net (beat, every few minutes): re-queue deliveries whose message was lost."""
    return services.deliveries_requeue_stale()
