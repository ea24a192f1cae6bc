"""Calling the cross-tenant lookups (CreateSystemLookup) and turning their rows into model instances.

The app role sees one tenant at a time under RLS; a few questions come before any tenant is known: which
tenant does this API token belong to, which tenants is this user a member of. Each is one SECURITY
DEFINER function on PostgreSQL that answers exactly that question. There is no general cross-tenant
mode any more: work that spans tenants (the nightly fan-out, the beat sweeps) lists the tenants, whose
table is not tenant-owned, and then works inside each tenant's context.

On SQLite (the demo) there is no RLS and no such function; the callers read the same rows through the
models' plain managers instead."""

from __future__ import annotations

import re
from typing import Any

from django.db import connection, models

_NAME = re.compile(r"^cs_[a-z0-9_]+$")


def uses_database_lookups() -> bool:
    """True where the lookups are SECURITY DEFINER functions (PostgreSQL); False on SQLite."""
    return connection.vendor == "postgresql"


def lookup_rows(function: str, *args: Any) -> list[tuple]:
    """Rows of `SELECT * FROM function(args)`. The name is checked, never taken from a request."""
    if not _NAME.match(function):
        raise ValueError(f"not a system lookup name: {function!r}")
    placeholders = ", ".join(["%s"] * len(args))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {function}({placeholders})", list(args))  # noqa: S608 - name checked above
        return cursor.fetchall()


def instance_from_json(model: type[models.Model], data: dict[str, Any]) -> models.Model:
    """A model instance from a row_to_json() object of its table, as if loaded by the ORM. Columns are
    matched by name, so a field added later comes along without touching the lookup."""
    fields = model._meta.concrete_fields
    values = [None if data.get(f.column) is None else f.to_python(data[f.column]) for f in fields]
    return model.from_db(connection.alias, [f.attname for f in fields], values)
