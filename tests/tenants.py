"""Reading the same thing in every tenant, for tests that must say "nowhere" or count across tenants.

There is no cross-tenant mode in the application (RLS shows the app role one tenant at a time), so a
test that looks across tenants does what the nightly fan-out does: one tenant after another."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from cs_platform.tenancy import context
from cs_platform.tenancy.models import Tenant

T = TypeVar("T")


def in_every_tenant(read: Callable[[], T]) -> list[T]:
    """`read()` inside each tenant's context, in tenant id order."""
    results = []
    for tenant in Tenant.objects.order_by("pk"):
        with context.tenant_context(tenant):
            results.append(read())
    return results


def exists_anywhere(model) -> bool:
    return any(in_every_tenant(lambda: model.objects.exists()))
