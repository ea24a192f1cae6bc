"""Structured logs (issue #16 item 6): one JSON object per line carrying the request id (also the
X-Request-ID response header), the tenant and the user or token prefix; one ERROR line per failed request
with the traceback inside it; delivery failures at WARNING with tenant and delivery id."""

from __future__ import annotations

import logging
import re
import uuid

import pytest
from django.conf import settings
from django.test import Client, override_settings

from cs_platform.tenancy.models import Role
from tests.observability.helpers import captured_logs

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_the_suite_logs_json_by_default():
    # DEBUG is off in the suite (make test), so the default format is JSON, as in production.
    assert settings.LOG_FORMAT == "json"


def _for_request(lines: list[dict], request_id: str) -> list[dict]:
    return [line for line in lines if line.get("request_id") == request_id]


@pytest.mark.django_db
def test_a_page_request_logs_json_lines_with_request_id_tenant_and_user(client, tenant_a):
    admin = tenant_a.user(Role.ADMIN)
    client.force_login(admin)
    with captured_logs() as logs:
        response = client.get("/")
    assert response.status_code == 200
    request_id = response["X-Request-ID"]
    assert UUID.match(request_id), request_id

    lines = _for_request(logs.lines(), request_id)  # every line parses as JSON
    finished = [line for line in lines if line["event"] == "request_finished"]
    assert len(finished) == 1, lines
    line = finished[0]
    assert {"timestamp", "level", "event", "logger"} <= line.keys()
    assert line["level"] == "info" and line["code"] == 200 and line["request"] == "GET /"
    assert line["logger"] == "django_structlog.middlewares.request"
    assert line["tenant"] == "alpha" and line["tenant_id"] == tenant_a.tenant.pk
    assert line["user_id"] == admin.pk
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", line["timestamp"])


@pytest.mark.django_db
def test_an_api_request_names_the_token_by_its_prefix_never_its_secret(client, tenant_a):
    from api.services import api_token_create

    token, plaintext = api_token_create(
        tenant=tenant_a.tenant, name="Logs", scopes=["accounts:read"], actor=tenant_a.user(Role.ADMIN)
    )
    with captured_logs() as logs:
        response = client.get("/api/v1/accounts/", HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert response.status_code == 200
    (line,) = [x for x in _for_request(logs.lines(), response["X-Request-ID"]) if x["event"] == "request_finished"]
    assert line["token_prefix"] == token.prefix and line["tenant_id"] == tenant_a.tenant.pk
    assert plaintext not in logs.text
    assert plaintext[len(token.prefix) :] not in logs.text


@pytest.mark.django_db
def test_a_sane_incoming_request_id_is_kept_and_anything_else_replaced(client):
    incoming = "lb-7f3a9c.2026-12-07:0001"
    with captured_logs() as logs:
        kept = client.get("/healthz", HTTP_X_REQUEST_ID=incoming)
    assert kept["X-Request-ID"] == incoming
    assert any(line.get("request_id") == incoming for line in logs.lines())

    for hostile in ("x" * 129, "two words", "evil\r\nInjected: 1", '{"level":"error"}', "", "-starts-with-dash"):
        response = client.get("/healthz", HTTP_X_REQUEST_ID=hostile)
        assert UUID.match(response["X-Request-ID"]), (hostile, response["X-Request-ID"])


@pytest.mark.django_db
@override_settings(ROOT_URLCONF="tests.failing_urls")
def test_a_failed_request_is_one_error_line_with_the_traceback_inside():
    client = Client(raise_request_exception=False)
    with captured_logs() as logs:
        response = client.get("/test-failure")
    assert response.status_code == 500
    request_id = response["X-Request-ID"]
    lines = logs.lines()  # one JSON object per line: the traceback is inside a line, not across 80
    errors = [line for line in lines if line["level"] in ("error", "critical")]
    assert len(errors) == 1, logs.text
    (error,) = errors
    assert error["event"] == "request_failed" and error["request_id"] == request_id and error["code"] == 500
    assert "Traceback (most recent call last)" in error["exception"]
    assert "RuntimeError: boom: the failing view" in error["exception"]
    # And it is the request's only line (request_started is logged at DEBUG only).
    assert [line["event"] for line in _for_request(lines, request_id)] == ["request_failed"]


@pytest.mark.django_db
def test_stdlib_log_lines_carry_the_tenant_of_the_context(tenant_a):
    from cs_platform.tenancy import context

    with captured_logs() as logs, context.tenant_context(tenant_a.tenant):
        logging.getLogger("cs_platform.somewhere").warning("something odd about %s", "this")
    (line,) = logs.lines()
    assert line == {
        "event": "something odd about this",
        "level": "warning",
        "logger": "cs_platform.somewhere",
        "tenant_id": tenant_a.tenant.pk,
        "timestamp": line["timestamp"],
    }


def test_console_format_is_readable_for_the_demo():
    from cs_platform.observability.logs import config

    spec = config(level="INFO", fmt="console")["formatters"]["structured"]
    try:
        import structlog

        formatter = structlog.stdlib.ProcessorFormatter(**{k: v for k, v in spec.items() if k != "()"})
        record = logging.LogRecord("demo", logging.INFO, __file__, 1, "seeded %s accounts", (40,), None)
        text = formatter.format(record)
        assert "seeded 40 accounts" in text and not text.lstrip().startswith("{")
    finally:
        config(level=settings.LOG_LEVEL, fmt=settings.LOG_FORMAT)  # structlog back as the suite had it


def test_a_request_id_is_unique_per_request(client):
    ids = {client.get("/healthz")["X-Request-ID"] for _ in range(5)}
    assert len(ids) == 5 and all(uuid.UUID(value) for value in ids)


def test_static_files_get_a_request_id_header_but_no_log_line(client):
    with captured_logs() as logs:
        response = client.get("/static/css/app.css")
    assert response.status_code == 200 and UUID.match(response["X-Request-ID"])
    assert not [line for line in logs.lines() if line["event"].startswith("request_")], logs.text
