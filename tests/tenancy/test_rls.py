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
    """Even a row RLS lets through (it is tenant A's, written as A) cannot point at B's account: the
    foreign key check is not subject to RLS and the composite key refuses it."""
    account_b = factories.AccountFactory(tenant=tenant_b.tenant)
    with context.tenant_context(tenant_a.tenant):
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


# --- No escape hatch the app role can open for itself (issue #15, item 7) ------------------------------


@pytest.mark.django_db
def test_the_app_role_cannot_open_other_tenants_with_a_setting_of_its_own(tenant_a, tenant_b):
    """`app.system_scope` used to open every tenant, and the app role can set any custom setting in
    plain SQL. The policies no longer read it, nor any other setting but the one tenant id."""
    factories.AccountFactory(tenant=tenant_a.tenant, name="Alpha Savings Bank")
    factories.AccountFactory(tenant=tenant_b.tenant, name="Bravo Trust Company")
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('app.system_scope', 'on', false)")
        cursor.execute("SELECT set_config('app.system', 'on', false), set_config('app.all_tenants', 'on', false)")
    try:
        assert _names() == []
        with context.tenant_context(tenant_a.tenant):
            assert _names() == ["Alpha Savings Bank"]
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET app.system_scope")


@pytest.mark.django_db
def test_no_policy_trusts_anything_but_the_tenant_setting_for_the_app_role():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename, policyname, roles::text[], cmd, coalesce(qual, ''), coalesce(with_check, '') "
            "FROM pg_policies WHERE schemaname = current_schema()"
        )
        policies = cursor.fetchall()
        cursor.execute("SELECT current_user")
        app_role = cursor.fetchone()[0]
    assert policies
    for table, name, roles, command, qual, check in policies:
        if name == "tenant_isolation":
            assert roles == ["public"] and command == "ALL", (table, roles, command)
            assert "current_setting" in qual and "system_scope" not in qual + check, (table, qual)
            assert qual.count("current_setting") == 1 and check.count("current_setting") == 1, (table, qual)
        else:
            # The owner's read-only policy for the SECURITY DEFINER lookups; never the app role's.
            assert name == "system_lookup" and command == "SELECT", (table, name, command)
            assert app_role not in roles and "public" not in roles, (table, roles)


@pytest.mark.django_db
def test_the_app_role_cannot_become_the_owner_or_define_a_way_around(tenant_a, tenant_b):
    factories.AccountFactory(tenant=tenant_b.tenant, name="Bravo Trust Company")
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'accounts_account'")
        owner = cursor.fetchone()[0]
    with pytest.raises(DatabaseError, match="permission denied"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f'SET ROLE "{owner}"')
    # A function of its own runs with its own rights (SECURITY DEFINER of the app role changes nothing).
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "CREATE FUNCTION pg_temp.peek() RETURNS SETOF text LANGUAGE sql SECURITY DEFINER "
                "AS $$ SELECT name FROM accounts_account $$"
            )
            cursor.execute("SELECT * FROM pg_temp.peek()")
            assert cursor.fetchall() == []
            cursor.execute("DROP FUNCTION pg_temp.peek()")
    except DatabaseError as exc:
        assert "permission denied" in str(exc)  # not even allowed to create one


@pytest.mark.django_db
def test_the_lookups_answer_only_their_own_question(tenant_a, tenant_b):
    """The two SECURITY DEFINER lookups see across tenants for exactly one thing each: a user's active
    memberships, and the tenant holding a token hash."""
    from api.services import api_token_create, hash_token
    from cs_platform.tenancy.selectors import memberships_for_user
    from cs_platform.tenancy.system import lookup_rows

    consultant = factories.UserFactory(username="consultant@example.test")
    factories.MembershipFactory(tenant=tenant_a.tenant, user=consultant, role="executive")
    factories.MembershipFactory(tenant=tenant_b.tenant, user=consultant, role="viewer")
    memberships = memberships_for_user(consultant)
    assert [(m.tenant.slug, m.role) for m in memberships] == [("alpha", "executive"), ("bravo", "viewer")]
    assert all(m.user_id == consultant.pk and m.tenant_id == m.tenant.pk for m in memberships)
    with context.tenant_context(tenant_a.tenant):
        # The row the lookup built equals the one the ORM reads inside the tenant, field by field.
        from cs_platform.tenancy.models import Membership

        stored = Membership.objects.get(pk=memberships[0].pk)
    assert {f.attname: getattr(stored, f.attname) for f in Membership._meta.concrete_fields} == {
        f.attname: getattr(memberships[0], f.attname) for f in Membership._meta.concrete_fields
    }
    _, plaintext = api_token_create(
        tenant=tenant_b.tenant, name="Reporting", scopes=["accounts:read"], actor=tenant_b.user("admin")
    )
    assert lookup_rows("cs_api_token_tenant", hash_token(plaintext)) == [(tenant_b.tenant.pk,)]
    assert lookup_rows("cs_api_token_tenant", "0" * 64) == [(None,)]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.proname, p.prosecdef, p.proconfig, has_function_privilege('public', p.oid, 'EXECUTE') "
            "FROM pg_proc p WHERE p.proname LIKE 'cs\\_%%' ORDER BY 1"
        )
        functions = cursor.fetchall()
    # The two operations lookups (monitoring migration 0001) answer aggregates only: tests/observability.
    assert [f[0] for f in functions] == [
        "cs_api_token_tenant",
        "cs_delivery_backlog",
        "cs_nightly_run_ages",
        "cs_user_memberships",
    ]
    for name, definer, config, public in functions:
        # The caller's search_path cannot steer the owner's function to a table of its own.
        assert definer and config == ["search_path=public, pg_temp"] and not public, name
