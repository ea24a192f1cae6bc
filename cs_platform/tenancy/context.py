"""The current tenant, held in a context variable so threads, async tasks and Celery stay apart.

Two states: a tenant is set (normal work), or nothing is set, in which case tenant-owned queries fail
closed. There is no cross-tenant mode: work that must look across tenants (which tenants a user belongs
to, which tenant a token names, the nightly fan-out) goes through the named lookups of
cs_platform.tenancy.system, which on PostgreSQL are SECURITY DEFINER functions the app role may call but
cannot widen. A session setting the app role could set for itself in SQL is no wall.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


class NoTenantSelected(RuntimeError):
    """Raised when tenant-owned data is queried with no tenant and no system scope."""


@dataclass(frozen=True)
class _Scope:
    tenant_id: int | None


_NOTHING = _Scope(tenant_id=None)
_scope: contextvars.ContextVar[_Scope] = contextvars.ContextVar("cs_tenant_scope", default=_NOTHING)


def current_tenant_id() -> int | None:
    return _scope.get().tenant_id


def require_tenant_id() -> int:
    tenant_id = current_tenant_id()
    if tenant_id is None:
        raise NoTenantSelected(
            "No tenant is selected. Wrap the work in tenant_context(tenant); a deliberate cross-tenant "
            "read is one of the named lookups in cs_platform.tenancy.system."
        )
    return tenant_id


@contextmanager
def tenant_context(tenant) -> Iterator[None]:
    """Run the block as `tenant` (a Tenant or its id)."""
    tenant_id = tenant if isinstance(tenant, int) else tenant.pk
    token = _scope.set(_Scope(tenant_id=tenant_id))
    try:
        yield
    finally:
        _scope.reset(token)


def set_request_tenant(tenant_id: int | None) -> contextvars.Token:
    """Used by middleware: set for the duration of one request, reset by the returned token."""
    return _scope.set(_Scope(tenant_id=tenant_id))


def reset(token: contextvars.Token) -> None:
    _scope.reset(token)
