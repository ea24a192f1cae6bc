"""Managers for tenant-owned models: they filter by the current tenant and fail closed."""

from __future__ import annotations

from django.db import models

from cs_platform.tenancy import context


class TenantQuerySet(models.QuerySet):
    pass


class TenantManager(models.Manager.from_queryset(TenantQuerySet)):
    """Default manager of every tenant-owned model.

    * a tenant is selected -> only its rows;
    * inside system_scope() -> every tenant's rows (nightly fan-out, platform admin);
    * neither -> NoTenantSelected, so a forgotten scope is a loud bug, never a data leak.
    """

    def get_queryset(self):
        queryset = super().get_queryset()
        if context.in_system_scope():
            return queryset
        return queryset.filter(tenant_id=context.require_tenant_id())
