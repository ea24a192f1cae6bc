"""PostgreSQL backend that hands the current tenant to Row-Level Security on every transaction.

The RLS policies read current_setting('app.tenant_id', true). We only ever set it with
set_config(..., is_local => true), which lasts until the end of the current transaction, so a pooled
or reused connection can never carry one tenant's setting into another's work.

* Inside a transaction (atomic blocks, ATOMIC_REQUESTS, tests) we issue set_config before the first
  statement and again whenever the tenant in context changes or a savepoint rollback may have undone it.
* In autocommit mode each statement is its own transaction, so the set_config is sent in the same
  simple-query message as the statement; PostgreSQL runs such a message as one implicit transaction.
"""

from __future__ import annotations

from django.db.backends.postgresql import base as pg_base

from cs_platform.tenancy import context

_SET = "SELECT set_config('app.tenant_id', %s, true)"


_TRANSACTION_CONTROL = ("SAVEPOINT", "ROLLBACK", "RELEASE SAVEPOINT", "COMMIT", "BEGIN")


def _scope_values() -> tuple[str]:
    tenant_id = context.current_tenant_id()
    return ("" if tenant_id is None else str(tenant_id),)


class TenantCursorWrapper:
    """Wraps psycopg2's cursor; everything but execute/executemany passes through."""

    def __init__(self, cursor, wrapper: DatabaseWrapper):
        self._cursor = cursor
        self._wrapper = wrapper

    def __getattr__(self, name):
        return getattr(self._cursor, name)

    def __iter__(self):
        return iter(self._cursor)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._cursor.close()

    def _apply_in_transaction(self) -> None:
        values = _scope_values()
        if self._wrapper._tenant_applied != values:
            self._cursor.execute(_SET, values)
            self._wrapper._tenant_applied = values

    def execute(self, sql, params=None):
        if isinstance(sql, str) and sql.startswith(_TRANSACTION_CONTROL):
            # Savepoint bookkeeping must work even in an aborted transaction, where any other
            # statement (our set_config included) would fail.
            return self._cursor.execute(sql, params)
        if self._wrapper.get_autocommit():
            values = _scope_values()
            if values == ("",):
                return self._cursor.execute(sql, params)
            if params is None:
                # psycopg2 only interpolates when given params; keep literal % signs literal.
                sql, params = sql.replace("%", "%%"), ()
            if isinstance(params, dict):
                # Named parameters cannot be mixed with positional ones; use a transaction instead.
                self._cursor.execute("BEGIN")
                try:
                    self._cursor.execute(_SET, values)
                    result = self._cursor.execute(sql, params)
                    self._cursor.execute("COMMIT")
                except Exception:
                    self._cursor.execute("ROLLBACK")
                    raise
                return result
            return self._cursor.execute(f"{_SET}; {sql}", (*values, *params))
        self._apply_in_transaction()
        return self._cursor.execute(sql, params)

    def executemany(self, sql, param_list):
        if self._wrapper.get_autocommit():
            # Several statements must share one tenant setting: run them in one explicit transaction.
            self._cursor.execute("BEGIN")
            try:
                self._cursor.execute(_SET, _scope_values())
                result = self._cursor.executemany(sql, param_list)
                self._cursor.execute("COMMIT")
            except Exception:
                self._cursor.execute("ROLLBACK")
                raise
            return result
        self._apply_in_transaction()
        return self._cursor.executemany(sql, param_list)


class DatabaseWrapper(pg_base.DatabaseWrapper):
    _tenant_applied: tuple[str] | None = None

    def create_cursor(self, name=None):
        return TenantCursorWrapper(super().create_cursor(name), self)

    # Any end of a transaction, or a rollback to a savepoint, may discard the local setting.
    def _forget_tenant(self) -> None:
        self._tenant_applied = None

    def _commit(self):
        self._forget_tenant()
        return super()._commit()

    def _rollback(self):
        self._forget_tenant()
        return super()._rollback()

    def _savepoint_rollback(self, sid):
        try:
            return super()._savepoint_rollback(sid)
        finally:
            self._forget_tenant()

    def _set_autocommit(self, autocommit):
        self._forget_tenant()
        return super()._set_autocommit(autocommit)

    def _close(self):
        self._forget_tenant()
        return super()._close()
