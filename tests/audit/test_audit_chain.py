"""The audit trail: chained on every service write, append-only in the database, tamper-evident."""

from __future__ import annotations

import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, connections, transaction

from accounts.services import account_create
from cs_platform.audit.chain import hash_of
from cs_platform.audit.models import GENESIS_HASH, AuditEvent
from cs_platform.audit.selectors import audit_chain_verify
from cs_platform.audit.services import audit_record
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from tests import factories
from tests.committed import owner_connection

postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="database privileges are PostgreSQL's")


@pytest.mark.django_db
def test_a_service_write_appends_a_chained_event(tenant_a):
    tenant = tenant_a.tenant
    admin = tenant_a.user(Role.ADMIN)
    with context.tenant_context(tenant):
        head_before = AuditEvent.objects.order_by("-seq").first()
    account = account_create(
        tenant=tenant,
        actor=admin,
        name="Granite Bay Credit Union",
        segment=factories.segment_of(tenant),
        owner_csm=tenant_a.user(Role.CSM),
        arr="1200000.00",
    )
    with context.tenant_context(tenant):
        events = list(AuditEvent.objects.filter(seq__gt=head_before.seq).order_by("seq"))
    assert [e.action for e in events] == ["account.create", "account.grant_csm"]
    created = events[0]
    assert created.prev_hash == head_before.hash
    assert created.seq == head_before.seq + 1
    assert created.actor_id == admin.pk and created.actor_label == admin.username
    assert created.object_type == "accounts.account" and created.object_id == str(account.pk)
    assert created.after["name"] == "Granite Bay Credit Union" and created.after["arr"] == "1200000.00"
    assert created.hash == hash_of(created) and len(created.hash) == 64
    assert events[1].prev_hash == created.hash
    assert audit_chain_verify(tenant=tenant).ok


@pytest.mark.django_db
def test_each_tenant_has_its_own_chain_from_genesis(tenant_a, tenant_b):
    for world in (tenant_a, tenant_b):
        with context.tenant_context(world.tenant):
            first = AuditEvent.objects.order_by("seq").first()
        assert first.seq == 1 and first.prev_hash == GENESIS_HASH and first.action == "tenant.create"


@postgres_only
@pytest.mark.django_db
@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_auditevent SET action = 'x'", "DELETE FROM audit_auditevent", "TRUNCATE audit_auditevent"],
)
def test_the_app_role_cannot_change_or_remove_events(tenant_a, statement):
    with context.tenant_context(tenant_a.tenant):
        with pytest.raises(DatabaseError, match="permission denied"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(statement)
        assert AuditEvent.objects.count() >= 1


@postgres_only
def test_triggers_refuse_changes_even_for_the_owner(tenant_committed):
    import psycopg2

    with owner_connection() as conn, conn.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM audit_auditevent WHERE tenant_id = %s", [tenant_committed.pk])
        assert cursor.fetchone()[0] >= 1
        for statement in (
            "UPDATE audit_auditevent SET action = 'x' WHERE tenant_id = %s",
            "DELETE FROM audit_auditevent WHERE tenant_id = %s",
        ):
            with pytest.raises(psycopg2.Error, match="append-only"):
                cursor.execute(statement, [tenant_committed.pk])
        with pytest.raises(psycopg2.Error, match="append-only"):
            cursor.execute("TRUNCATE audit_auditevent")


@postgres_only
def test_tampering_by_a_superuser_is_detected_by_verify_audit(tenant_committed, django_db_blocker):
    with django_db_blocker.unblock():
        call_command("verify_audit", tenant=tenant_committed.slug)  # intact before
        with owner_connection() as conn, conn.cursor() as cursor:
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
            try:
                cursor.execute(
                    "UPDATE audit_auditevent SET after = jsonb_set(after, '{segments}', '5') "
                    "WHERE tenant_id = %s AND action = 'reference_data.load' RETURNING seq",
                    [tenant_committed.pk],
                )
                tampered_seq = cursor.fetchone()[0]
            finally:
                cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER USER")
        with pytest.raises(CommandError, match=rf"BROKEN at event #{tampered_seq} .*content altered"):
            call_command("verify_audit", tenant=tenant_committed.slug)


@postgres_only
def test_deleting_an_event_breaks_the_chain(tenant_committed, django_db_blocker):
    with django_db_blocker.unblock():
        with owner_connection() as conn, conn.cursor() as cursor:
            cursor.execute("SET session_replication_role = replica")
            cursor.execute("DELETE FROM audit_auditevent WHERE tenant_id = %s AND seq = 1", [tenant_committed.pk])
        report = audit_chain_verify(tenant=tenant_committed)
    assert not report.ok and report.bad_seq == 2 and "gap" in report.problem


@postgres_only
def test_concurrent_writers_do_not_fork_the_chain(tenant_committed, django_db_blocker):
    writers, per_writer = 6, 15
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            with django_db_blocker.unblock():
                barrier.wait()
                for i in range(per_writer):
                    with transaction.atomic():
                        audit_record(
                            tenant=tenant_committed,
                            actor=None,
                            action="test.concurrent",
                            object_type="test.writer",
                            object_id=f"{n}-{i}",
                        )
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    with django_db_blocker.unblock():
        report = audit_chain_verify(tenant=tenant_committed)
        with context.tenant_context(tenant_committed):
            written = AuditEvent.objects.filter(action="test.concurrent").count()
    assert written == writers * per_writer
    assert report.ok, report


@pytest.mark.django_db
def test_verify_audit_names_an_unknown_tenant_clearly(tenant_a):
    with pytest.raises(CommandError, match=r"Unknown tenant slug 'nope'\. Known tenants: alpha"):
        call_command("verify_audit", tenant="nope")
