"""Signed checkpoints of the audit chain (issue #15 item 6): what they sign, who may change them (nobody), and
what `verify_audit` finds with them that the hash chain alone cannot: tampering done as the database owner,
with the append-only triggers bypassed and every later hash recomputed, as someone with owner access could."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
from unittest import mock

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.test import override_settings
from django.utils import timezone
from psycopg2.extras import Json

from cs_platform.audit.chain import compute_hash, event_payload
from cs_platform.audit.models import GENESIS_HASH, AuditCheckpoint, AuditEvent, CheckpointReason
from cs_platform.audit.selectors import audit_chain_verify
from cs_platform.audit.services import audit_checkpoint_create, audit_record, audit_record_many
from cs_platform.tenancy import context
from tests import factories
from tests.committed import owner_connection

postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="database privileges are PostgreSQL's")
OTHER_KEY = base64.b64encode(hashlib.sha256(b"another key, not configured").digest()).decode()


def _public_of(private_b64: str) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(base64.b64decode(private_b64)).public_key().public_bytes_raw()


def _documented_payload(checkpoint: AuditCheckpoint) -> dict:
    """The signed payload, written from the documentation (README, the export's description), not the code."""
    return {
        "type": "cs-platform/audit-checkpoint/v1",
        "tenant": checkpoint.tenant_id,
        "number": checkpoint.number,
        "seq": checkpoint.seq,
        "event_hash": checkpoint.event_hash,
        "created_at": checkpoint.created_at.astimezone(datetime.UTC).isoformat(timespec="microseconds"),
        "reason": checkpoint.reason,
        "prev_digest": checkpoint.prev_digest,
        "key_id": checkpoint.key_id,
    }


def _canonical(payload: dict) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _write(tenant, n: int, label: str = "check") -> None:
    audit_record_many(
        tenant=tenant, actor=None, events=[{"action": label, "object_type": "test", "object_id": i} for i in range(n)]
    )


def _head(tenant) -> tuple[int, str]:
    with context.tenant_context(tenant):
        return AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()


# --- what a checkpoint is ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_checkpoint_signs_the_chain_head_and_verifies_with_the_public_key_alone(tenant_a):
    tenant = tenant_a.tenant
    _write(tenant, 3)
    seq, head_hash = _head(tenant)
    first = audit_checkpoint_create(tenant=tenant, reason=CheckpointReason.HOURLY)

    public = _public_of(settings.AUDIT_SIGNING_KEY)
    assert (first.number, first.seq, first.event_hash, first.reason) == (1, seq, head_hash, "hourly")
    assert first.prev_digest == "0" * 64
    assert first.key_id == hashlib.sha256(public).hexdigest()
    # Anyone holding only the public key can check it (cryptography's own verifier, the documented bytes).
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    Ed25519PublicKey.from_public_bytes(public).verify(
        bytes.fromhex(first.signature), _canonical(_documented_payload(first))
    )

    _write(tenant, 2)
    second = audit_checkpoint_create(tenant=tenant, reason=CheckpointReason.NIGHTLY)
    assert (second.number, second.seq) == (2, seq + 2)
    assert second.prev_digest == hashlib.sha256(_canonical(_documented_payload(first))).hexdigest()
    # A checkpoint is no audit event: signing the head does not move it.
    assert _head(tenant)[0] == seq + 2
    # A checkpoint with nothing new is still made: the hourly rhythm is what shows removed checkpoints.
    third = audit_checkpoint_create(tenant=tenant, reason=CheckpointReason.HOURLY)
    assert (third.number, third.seq, third.event_hash) == (3, second.seq, second.event_hash)
    assert audit_chain_verify(tenant=tenant).ok


@pytest.mark.django_db
def test_each_tenant_has_its_own_checkpoint_chain_and_rls_hides_the_others(tenant_a, tenant_b):
    mine = audit_checkpoint_create(tenant=tenant_a.tenant, reason=CheckpointReason.HOURLY)
    theirs = audit_checkpoint_create(tenant=tenant_b.tenant, reason=CheckpointReason.HOURLY)
    assert mine.number == theirs.number == 1
    with context.tenant_context(tenant_a.tenant):
        assert list(AuditCheckpoint.objects.values_list("pk", flat=True)) == [mine.pk]
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:  # the application filter bypassed: RLS alone
                cursor.execute("SELECT count(*) FROM audit_auditcheckpoint WHERE tenant_id = %s", [tenant_b.tenant.pk])
                assert cursor.fetchone()[0] == 0


@postgres_only
@pytest.mark.django_db
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_auditcheckpoint SET seq = 1",
        "DELETE FROM audit_auditcheckpoint",
        "TRUNCATE audit_auditcheckpoint",
    ],
)
def test_the_app_role_cannot_change_or_remove_checkpoints(tenant_a, statement):
    audit_checkpoint_create(tenant=tenant_a.tenant, reason=CheckpointReason.HOURLY)
    with context.tenant_context(tenant_a.tenant):
        with pytest.raises(DatabaseError, match="permission denied"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(statement)
        assert AuditCheckpoint.objects.count() == 1


@postgres_only
def test_triggers_refuse_checkpoint_changes_even_for_the_owner(tenant_committed, django_db_blocker):
    import psycopg2

    with django_db_blocker.unblock():
        audit_checkpoint_create(tenant=tenant_committed, reason=CheckpointReason.HOURLY)
    with owner_connection() as conn, conn.cursor() as cursor:
        for statement in (
            "UPDATE audit_auditcheckpoint SET seq = 0 WHERE tenant_id = %s",
            "DELETE FROM audit_auditcheckpoint WHERE tenant_id = %s",
        ):
            with pytest.raises(psycopg2.Error, match="append-only"):
                cursor.execute(statement, [tenant_committed.pk])
        with pytest.raises(psycopg2.Error, match="append-only"):
            cursor.execute("TRUNCATE audit_auditcheckpoint")


# --- what verify_audit finds with them ---------------------------------------------------------------------


def _as_owner(statements: list[tuple[str, list]]) -> None:
    """Run statements as the database owner with the append-only triggers off (session_replication_role)."""
    with owner_connection() as conn, conn.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        for sql, params in statements:
            cursor.execute(sql, params)


def _verify_fails(tenant, pattern: str) -> str:
    with pytest.raises(CommandError, match=pattern) as failure:
        call_command("verify_audit", tenant=tenant.slug)
    return str(failure.value)


@postgres_only
def test_deleting_the_newest_events_is_named_as_a_missing_tail(tenant_committed, django_db_blocker):
    with django_db_blocker.unblock():
        _write(tenant_committed, 6)
        head, _ = _head(tenant_committed)
        audit_checkpoint_create(tenant=tenant_committed, reason=CheckpointReason.HOURLY)
        call_command("verify_audit", tenant=tenant_committed.slug)  # intact
        # The newest three events go. What remains is a perfect chain: the hashes alone cannot tell.
        _as_owner([("DELETE FROM audit_auditevent WHERE tenant_id = %s AND seq > %s", [tenant_committed.pk, head - 3])])
        report = audit_chain_verify(tenant=tenant_committed)
        assert report.checked == head - 3  # every remaining event verifies on its own
        assert [p.kind for p in report.problems] == ["missing_tail"]
        _verify_fails(
            tenant_committed,
            rf"BROKEN at event #{head - 2} \(missing\): missing tail: checkpoint 1 \(signed .*\) says the chain "
            rf"reached #{head}, but the table ends at #{head - 3}: events #{head - 2}-#{head} were removed",
        )


def _rewrite(tenant_id: int, seq: int, new_after: dict) -> None:
    """As an owner would: change event `seq`, then recompute its hash and every later hash and link, so the
    chain is internally perfect again."""
    with owner_connection() as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT seq, actor_id, actor_label, action, object_type, object_id, before, after, created_at, prev_hash "
            "FROM audit_auditevent WHERE tenant_id = %s AND seq >= %s ORDER BY seq",
            [tenant_id, seq],
        )
        rows = cursor.fetchall()
        cursor.execute("SET session_replication_role = replica")
        # The unique (tenant, prev_hash) would trip over the old links half-way: move them aside first.
        cursor.execute(
            "UPDATE audit_auditevent SET prev_hash = md5(random()::text) || md5(random()::text) "
            "WHERE tenant_id = %s AND seq > %s",
            [tenant_id, seq],
        )
        prev_hash = rows[0][9]
        for event_seq, actor_id, label, action, object_type, object_id, before, after, created_at, _ in rows:
            after = new_after if event_seq == seq else after
            new_hash = compute_hash(
                event_payload(
                    tenant_id=tenant_id,
                    seq=event_seq,
                    actor_id=actor_id,
                    actor_label=label,
                    action=action,
                    object_type=object_type,
                    object_id=object_id,
                    before=before,
                    after=after,
                    created_at=created_at,
                    prev_hash=prev_hash,
                )
            )
            cursor.execute(
                "UPDATE audit_auditevent SET after = %s, prev_hash = %s, hash = %s WHERE tenant_id = %s AND seq = %s",
                [Json(after), prev_hash, new_hash, tenant_id, event_seq],
            )
            prev_hash = new_hash


