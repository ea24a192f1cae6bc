"""Webhook events: what happened (found after each nightly run, or one event raised on its own), as the
JSON envelope every delivery sends, and a delivery of it queued to each active endpoint subscribed to
its type.

Event ids of nightly events are derived from what happened (tenant, type, object, day), so a repeated
run for the same date finds the same ids and emits nothing twice."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone

from cs_platform.tenancy import context
from metrics.models import NightlyRun
from webhooks import selectors
from webhooks.models import EventType, WebhookDelivery, WebhookEndpoint
from webhooks.tasks import deliveries_queue

_EVENT_NAMESPACE = uuid.UUID("6f1c7a52-3d0e-4f43-9d55-0c1f1b9e2a71")


def event_id_for(tenant_id: int, event_type: str, key: str) -> uuid.UUID:
    return uuid.uuid5(_EVENT_NAMESPACE, f"{tenant_id}:{event_type}:{key}")


def envelope(*, tenant, event_type: str, event_id: uuid.UUID, data: dict[str, Any], now=None) -> dict[str, Any]:
    return {
        "id": str(event_id),
        "type": event_type,
        "created_at": (now or timezone.now()).isoformat(),
        "tenant": tenant.slug,
        "data": data,
    }


# --- The nightly emission -----------------------------------------------------------------------------
def _band_change_events(tenant, day: datetime.date) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (EventType.HEALTH_BAND_CHANGED, f"{row['account']['id']}:{day.isoformat()}", row)
        for row in selectors.band_changes(day)
    ]


def _compliance_change_events(tenant, day: datetime.date) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (EventType.COMPLIANCE_STATUS_CHANGED, f"{row['account']['id']}:{day.isoformat()}", row)
        for row in selectors.compliance_changes(day)
    ]


def _escalation_events(tenant, day: datetime.date) -> list[tuple[str, str, dict[str, Any]]]:
    # A decision escalates once, so its id alone keys the event.
    return [(EventType.DECISION_ESCALATED, str(row["decision_id"]), row) for row in selectors.escalations(tenant, day)]


_DEDUPE_SLICE = 5000
_DETECTORS = {
    EventType.HEALTH_BAND_CHANGED: _band_change_events,
    EventType.COMPLIANCE_STATUS_CHANGED: _compliance_change_events,
    EventType.DECISION_ESCALATED: _escalation_events,
}


def webhook_events_emit(*, tenant, day: datetime.date) -> dict[str, int]:
    """After the nightly run of `day`: find the day's events, set-based, and queue a delivery of each
    to every active endpoint subscribed to its type. Detection runs only for event types some active
    endpoint subscribes to, so a tenant without webhooks pays one query. Idempotent: event ids derive
    from the event, and deliveries already made for an (endpoint, event) are not made again."""
    with transaction.atomic(), context.tenant_context(tenant):
        endpoints = list(WebhookEndpoint.objects.filter(is_active=True).values_list("pk", "events"))
        subscribers: dict[str, list[int]] = {}
        for pk, events in endpoints:
            for event_type in events:
                subscribers.setdefault(event_type, []).append(pk)
        summary = {"events": 0, "deliveries": 0}
        if not subscribers:
            return summary
        now = timezone.now()
        found: list[tuple[str, uuid.UUID, dict[str, Any]]] = []
        for event_type, detect in _DETECTORS.items():
            if event_type in subscribers:
                for kind, key, data in detect(tenant, day):
                    found.append((kind, event_id_for(tenant.pk, kind, key), data))
        if not found:
            return summary
        # Deliveries a previous run of this date already made: looked up on the partial unique index
        # (tenant, endpoint, event_id), in slices so a night with many events stays a few queries.
        endpoint_ids = sorted({pk for pks in subscribers.values() for pk in pks})
        event_ids = [event_id for _, event_id, _ in found]
        already: set[tuple[int, uuid.UUID]] = set()
        for start in range(0, len(event_ids), _DEDUPE_SLICE):
            already.update(
                WebhookDelivery.objects.filter(
                    endpoint_id__in=endpoint_ids,
                    event_id__in=event_ids[start : start + _DEDUPE_SLICE],
                    redelivery_of__isnull=True,
                ).values_list("endpoint_id", "event_id")
            )
        rows = [
            WebhookDelivery(
                tenant=tenant,
                endpoint_id=endpoint_id,
                event_type=kind,
                event_id=event_id,
                created_at=now,
                payload=envelope(tenant=tenant, event_type=kind, event_id=event_id, data=data, now=now),
            )
            for kind, event_id, data in found
            for endpoint_id in subscribers[kind]
            if (endpoint_id, event_id) not in already
        ]
        created = WebhookDelivery.objects.bulk_create(rows, batch_size=1000)
        deliveries_queue(tenant.pk, [row.pk for row in created])
        summary.update(events=len(found), deliveries=len(created))
    return summary


def webhook_event_emit(*, tenant, event_type: str, key: str, data: dict[str, Any]) -> int:
    """One event, outside the nightly emission (a failed nightly run): a delivery to every active
    endpoint subscribed to `event_type`, queued after the commit. Idempotent: the event id derives from
    (tenant, type, key), and an endpoint that already has a delivery of it gets none. Returns the
    number of deliveries made. Two queries when no endpoint subscribes."""
    with transaction.atomic(), context.tenant_context(tenant):
        endpoint_ids = [
            pk
            for pk, events in WebhookEndpoint.objects.filter(is_active=True).values_list("pk", "events")
            if event_type in events
        ]
        if not endpoint_ids:
            return 0
        event_id = event_id_for(tenant.pk, event_type, key)
        already = set(
            WebhookDelivery.objects.filter(
                endpoint_id__in=endpoint_ids, event_id=event_id, redelivery_of__isnull=True
            ).values_list("endpoint_id", flat=True)
        )
        now = timezone.now()
        payload = envelope(tenant=tenant, event_type=event_type, event_id=event_id, data=data, now=now)
        created = WebhookDelivery.objects.bulk_create(
            WebhookDelivery(
                tenant=tenant,
                endpoint_id=endpoint_id,
                event_type=event_type,
                event_id=event_id,
                created_at=now,
                payload=payload,
            )
            for endpoint_id in endpoint_ids
            if endpoint_id not in already
        )
        deliveries_queue(tenant.pk, [row.pk for row in created])
    return len(created)


def nightly_run_failed_data(run) -> dict[str, Any]:
    """The `nightly_run.failed` event's data: which run, which attempt, why, and whether it is retried."""
    return {
        "run_date": run.run_date.isoformat(),
        "attempt": run.attempts,
        "max_attempts": NightlyRun.MAX_ATTEMPTS,
        "will_retry": run.attempts < NightlyRun.MAX_ATTEMPTS,
        "started_at": run.started_at.isoformat(),
        "failed_at": run.finished_at.isoformat() if run.finished_at else None,
        "last_heartbeat_at": run.heartbeat_at.isoformat() if run.heartbeat_at else None,
        "error": run.error[:1000],
    }
