"""Helpers the REST API tests share: Bearer headers, JSON posts, the error body's field errors, list ids
and list query counts."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext

from cs_platform.audit.models import AuditEvent
from cs_platform.tenancy import context


def authorization(plaintext: str) -> dict:
    """The test client's headers for a token's plaintext."""
    return {"HTTP_AUTHORIZATION": f"Bearer {plaintext}"}


def bearer(world, *scopes: str, name: str = "Integration") -> dict:
    """Headers for a new token of the world's tenant with these scopes, created by its admin."""
    from api.services import api_token_create
    from cs_platform.tenancy.models import Role

    _, plaintext = api_token_create(tenant=world.tenant, name=name, scopes=list(scopes), actor=world.user(Role.ADMIN))
    return authorization(plaintext)


def api_post(client, url: str, body, headers: dict | None = None, *, idempotency_key: str | None = None):
    """POST `body` as JSON; a str body is sent as it is (a malformed or hand-written one)."""
    extra = {"HTTP_IDEMPOTENCY_KEY": idempotency_key} if idempotency_key is not None else {}
    return client.post(url, body, content_type="application/json", **(headers or {}), **extra)


def field_errors(response) -> dict[str, str]:
    """{field: message} of an error body (api/errors.py), after checking the body's status and code."""
    body = response.json()
    assert body["status"] == response.status_code and body["code"], body
    return {item["field"]: item["message"] for item in body["errors"]}


def rejected_filter(client, url: str, params: dict, headers: dict | None = None) -> dict[str, str]:
    """A list request whose filter parameters must be refused: asserts the 400, returns its field errors."""
    response = client.get(url, params, **(headers or {}))
    assert response.status_code == 400, response.content
    return field_errors(response)


def result_ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def list_query_count(client, url: str, headers: dict, params: dict | None = None) -> int:
    """Queries of one successful GET of `url` (the caller's comment names them)."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, params or {}, **headers)
    assert response.status_code == 200, response.content
    return len(queries)


def audit_events(world, action: str) -> list[AuditEvent]:
    with context.tenant_context(world.tenant):
        return list(AuditEvent.objects.filter(action=action).order_by("seq"))
