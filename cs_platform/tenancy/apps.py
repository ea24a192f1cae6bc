from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "cs_platform.tenancy"
    label = "tenancy"
    verbose_name = "Tenancy"

    def ready(self) -> None:
        from cs_platform.tenancy import signals  # noqa: F401  (connects post_migrate grants)
