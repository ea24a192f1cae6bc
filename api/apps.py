from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The versioned REST API: per-tenant API tokens (created and revoked by tenant admins in the
    browser), Bearer authentication and scope permissions for integrations."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "api"
    verbose_name = "REST API"

    def ready(self) -> None:
        # Registers the Bearer scheme with drf-spectacular (the extension registers on import).
        from api import schema  # noqa: F401
