"""Structured logs (issue #16 item 6): one JSON object per line, or a readable console format for the demo.

Every line, whether written through structlog or the standard `logging` module, carries `timestamp`,
`level`, `event` and `logger`, plus what the context knows: `request_id`, `user_id`, `token_prefix`,
`tenant_id` (and `tenant`, the slug, on request lines), `task` and `task_id` in a Celery task. A failed
request is ONE line (`request_failed`, level error) with the exception and its traceback inside it:
Django's own `django.request` error line, which repeats the traceback, is silenced (see `config`).

Imported by settings.py: nothing here may touch Django models at import time."""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

import structlog

FORMATS = ("json", "console")
# A caller (a proxy, an integration) may send its own X-Request-ID to correlate logs; we keep it only if
# it is short and made of characters that cannot break a log line or a header, else we make our own.
REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
REQUEST_ID_HEADER = "X-Request-ID"


def add_tenant(_logger: Any, _method: str, event_dict: dict) -> dict:
    """The current tenant's id from the tenancy context (requests and tasks alike), unless already set."""
    if "tenant_id" not in event_dict:
        from cs_platform.tenancy.context import current_tenant_id

        tenant_id = current_tenant_id()
        if tenant_id is not None:
            event_dict["tenant_id"] = tenant_id
    return event_dict


def _drop_formatted_message(_logger: Any, _method: str, event_dict: dict) -> dict:
    """ExtraAdder copies a record's non-standard attributes; `message` is one once another handler (pytest's,
    Sentry's) has formatted the record first, and it repeats `event`."""
    if event_dict.get("message") == event_dict.get("event"):
        event_dict.pop("message")
    return event_dict


def _shared_processors() -> list:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_tenant,
    ]


def config(*, level: str, fmt: str) -> dict:
    """The LOGGING dictConfig for `fmt` ("json" or "console"), and structlog configured to match."""
    if fmt not in FORMATS:
        raise ValueError(f"expected one of {', '.join(FORMATS)}")
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.UnicodeDecoder(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    renderer = (
        structlog.processors.JSONRenderer(default=str)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    # The traceback goes INTO the line as the "exception" field (JSON); the console renderer prints it.
    final = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if fmt == "json":
        final.append(structlog.processors.format_exc_info)
    final.append(renderer)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structured": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": final,
                # Lines from the standard logging module (Django, Celery, our services) get the same fields.
                "foreign_pre_chain": [*_shared_processors(), structlog.stdlib.ExtraAdder(), _drop_formatted_message],
            },
        },
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "INFO"},
            # django_structlog's request_failed line carries the exception and traceback; Django's
            # "Internal Server Error" line would repeat it (about 80 lines in the plain format). 4xx
            # responses are in request_finished too.
            "django.request": {"level": "CRITICAL"},
            # django-health-check logs each failed check with its whole exception chain on every probe;
            # /readyz logs one summary line instead (unexpected errors still come through at ERROR).
            "health_check": {"level": "ERROR"},
            # runserver's own access line duplicates request_finished.
            "django.server": {"level": "WARNING"},
        },
    }


def valid_request_id(value: str | None) -> str | None:
    return value if value and REQUEST_ID_PATTERN.match(value) else None


class RequestIdMiddleware:
    """Before django_structlog's RequestMiddleware (which trusts X-Request-ID, DJANGO_STRUCTLOG_TRUST_
    UPSTREAM_REQUEST_ID): keeps a valid incoming id, replaces anything else with a new UUID, so every log
    line of the request carries it; returns it in the X-Request-ID response header."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = valid_request_id(request.META.get("HTTP_X_REQUEST_ID")) or str(uuid.uuid4())
        request.META["HTTP_X_REQUEST_ID"] = request_id
        request.request_id = request_id
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response


def bind_request_metadata(request, log_kwargs: dict, **_kwargs: Any) -> None:
    """django_structlog signal receiver: who and which tenant, on request_finished / request_failed.
    An API token is named by its public prefix, never its secret."""
    tenant = getattr(request, "tenant", None)
    if tenant is not None:
        log_kwargs["tenant"] = tenant.slug
        log_kwargs["tenant_id"] = tenant.pk
    prefix = getattr(getattr(request, "auth", None), "prefix", None)
    if isinstance(prefix, str):
        log_kwargs["token_prefix"] = prefix


def bind_task_metadata(task, **_kwargs: Any) -> None:
    """django_structlog signal receiver: every line a task logs names the task (task_id is bound already)."""
    structlog.contextvars.bind_contextvars(task=task.name)


def connect_receivers() -> None:
    from django_structlog import signals
    from django_structlog.celery import signals as celery_signals

    signals.bind_extra_request_finished_metadata.connect(bind_request_metadata, dispatch_uid="cs_log_finished")
    signals.bind_extra_request_failed_metadata.connect(bind_request_metadata, dispatch_uid="cs_log_failed")
    celery_signals.bind_extra_task_metadata.connect(bind_task_metadata, dispatch_uid="cs_log_task")


logger = logging.getLogger(__name__)
