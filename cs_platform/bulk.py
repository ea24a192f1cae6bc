"""Set-based updates that stay fast for tens of thousands of rows.

Django's bulk_update() writes `SET col = CASE WHEN id = 1 THEN .. WHEN id = 2 THEN .. END`, whose
cost grows with the square of the batch on PostgreSQL. Nightly jobs update up to one row per
account, so on PostgreSQL we join against a VALUES list instead: one statement per batch, linear.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection
from django.db.models import Model


def bulk_update_rows(
    model: type[Model], objs: Sequence[Model], fields: Sequence[str], *, batch_size: int = 5000
) -> int:
    """UPDATE model SET fields FROM (VALUES ...) for the given instances (matched by pk and tenant).
    Falls back to bulk_update() on other databases. Returns the number of rows sent."""
    if not objs:
        return 0
    if connection.vendor != "postgresql":
        model.objects.bulk_update(objs, fields, batch_size=1000)
        return len(objs)
    meta = model._meta
    columns = [meta.get_field(name) for name in fields]
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    casts = [f"v.{quote(field.column)}::{field.db_type(connection)}" for field in columns]
    assignments = ", ".join(f"{quote(field.column)} = {cast}" for field, cast in zip(columns, casts, strict=True))
    value_columns = ", ".join(["id", "tenant_id", *(quote(field.column) for field in columns)])
    row_sql = "(" + ", ".join(["%s"] * (len(columns) + 2)) + ")"
    for start in range(0, len(objs), batch_size):
        batch = objs[start : start + batch_size]
        params: list = []
        for obj in batch:
            params.extend([obj.pk, obj.tenant_id])
            for field in columns:
                params.append(field.get_db_prep_save(getattr(obj, field.attname), connection))
        sql = (
            f"UPDATE {table} SET {assignments} FROM (VALUES {', '.join([row_sql] * len(batch))}) "  # noqa: S608
            f"AS v({value_columns}) WHERE {table}.id = v.id::bigint AND {table}.tenant_id = v.tenant_id::bigint"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
    return len(objs)
