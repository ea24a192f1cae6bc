"""Writes for tenants and memberships. Each records an audit event in the tenant's chain."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from cs_platform.audit.services import audit_record, model_snapshot
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Membership, Role, Tenant


@transaction.atomic
def tenant_create(
    *, name: str, slug: str, time_zone: str = "UTC", actor=None, load_reference_data: bool = True
) -> Tenant:
    """Create a tenant and load the financial-services reference data (segments, KPI targets,
    journey template, compliance frameworks) into it, so every tenant starts from seed 000."""
    tenant = Tenant(name=name, slug=slug, time_zone=time_zone)
    tenant.full_clean()
    tenant.save()
    with context.tenant_context(tenant):
        audit_record(tenant=tenant, actor=actor, action="tenant.create", obj=tenant, after=model_snapshot(tenant))
        if load_reference_data:
            from segments.services import reference_data_load

            reference_data_load(tenant=tenant, actor=actor)
    return tenant


@transaction.atomic
def membership_create(*, tenant: Tenant, user, role: str, manager: Membership | None = None, actor=None) -> Membership:
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}; expected one of {', '.join(Role.values)}."})
    if manager is not None and manager.tenant_id != tenant.pk:
        raise ValidationError({"manager": "The manager must be a member of the same tenant."})
    with context.tenant_context(tenant):
        membership = Membership(tenant=tenant, user=user, role=role, manager=manager)
        membership.save()
        audit_record(
            tenant=tenant, actor=actor, action="membership.create", obj=membership, after=model_snapshot(membership)
        )
    return membership


@transaction.atomic
def membership_set_manager(
    *, tenant: Tenant, membership: Membership, manager: Membership | None, actor=None
) -> Membership:
    if manager is not None and (manager.tenant_id != tenant.pk or manager.pk == membership.pk):
        raise ValidationError({"manager": "The manager must be another member of the same tenant."})
    with context.tenant_context(tenant):
        before = model_snapshot(membership)
        membership.manager = manager
        membership.save(update_fields=["manager"])
        audit_record(
            tenant=tenant,
            actor=actor,
            action="membership.set_manager",
            obj=membership,
            before=before,
            after=model_snapshot(membership),
        )
    return membership


@transaction.atomic
def tenant_mfa_policy_set(*, tenant: Tenant, roles: list[str], actor) -> Tenant:
    """Choose the roles whose members must use MFA. Takes effect on each member's next request: a member
    without a device is sent to enrol, one with a device to the code step."""
    unknown = sorted({str(role) for role in roles} - set(Role.values))
    if unknown:
        raise ValidationError(
            {"roles": f"Unknown roles {', '.join(unknown)}; expected some of {', '.join(Role.values)}."}
        )
    chosen = [role for role in Role.values if role in set(roles)]  # the roles' own order, no duplicates
    before = {"mfa_required_roles": list(tenant.mfa_required_roles or [])}
    if before["mfa_required_roles"] == chosen:
        return tenant
    tenant.mfa_required_roles = chosen
    tenant.save(update_fields=["mfa_required_roles"])
    audit_record(
        tenant=tenant,
        actor=actor,
        action="tenant.mfa_policy_set",
        obj=tenant,
        before=before,
        after={"mfa_required_roles": chosen},
    )
    return tenant
