"""Who receives the weekly scorecard, and what was sent to whom for which week."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from cs_platform.outbox import OutboxRow
from cs_platform.tenancy.models import TenantOwned


class ScorecardSubscription(TenantOwned):
    """A member's choice about the weekly email. Without a row, executives receive it (all segments)
    and everyone else does not; a row records an explicit choice either way.

    segment_ids: the segments the member wants; empty means every segment they can see."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    enabled = models.BooleanField(default=True)
    segment_ids = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "user"], name="scorecardsub_tenant_user_uniq")]

    def __str__(self) -> str:
        return f"{self.user} ({'on' if self.enabled else 'off'})"


class ScorecardDelivery(TenantOwned, OutboxRow):
    """One user's email for one ISO week, a row of the delivery outbox (status, attempts,
    next_attempt_at, created_at: cs_platform.outbox): at most one row per (tenant, user, week), so a
    second beat tick or a retried task finds the row and never sends twice. Rows are kept as the record
    of what was sent (or why not)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    week = models.CharField(max_length=8, help_text="ISO week, e.g. 2026-W48.")
    week_start = models.DateField(help_text="The Monday of the week.")
    email = models.EmailField(help_text="The address it was (or is to be) sent to.")
    last_error = models.TextField(blank=True)
    message_id = models.CharField(max_length=255, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-week_start", "user_id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user", "week"], name="scorecarddelivery_tenant_user_week_uniq")
        ]
        indexes = [models.Index(fields=["tenant", "week", "status"], name="scorecarddelivery_week_idx")]

    def __str__(self) -> str:
        return f"{self.week} to {self.email}: {self.status}"
