"""Committed test data for tests that need other connections to see it (concurrency, tampering as
the superuser). The normal `db` fixture keeps everything in one rolled-back transaction; here rows
are committed and removed afterwards by the owner role with triggers off (the audit table refuses
DELETE for everyone else, by design)."""

from __future__ import annotations

from contextlib import contextmanager

import psycopg2
from django.conf import settings
from django.db import connections


@contextmanager
def owner_connection():
    """A raw psycopg2 connection to the test database as the owner (superuser in CI)."""
    default = connections["default"].settings_dict
    owner = getattr(settings, "DATABASE_OWNER", None) or default
    conn = psycopg2.connect(
        dbname=default["NAME"],
        user=owner.get("USER") or default.get("USER"),
        password=owner.get("PASSWORD") or None,
        host=owner.get("HOST") or default.get("HOST"),
        port=owner.get("PORT") or default.get("PORT") or 5432,
    )
    conn.autocommit = True
    try:
        yield conn
    finally:
        conn.close()


def purge_tenant(tenant_id: int, user_ids: list[int] = ()) -> None:
    with owner_connection() as conn, conn.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")  # skips the append-only triggers
        cursor.execute(
            "SELECT c.table_name FROM information_schema.columns c JOIN information_schema.tables t "
            "USING (table_schema, table_name) WHERE c.table_schema = 'public' AND c.column_name = 'tenant_id' "
            "AND t.table_type = 'BASE TABLE'"
        )
        for (table,) in cursor.fetchall():
            cursor.execute(f'DELETE FROM "{table}" WHERE tenant_id = %s', [tenant_id])  # noqa: S608
        cursor.execute("DELETE FROM tenancy_tenant WHERE id = %s", [tenant_id])
        if user_ids:
            ids = [list(user_ids)]
            # Their own rows outside any tenant (MFA devices and a device's recovery codes, login records,
            # permissions): with the triggers off, nothing would cascade.
            cursor.execute(
                "DELETE FROM otp_static_statictoken WHERE device_id IN "
                "(SELECT id FROM otp_static_staticdevice WHERE user_id = ANY(%s))",
                ids,
            )
            cursor.execute(
                "SELECT c.table_name FROM information_schema.columns c JOIN information_schema.tables t "
                "USING (table_schema, table_name) WHERE c.table_schema = 'public' AND c.column_name = 'user_id' "
                "AND t.table_type = 'BASE TABLE'"
            )
            for (table,) in cursor.fetchall():
                cursor.execute(f'DELETE FROM "{table}" WHERE user_id = ANY(%s)', ids)  # noqa: S608
            cursor.execute("DELETE FROM auth_user WHERE id = ANY(%s)", ids)