@postgres_only
def test_an_event_rewritten_with_every_later_hash_recomputed_is_named(tenant_committed, django_db_blocker):
    with django_db_blocker.unblock():
        _write(tenant_committed, 3)
        confirmed, _ = _head(tenant_committed)
        audit_checkpoint_create(tenant=tenant_committed, reason=CheckpointReason.HOURLY)
        _write(tenant_committed, 4, label="payment.approve")
        head, _ = _head(tenant_committed)
        audit_checkpoint_create(tenant=tenant_committed, reason=CheckpointReason.HOURLY)

        _rewrite(tenant_committed.pk, confirmed + 2, {"approved_by": "someone else"})
        report = audit_chain_verify(tenant=tenant_committed)
        # Every hash and link is consistent again (what verify_audit saw before checkpoints) ...
        assert report.checked == head - 1
        # ... but the head no longer has the hash checkpoint 2 signed.
        assert [p.kind for p in report.problems] == ["rewritten"]
        _verify_fails(
            tenant_committed,
            rf"BROKEN at event #{head} \(id \d+\): rewritten: checkpoint 2 signed hash [0-9a-f]{{12}}… for event "
            rf"#{head}, the table holds [0-9a-f]{{12}}…; the chain was rewritten after event #{confirmed}",
        )


@postgres_only
def test_a_checkpoint_altered_to_cover_a_truncation_fails_its_signature(tenant_committed, django_db_blocker):
    with django_db_blocker.unblock():
        _write(tenant_committed, 5)
        head, _ = _head(tenant_committed)
        checkpoint = audit_checkpoint_create(tenant=tenant_committed, reason=CheckpointReason.HOURLY)
        with context.tenant_context(tenant_committed):
            new_head = AuditEvent.objects.get(seq=head - 2)
        # Cut the tail, and make the checkpoint say the chain ended there: without the private key.
        _as_owner(
            [
                ("DELETE FROM audit_auditevent WHERE tenant_id = %s AND seq > %s", [tenant_committed.pk, head - 2]),
                (
                    "UPDATE audit_auditcheckpoint SET seq = %s, event_hash = %s WHERE id = %s",
                    [head - 2, new_head.hash, checkpoint.pk],
                ),
            ]
        )
        report = audit_chain_verify(tenant=tenant_committed)
        assert [p.kind for p in report.problems] == ["bad_signature"]
        _verify_fails(
            tenant_committed,
            r"BROKEN at checkpoint 1: checkpoint 1's signature does not verify \(key [0-9a-f]{16}…\): the "
            r"checkpoint was altered or forged",
        )


