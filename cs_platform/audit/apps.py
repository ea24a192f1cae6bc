from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "cs_platform.audit"
    label = "audit"
    verbose_name = "Audit trail"
