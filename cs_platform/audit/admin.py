from django.contrib import admin

from cs_platform.audit.models import AuditCheckpoint, AuditEvent
from cs_platform.audit.services import audit_trail_read_record


class _ReadOnly(admin.ModelAdmin):
    """Read-only: the trail and its checkpoints are append-only everywhere, the admin included. A platform
    operator's reading of them is itself recorded in the tenant's trail, as an API read is."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        self._record_read(request, response)
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        self._record_read(request, response, object_id=object_id)
        return response

    def _record_read(self, request, response, object_id=None) -> None:
        # The admin runs every view inside the operator's chosen tenant (cs_platform.admin_site); without
        # one the view has already been turned away and there is nothing read to record.
        tenant = getattr(request, "admin_tenant", None)
        if tenant is None or response.status_code != 200:
            return
        audit_trail_read_record(
            tenant=tenant,
            actor=request.user,
            object_type=self.model._meta.label_lower,
            object_id=object_id,
            filters={key: request.GET.get(key) for key in request.GET},
            via={"via": "platform_admin"},
        )


@admin.register(AuditEvent)
class AuditEventAdmin(_ReadOnly):
    list_display = ("tenant", "seq", "created_at", "actor_label", "action", "object_type", "object_id")
    list_filter = ("action",)
    search_fields = ("object_id", "actor_label", "action")


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(_ReadOnly):
    list_display = ("tenant", "number", "seq", "created_at", "reason", "key_id")
    list_filter = ("reason",)
