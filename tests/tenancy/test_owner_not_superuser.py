"""A deployment whose schema owner is not a superuser (a managed database's "master" role, say).

The suite's owner is `postgres`, a superuser, which bypasses Row-Level Security whatever the policies
say, so it cannot show that the SECURITY DEFINER lookups work for an owner that RLS applies to. This
migrates a database of its own as a NOSUPERUSER owner and checks, as the app role, that the lookups see
across tenants (through the owner's read-only system_lookup policy) while nothing else does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from psycopg2 import sql

from api.models import ApiToken
from cs_platform.tenancy.models import Membership, Tenant

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not settings.IS_POSTGRES, reason="RLS exists only on PostgreSQL")


def _connect(dbname: str, user: str):
    default = settings.DATABASES["default"]
    conn = psycopg2.connect(
        dbname=dbname, user=user, host=default.get("HOST") or "127.0.0.1", port=default.get("PORT") or 5432
    )
    conn.autocommit = True
    return conn


@pytest.fixture(scope="module")
def probe():
    """(database, owner role, app role): a database migrated by a non-superuser owner."""
    owner_url = settings.DATABASE_OWNER or settings.DATABASES["default"]
    superuser = owner_url["USER"]
    app_role = settings.DATABASES["default"]["USER"]
    base = settings.DATABASES["default"]["NAME"]
    database, owner = f"{base}_owner_probe", f"{base}_owner_probe"
    admin = _connect("postgres", superuser)
    with admin.cursor() as cursor:
        cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        cursor.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(owner)))
        cursor.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS").format(sql.Identifier(owner)))
        cursor.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(owner)))
        cursor.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), sql.Identifier(app_role))
        )
    host, port = settings.DATABASES["default"].get("HOST") or "127.0.0.1", settings.DATABASES["default"].get("PORT")
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{app_role}@{host}:{port or 5432}/{database}",
        "DATABASE_OWNER_URL": f"postgres://{owner}@{host}:{port or 5432}/{database}",
    }
    result = subprocess.run(  # noqa: S603 - our own manage.py
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    try:
        yield database, owner, app_role
    finally:
        with admin.cursor() as cursor:
            cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
            cursor.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(owner)))
        admin.close()


def test_the_lookups_work_for_an_owner_that_rls_applies_to(probe):
    database, owner, app_role = probe
    with _connect(database, owner) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
        assert cursor.fetchone() == (False, False)
        user_id = _insert(cursor, get_user_model(), username="consultant", password="!")
        tenants = []
        for slug in ("alpha", "bravo"):
            tenant_id = _insert(cursor, Tenant, name=slug.title(), slug=slug)
            tenants.append(tenant_id)
            # The owner writes tenant rows as that tenant too: FORCE ROW LEVEL SECURITY applies to it.
            cursor.execute("SELECT set_config('app.tenant_id', %s, false)", [str(tenant_id)])
            _insert(cursor, Membership, tenant_id=tenant_id, user_id=user_id, role="viewer")
            _insert(
                cursor,
                ApiToken,
                tenant_id=tenant_id,
                name="Sync",
                prefix="abcd1234",
                key_hash=f"{slug}-hash",
                created_by_id=user_id,
            )
    with _connect(database, app_role) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone() == (app_role,)
        cursor.execute("SELECT set_config('app.system_scope', 'on', false)")
        cursor.execute("SELECT count(*) FROM tenancy_membership")
        assert cursor.fetchone() == (0,)  # no tenant: nothing, whatever setting it made up
        cursor.execute("SELECT (membership->>'tenant_id')::bigint FROM cs_user_memberships(%s)", [user_id])
        assert sorted(row[0] for row in cursor.fetchall()) == tenants
        cursor.execute("SELECT cs_api_token_tenant('bravo-hash')")
        assert cursor.fetchone() == (tenants[1],)


def _insert(cursor, model, **values) -> int:
    """INSERT one row of `model` with raw SQL, every column as the ORM would fill it on create."""
    obj = model(**values)
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    params = [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]
    columns = sql.SQL(", ").join(sql.Identifier(f.column) for f in fields)
    statement = sql.SQL("INSERT INTO {} ({}) VALUES ({}) RETURNING id").format(
        sql.Identifier(model._meta.db_table), columns, sql.SQL(", ").join(sql.Placeholder() * len(fields))
    )
    cursor.execute(statement, params)
    return cursor.fetchone()[0]
