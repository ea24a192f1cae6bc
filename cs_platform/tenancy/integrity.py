"""Checks that a database (a restored copy, say) still has the walls the application relies on: the app
role exists without SUPERUSER/BYPASSRLS and holds its grants, every tenant table forces Row-Level Security
with the tenant policy, and the audit tables are append-only for the app role. Used by
`manage.py restore_verify`; each function returns the problems found as sentences (empty: all well)."""

from __future__ import annotations

from django.db import connection

from cs_platform.tenancy.operations import POLICY
from cs_platform.tenancy.roles import APPEND_ONLY_TABLES

_TENANT_TABLES_SQL = (
    "SELECT c.table_name FROM information_schema.columns c JOIN information_schema.tables t "
    "USING (table_schema, table_name) WHERE c.table_schema = current_schema() AND c.column_name = 'tenant_id' "
    "AND t.table_type = 'BASE TABLE' ORDER BY 1"
)


def tenant_tables() -> list[str]:
    """Every table with a tenant_id column (the schema test's definition of a tenant table)."""
    with connection.cursor() as cursor:
        cursor.execute(_TENANT_TABLES_SQL)
        return [row[0] for row in cursor.fetchall()]


def app_role_problems(role: str) -> list[str]:
    """The app role must exist, log in, and be neither a superuser nor BYPASSRLS (else RLS is no wall)."""
    if not role:
        return ["no app role is configured (DATABASE_APP_ROLE or the user in DATABASE_URL)"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolcanlogin, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = %s", [role])
        found = cursor.fetchone()
    if found is None:
        return [f"app role {role!r} does not exist: restore the roles (roles.sql) before the database"]
    login, superuser, bypass = found
    problems = []
    if not login:
        problems.append(f"app role {role!r} cannot log in")
    if superuser or bypass:
        problems.append(f"app role {role!r} is {'SUPERUSER' if superuser else 'BYPASSRLS'}: RLS does not apply to it")
    return problems


def rls_problems(role: str) -> list[str]:
    """Tenant tables without forced RLS or the tenant policy, tables the app role cannot use (grants lost
    in the restore), and audit tables the app role could rewrite or that lost their append-only triggers."""
    tables = tenant_tables()
    if not tables:
        return ["no tenant tables found: is this the application's database, migrated?"]
    problems = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, "
            "(SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = %s) "
            "FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = ANY(%s) "
            "ORDER BY c.relname",
            [POLICY, tables],
        )
        for table, enabled, forced, policies in cursor.fetchall():
            if not (enabled and forced):
                problems.append(f"table {table}: row-level security is {'not forced' if enabled else 'off'}")
            if policies != 1:
                problems.append(f"table {table}: the {POLICY} policy is missing")
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        if role and cursor.fetchone() is not None:
            cursor.execute(
                "SELECT t FROM unnest(%s::text[]) t WHERE NOT has_table_privilege(%s, t, 'SELECT, INSERT')",
                [tables, role],
            )
            for (table,) in cursor.fetchall():
                problems.append(f"table {table}: app role {role!r} lacks SELECT/INSERT (privileges not restored)")
            for table in APPEND_ONLY_TABLES:
                cursor.execute("SELECT has_table_privilege(%s, %s, 'UPDATE, DELETE, TRUNCATE')", [role, table])
                if cursor.fetchone()[0]:
                    problems.append(f"table {table}: app role {role!r} may UPDATE/DELETE/TRUNCATE the audit trail")
        for table in APPEND_ONLY_TABLES:
            cursor.execute(
                "SELECT count(*) FROM pg_trigger "
                "WHERE tgrelid = %s::regclass AND NOT tgisinternal AND tgenabled <> 'D'",
                [table],
            )
            if cursor.fetchone()[0] == 0:
                problems.append(f"table {table}: its append-only triggers are missing or disabled")
    return problems
