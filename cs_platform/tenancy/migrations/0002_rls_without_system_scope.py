"""Row-Level Security no longer trusts `app.system_scope`, a setting the app role could set for itself
in plain SQL (`set_config('app.system_scope', 'on', false)` opened every tenant). Every existing
tenant_isolation policy is rewritten to the tenant setting alone, the owner gets its read-only
system_lookup policy, and the membership lookup becomes a SECURITY DEFINER function."""

from django.db import migrations

from cs_platform.tenancy.operations import (
    OWNER_POLICY,
    POLICY,
    POLICY_EXPR,
    CreateSystemLookup,
    owner_policy_sql,
)

OLD_POLICY_EXPR = (
    "(tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::bigint "
    "OR current_setting('app.system_scope', true) = 'on')"
)


def _tables(cursor) -> list[str]:
    cursor.execute(
        "SELECT tablename FROM pg_policies WHERE schemaname = current_schema() AND policyname = %s ORDER BY 1",
        [POLICY],
    )
    return [row[0] for row in cursor.fetchall()]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    quote = schema_editor.quote_name
    with schema_editor.connection.cursor() as cursor:
        tables = _tables(cursor)
    for table in tables:
        schema_editor.execute(f"ALTER POLICY {POLICY} ON {quote(table)} USING {POLICY_EXPR} WITH CHECK {POLICY_EXPR}")
        for statement in owner_policy_sql(quote(table)):
            schema_editor.execute(statement)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    quote = schema_editor.quote_name
    with schema_editor.connection.cursor() as cursor:
        tables = _tables(cursor)
    for table in tables:
        schema_editor.execute(
            f"ALTER POLICY {POLICY} ON {quote(table)} USING {OLD_POLICY_EXPR} WITH CHECK {OLD_POLICY_EXPR}"
        )
        schema_editor.execute(f"DROP POLICY IF EXISTS {OWNER_POLICY} ON {quote(table)}")


class Migration(migrations.Migration):
    dependencies = [("tenancy", "0001_initial")]
    operations = [
        migrations.RunPython(forward, backward, elidable=False),
        # Which tenants a user is an active member of, asked by every request before a tenant is chosen.
        # Whole rows as JSON, so fields added to either table later need no change here.
        CreateSystemLookup(
            name="cs_user_memberships",
            arguments="p_user_id bigint",
            returns="TABLE(membership json, tenant json)",
            body=(
                "SELECT row_to_json(m), row_to_json(t) FROM tenancy_membership m "
                "JOIN tenancy_tenant t ON t.id = m.tenant_id "
                "WHERE m.user_id = p_user_id AND m.is_active ORDER BY t.name, m.id"
            ),
        ),
    ]
