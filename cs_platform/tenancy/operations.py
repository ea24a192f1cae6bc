"""Migration operation that puts a tenant table behind PostgreSQL Row-Level Security.

For each named model it
  * enables and FORCEs row-level security (FORCE so even the owning role is filtered),
  * creates the policy `tenant_isolation` keyed on current_setting('app.tenant_id', true): a missing
    setting reads as NULL, so no tenant means no rows. Nothing else opens the table to the app role: it
    can set app.tenant_id to any tenant in plain SQL, but only ever one at a time, and the application
    sets it from the authenticated user's membership or token,
  * creates the read-only policy `system_lookup` for the owning role (the role that runs migrations),
    so the SECURITY DEFINER lookups below (owned by it) can answer their one cross-tenant question even
    when the owner is not a superuser (a managed database's "master" role, say); the app role cannot
    become the owner,
  * adds UNIQUE (tenant_id, id) so other tables can reference (tenant_id, id),
  * turns every FK to another tenant table into a composite FK (tenant_id, x_id) -> (tenant_id, id),
    so the database itself refuses a row that points into another tenant.
On SQLite (the demo) it does nothing: the application-level managers still isolate tenants.
New tenant models must be listed in an EnableTenantIsolation of their app's migration; the schema
test fails for any tenant table without a policy.
"""

from __future__ import annotations

from django.db.migrations.operations.base import Operation

POLICY = "tenant_isolation"
POLICY_EXPR = "(tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::bigint)"
OWNER_POLICY = "system_lookup"


def owner_policy_sql(table: str) -> list[str]:
    """Statements (re)creating the owner's read-only policy on `table` (quoted): idempotent, so the
    migration that adds it to existing tables and EnableTenantIsolation on new ones agree."""
    return [
        f"DROP POLICY IF EXISTS {OWNER_POLICY} ON {table}",
        f"CREATE POLICY {OWNER_POLICY} ON {table} FOR SELECT TO CURRENT_USER USING (true)",
    ]


def _is_tenant_model(model) -> bool:
    return any(field.name == "tenant" for field in model._meta.concrete_fields)


def tenant_key_name(schema_editor, table: str) -> str:
    return schema_editor._create_index_name(table, ["tenant_id", "id"], suffix="_tkey")


def tenant_fk_name(schema_editor, table: str, column: str) -> str:
    return schema_editor._create_index_name(table, ["tenant_id", column], suffix="_tfk")


class EnableTenantIsolation(Operation):
    reduces_to_sql = True
    reversible = True

    def __init__(self, model_names: list[str]):
        self.model_names = [name.lower() for name in model_names]

    def deconstruct(self):
        return (self.__class__.__qualname__, [self.model_names], {})

    def state_forwards(self, app_label, state):
        pass  # database-only: the model state is unchanged

    def describe(self):
        return f"Row-level security and tenant-composite keys for {', '.join(self.model_names)}"

    def _models(self, app_label, state):
        models = [state.apps.get_model(app_label, name) for name in self.model_names]
        for model in models:
            if not _is_tenant_model(model):
                raise ValueError(f"{model._meta.label} has no tenant field")
        return models

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return
        quote = schema_editor.quote_name
        models = self._models(app_label, to_state)
        for model in models:
            table = quote(model._meta.db_table)
            schema_editor.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
            schema_editor.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
            schema_editor.execute(f"CREATE POLICY {POLICY} ON {table} USING {POLICY_EXPR} WITH CHECK {POLICY_EXPR}")
            for statement in owner_policy_sql(table):
                schema_editor.execute(statement)
            key = quote(tenant_key_name(schema_editor, model._meta.db_table))
            schema_editor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {key} UNIQUE (tenant_id, id)")
        for model in models:
            for field in model._meta.concrete_fields:
                if not field.is_relation or field.name == "tenant":
                    continue
                target = field.related_model
                if not _is_tenant_model(target):
                    continue  # users, permissions: global tables
                name = quote(tenant_fk_name(schema_editor, model._meta.db_table, field.column))
                schema_editor.execute(
                    f"ALTER TABLE {quote(model._meta.db_table)} ADD CONSTRAINT {name} "
                    f"FOREIGN KEY (tenant_id, {quote(field.column)}) "
                    f"REFERENCES {quote(target._meta.db_table)} (tenant_id, id) DEFERRABLE INITIALLY DEFERRED"
                )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return
        quote = schema_editor.quote_name
        models = self._models(app_label, from_state)
        for model in models:
            table = model._meta.db_table
            for field in model._meta.concrete_fields:
                if field.is_relation and field.name != "tenant" and _is_tenant_model(field.related_model):
                    name = quote(tenant_fk_name(schema_editor, table, field.column))
                    schema_editor.execute(f"ALTER TABLE {quote(table)} DROP CONSTRAINT IF EXISTS {name}")
        for model in models:
            table = model._meta.db_table
            schema_editor.execute(f"DROP POLICY IF EXISTS {POLICY} ON {quote(table)}")
            schema_editor.execute(f"DROP POLICY IF EXISTS {OWNER_POLICY} ON {quote(table)}")
            schema_editor.execute(f"ALTER TABLE {quote(table)} NO FORCE ROW LEVEL SECURITY")
            schema_editor.execute(f"ALTER TABLE {quote(table)} DISABLE ROW LEVEL SECURITY")
            key = quote(tenant_key_name(schema_editor, table))
            schema_editor.execute(f"ALTER TABLE {quote(table)} DROP CONSTRAINT IF EXISTS {key}")


class CreateSystemLookup(Operation):
    """A SECURITY DEFINER SQL function answering one cross-tenant question the app cannot answer under
    RLS: which tenant a token names, which tenants a user belongs to. It runs as its owner (the role that
    migrates), reads exactly what its body says and nothing else, takes its search_path from here rather
    than from the caller, and is executable only by the app role (granted after each migrate,
    cs_platform.tenancy.roles). On SQLite it does nothing: there is no RLS to answer to there, and
    cs_platform.tenancy.system reads the same rows through the ORM."""

    reduces_to_sql = True
    reversible = True

    def __init__(self, name: str, arguments: str, returns: str, body: str):
        if not name.startswith("cs_") or not name.replace("_", "").isalnum():
            raise ValueError(f"system lookup names look like cs_some_lookup, not {name!r}")
        self.name, self.arguments, self.returns, self.body = name, arguments, returns, body

    def deconstruct(self):
        kwargs = {"name": self.name, "arguments": self.arguments, "returns": self.returns, "body": self.body}
        return (self.__class__.__qualname__, [], kwargs)

    def state_forwards(self, app_label, state):
        pass

    def describe(self):
        return f"SECURITY DEFINER lookup {self.name}({self.arguments})"

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return
        signature = f"{self.name}({self.arguments})"
        schema_editor.execute(
            f"CREATE OR REPLACE FUNCTION {signature} RETURNS {self.returns} LANGUAGE sql STABLE "
            f"SECURITY DEFINER SET search_path = public, pg_temp AS $lookup$ {self.body} $lookup$",
            params=None,
        )
        # Functions are executable by PUBLIC by default; only the app role is granted it (post_migrate).
        schema_editor.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC", params=None)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {self.name}({self.arguments})", params=None)
