"""Managers for tenant-owned models: they filter by the current tenant and fail closed."""

from __future__ import annotations

from django.db import models

from cs_platform.tenancy import context


class TenantQuerySet(models.QuerySet):
    pass


class TenantManager(models.Manager.from_queryset(TenantQuerySet)):
    """Default manager of every tenant-owned model.

    * a tenant is selected -> only its rows;
    * none -> NoTenantSelected, so a forgotten scope is a loud bug, never a data leak.
    """

    def get_queryset(self):
        return super().get_queryset().filter(tenant_id=context.require_tenant_id())

    def none(self):
        # An empty queryset reads no row of any tenant, so it needs none selected (schema generation and
        # DRF's class-level querysets build one at import time).
        return super().get_queryset().none()
