from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    """Outgoing webhooks: tenant admins register HTTPS endpoints for platform events (health band
    changed, compliance status changed, decision escalated); signed deliveries run as Celery tasks,
    retried with exponential backoff, every attempt kept in a log the admins read."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from webhooks import receivers  # noqa: F401 - connects the nightly_run_failed receiver
