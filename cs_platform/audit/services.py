"""audit_record(): the one way an audit event is written; the signed checkpoints of the chain; the events
that record reads and exports of the trail itself."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.utils import timezone

from cs_platform import locks
from cs_platform.audit import signing
from cs_platform.audit.chain import compute_hash, event_payload
from cs_platform.audit.models import GENESIS_HASH, AuditCheckpoint, AuditEvent, CheckpointReason
from cs_platform.tenancy import context

# Namespace for pg_advisory_xact_lock(namespace, tenant_id): serialises appends per tenant.
_LOCK_NAMESPACE = locks.AUDIT_APPEND
# The same for a tenant's checkpoints (the hourly and the nightly one may fall together).
_CHECKPOINT_LOCK_NAMESPACE = locks.AUDIT_CHECKPOINT
# Longest text kept of one filter value in an audit.read/audit.export event; query strings are the
# caller's input, and the event is about what was asked for, not a copy of arbitrary text.
_FILTER_VALUE_MAX = 200


def _jsonable(value: Any) -> Any:
    """Normalise to plain JSON types so the hash computed now equals the one recomputed from the
    stored JSON later (dates, decimals and UUIDs become strings)."""
    if value is None:
        return None
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def model_snapshot(instance: models.Model, fields: list[str] | None = None) -> dict[str, Any]:
    """Field values of a model instance for before/after, by attribute name (FKs as ids)."""
    data: dict[str, Any] = {}
    for field in instance._meta.concrete_fields:
        if fields is not None and field.name not in fields:
            continue
        value = getattr(instance, field.attname)
        if isinstance(value, Decimal):
            value = str(value)
        elif hasattr(value, "name") and isinstance(field, models.FileField):
            value = value.name or None
        data[field.attname] = value
    return _jsonable(data)


def _actor_fields(actor) -> tuple[int | None, str]:
    if actor is None or not getattr(actor, "is_authenticated", False):
        return None, "system"
    return actor.pk, actor.get_username()


def audit_record(
    *,
    tenant,
    actor,
    action: str,
    obj: models.Model | None = None,
    object_type: str | None = None,
    object_id: str | int | None = None,
    before: Any = None,
    after: Any = None,
) -> AuditEvent:
    """Append one event to the tenant's chain, in the caller's transaction."""
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = obj.pk if object_id is None else object_id
    if not object_type:
        raise ValueError("audit_record needs obj or object_type")
    item = {"action": action, "object_type": object_type, "object_id": object_id, "before": before, "after": after}
    return _append(tenant=tenant, actor=actor, items=[item])[0]


def audit_record_many(*, tenant, actor, events: list[dict[str, Any]]) -> int:
    """Append many events in one go (nightly status changes): one lock, one head read, one bulk insert.

    Each item: {"action", "object_type", "object_id", "before", "after"}. The chain is exactly what
    audit_record() would have produced one by one."""
    return len(_append(tenant=tenant, actor=actor, items=events)) if events else 0


def _append(*, tenant, actor, items: list[dict[str, Any]]) -> list[AuditEvent]:
    """Chain `items` after the tenant's current head and insert them.

    The per-tenant advisory lock makes concurrent writers queue for the head of the chain instead
    of racing; the unique (tenant, prev_hash) constraint is the backstop if anything bypasses it."""
    tenant_id = tenant if isinstance(tenant, int) else tenant.pk
    actor_id, actor_label = _actor_fields(actor)
    with transaction.atomic(), context.tenant_context(tenant_id):
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_NAMESPACE, tenant_id])
        head = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
        seq, prev_hash = (head[0], head[1]) if head else (0, GENESIS_HASH)
        now = timezone.now()
        rows = []
        for item in items:
            seq += 1
            object_id = item.get("object_id")
            event = AuditEvent(
                tenant_id=tenant_id,
                seq=seq,
                actor_id=actor_id,
                actor_label=actor_label,
                action=item["action"],
                object_type=item["object_type"],
                object_id="" if object_id is None else str(object_id),
                before=_jsonable(item.get("before")),
                after=_jsonable(item.get("after")),
                created_at=now,
                prev_hash=prev_hash,
            )
            event.hash = compute_hash(
                event_payload(
                    tenant_id=tenant_id,
                    seq=seq,
                    actor_id=actor_id,
                    actor_label=actor_label,
                    action=event.action,
                    object_type=event.object_type,
                    object_id=event.object_id,
                    before=event.before,
                    after=event.after,
                    created_at=now,
                    prev_hash=prev_hash,
                )
            )
            prev_hash = event.hash
            rows.append(event)
        AuditEvent.objects.bulk_create(rows, batch_size=2000)
    return rows


# --- Signed checkpoints -----------------------------------------------------------------------------------


def audit_checkpoint_create(*, tenant, reason: str) -> AuditCheckpoint:
    """Sign the tenant's chain head (last seq, its hash, now) and append it to the tenant's checkpoint chain.

    Made even when no event was added since the last one: a checkpoint every interval is what lets
    `verify_audit` see a run of deleted checkpoints as a gap in time. It records no audit event, which would
    move the head it has just signed; the checkpoint is itself the record (append-only, signed, chained).

    The head read is the latest committed event: an append still in flight is simply covered by the next
    checkpoint, so the events' own lock is not needed here."""
    if reason not in CheckpointReason.values:
        raise ValueError(f"Unknown checkpoint reason {reason!r}")
    tenant_id = tenant if isinstance(tenant, int) else tenant.pk
    key, public = signing.signing_key()
    with transaction.atomic(), context.tenant_context(tenant_id):
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_CHECKPOINT_LOCK_NAMESPACE, tenant_id])
        previous = AuditCheckpoint.objects.order_by("-number").first()
        seq, event_hash = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first() or (0, GENESIS_HASH)
        checkpoint = AuditCheckpoint(
            tenant_id=tenant_id,
            number=previous.number + 1 if previous else 1,
            seq=seq,
            event_hash=event_hash,
            # Microseconds, as the database keeps them: the payload signed now must be the one rebuilt later.
            created_at=timezone.now(),
            reason=reason,
            prev_digest=signing.digest(signing.payload_of(previous)) if previous else signing.GENESIS_DIGEST,
            key_id=public.key_id,
        )
        checkpoint.signature = signing.sign(signing.payload_of(checkpoint), key)
        checkpoint.save()
    return checkpoint