@postgres_only
def test_a_checkpoint_signed_with_a_key_not_configured_is_named_and_rotation_keeps_old_ones_valid(
    tenant_committed, django_db_blocker
):
    old_public = base64.b64encode(_public_of(settings.AUDIT_SIGNING_KEY)).decode()
    with django_db_blocker.unblock():
        audit_checkpoint_create(tenant=tenant_committed, reason=CheckpointReason.HOURLY)
        # Someone with owner access signs a checkpoint of their own: a valid signature, by a key nobody trusts.
        with override_settings(AUDIT_SIGNING_KEY=OTHER_KEY):
            forged = audit_checkpoint_create(tenant=tenant_committed, reason=CheckpointReason.HOURLY)
        _verify_fails(
            tenant_committed,
            rf"BROKEN at checkpoint 2: checkpoint 2 is signed by an unknown key \({forged.key_id[:16]}…\)",
        )

        # A rotation: the new key signs from now on, the old public key still verifies what it signed.
        with override_settings(AUDIT_SIGNING_KEY=OTHER_KEY, AUDIT_VERIFY_PUBLIC_KEYS=[old_public]):
            audit_checkpoint_create(tenant=tenant_committed, reason=CheckpointReason.HOURLY)
            report = audit_chain_verify(tenant=tenant_committed)
            assert report.ok and report.checkpoints == 3, report.problems
        # Without the old key listed, its checkpoints cannot be verified, and the command says so.
        with override_settings(AUDIT_SIGNING_KEY=OTHER_KEY):
            _verify_fails(tenant_committed, r"BROKEN at checkpoint 1: checkpoint 1 is signed by an unknown key")


@postgres_only
def test_removed_or_replaced_checkpoints_break_the_checkpoint_chain(tenant_committed, django_db_blocker):
    with django_db_blocker.unblock():
        made = []
        for _ in range(4):
            _write(tenant_committed, 1)
            made.append(audit_checkpoint_create(tenant=tenant_committed, reason=CheckpointReason.HOURLY))
        _as_owner([("DELETE FROM audit_auditcheckpoint WHERE id = %s", [made[1].pk])])
        _verify_fails(
            tenant_committed,
            r"BROKEN at checkpoint 3: missing checkpoint: checkpoint 2 is not in the table \(found 3 after 1\)",
        )
        # An altered checkpoint fails its own signature, and its successor no longer names it.
        _as_owner([("UPDATE audit_auditcheckpoint SET reason = 'manual' WHERE id = %s", [made[2].pk])])
        report = audit_chain_verify(tenant=tenant_committed)
        assert [(p.kind, p.checkpoint) for p in report.problems] == [
            ("missing_checkpoint", 3),
            ("bad_signature", 3),
            ("checkpoint_link", 4),
        ]
        _as_owner([("DELETE FROM audit_auditcheckpoint WHERE id = %s", [made[0].pk])])
        message = _verify_fails(
            tenant_committed, r"BROKEN at checkpoint 3: missing checkpoint: checkpoints 1-2 are not"
        )
        assert "Also at checkpoint 3: checkpoint 3's signature does not verify" in message


