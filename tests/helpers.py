from cs_platform.audit.models import AuditEvent
from cs_platform.tenancy import context


def last_event(tenant) -> AuditEvent:
    with context.tenant_context(tenant):
        return AuditEvent.objects.order_by("-seq").first()


def event_count(tenant) -> int:
    with context.tenant_context(tenant):
        return AuditEvent.objects.count()
