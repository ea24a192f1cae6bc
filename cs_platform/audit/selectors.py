"""Reads of the audit trail, and chain verification."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.db.models import QuerySet

from cs_platform.audit.chain import hash_of
from cs_platform.audit.models import GENESIS_HASH, AuditEvent
from cs_platform.tenancy import context


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    problem: str = ""
    bad_event_id: int | None = None
    bad_seq: int | None = None


def audit_chain_verify(*, tenant) -> ChainReport:
    """Walk the tenant's chain in order and report the first event that does not fit: a stored hash
    that does not match its content, a prev_hash that does not match the previous event, or a gap."""
    expected_prev = GENESIS_HASH
    expected_seq = 1
    checked = 0
    with context.tenant_context(tenant):
        events = AuditEvent.objects.order_by("seq").iterator(chunk_size=2000)
        for event in events:
            if event.seq != expected_seq:
                return ChainReport(
                    False, checked, f"sequence gap: expected #{expected_seq}, found #{event.seq}", event.pk, event.seq
                )
            if event.prev_hash != expected_prev:
                return ChainReport(
                    False, checked, "prev_hash does not match the previous event's hash", event.pk, event.seq
                )
            computed = hash_of(event)
            if computed != event.hash:
                return ChainReport(
                    False,
                    checked,
                    f"content altered: stored hash {event.hash[:12]}…, computed {computed[:12]}…",
                    event.pk,
                    event.seq,
                )
            expected_prev = event.hash
            expected_seq += 1
            checked += 1
    return ChainReport(True, checked)


def audit_events_for_object(*, object_type: str, object_id) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(object_type=object_type, object_id=str(object_id)).order_by("seq"))


def audit_events() -> QuerySet[AuditEvent]:
    """The current tenant's whole trail. Deliberately not book-scoped: only roles that may read the
    entire trail (admin, compliance, tokens with audit:read) reach the API that uses it."""
    return AuditEvent.objects.all()


def audit_events_in_batches(
    queryset: QuerySet[AuditEvent], *, tenant_id: int, batch_size: int = 2000
) -> Iterator[AuditEvent]:
    """Yield `queryset`'s events in seq order, `batch_size` rows per query, in constant memory.

    Keyset batches (`seq > last`) instead of QuerySet.iterator(): server-side cursors are disabled on
    PostgreSQL (settings: they would escape the per-transaction tenant setting), and without them
    iterator() buffers the whole result in the driver. Each batch query runs in tenant_context because
    a streaming response is iterated after the request's middleware has reset the tenant."""
    last_seq: int | None = None
    while True:
        with context.tenant_context(tenant_id):
            page = queryset.order_by("seq")
            if last_seq is not None:
                page = page.filter(seq__gt=last_seq)
            batch = list(page[:batch_size])
        yield from batch
        if len(batch) < batch_size:
            return
        last_seq = batch[-1].seq