# --- Reads and exports of the trail (issue #15 item 5) ------------------------------------------------------


def _bounded(value: Any) -> Any:
    """A query value as the event keeps it: text cut to _FILTER_VALUE_MAX characters (marked) and without
    NUL, which PostgreSQL's jsonb refuses (the read must be recorded, whatever was typed)."""
    text = str(value).replace("\x00", "\ufffd")
    return text if len(text) <= _FILTER_VALUE_MAX else text[:_FILTER_VALUE_MAX] + "…[cut]"


def _reader(via: dict[str, Any] | None) -> dict[str, Any]:
    return dict(via or {"via": "session"})


def audit_trail_read_record(
    *,
    tenant,
    actor,
    object_type: str,
    object_id: str | int | None = None,
    filters: dict[str, Any] | None = None,
    returned: int | None = None,
    first_last: tuple[int, int] | None = None,
    via: dict[str, Any] | None = None,
) -> AuditEvent:
    """Record that `actor` read the audit trail: a list page (filters, how many rows, the first and last seq
    of events or number of checkpoints) or one record (object_type/object_id). `via` says how:
    {"via": "session"} or {"via": "api_token", "token_id": n}.

    Callers record after reading, so the page never contains its own read; the next read shows it."""
    details: dict[str, Any] = {**_reader(via), "filters": {k: _bounded(v) for k, v in (filters or {}).items()}}
    if returned is not None:
        details["returned"] = returned
    if first_last is not None:
        details["first"], details["last"] = first_last
    return audit_record(
        tenant=tenant, actor=actor, action="audit.read", object_type=object_type, object_id=object_id, after=details
    )


def audit_trail_export_record(
    *,
    tenant,
    actor,
    file_format: str,
    filters: dict[str, Any],
    through_seq: int,
    through_checkpoint: int,
    via: dict[str, Any] | None = None,
) -> AuditEvent:
    """Record an export of the trail before its first byte is sent. The export's range was fixed first
    (events up to #through_seq, checkpoints up to number through_checkpoint): this event comes after that
    range, so the file never contains its own export event, and the next export does."""
    return audit_record(
        tenant=tenant,
        actor=actor,
        action="audit.export",
        object_type="audit.auditevent",
        after={
            **_reader(via),
            "format": file_format,
            "filters": {k: _bounded(v) for k, v in filters.items()},
            "through_seq": through_seq,
            "through_checkpoint": through_checkpoint,
        },
    )
