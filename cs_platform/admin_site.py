"""The Django admin, for platform superusers only, one tenant at a time, every change audited.

Tenant users (even tenant admins) never get in: has_permission requires is_superuser. There is no
cross-tenant mode under Row-Level Security, so a platform operator picks the tenant to work in (kept in
the session) and every admin view runs inside that tenant, in one transaction: a change and its audit
event commit together or not at all. Models that are not tenant-owned (tenants, users) are reachable
without a tenant chosen; a tenant-owned list without one sends the operator to the chooser.

Every add, change and delete made here is recorded in the audit trail of the tenant it affects: the
row's own tenant, the tenant itself, or, for a user, every tenant the user is an active member of.
Secrets (password hashes, token hashes, OTP keys) and a user's personal data never enter the trail;
a change to personal data is recorded by field name only."""

from __future__ import annotations

import logging
from contextlib import nullcontext
from functools import update_wrapper
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.db import models, transaction
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from cs_platform.audit.services import audit_record, model_snapshot
from cs_platform.identity.reauth import ReauthForWritesAdminMixin, require_recent_auth
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Tenant
from cs_platform.tenancy.selectors import memberships_for_user

logger = logging.getLogger(__name__)

SESSION_TENANT = "admin_tenant_id"
# Never copied into the audit trail, whichever model holds them.
SECRET_FIELDS = frozenset({"password", "key", "key_hash", "token", "secret", "session_key", "session_data"})
# A user's personal data is referenced, not copied (DESIGN.md, People and identity): an erasure request
# must not leave it behind in an append-only trail.
PERSONAL_USER_FIELDS = frozenset({"username", "first_name", "last_name", "email"})
_PERSONAL = "(personal data, not copied)"


def working_tenant(request) -> Tenant | None:
    tenant_id = request.session.get(SESSION_TENANT)
    return Tenant.objects.filter(pk=tenant_id).first() if tenant_id else None


def _is_user(obj: models.Model) -> bool:
    return isinstance(obj, get_user_model())


def admin_snapshot(obj: models.Model) -> dict[str, Any]:
    """What the trail keeps of a row changed in the admin: its fields minus secrets; for a user, its
    flags, with personal fields reduced to a marker."""
    data = model_snapshot(obj)
    for name in list(data):
        if name in SECRET_FIELDS or name.endswith("_secret"):
            data.pop(name)
        elif _is_user(obj) and name in PERSONAL_USER_FIELDS:
            data[name] = _PERSONAL
    return data


def affected_tenant_ids(obj: models.Model) -> list[int]:
    """The tenants whose trail records a change to `obj`: its own tenant, the tenant itself, or the
    tenants of the user it is (or belongs to, like an MFA device)."""
    if isinstance(obj, Tenant):
        return [obj.pk]
    tenant_id = getattr(obj, "tenant_id", None)
    if tenant_id is not None:
        return [tenant_id]
    # A user's own rows (an MFA device) and their rows' rows (a device's recovery codes) are the user's.
    owner = getattr(obj, "device", None) or obj
    user = owner if _is_user(owner) else getattr(owner, "user", None)
    if _is_user(user) and user.pk is not None:
        return sorted({m.tenant_id for m in memberships_for_user(user)})
    return []


def admin_change_record(*, request, obj: models.Model, action: str, before: dict | None, after: dict | None) -> int:
    """Record one admin change in every affected tenant's trail (in the admin view's transaction).
    Returns how many trails got it; a change that affects no tenant (a permission group, say) is left
    to the admin's own log and noted in the application log."""
    tenants = affected_tenant_ids(obj)
    label = obj._meta.label_lower
    for tenant_id in tenants:
        audit_record(
            tenant=tenant_id,
            actor=request.user,
            action=f"admin.{action}",
            object_type=label,
            object_id=obj.pk,
            before=before,
            after=after,
        )
    if not tenants:
        logger.info("admin %s of %s %s by %s affects no tenant", action, label, obj.pk, request.user.pk)
    return len(tenants)


def _stored(obj: models.Model) -> models.Model | None:
    return type(obj)._base_manager.filter(pk=obj.pk).first() if obj.pk is not None else None


