from django.apps import AppConfig


class IdentityConfig(AppConfig):
    name = "cs_platform.identity"
    label = "identity"
    verbose_name = "Identity"

    def ready(self) -> None:
        from cs_platform.identity import signals  # noqa: F401 - connects the receivers
