"""Schema lint (Citus readiness): tenant column everywhere, in every unique key and composite index,
row-level security on, and no foreign key able to cross tenants."""

import pytest
from django.apps import apps
from django.db import connection

from cs_platform.tenancy.models import TenantOwned

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="catalog checks are PostgreSQL-specific"),
]


def _rows(sql, params=None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _tenant_tables() -> set[str]:
    return {
        row[0]
        for row in _rows(
            "SELECT c.table_name FROM information_schema.columns c JOIN information_schema.tables t "
            "USING (table_schema, table_name) WHERE c.table_schema = 'public' AND c.column_name = 'tenant_id' "
            "AND t.table_type = 'BASE TABLE'"
        )
    }


def _tenant_models():
    return [m for m in apps.get_models() if issubclass(m, TenantOwned)]


def test_every_tenant_model_has_a_tenant_table_and_vice_versa():
    model_tables = {m._meta.db_table for m in _tenant_models()}
    assert len(model_tables) >= 20
    assert model_tables == _tenant_tables()


def test_tenant_column_is_not_null_and_indexed_first():
    for table in _tenant_tables():
        (nullable,) = _rows(
            "SELECT is_nullable FROM information_schema.columns WHERE table_name = %s AND column_name = 'tenant_id'",
            [table],
        )[0]
        assert nullable == "NO", f"{table}.tenant_id is nullable"
        leading = _rows(
            "SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
            "WHERE i.indrelid = %s::regclass AND a.attname = 'tenant_id'",
            [table],
        )
        assert leading, f"{table} has no index led by tenant_id"


def test_every_unique_key_and_composite_index_includes_the_tenant():
    # The single-column primary key is the one exception: Django models need a one-column pk; each
    # table also carries UNIQUE (tenant_id, id), the key Citus and our composite FKs use.
    rows = _rows(
        "SELECT c.relname, i.indexrelid::regclass::text, i.indisunique, i.indisprimary, i.indnatts, "
        "ARRAY(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY k(attnum, n) "
        "      JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum ORDER BY k.n)::text[] "
        "FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid WHERE c.relname = ANY(%s)",
        [sorted(_tenant_tables())],
    )
    assert rows
    for table, index, unique, primary, natts, columns in rows:
        if primary:
            assert columns == ["id"], f"{table}: unexpected primary key {columns}"
            continue
        if unique:
            assert "tenant_id" in columns, f"{table}: unique index {index} {columns} lacks tenant_id"
        if natts > 1:
            assert columns[0] == "tenant_id", f"{table}: composite index {index} {columns} is not led by tenant_id"


def test_row_level_security_is_forced_with_the_tenant_policy_on_every_tenant_table():
    rows = _rows(
        "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, "
        "(SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = 'tenant_isolation') "
        "FROM pg_class c WHERE c.relname = ANY(%s)",
        [sorted(_tenant_tables())],
    )
    assert len(rows) == len(_tenant_tables())
    for table, enabled, forced, policies in rows:
        assert enabled and forced and policies == 1, f"{table}: rls={enabled} force={forced} policies={policies}"


def test_no_foreign_key_can_cross_tenants():
    """Every FK between tenant tables has a composite twin (tenant_id, col) -> (tenant_id, id)."""
    tenant_tables = _tenant_tables()
    fks = _rows(
        "SELECT con.conname, src.relname, dst.relname, "
        "ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(n, o) JOIN pg_attribute a "
        "      ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.o)::text[], "
        "ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(n, o) JOIN pg_attribute a "
        "      ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.o)::text[] "
        "FROM pg_constraint con JOIN pg_class src ON src.oid = con.conrelid "
        "JOIN pg_class dst ON dst.oid = con.confrelid "
        "WHERE con.contype = 'f'"
    )
    composite = {
        (src, dst, tuple(cols))
        for _, src, dst, cols, ref in fks
        if len(cols) == 2 and cols[0] == "tenant_id" and ref == ["tenant_id", "id"]
    }
    checked = 0
    for _name, src, dst, cols, _ref in fks:
        if len(cols) != 1 or dst == "tenancy_tenant":
            continue
        if src in tenant_tables and dst in tenant_tables:
            assert (src, dst, ("tenant_id", cols[0])) in composite, f"{src}.{cols[0]} -> {dst} can cross tenants"
            checked += 1
        elif dst in tenant_tables:
            pytest.fail(f"global table {src} references tenant table {dst}")
    assert checked >= 20


def test_daily_snapshot_tables_are_analyzed_every_ten_thousand_rows():
    # One row per account per night: without this the planner treats "today" as empty for weeks.
    rows = dict(
        _rows(
            "SELECT relname, reloptions FROM pg_class WHERE relname = ANY(%s)",
            [["metrics_healthsnapshot", "compliance_compliancestatussnapshot"]],
        )
    )
    for table in ("metrics_healthsnapshot", "compliance_compliancestatussnapshot"):
        assert set(rows[table]) == {"autovacuum_analyze_scale_factor=0", "autovacuum_analyze_threshold=10000"}
