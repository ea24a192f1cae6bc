"""The Celery application; tasks live in each app's tasks.py and are discovered from there."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cs_platform.settings")

app = Celery("cs_platform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# --- Observability (issue #16 items 5 and 6; cs_platform/observability) ------------------------------
# Every task's worker-side Request logs a lost worker with the task's name and id.
app.Task.Request = "cs_platform.observability.celery_signals:LoggedRequest"


def _install_worker_steps(app) -> None:
    # django_structlog's worker step binds task_id and the publishing request's request_id to each task's
    # log lines (cs_platform.observability.logs adds the task name).
    from django_structlog.celery.steps import DjangoStructLogInitStep

    app.steps["worker"].add(DjangoStructLogInitStep)


_install_worker_steps(app)


@signals.setup_logging.connect
def _keep_django_logging(**_kwargs) -> None:
    """Connected, so Celery leaves logging as Django's LOGGING set it (JSON or console, LOG_FORMAT)."""
    import logging.config

    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


@signals.worker_init.connect
def _worker_metrics(**_kwargs) -> None:
    """WORKER_METRICS_PORT: the worker's main process serves its task metrics (all pool children's, with
    PROMETHEUS_MULTIPROC_DIR) for Prometheus to scrape."""
    from django.conf import settings

    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:  # start empty: a previous container's values would be added in
        import shutil

        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory, exist_ok=True)
    if settings.WORKER_METRICS_PORT:
        from cs_platform.observability.metrics import start_worker_exporter

        start_worker_exporter(settings.WORKER_METRICS_PORT)
