"""Tenant, Membership and the tenant-owned abstract base every domain model inherits."""

from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

from cs_platform import bounds
from cs_platform.tenancy import context
from cs_platform.tenancy.managers import TenantManager


def _validate_time_zone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"{value!r} is not a known IANA time zone.") from None


class Tenant(models.Model):
    """One customer-success organisation. Not tenant-owned itself: it is the key of everything else."""

    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(
        max_length=63,
        unique=True,
        validators=[RegexValidator(r"^[a-z0-9][a-z0-9-]*$", "Lower-case letters, digits and hyphens only.")],
    )
    time_zone = models.CharField(max_length=64, default="UTC", validators=[_validate_time_zone])
    # Roles (Role values) whose members must pass MFA at login; set by the tenant's admins on
    # /settings/security/ through identity.services.tenant_mfa_policy_set (a JSON list: SQLite has no arrays).
    mfa_required_roles = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TenantOwned(models.Model):
    """Abstract base: a non-null, indexed tenant FK and a fail-closed default manager.

    The PostgreSQL migrations add, for every concrete subclass, an RLS policy keyed on
    app.tenant_id and composite foreign keys so no row can point at another tenant's row.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+", db_index=True, editable=False)

    objects = TenantManager()
    # Related-object access (account.segment) uses this plain manager; RLS still guards it.
    _plain = models.Manager()

    class Meta:
        abstract = True
        base_manager_name = "_plain"

    def clean_fields(self, exclude=None):
        # Every service that full_cleans a tenant's row gets the platform's bounds (cs_platform.bounds: dates
        # 1900-2200, no NUL, bounded free text and JSON lists) along with Django's field checks, and after
        # them: they turn strings such as "2026-01-31" into the field's type first.
        errors = {}
        try:
            super().clean_fields(exclude)
        except ValidationError as exc:
            errors = exc.error_dict
        errors.update(bounds.instance_errors(self, set(exclude or ()) | set(errors)))
        if errors:
            raise ValidationError(errors)

    def save(self, *args, **kwargs):
        current = context.current_tenant_id()
        if self.tenant_id is None:
            self.tenant_id = context.require_tenant_id()
        elif current is not None and current != self.tenant_id:
            raise context.NoTenantSelected(
                f"Refusing to save {type(self).__name__} of tenant {self.tenant_id} while tenant {current} is selected."
            )
        super().save(*args, **kwargs)


class Role(models.TextChoices):
    ADMIN = "admin", "Administrator"
    EXECUTIVE = "executive", "Executive"
    MANAGER = "manager", "CS manager"
    CSM = "csm", "Customer success manager"
    COMPLIANCE = "compliance", "Compliance officer"
    VIEWER = "viewer", "Viewer"


class Membership(TenantOwned):
    """A user's role in one tenant. A user may belong to several tenants and switch between them."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)
    # Team structure: a CSM's manager is another membership of the same tenant.
    manager = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reports")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "user"], name="membership_tenant_user_uniq")]
        indexes = [models.Index(fields=["tenant", "role"], name="membership_tenant_role_idx")]

    def __str__(self) -> str:
        return f"{self.user} as {self.role}"
