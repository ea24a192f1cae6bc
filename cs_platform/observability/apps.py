from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    name = "cs_platform.observability"
    label = "observability"
    verbose_name = "Observability"

    def ready(self) -> None:
        from cs_platform.observability import celery_signals, logs

        celery_signals.connect()  # task durations and failures (Prometheus)
        logs.connect_receivers()  # tenant, token prefix and task name on log lines
