"""Writes of webhooks an admin makes: endpoints (create, update, rotate the secret), a test ping, and the
redelivery of a finished delivery. Each is audited; deliveries they make are queued once committed."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from cs_platform.audit.services import audit_record
from cs_platform.outbox import DeliveryStatus
from cs_platform.tenancy import context
from webhooks.events import envelope
from webhooks.models import PING, SUBSCRIBABLE_EVENTS, WebhookDelivery, WebhookEndpoint
from webhooks.tasks import deliveries_queue
from webhooks.transport import new_secret, validate_endpoint_url


def _audit_view(endpoint: WebhookEndpoint) -> dict[str, Any]:
    # Never the secret: the audit trail is exported to clients and regulators.
    return {
        "url": endpoint.url,
        "description": endpoint.description,
        "events": endpoint.events,
        "is_active": endpoint.is_active,
        "disabled_reason": endpoint.disabled_reason,
    }


def _clean_events(events: list[str] | None) -> list[str]:
    chosen = list(dict.fromkeys(events or []))
    unknown = [e for e in chosen if e not in SUBSCRIBABLE_EVENTS]
    if not chosen:
        raise ValidationError({"events": "Choose at least one event."})
    if unknown:
        raise ValidationError({"events": f"Unknown event type(s): {', '.join(unknown)}."})
    return [e for e in SUBSCRIBABLE_EVENTS if e in chosen]


def _clean_fields(*, url: str | None, description: str, events: list[str] | None) -> tuple[str, str, list[str]]:
    """Validated fields; url None means "unchanged, not checked again"."""
    errors: dict[str, list[str]] = {}
    if url is not None:
        try:
            url = validate_endpoint_url(url)
        except ValidationError as exc:
            errors.update(exc.message_dict)
    description = (description or "").strip()
    if len(description) > 200:
        errors["description"] = ["Use at most 200 characters."]
    try:
        events = _clean_events(events)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    return url, description, events


@transaction.atomic
def webhook_endpoint_create(
    *, tenant, url: str, events: list[str], description: str = "", actor
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; returns it and its signing secret, which the caller shows once."""
    url, description, events = _clean_fields(url=url, description=description, events=events)
    with context.tenant_context(tenant):
        secret = new_secret()
        endpoint = WebhookEndpoint(
            tenant=tenant, url=url, description=description, events=events, secret=secret, created_by=actor
        )
        endpoint.save()
        audit_record(
            tenant=tenant, actor=actor, action="webhook_endpoint.create", obj=endpoint, after=_audit_view(endpoint)
        )
    return endpoint, secret


def _locked(row):
    """`row` read again and locked until the transaction ends, in the current tenant: a write compares
    with (and audits as "before") the row as it stands, not as the caller read it, and a concurrent
    write of the same row waits for this one, then starts from what it wrote."""
    row.refresh_from_db(from_queryset=type(row).objects.select_for_update())
    return row


@transaction.atomic
def webhook_endpoint_update(
    *,
    tenant,
    endpoint: WebhookEndpoint,
    actor,
    url: str | None = None,
    description: str | None = None,
    events: list[str] | None = None,
    is_active: bool | None = None,
    disabled_reason: str = "",
) -> WebhookEndpoint:
    """Change the URL, description or events, or disable (with a reason) / enable the endpoint.
    Deliveries already queued for a disabled endpoint fail at their next attempt instead of sending."""
    reason = (disabled_reason or "").strip()
    if len(reason) > 200:
        raise ValidationError({"disabled_reason": "Use at most 200 characters."})
    with context.tenant_context(tenant):
        endpoint = _locked(endpoint)
        before = _audit_view(endpoint)
        changed_url = url is not None and url.strip() != endpoint.url
        # An unchanged URL is not resolved again: disabling an endpoint whose host is gone must work.
        url, description, events = _clean_fields(
            url=url if changed_url else None,
            description=endpoint.description if description is None else description,
            events=endpoint.events if events is None else events,
        )
        endpoint.url = url if changed_url else endpoint.url
        endpoint.description, endpoint.events = description, events
        if is_active is not None and is_active != endpoint.is_active:
            endpoint.is_active = is_active
            if is_active:
                endpoint.disabled_reason, endpoint.disabled_at = "", None
            else:
                endpoint.disabled_reason = reason or f"Disabled by {actor.get_username()}"
                endpoint.disabled_at = timezone.now()
        after = _audit_view(endpoint)
        if after == before:
            return endpoint
        endpoint.save()
        audit_record(
            tenant=tenant, actor=actor, action="webhook_endpoint.update", obj=endpoint, before=before, after=after
        )
    return endpoint


