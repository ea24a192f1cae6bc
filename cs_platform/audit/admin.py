from django.contrib import admin

from cs_platform.audit.models import AuditCheckpoint, AuditEvent


class _ReadOnly(admin.ModelAdmin):
    # Read-only: the trail and its checkpoints are append-only everywhere, the admin included.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(_ReadOnly):
    list_display = ("tenant", "seq", "created_at", "actor_label", "action", "object_type", "object_id")
    list_filter = ("tenant", "action")
    search_fields = ("object_id", "actor_label", "action")


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(_ReadOnly):
    list_display = ("tenant", "number", "seq", "created_at", "reason", "key_id")
    list_filter = ("tenant", "reason")
