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


class CheckpointReason(models.TextChoices):
    HOURLY = "hourly", "Hourly (Celery beat)"
    NIGHTLY = "nightly", "End of the nightly run"
    MANUAL = "manual", "Made by hand (manage.py audit_checkpoint)"


class AuditCheckpoint(TenantOwned):
    """A signed statement "the tenant's chain reached event #seq, whose hash was event_hash, at created_at",
    as AWS CloudTrail's digest files are for its logs (cs_platform/audit/signing.py has the exact bytes).

    Recomputing hashes after a rewrite, or deleting the newest events, cannot be hidden from a checkpoint
    without its private key, which is never in the database. Checkpoints are chained too (prev_digest), so
    removing one shows. Append-only like the events (migration 0003): no UPDATE or DELETE for the app role,
    triggers refusing them for every role."""

    number = models.PositiveBigIntegerField(help_text="Position in the tenant's checkpoint chain, from 1.")
    seq = models.PositiveBigIntegerField(help_text="Seq of the chain's last event when signed (0: no event yet).")
    event_hash = models.CharField(max_length=64, help_text="That event's hash (64 zeros when seq is 0).")
    created_at = models.DateTimeField()
    reason = models.CharField(max_length=16, choices=CheckpointReason.choices)
    prev_digest = models.CharField(max_length=64, help_text="SHA-256 of the previous checkpoint's signed payload.")
    key_id = models.CharField(max_length=64, help_text="SHA-256 of the signing key's raw public key.")
    signature = models.CharField(max_length=128, help_text="Ed25519 signature of the payload, hex.")

    class Meta:
        ordering = ["number"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "number"], name="auditcheckpoint_tenant_number_uniq"),
            # As for events: two writers that read the same previous checkpoint cannot both append.
            models.UniqueConstraint(fields=["tenant", "prev_digest"], name="auditcheckpoint_tenant_prev_uniq"),
        ]

    def __str__(self) -> str:
        return f"checkpoint {self.number}: #{self.seq} at {self.created_at:%Y-%m-%d %H:%M}"
