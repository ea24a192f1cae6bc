"""Celery entry points for the audit trail's signed checkpoints. Thin: they call the service."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from cs_platform.audit.models import CheckpointReason
from cs_platform.audit.services import audit_checkpoint_create
from cs_platform.tenancy.models import Tenant


@shared_task(name="audit.checkpoint_dispatch", time_limit=300, soft_time_limit=280)
def checkpoint_dispatch() -> list[int]:
    """Beat calls this every AUDIT_CHECKPOINT_INTERVAL_MINUTES. Fan-out: one task per tenant, so one
    tenant's failure never holds up another's checkpoint. (Tenants are not tenant-owned rows: listing
    them needs no cross-tenant scope.)"""
    tenant_ids = list(Tenant.objects.order_by("pk").values_list("pk", flat=True))
    for tenant_id in tenant_ids:
        checkpoint_tenant.delay(tenant_id)
    return tenant_ids


@shared_task(
    name="audit.checkpoint_tenant",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=30,
    retry_backoff_max=300,
    max_retries=5,
    time_limit=300,
    soft_time_limit=280,
)
def checkpoint_tenant(tenant_id: int) -> dict:
    """One tenant's hourly checkpoint. A retry after a lost acknowledgement only adds one more checkpoint,
    which is harmless: each signs the head as it then is."""
    checkpoint = audit_checkpoint_create(tenant=tenant_id, reason=CheckpointReason.HOURLY)
    return {"tenant": tenant_id, "number": checkpoint.number, "seq": checkpoint.seq}