class AuditedModelAdmin(ReauthForWritesAdminMixin, admin.ModelAdmin):
    """Records every add, change and delete in the audit trail, inline rows included, and asks for a
    recent re-authentication before any of them (a platform operator's writes change roles, flags and
    credentials). The admin site mixes it into every ModelAdmin registered on it
    (PlatformAdminSite.register), third-party ones included."""

    def save_model(self, request, obj, form, change):
        stored = _stored(obj) if change else None
        before = admin_snapshot(stored) if stored is not None else None
        super().save_model(request, obj, form, change)
        after = admin_snapshot(obj)
        if change and before is not None:
            changed = sorted(k for k in after if before.get(k) != after.get(k))
            before = {k: before.get(k) for k in changed}
            after = {k: after.get(k) for k in changed}
            if _is_user(obj):
                # Personal fields read the same marker before and after: name the ones the form changed.
                personal = sorted(set(form.changed_data) & PERSONAL_USER_FIELDS) if form is not None else []
                after["personal_fields_changed"] = personal
        admin_change_record(request=request, obj=obj, action="change" if change else "add", before=before, after=after)

    def delete_model(self, request, obj):
        before = admin_snapshot(obj)
        pk = obj.pk
        super().delete_model(request, obj)
        obj.pk = pk  # the trail names the row that was deleted
        admin_change_record(request=request, obj=obj, action="delete", before=before, after=None)

    def save_formset(self, request, form, formset, change):
        # Inline rows (a device's recovery codes, say) are saved by the formset, past save_model. Rows
        # marked for deletion are read first: deleting an instance clears its primary key.
        doomed = [
            (f.instance, f.instance.pk, admin_snapshot(f.instance)) for f in formset.deleted_forms if f.instance.pk
        ]
        super().save_formset(request, form, formset, change)
        for obj in formset.new_objects:
            admin_change_record(request=request, obj=obj, action="add", before=None, after=admin_snapshot(obj))
        for obj, changed in formset.changed_objects:
            after = {k: v for k, v in admin_snapshot(obj).items() if k in changed}
            admin_change_record(request=request, obj=obj, action="change", before=None, after=after)
        for obj, pk, before in doomed:
            obj.pk = pk
            admin_change_record(request=request, obj=obj, action="delete", before=before, after=None)

    def user_change_password(self, request, id, form_url=""):
        # Only UserAdmin routes here; its password form saves the user itself, past save_model.
        if request.method == "POST":
            require_recent_auth(request)
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:
            user = self.get_object(request, unquote(id))
            after = {"password": "(changed, not copied)"}
            admin_change_record(request=request, obj=user, action="set_password", before=None, after=after)
        return response

    def delete_queryset(self, request, queryset):
        rows = list(queryset)
        snapshots = [(obj, obj.pk, admin_snapshot(obj)) for obj in rows]
        super().delete_queryset(request, queryset)
        for obj, pk, before in snapshots:
            obj.pk = pk
            admin_change_record(request=request, obj=obj, action="delete", before=before, after=None)


class PlatformAdminSite(admin.AdminSite):
    site_header = "CS Platform – platform administration"
    site_title = "CS Platform admin"
    index_template = "admin/platform_index.html"

    def has_permission(self, request):
        # A superuser session must also have passed MFA (django-otp's OTPMiddleware marks it verified).
        user = request.user
        return user.is_active and user.is_superuser and getattr(user, "is_verified", lambda: False)()

    def register(self, model_or_iterable, admin_class=None, **options):
        base = admin_class or admin.ModelAdmin
        if not issubclass(base, AuditedModelAdmin):
            base = type(f"Audited{base.__name__}", (AuditedModelAdmin, base), {"__module__": base.__module__})
        return super().register(model_or_iterable, base, **options)

    def get_urls(self):
        return [path("tenant/", self.admin_view(self.choose_tenant), name="choose_tenant"), *super().get_urls()]

    def each_context(self, request):
        data = super().each_context(request)
        if self.has_permission(request):
            data["working_tenant"] = getattr(request, "admin_tenant", None)
        return data

    def index(self, request, extra_context=None):
        extra = {"tenants": list(Tenant.objects.order_by("name")), **(extra_context or {})}
        return super().index(request, extra)

    @staticmethod
    @require_POST
    def choose_tenant(request):
        tenant = Tenant.objects.filter(pk=request.POST.get("tenant") or None).first()
        if tenant is None:
            request.session.pop(SESSION_TENANT, None)
            messages.info(request, "No tenant chosen: only tenants and users can be edited.")
        else:
            request.session[SESSION_TENANT] = tenant.pk
            messages.success(request, f"Working in {tenant.name}.")
        return HttpResponseRedirect(reverse("admin:index"))

    def admin_view(self, view, cacheable=False):
        inner = super().admin_view(view, cacheable)

        def wrapper(request, *args, **kwargs):
            if not self.has_permission(request):
                return inner(request, *args, **kwargs)
            tenant = working_tenant(request)
            request.admin_tenant = tenant
            try:
                with context.tenant_context(tenant) if tenant else nullcontext(), transaction.atomic():
                    response = inner(request, *args, **kwargs)
                    # Admin pages are TemplateResponses rendered after the view returns; render here, in
                    # the tenant, or their querysets would run with no tenant and RLS would hide every row.
                    if isinstance(response, TemplateResponse) and not response.is_rendered:
                        response.render()
                    return response
            except context.NoTenantSelected:
                messages.warning(request, "Choose the tenant to work in first: this data belongs to one tenant.")
                return HttpResponseRedirect(reverse("admin:index"))

        return update_wrapper(wrapper, inner)
