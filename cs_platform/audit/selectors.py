"""Reads of the audit trail and its signed checkpoints, and verification of both."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from django.conf import settings
from django.db.models import Max, QuerySet
from django.utils import timezone

from cs_platform.audit import signing
from cs_platform.audit.chain import hash_of
from cs_platform.audit.models import GENESIS_HASH, AuditCheckpoint, AuditEvent
from cs_platform.audit.signing import GENESIS_DIGEST
from cs_platform.tenancy import context

# Problems verify_audit names. The checkpoint kinds come first in a report: a forged or missing
# checkpoint makes the evidence itself suspect, whatever the events say.
CHECKPOINT_PROBLEMS = ("unknown_key", "bad_signature", "missing_checkpoint", "checkpoint_link", "chain_regressed")
EVENT_PROBLEMS = ("sequence_gap", "prev_hash_mismatch", "content_altered", "rewritten", "missing_tail")
# Checkpoints further apart than this many intervals make a warning: a run of removed checkpoints leaves
# such a gap, and so does a beat or worker outage, which only the operator can tell apart.
_GAP_INTERVALS = 1.5


@dataclass(frozen=True)
class Problem:
    kind: str  # one of CHECKPOINT_PROBLEMS or EVENT_PROBLEMS
    where: str  # "event #12 (id 345)", "event #13 (missing)", "checkpoint 7"
    message: str
    seq: int | None = None
    event_id: int | None = None
    checkpoint: int | None = None


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int  # events whose hash and link verified before the first event problem (all, when intact)
    problem: str = ""  # the first problem's message
    bad_event_id: int | None = None
    bad_seq: int | None = None
    problems: tuple[Problem, ...] = ()
    warnings: tuple[str, ...] = ()
    checkpoints: int = 0  # checkpoints whose signature verified
    newest_checkpoint: tuple[int, int, datetime.datetime] | None = None  # (number, seq, created_at)


class _Signed(NamedTuple):
    """What one verified checkpoint vouches for (a tuple, not a model row: a tenant has one an hour)."""

    number: int
    seq: int
    event_hash: str
    created_at: datetime.datetime


@dataclass
class _Claims:
    """What the tenant's checkpoints say, once their signatures are checked."""

    by_seq: dict[int, list[_Signed]] = field(default_factory=dict)  # verified checkpoints per signed seq
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    valid: int = 0
    newest: _Signed | None = None


