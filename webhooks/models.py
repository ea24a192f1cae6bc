"""Webhook endpoints a tenant admin registers, the deliveries of events to them, and every attempt.

The delivery log is kept whole (one WebhookAttempt row per HTTP request, never rewritten), so an
admin or a regulator can see what was sent when, and what the receiver answered."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from cs_platform.outbox import OutboxRow
from cs_platform.tenancy.models import TenantOwned


class EventType(models.TextChoices):
    HEALTH_BAND_CHANGED = "health.band_changed", "Health band changed"
    COMPLIANCE_STATUS_CHANGED = "compliance.status_changed", "Compliance status changed"
    DECISION_ESCALATED = "decision.escalated", "Decision escalated"
    # Sent by the watchdog (nightly.pipeline.nightly_run_alert), not the nightly emission: once per failed
    # or stalled attempt of a tenant's nightly run.
    NIGHTLY_RUN_FAILED = "nightly_run.failed", "Nightly run failed"


# "ping" is sent on request from the endpoint page; no endpoint subscribes to it.
PING = "ping"
SUBSCRIBABLE_EVENTS: tuple[str, ...] = tuple(EventType.values)


class WebhookEndpoint(TenantOwned):
    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    events = models.JSONField(default=list, help_text="Event types this endpoint receives.")
    # The HMAC key. Stored as is because signing needs it (a hash would not do); shown to the admin
    # once, at creation and at each rotation, never in the audit trail or on any page afterwards.
    secret = models.CharField(max_length=100)
    secret_rotated_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=200, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["tenant", "is_active"], name="webhookep_tenant_active_idx")]

    def __str__(self) -> str:
        return self.url

    @property
    def secret_hint(self) -> str:
        """Enough of the secret to tell which one a receiver holds, not enough to sign with."""
        return f"{self.secret[:10]}…" if self.secret else ""


class WebhookDelivery(TenantOwned, OutboxRow):
    """One event sent to one endpoint, a row of the delivery outbox (status, attempts, next_attempt_at,
    created_at: cs_platform.outbox). `payload` is the whole JSON envelope, so every attempt (and a
    redelivery) sends the same bytes; `event_id` is the same for every endpoint receiving the event
    and is sent as Webhook-Id, so receivers can drop duplicates."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event_type = models.CharField(max_length=40)
    event_id = models.UUIDField()
    payload = models.JSONField(default=dict)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    response_excerpt = models.CharField(max_length=1000, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    # A redelivery an admin asked for is a new delivery of the same event: the original's log stays as it was.
    redelivery_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="redeliveries"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["tenant", "endpoint", "created_at"], name="webhookdl_tenant_ep_time_idx"),
            models.Index(fields=["tenant", "status"], name="webhookdl_tenant_status_idx"),
        ]
        constraints = [
            # A nightly run repeated for the same date emits nothing twice.
            models.UniqueConstraint(
                fields=["tenant", "endpoint", "event_id"],
                condition=Q(redelivery_of__isnull=True),
                name="webhookdl_tenant_ep_event_uniq",
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} → {self.endpoint_id}"


class WebhookAttempt(TenantOwned):
    """One HTTP request of a delivery and its outcome. Append-only by use: nothing updates it."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(default=0)
    url = models.URLField(max_length=500)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    succeeded = models.BooleanField(default=False)
    error = models.CharField(max_length=500, blank=True)
    response_excerpt = models.CharField(max_length=1000, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "delivery", "number"], name="webhookatt_tenant_dl_num_uniq")
        ]
