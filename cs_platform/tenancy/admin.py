from django.contrib import admin

from cs_platform.tenancy.models import Membership, Tenant


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "time_zone", "created_at")
    search_fields = ("name", "slug")


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "tenant", "role", "manager", "is_active")
    list_filter = ("tenant", "role", "is_active")
    search_fields = ("user__username", "user__email")
