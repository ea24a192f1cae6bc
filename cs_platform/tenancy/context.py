"""The current tenant, held in a context variable so threads, async tasks and Celery stay apart.

Three states: a tenant is set (normal work), the explicit system scope is active (cross-tenant jobs,
platform admin), or nothing is set, in which case tenant-owned queries fail closed.
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
    system: bool = False


_NOTHING = _Scope(tenant_id=None)
_scope: contextvars.ContextVar[_Scope] = contextvars.ContextVar("cs_tenant_scope", default=_NOTHING)


def current_tenant_id() -> int | None:
    return _scope.get().tenant_id


def in_system_scope() -> bool:
    return _scope.get().system


def require_tenant_id() -> int:
    tenant_id = current_tenant_id()
    if tenant_id is None:
        raise NoTenantSelected(
            "No tenant is selected. Wrap the work in tenant_context(tenant) or, for deliberate "
            "cross-tenant work, system_scope()."
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


@contextmanager
def system_scope() -> Iterator[None]:
    """The single, greppable escape hatch for cross-tenant work (fan-out, platform admin, lookups of
    a user's memberships before a tenant is known). Inside it, managers do not filter by tenant and
    the database session is marked app.system_scope=on for the RLS policies."""
    token = _scope.set(_Scope(tenant_id=None, system=True))
    try:
        yield
    finally:
        _scope.reset(token)


def set_request_tenant(tenant_id: int | None) -> contextvars.Token:
    """Used by middleware: set for the duration of one request, reset by the returned token."""
    return _scope.set(_Scope(tenant_id=tenant_id))


def reset(token: contextvars.Token) -> None:
    _scope.reset(token)
