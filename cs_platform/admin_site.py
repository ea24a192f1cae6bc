"""The Django admin, for platform superusers only.

Tenant users (even tenant admins) never get in: has_permission requires is_superuser. Admin views
run in the explicit system scope because a platform operator works across tenants."""

from functools import update_wrapper

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig

from cs_platform.tenancy.context import system_scope


class PlatformAdminSite(admin.AdminSite):
    site_header = "CS Platform – platform administration"
    site_title = "CS Platform admin"

    def has_permission(self, request):
        # A superuser session must also have passed MFA (django-otp's OTPMiddleware marks it verified).
        user = request.user
        return user.is_active and user.is_superuser and getattr(user, "is_verified", lambda: False)()

    def admin_view(self, view, cacheable=False):
        inner = super().admin_view(view, cacheable)

        def wrapper(request, *args, **kwargs):
            if request.user.is_active and request.user.is_superuser:
                with system_scope():
                    return inner(request, *args, **kwargs)
            return inner(request, *args, **kwargs)

        return update_wrapper(wrapper, inner)


class PlatformAdminConfig(AdminConfig):
    default_site = "cs_platform.admin_site.PlatformAdminSite"
