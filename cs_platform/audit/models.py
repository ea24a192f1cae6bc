"""The append-only, hash-chained audit trail."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from cs_platform.tenancy.models import TenantOwned

GENESIS_HASH = "0" * 64


class AuditEvent(TenantOwned):
    """One recorded write. `hash` = SHA-256 over the canonical JSON of every other field, including
    `prev_hash`, so changing, removing or reordering any event breaks the chain from there on.

    On PostgreSQL the app role cannot UPDATE/DELETE/TRUNCATE this table and triggers refuse those
    statements for every role (migration 0002)."""

    seq = models.PositiveBigIntegerField(help_text="Position in the tenant's chain, from 1.")
    # PROTECT: users who acted are deactivated, never deleted, so the trail keeps its actors.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_label = models.CharField(max_length=254, help_text="Who acted, as shown at the time (email or 'system').")
    action = models.CharField(max_length=80)
    object_type = models.CharField(max_length=80)
    object_id = models.CharField(max_length=64, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["seq"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "seq"], name="auditevent_tenant_seq_uniq"),
            # Two writers that read the same head cannot both append: the chain cannot fork.
            models.UniqueConstraint(fields=["tenant", "prev_hash"], name="auditevent_tenant_prev_uniq"),
        ]
        indexes = [
            models.Index(fields=["tenant", "object_type", "object_id"], name="auditevent_tenant_object_idx"),
            models.Index(fields=["tenant", "created_at"], name="auditevent_tenant_created_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.object_type}:{self.object_id}"
