from django.contrib import admin

from cs_platform.audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("tenant", "seq", "created_at", "actor_label", "action", "object_type", "object_id")
    list_filter = ("tenant", "action")
    search_fields = ("object_id", "actor_label", "action")

    # Read-only: the trail is append-only everywhere, the admin included.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
