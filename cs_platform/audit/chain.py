"""Canonical serialisation and hashing of audit events, shared by writing and verification."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any


def canonical(payload: dict[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_payload(
    *,
    tenant_id: int,
    seq: int,
    actor_id: int | None,
    actor_label: str,
    action: str,
    object_type: str,
    object_id: str,
    before: Any,
    after: Any,
    created_at: datetime,
    prev_hash: str,
) -> dict[str, Any]:
    return {
        "tenant": tenant_id,
        "seq": seq,
        "actor": actor_id,
        "actor_label": actor_label,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "before": before,
        "after": after,
        "created_at": created_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "prev_hash": prev_hash,
    }


def compute_hash(payload: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(payload).encode("utf-8")).hexdigest()


def hash_of(event) -> str:
    return compute_hash(
        event_payload(
            tenant_id=event.tenant_id,
            seq=event.seq,
            actor_id=event.actor_id,
            actor_label=event.actor_label,
            action=event.action,
            object_type=event.object_type,
            object_id=event.object_id,
            before=event.before,
            after=event.after,
            created_at=event.created_at,
            prev_hash=event.prev_hash,
        )
    )
