"""Every 5xx of the API is in its JSON error format (api/errors.py), whether the exception came from a
view or a middleware: a bug is a 500 `server_error`, PostgreSQL or Redis unreachable a 503
`service_unavailable` with Retry-After. Pages keep Django's HTML error page."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client, override_settings

from tests.outages import free_port

SESSION_COOKIE = {"Cookie": "sessionid=abcdefghijklmnopqrstuvwxyz012345"}


def _is_json_error(response_status: int, content_type: str, body: dict, status: int, code: str) -> None:
    assert response_status == status, body
    assert content_type == "application/json"
    assert set(body) >= {"status", "code", "message", "errors"}, body
    assert (body["status"], body["code"], body["errors"]) == (status, code, [])
    assert body["message"]


# --- a bug in a view --------------------------------------------------------------------------------------


@pytest.mark.django_db
@override_settings(ROOT_URLCONF="tests.failing_urls")
def test_an_unhandled_exception_in_an_api_view_is_a_json_500(caplog):
    response = Client(raise_request_exception=False).get("/api/v1/failing/")
    _is_json_error(response.status_code, response["Content-Type"], response.json(), 500, "server_error")
    assert "a bug" not in response.content.decode()  # nothing of the exception reaches the client
    # Still logged with its traceback for whoever is on call: one request_failed line (structured logs).
    failed = [r for r in caplog.records if r.levelname == "ERROR" and r.exc_info]
    assert [r.name for r in failed] == ["django_structlog.middlewares.request"]


@pytest.mark.django_db
@override_settings(ROOT_URLCONF="tests.failing_urls")
def test_an_unhandled_exception_in_a_page_keeps_the_html_500():
    response = Client(raise_request_exception=False).get("/failing/")
    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")


# --- PostgreSQL unreachable, in a middleware and in a view -----------------------------------------------


@pytest.fixture(scope="module")
def server_without_database():
    """The real app under gunicorn, as deployed, with its database on a port nothing listens on (the
    shared PostgreSQL is never stopped). Redis stays up: only the database is missing."""
    closed, port = free_port(), free_port()
    nowhere = f"postgres://cs_app_test@127.0.0.1:{closed}/nowhere"
    env = {**os.environ, "DATABASE_URL": nowhere, "DATABASE_OWNER_URL": nowhere}
    with tempfile.TemporaryDirectory() as scratch:
        log = Path(scratch) / "gunicorn.log"
        with log.open("wb") as output:
            process = subprocess.Popen(  # noqa: S603 - our own app
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "cs_platform.wsgi:application",
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--workers",
                    "1",
                    "--timeout",
                    "30",
                ],
                cwd=settings.BASE_DIR,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:  # up once it answers anything (the health checks may well say the database is down)
                try:
                    urllib.request.urlopen(f"{base}/healthz", timeout=10)  # noqa: S310 - our own server
                    break
                except urllib.error.HTTPError:
                    break
                except OSError:  # refused while gunicorn starts, or timed out while its worker loads the app
                    assert process.poll() is None, log.read_text()
                    assert time.monotonic() < deadline, log.read_text()
                    time.sleep(0.2)
            yield base
        finally:
            process.terminate()
            process.wait(timeout=20)


def _get(url: str, headers: dict) -> tuple[int, str, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - our own server
    try:
        with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310
            return response.status, response.headers["Content-Type"], dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], dict(error.headers), error.read()


@pytest.mark.parametrize(
    "headers",
    [
        # DRF authenticates inside the view: the token lookup fails there.
        {"Authorization": "Bearer csp_0badc0de_" + "x" * 32},
        # The session is loaded by the middleware (session lifetime, tenant) before any view runs.
        SESSION_COOKIE,
    ],
    ids=["in-the-view", "in-a-middleware"],
)
def test_with_postgresql_down_the_api_answers_a_json_503(server_without_database, headers):
    status, content_type, response_headers, raw = _get(f"{server_without_database}/api/v1/me/", headers)
    body = json.loads(raw)
    _is_json_error(status, content_type, body, 503, "service_unavailable")
    assert response_headers["Retry-After"] == "30" and body["retry_after"] == 30


def test_with_postgresql_down_pages_keep_the_html_500(server_without_database):
    status, content_type, _, _ = _get(f"{server_without_database}/", SESSION_COOKIE)
    assert status == 500 and content_type.startswith("text/html")


# --- the schema documents the 503 answers as they are -------------------------------------------------------


@pytest.mark.django_db
def test_every_operation_documents_the_503_with_the_real_bodies(client):
    from api.errors import json_server_error
    from api.throttling import ThrottlingUnavailable

    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    documented = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            response = operation["responses"].get("503")
            assert response is not None, f"{method} {path}: no 503"
            assert response["headers"]["Retry-After"]["schema"]["type"] == "integer"
            documented.append(response["content"]["application/json"]["examples"])
    examples = {name: example["value"] for name, example in documented[0].items()}
    assert all(len(found) == 2 for found in documented)
    # The bodies the handlers really give: handler500's for a database error, the fail-closed throttle's.
    from django.db import OperationalError
    from django.test import RequestFactory

    try:
        raise OperationalError("connection refused")
    except OperationalError:
        real = json.loads(json_server_error(RequestFactory().get("/api/v1/me/")).content)
    assert examples["service_unavailable"] == real
    unavailable = ThrottlingUnavailable(wait=30)
    assert examples["throttling_unavailable"]["message"] == str(unavailable.detail)
    assert examples["throttling_unavailable"]["code"] == unavailable.default_code
