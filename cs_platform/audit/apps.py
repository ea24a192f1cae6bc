from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "cs_platform.audit"
    label = "audit"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        from cs_platform.audit import checks  # noqa: F401 - registers the system checks
