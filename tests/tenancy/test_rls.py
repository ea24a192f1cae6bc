"""Row-Level Security on its own, with the application filter bypassed by raw SQL."""

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction

from cs_platform.tenancy import context
from tests import factories

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="RLS exists only on PostgreSQL")


def _names(sql="SELECT name FROM accounts_account ORDER BY name", params=None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.django_db
def test_the_app_connects_as_a_role_that_rls_applies_to():
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
        assert cursor.fetchone() == (False, False)


@pytest.mark.django_db
def test_rls_alone_hides_other_tenants_rows(tenant_a, tenant_b):
    factories.AccountFactory(tenant=tenant_a.tenant, name="Alpha Savings Bank")
    factories.AccountFactory(tenant=tenant_b.tenant, name="Bravo Trust Company")
    with context.tenant_context(tenant_a.tenant):
        assert _names() == ["Alpha Savings Bank"]
        # Even asking for the other tenant's rows explicitly returns nothing.
        assert _names("SELECT name FROM accounts_account WHERE tenant_id = %s", [tenant_b.tenant.pk]) == []
    with context.tenant_context(tenant_b.tenant):
        assert _names() == ["Bravo Trust Company"]
    # No tenant selected: the setting is missing, current_setting(..., true) is NULL, no rows.
    assert _names() == []
    with context.system_scope():
        assert _names() == ["Alpha Savings Bank", "Bravo Trust Company"]


@pytest.mark.django_db
def test_rls_refuses_writing_rows_into_another_tenant(tenant_a, tenant_b):
    segment_b = factories.segment_of(tenant_b.tenant)
    with context.tenant_context(tenant_a.tenant):
        with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO accounts_account (tenant_id, name, segment_id, tier, arr, currency, lifecycle_stage,"
                    " executive_sponsor, jurisdictions, regulators, data_standards, created_at, updated_at)"
                    " VALUES (%s, 'Injected', %s, 'growth', 0, 'USD', 'onboarding', '',"
                    " '[]', '[]', '[]', now(), now())",
                    [tenant_b.tenant.pk, segment_b.pk],
                )


@pytest.mark.django_db
def test_rls_hides_rows_from_updates_and_deletes_of_another_tenant(tenant_a, tenant_b):
    account_b = factories.AccountFactory(tenant=tenant_b.tenant, name="Bravo Credit Union")
    with context.tenant_context(tenant_a.tenant), connection.cursor() as cursor:
        cursor.execute("UPDATE accounts_account SET name = 'Hijacked' WHERE id = %s", [account_b.pk])
        assert cursor.rowcount == 0
        cursor.execute("DELETE FROM accounts_account WHERE id = %s", [account_b.pk])
        assert cursor.rowcount == 0
    with context.tenant_context(tenant_b.tenant):
        assert _names() == ["Bravo Credit Union"]


@pytest.mark.django_db
def test_composite_foreign_keys_refuse_a_cross_tenant_reference(tenant_a, tenant_b):
    """Even in system scope (RLS open), the database refuses a contact of tenant A on B's account."""
    account_b = factories.AccountFactory(tenant=tenant_b.tenant)
    with context.system_scope():
        with pytest.raises(IntegrityError, match="_tfk"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO accounts_contact (tenant_id, account_id, name, email, phone, title,"
                    " is_executive_sponsor, is_primary) VALUES (%s, %s, 'Mallory', '', '', '', false, false)",
                    [tenant_a.tenant.pk, account_b.pk],
                )
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


@pytest.mark.django_db
def test_the_database_setting_follows_the_context_within_one_transaction(tenant_a, tenant_b):
    """The backend re-applies app.tenant_id whenever the context changes, even mid-transaction, so
    the RLS view can never lag behind the application's idea of the current tenant."""
    setting = "SELECT coalesce(current_setting('app.tenant_id', true), '')"
    with transaction.atomic():
        with context.tenant_context(tenant_a.tenant):
            assert _names(setting) == [str(tenant_a.tenant.pk)]
            with context.tenant_context(tenant_b.tenant):
                assert _names(setting) == [str(tenant_b.tenant.pk)]
            assert _names(setting) == [str(tenant_a.tenant.pk)]
        assert _names(setting) == [""]


def test_the_tenant_setting_is_local_to_a_committed_transaction(django_db_blocker, tenant_committed):
    """Outside any transaction (autocommit, as in management commands and workers) each statement
    carries its own setting; nothing lingers on the connection afterwards."""
    setting = "SELECT coalesce(current_setting('app.tenant_id', true), '')"
    with django_db_blocker.unblock():
        with context.tenant_context(tenant_committed):
            assert _names(setting) == [str(tenant_committed.pk)]
            assert _names("SELECT count(*)::text FROM segments_segment") == ["4"]
        assert _names(setting) == [""]
        assert _names("SELECT count(*)::text FROM segments_segment") == ["0"]