def _when(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _checkpoint_claims(tenant_id: int, now: datetime.datetime) -> _Claims:
    """Walk the checkpoint chain: numbers from 1 without a gap, each naming its predecessor's digest, each
    signed by a known key, and the signed seq never going backwards."""
    claims = _Claims()
    keys = signing.verifiers()
    interval = datetime.timedelta(minutes=settings.AUDIT_CHECKPOINT_INTERVAL_MINUTES)
    expected_number, previous_payload, previous_valid = 1, None, None
    development = 0
    with context.tenant_context(tenant_id):
        checkpoints = AuditCheckpoint.objects.all()
    for checkpoint in _in_batches(checkpoints, tenant_id=tenant_id, key="number"):
        number, payload = checkpoint.number, signing.payload_of(checkpoint)
        if number != expected_number:
            missing = (
                f"checkpoint {expected_number} is"
                if number == expected_number + 1
                else f"checkpoints {expected_number}-{number - 1} are"
            )
            claims.problems.append(
                Problem(
                    "missing_checkpoint",
                    f"checkpoint {number}",
                    f"missing checkpoint: {missing} not in the table (found {number} after "
                    f"{expected_number - 1 or 'none'})",
                    checkpoint=number,
                )
            )
        elif checkpoint.prev_digest != (signing.digest(previous_payload) if previous_payload else GENESIS_DIGEST):
            claims.problems.append(
                Problem(
                    "checkpoint_link",
                    f"checkpoint {number}",
                    f"checkpoint {number}'s prev_digest is not the digest of checkpoint {number - 1} as stored: a "
                    "checkpoint was replaced",
                    checkpoint=number,
                )
            )
        verdict = signing.verify(payload, checkpoint.signature, keys)
        if verdict is signing.Verdict.UNKNOWN_KEY:
            claims.problems.append(
                Problem(
                    "unknown_key",
                    f"checkpoint {number}",
                    f"checkpoint {number} is signed by an unknown key ({checkpoint.key_id[:16]}…): neither "
                    "AUDIT_SIGNING_KEY nor one of AUDIT_VERIFY_PUBLIC_KEYS",
                    checkpoint=number,
                )
            )
        elif verdict is signing.Verdict.BAD_SIGNATURE:
            claims.problems.append(
                Problem(
                    "bad_signature",
                    f"checkpoint {number}",
                    f"checkpoint {number}'s signature does not verify (key {checkpoint.key_id[:16]}…): the "
                    "checkpoint was altered or forged",
                    checkpoint=number,
                )
            )
        else:
            claims.valid += 1
            development += signing.is_development_key(checkpoint.key_id)
            if previous_valid is not None:
                if checkpoint.seq < previous_valid.seq:
                    claims.problems.append(
                        Problem(
                            "chain_regressed",
                            f"checkpoint {number}",
                            f"checkpoint {number} signed the chain at #{checkpoint.seq}, but checkpoint "
                            f"{previous_valid.number} had signed it at #{previous_valid.seq}: events were removed "
                            "and the chain grown again",
                            checkpoint=number,
                        )
                    )
                if checkpoint.created_at - previous_valid.created_at > interval * _GAP_INTERVALS:
                    claims.warnings.append(
                        f"checkpoints {previous_valid.number} and {number} are "
                        f"{_hours(checkpoint.created_at - previous_valid.created_at)} apart (one is due every "
                        f"{settings.AUDIT_CHECKPOINT_INTERVAL_MINUTES} min): unless beat or the workers were down "
                        "then, checkpoints between them were removed"
                    )
            signed = _Signed(number, checkpoint.seq, checkpoint.event_hash, checkpoint.created_at)
            claims.by_seq.setdefault(checkpoint.seq, []).append(signed)
            previous_valid = claims.newest = signed
        previous_payload, expected_number = payload, number + 1
    if claims.newest is not None and now - claims.newest.created_at > interval * _GAP_INTERVALS:
        claims.warnings.append(
            f"the newest checkpoint ({claims.newest.number}, {_when(claims.newest.created_at)}) is "
            f"{_hours(now - claims.newest.created_at)} old: unless beat or the workers are down, newer "
            "checkpoints were removed"
        )
    if development:
        claims.warnings.append(
            f"{development} checkpoint(s) are signed with the public development key: anyone can make such "
            "signatures, so they prove nothing (set AUDIT_SIGNING_KEY)"
        )
    return claims


def _hours(delta: datetime.timedelta) -> str:
    return f"{delta.total_seconds() / 3600:.1f} h"


def audit_chain_verify(*, tenant) -> ChainReport:
    """Verify the tenant's trail: every event's hash and link (a changed, removed or reordered event), and
    the chain against every signed checkpoint, which catches what recomputing hashes hides: the event at a
    checkpoint's seq must still have the hash it signed (a rewrite), and the table must reach the highest
    signed seq (a missing tail). The checkpoints themselves must verify with a known public key and form an
    unbroken chain. Every checkpoint problem is reported; of the events, the first problem in seq order.
    Reads in batches: memory stays flat however long the trail."""
    tenant_id = tenant if isinstance(tenant, int) else tenant.pk
    claims = _checkpoint_claims(tenant_id, timezone.now())
    event_problem: Problem | None = None
    expected_prev, expected_seq, checked = GENESIS_HASH, 1, 0
    confirmed = 0  # the last seq a valid checkpoint confirmed on the way
    with context.tenant_context(tenant_id):
        events = AuditEvent.objects.all()
    for event in _in_batches(events, tenant_id=tenant_id, key="seq"):
        where = f"event #{event.seq} (id {event.pk})"
        if event.seq != expected_seq:
            message = f"sequence gap: expected #{expected_seq}, found #{event.seq}"
            event_problem = Problem("sequence_gap", where, message, event.seq, event.pk)
        elif event.prev_hash != expected_prev:
            message = "prev_hash does not match the previous event's hash"
            event_problem = Problem("prev_hash_mismatch", where, message, event.seq, event.pk)
        elif (computed := hash_of(event)) != event.hash:
            message = f"content altered: stored hash {event.hash[:12]}…, computed {computed[:12]}…"
            event_problem = Problem("content_altered", where, message, event.seq, event.pk)
        else:
            for checkpoint in claims.by_seq.get(event.seq, ()):
                if checkpoint.event_hash != event.hash:
                    message = (
                        f"rewritten: checkpoint {checkpoint.number} signed hash {checkpoint.event_hash[:12]}… for "
                        f"event #{event.seq}, the table holds {event.hash[:12]}…; the chain was rewritten after "
                        f"event #{confirmed} and its hashes recomputed"
                    )
                    event_problem = Problem("rewritten", where, message, event.seq, event.pk, checkpoint.number)
                    break
            confirmed = event.seq if event.seq in claims.by_seq else confirmed
        if event_problem is not None:
            break
        expected_prev, expected_seq, checked = event.hash, event.seq + 1, checked + 1
    problems = [*claims.problems]
    if event_problem is not None:
        problems.append(event_problem)
    with context.tenant_context(tenant_id):
        last_seq = AuditEvent.objects.aggregate(last=Max("seq"))["last"] or 0
    beyond = [cp for seq, signed in claims.by_seq.items() if seq > last_seq for cp in signed]
    if beyond:
        first = min(beyond, key=lambda cp: cp.number)
        highest = max(cp.seq for cp in beyond)
        problems.append(
            Problem(
                "missing_tail",
                f"event #{last_seq + 1} (missing)",
                f"missing tail: checkpoint {first.number} (signed {_when(first.created_at)}) says the chain reached "
                f"#{first.seq}, but the table ends at #{last_seq}: events #{last_seq + 1}-#{highest} were removed",
                last_seq + 1,
                None,
                first.number,
            )
        )
    warnings = [*claims.warnings]
    if claims.valid == 0 and last_seq:
        warnings.append(
            "no verified checkpoint: only the hashes protect this chain, and whoever can rewrite the table can "
            "recompute them (checkpoints are made by beat every AUDIT_CHECKPOINT_INTERVAL_MINUTES, by each "
            "nightly run and by `manage.py audit_checkpoint`)"
        )
    elif claims.newest is not None and last_seq > claims.newest.seq and not beyond:
        warnings.append(
            f"events #{claims.newest.seq + 1}-#{last_seq} came after the newest checkpoint "
            f"({claims.newest.number}, {_when(claims.newest.created_at)}): until the next one, only their hashes "
            "protect them"
        )
    newest = claims.newest
    first = problems[0] if problems else None
    return ChainReport(
        ok=not problems,
        checked=checked,
        problem=first.message if first else "",
        bad_event_id=first.event_id if first else None,
        bad_seq=first.seq if first else None,
        problems=tuple(problems),
        warnings=tuple(warnings),
        checkpoints=claims.valid,
        newest_checkpoint=(newest.number, newest.seq, newest.created_at) if newest else None,
    )


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
    return _in_batches(queryset, tenant_id=tenant_id, key="seq", batch_size=batch_size)


def audit_checkpoints_in_batches(
    queryset: QuerySet[AuditCheckpoint], *, tenant_id: int, batch_size: int = 2000
) -> Iterator[AuditCheckpoint]:
    """The same for checkpoints, in number order."""
    return _in_batches(queryset, tenant_id=tenant_id, key="number", batch_size=batch_size)


def _in_batches(queryset: QuerySet, *, tenant_id: int, key: str, batch_size: int = 2000) -> Iterator:
    last: int | None = None
    while True:
        with context.tenant_context(tenant_id):
            page = queryset.order_by(key)
            if last is not None:
                page = page.filter(**{f"{key}__gt": last})
            batch = list(page[:batch_size])
        yield from batch
        if len(batch) < batch_size:
            return
        last = getattr(batch[-1], key)


def audit_checkpoints() -> QuerySet[AuditCheckpoint]:
    """The current tenant's signed checkpoints (readers as for audit_events)."""
    return AuditCheckpoint.objects.all()


def audit_export_bounds() -> tuple[int, int]:
    """(highest checkpoint number, highest event seq) of the current tenant: an export's fixed range. Read
    in that order, so every checkpoint counted signed a head at or below the seq counted. Two queries."""
    through_checkpoint = AuditCheckpoint.objects.aggregate(last=Max("number"))["last"] or 0
    through_seq = AuditEvent.objects.aggregate(last=Max("seq"))["last"] or 0
    return through_checkpoint, through_seq
