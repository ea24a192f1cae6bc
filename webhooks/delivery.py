"""Delivery of webhooks on the platform's delivery outbox (cs_platform.outbox): one attempt (what the
Celery task runs) and the sweep of deliveries whose message was lost or whose worker stopped.

An attempt is claimed by its number: the task message carries it, so a duplicate message for an attempt
already made claims nothing, and a message that comes early is sent early, never dropped. A worker that
dies mid-attempt leaves its delivery "sending"; once the lease runs out the sweep attempts it again (at
least once: the receiver drops a duplicate by its Webhook-Id), unless that was the last attempt."""

from __future__ import annotations

import dataclasses
import datetime
import logging
import time

import requests
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from cs_platform import outbox
from cs_platform.outbox import DeliveryStatus
from cs_platform.tenancy import context
from webhooks import transport
from webhooks.models import WebhookAttempt, WebhookDelivery

logger = logging.getLogger(__name__)

# One attempt: connect and read can each take WEBHOOK_TIMEOUT_SECONDS, plus two small database writes.
# The task's time limits derive from it, and the lease outlasts them, so only a dead worker loses a row.
ATTEMPT_SECONDS = 2 * settings.WEBHOOK_TIMEOUT_SECONDS + 30
LEASE = max(datetime.timedelta(minutes=15), datetime.timedelta(seconds=2 * ATTEMPT_SECONDS))

OUTBOX = outbox.Outbox(
    model=WebhookDelivery,
    settings_prefix="WEBHOOK",
    lease=LEASE,
    on_lost_lease=outbox.LostLease.RETRY,
    lost_lease_error=(
        f"The worker stopped during an attempt (its lease of {int(LEASE.total_seconds() // 60)} min ran out): "
        "it is attempted again."
    ),
)


@dataclasses.dataclass
class AttemptOutcome:
    # The delivery's status afterwards, or outbox.NOT_CLAIMED (another message made this attempt already).
    status: str
    retry_in: float | None = None  # seconds until the next attempt, when one is due
    # The value written to the row's next_attempt_at: the task queues the next attempt with this eta.
    next_attempt_at: datetime.datetime | None = None


def _headers(delivery: WebhookDelivery, body: str) -> dict[str, str]:
    timestamp = int(time.time())
    return {
        "Content-Type": "application/json",
        "User-Agent": transport.USER_AGENT,
        "Webhook-Id": str(delivery.event_id),
        "Webhook-Timestamp": str(timestamp),
        "Webhook-Signature": transport.sign(delivery.endpoint.secret, timestamp, body),
    }


def delivery_attempt(*, tenant, delivery_id: int, attempt: int) -> AttemptOutcome:
    """Make attempt number `attempt` of a delivery: sign, POST, record the attempt, and say whether
    (and when) to try again. A duplicate task message for an attempt already made does nothing."""
    with context.tenant_context(tenant):
        if not OUTBOX.claim(delivery_id, now=timezone.now(), attempt=attempt, due_only=False):
            return AttemptOutcome(status=outbox.NOT_CLAIMED)
        delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    endpoint = delivery.endpoint
    started_at = timezone.now()
    clock = time.monotonic()
    status_code: int | None = None
    excerpt = error = ""
    final = False  # no retry, whatever the attempt number
    if not endpoint.is_active:
        error, final = f"The endpoint is disabled ({endpoint.disabled_reason}).", True
    else:
        try:
            transport.check_url_shape(endpoint.url)
            body = transport.encode_body(delivery.payload)
            status_code, text = transport.post(endpoint.url, body=body, headers=_headers(delivery, body))
            excerpt = transport.excerpt(text)
            if 300 <= status_code < 400:
                error = "Redirects are not followed: answer 2xx at the registered URL."
            elif not 200 <= status_code < 300:
                error = f"The receiver answered HTTP {status_code}."
        except ValidationError as exc:
            error, final = " ".join(" ".join(m) for m in exc.message_dict.values()), True
        except transport.BlockedAddress as exc:
            error, final = str(exc), True
        except transport.UnresolvedHost as exc:
            error = transport.excerpt(f"Connection failed: {exc}")[:500]  # retried: DNS may answer again
        except SoftTimeLimitExceeded:
            # A receiver dripping its answer byte by byte: the attempt is recorded, and retried.
            error = "The receiver took too long to answer."
        except requests.Timeout:
            error = f"No answer within {settings.WEBHOOK_TIMEOUT_SECONDS} s."
        except requests.exceptions.SSLError as exc:
            # Retried like any connection failure: the receiver can fix its certificate, or the
            # operator add its CA to WEBHOOK_CA_BUNDLE, and the next attempt then goes through.
            error = transport.tls_error(exc)
        except requests.RequestException as exc:
            error = transport.excerpt(f"Connection failed: {type(exc).__name__}: {exc}")[:500]
    succeeded = status_code is not None and 200 <= status_code < 300
    now = timezone.now()
    if succeeded:
        after = outbox.NextAttempt(status=DeliveryStatus.SENT)
    else:
        after = OUTBOX.after_failure(attempt, permanent=final, now=now)
    with transaction.atomic(), context.tenant_context(tenant):
        # The log keeps every request made, even one whose row the sweep took back meanwhile.
        WebhookAttempt.objects.create(
            tenant=tenant,
            delivery_id=delivery.pk,
            number=attempt,
            started_at=started_at,
            duration_ms=int((time.monotonic() - clock) * 1000),
            url=endpoint.url[: transport.MAX_URL_LENGTH],
            status_code=status_code,
            succeeded=succeeded,
            error=error[:500],
            response_excerpt=excerpt,
            next_attempt_at=after.at,
        )
        finished = OUTBOX.finish(
            delivery.pk,
            attempt=attempt,
            status=after.status,
            next_attempt_at=after.at,
            last_status_code=status_code,
            last_error=error[:500],
            response_excerpt=excerpt,
            delivered_at=now if succeeded else None,
        )
    if not finished:
        # The lease ran out first: the sweep queued another attempt, which owns the row now.
        logger.warning(
            "webhook delivery %s attempt %s finished after its lease; its outcome is only logged",
            delivery.pk,
            attempt,
            extra={"tenant_id": tenant.pk, "delivery_id": delivery.pk, "attempt": attempt},
        )
        return AttemptOutcome(status=outbox.NOT_CLAIMED)
    if not succeeded:
        # WARNING with tenant and delivery id: an on-call engineer greps the JSON logs for them.
        logger.warning(
            "webhook delivery %s attempt %s failed (%s): %s",
            delivery.pk,
            attempt,
            after.status,
            error,
            extra={"tenant_id": tenant.pk, "delivery_id": delivery.pk, "attempt": attempt},
        )
    return AttemptOutcome(status=after.status, retry_in=after.retry_in, next_attempt_at=after.at)


def deliveries_requeue_stale(*, enqueue: outbox.Enqueue, now: datetime.datetime | None = None) -> int:
    """Queue again every delivery whose message was lost (the broker was down when the rows were
    committed) or whose worker stopped mid-attempt (its lease ran out): the outbox's sweep, across
    tenants. Returns how many messages were queued."""
    return OUTBOX.sweep(enqueue=enqueue, now=now).requeued