@transaction.atomic
def webhook_endpoint_rotate_secret(*, tenant, endpoint: WebhookEndpoint, actor) -> tuple[WebhookEndpoint, str]:
    """A new signing secret, effective for the next attempt of every delivery; returns it once."""
    with context.tenant_context(tenant):
        endpoint = _locked(endpoint)
        secret = new_secret()
        endpoint.secret = secret
        endpoint.secret_rotated_at = timezone.now()
        endpoint.save(update_fields=["secret", "secret_rotated_at"])
        audit_record(
            tenant=tenant,
            actor=actor,
            action="webhook_endpoint.rotate_secret",
            obj=endpoint,
            after={"url": endpoint.url, "secret_rotated_at": endpoint.secret_rotated_at},
        )
    return endpoint, secret


# --- Test events and redeliveries ---------------------------------------------------------------------
@transaction.atomic
def webhook_ping(*, tenant, endpoint: WebhookEndpoint, actor) -> WebhookDelivery:
    """Send a "ping" event to the endpoint now, so the admin sees whether the receiver verifies it."""
    with context.tenant_context(tenant):
        endpoint = _locked(endpoint)
        if not endpoint.is_active:
            raise ValidationError({"endpoint": "Enable the endpoint before sending a test event."})
        event_id = uuid.uuid4()
        data = {"message": "Test event sent from the webhook settings page.", "endpoint_id": endpoint.pk}
        delivery = WebhookDelivery(
            tenant=tenant,
            endpoint=endpoint,
            event_type=PING,
            event_id=event_id,
            requested_by=actor,
            payload=envelope(tenant=tenant, event_type=PING, event_id=event_id, data=data),
        )
        delivery.save()
        audit_record(
            tenant=tenant,
            actor=actor,
            action="webhook_endpoint.ping",
            obj=endpoint,
            after={"delivery_id": delivery.pk, "event_id": str(event_id)},
        )
    deliveries_queue(tenant.pk, [delivery.pk])
    return delivery


@transaction.atomic
def webhook_delivery_redeliver(*, tenant, delivery: WebhookDelivery, actor) -> WebhookDelivery:
    """Send a finished delivery's event again, as a new delivery with its own attempts (the original's
    log is kept as it was). Same event id and body, so the receiver can tell it is the same event."""
    with context.tenant_context(tenant):
        delivery = _locked(delivery)
        if delivery.status not in (DeliveryStatus.SENT, DeliveryStatus.FAILED):
            raise ValidationError({"delivery": "This delivery is still being attempted."})
        if not WebhookEndpoint.objects.filter(pk=delivery.endpoint_id, is_active=True).exists():
            raise ValidationError({"delivery": "Enable the endpoint before redelivering."})
        again = WebhookDelivery(
            tenant=tenant,
            endpoint_id=delivery.endpoint_id,
            event_type=delivery.event_type,
            event_id=delivery.event_id,
            payload=delivery.payload,
            redelivery_of=delivery,
            requested_by=actor,
        )
        again.save()
        audit_record(
            tenant=tenant,
            actor=actor,
            action="webhook_delivery.redeliver",
            obj=delivery,
            after={"redelivery_id": again.pk, "event_id": str(delivery.event_id), "event_type": delivery.event_type},
        )
    deliveries_queue(tenant.pk, [again.pk])
    return again
