"""Reads of the audit trail, and chain verification."""

from __future__ import annotations

from dataclasses import dataclass

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