@postgres_only
def test_a_tail_cut_then_grown_again_is_named_even_when_newly_signed(tenant_committed, django_db_blocker):
    with django_db_blocker.unblock():
        _write(tenant_committed, 5)
        head, _ = _head(tenant_committed)
        audit_checkpoint_create(tenant=tenant_committed, reason=CheckpointReason.HOURLY)
        _as_owner([("DELETE FROM audit_auditevent WHERE tenant_id = %s AND seq > %s", [tenant_committed.pk, head - 3])])
        # The platform goes on: a new event and the next hourly checkpoint sign the shortened chain.
        audit_record(tenant=tenant_committed, actor=None, action="later", object_type="test", object_id=1)
        audit_checkpoint_create(tenant=tenant_committed, reason=CheckpointReason.HOURLY)
        report = audit_chain_verify(tenant=tenant_committed)
        assert [p.kind for p in report.problems] == ["chain_regressed", "missing_tail"]
        _verify_fails(
            tenant_committed,
            rf"BROKEN at checkpoint 2: checkpoint 2 signed the chain at #{head - 2}, but checkpoint 1 had signed it "
            rf"at #{head}",
        )


@pytest.mark.django_db
def test_verify_audit_reports_what_the_checkpoints_cover_and_warns_about_the_rest(tenant_a, capsys):
    tenant = tenant_a.tenant
    call_command("verify_audit", tenant=tenant.slug)
    assert "no verified checkpoint" in capsys.readouterr().err
    _write(tenant, 2)
    checkpoint = audit_checkpoint_create(tenant=tenant, reason=CheckpointReason.HOURLY)
    call_command("verify_audit", tenant=tenant.slug)
    out, err = capsys.readouterr()
    assert f"intact: {checkpoint.seq} events verified; 1 signed checkpoints verified, the newest (1, " in out
    assert f"covering events up to #{checkpoint.seq}" in out and err == ""
    _write(tenant, 2)
    call_command("verify_audit", tenant=tenant.slug)
    assert (
        f"Warning: events #{checkpoint.seq + 1}-#{checkpoint.seq + 2} came after the newest checkpoint"
        in capsys.readouterr().err
    )


@pytest.mark.django_db
def test_gaps_between_checkpoints_and_a_stale_newest_one_are_warned_about(tenant_a):
    tenant = tenant_a.tenant
    start = timezone.now() - datetime.timedelta(hours=10)
    for hours in (0, 1, 2, 6):  # three on time, then nothing for four hours: checkpoints removed, or beat down
        with mock.patch(
            "cs_platform.audit.services.timezone.now", return_value=start + datetime.timedelta(hours=hours)
        ):
            audit_checkpoint_create(tenant=tenant, reason=CheckpointReason.HOURLY)
    report = audit_chain_verify(tenant=tenant)
    assert report.ok  # warnings, not failures: only the operator knows whether beat was down
    assert any(w.startswith("checkpoints 3 and 4 are 4.0 h apart") for w in report.warnings), report.warnings
    assert any(w.startswith("the newest checkpoint (4, ") and "4.0 h old" in w for w in report.warnings)


@pytest.mark.django_db
@override_settings(AUDIT_SIGNING_KEY=settings.AUDIT_DEVELOPMENT_SIGNING_KEY)
def test_checkpoints_signed_with_the_development_key_are_warned_about(tenant_a):
    audit_checkpoint_create(tenant=tenant_a.tenant, reason=CheckpointReason.HOURLY)
    report = audit_chain_verify(tenant=tenant_a.tenant)
    assert report.ok and any("public development key" in w for w in report.warnings)


def test_a_new_tenants_first_checkpoint_signs_its_creation_event(db):
    tenant = factories.TenantFactory(slug="empty", name="Empty", reference_data=False)
    with context.tenant_context(tenant):
        assert AuditEvent.objects.count() == 1  # tenant.create
    checkpoint = audit_checkpoint_create(tenant=tenant, reason=CheckpointReason.MANUAL)
    assert checkpoint.seq == 1 and checkpoint.event_hash != GENESIS_HASH
    assert audit_chain_verify(tenant=tenant).ok
