"""Database roles: the owner runs migrations, the app role (no BYPASSRLS) runs the web and workers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import connections
from psycopg2 import sql

_CREDENTIAL_KEYS = ("USER", "PASSWORD", "HOST", "PORT", "OPTIONS")
APPEND_ONLY_TABLES = ("audit_auditevent", "audit_auditcheckpoint")


def owner_differs(alias: str = "default") -> bool:
    owner = getattr(settings, "DATABASE_OWNER", None)
    if not owner:
        return False
    current = connections[alias].settings_dict
    return any(owner.get(key) != current.get(key) for key in ("USER", "HOST", "PORT"))


@contextmanager
def as_owner(alias: str = "default") -> Iterator[None]:
    """Reconnect `alias` with the owner's credentials for the block (same database name)."""
    if not owner_differs(alias):
        yield
        return
    connection = connections[alias]
    saved = {key: connection.settings_dict.get(key) for key in _CREDENTIAL_KEYS}
    connection.close()
    owner = settings.DATABASE_OWNER
    connection.settings_dict.update({key: owner.get(key, "" if key != "OPTIONS" else {}) for key in _CREDENTIAL_KEYS})
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.update(saved)


def app_role_name() -> str:
    return getattr(settings, "DATABASE_APP_ROLE", "") or ""


def grant_app_role(connection, role: str) -> bool:
    """Give the app role plain DML on every table, except the append-only audit tables (events and
    their signed checkpoints), which it may only read and insert into, and EXECUTE on the SECURITY
    DEFINER lookups (CreateSystemLookup, which revokes them from PUBLIC). Returns False when there is
    nothing to do (no such role / same role)."""
    if connection.vendor != "postgresql" or not role or role == connection.settings_dict.get("USER"):
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        if cursor.fetchone() is None:
            return False
        ident = sql.Identifier(role)
        cursor.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(ident))
        cursor.execute(
            sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}").format(ident)
        )
        cursor.execute(sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}").format(ident))
        cursor.execute(sql.SQL("REVOKE TRUNCATE ON ALL TABLES IN SCHEMA public FROM {}").format(ident))
        for table in APPEND_ONLY_TABLES:
            cursor.execute("SELECT to_regclass(%s)", [table])
            if cursor.fetchone()[0] is not None:
                cursor.execute(
                    sql.SQL("REVOKE UPDATE, DELETE, TRUNCATE ON {} FROM {}").format(sql.Identifier(table), ident)
                )
        cursor.execute(
            "SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.prosecdef "
            "AND p.pronamespace = 'public'::regnamespace AND p.proname LIKE %s",
            ["cs\\_%"],
        )
        for (signature,) in cursor.fetchall():
            cursor.execute(sql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(sql.SQL(signature), ident))
    return True
