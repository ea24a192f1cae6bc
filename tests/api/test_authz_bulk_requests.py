"""Bulk ingest at its edges: a body over DATA_UPLOAD_MAX_MEMORY_SIZE is a JSON 413 in the error format
(not Django's HTML 400), and an Idempotency-Key belongs to the credential that sent it (a token, or a
session's user), not to the whole tenant."""

from __future__ import annotations

import datetime
import json
import logging

import pytest

from api.models import IdempotencyRecord
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from metrics.models import SurveyResponse
from tests.api.helpers import api_post, bearer
from tests.helpers import event_count, log_in_as, owned_account

SURVEYS_BULK = "/api/v1/surveys/bulk"
DAY = (datetime.date.today() - datetime.timedelta(days=1)).isoformat()
WRITE = ("metrics:read", "metrics:write")


def _surveys(world) -> int:
    with context.tenant_context(world.tenant):
        return SurveyResponse.objects.count()


def _rows(account, scores) -> list[dict]:
    return [{"account": account.pk, "survey_type": "nps", "score": s, "responded_on": DAY} for s in scores]


# --- 413 -----------------------------------------------------------------------------------------------------


def _oversize_body(account, settings) -> str:
    """A real body just over the deployed byte limit, within the row limit: long comments do it."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    count = min(settings.API_BULK_MAX_ROWS, 1000)
    comment = "x" * (limit // count + 1)
    body = json.dumps({"rows": [dict(row, comment=comment) for row in _rows(account, [9] * count)]})
    assert len(body.encode()) > limit
    return body


@pytest.mark.django_db
def test_a_body_over_the_upload_limit_is_a_json_413_and_stores_nothing(client, tenant_a, settings, caplog):
    account = owned_account(tenant_a)
    auth = bearer(tenant_a, *WRITE)
    body = _oversize_body(account, settings)
    events = event_count(tenant_a.tenant)
    with caplog.at_level(logging.WARNING):
        response = api_post(client, SURVEYS_BULK, body, auth, idempotency_key="too-big")
    assert response.status_code == 413, response.content[:300]
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "status": 413,
        "code": "request_too_large",
        "message": f"The request body is over the limit of {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes. Bulk "
        f"endpoints take at most {settings.API_BULK_MAX_ROWS} rows per request: send the rows in several smaller "
        "requests.",
        "errors": [],
    }
    # A client error, not a security incident with a traceback in the log.
    assert not [r for r in caplog.records if r.name.startswith("django.security") or r.exc_info]
    assert _surveys(tenant_a) == 0 and event_count(tenant_a.tenant) == events
    with context.tenant_context(tenant_a.tenant):
        assert not IdempotencyRecord.objects.exists()


@pytest.mark.django_db
def test_a_session_gets_the_same_413(client, tenant_a, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048  # the handling, not the size, is under test here
    account = owned_account(tenant_a)
    log_in_as(client, tenant_a, Role.CSM)
    response = api_post(client, SURVEYS_BULK, _oversize_body(account, settings))
    assert response.status_code == 413 and response.json()["code"] == "request_too_large"
    assert "2048 bytes" in response.json()["message"]


@pytest.mark.django_db
def test_the_schema_documents_the_413_on_every_bulk_endpoint(client):
    paths = client.get("/api/schema/?format=json").json()["paths"]
    for entity in ("measurements", "surveys", "incidents"):
        responses = paths[f"/api/v1/{entity}/bulk"]["post"]["responses"]
        assert "413" in responses, entity
        content = responses["413"]["content"]["application/json"]
        assert content["schema"]["$ref"].endswith("/Error")
        example = next(iter(content["examples"].values()))["value"]
        assert (example["status"], example["code"]) == (413, "request_too_large")


# --- Idempotency-Key per credential ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_two_tokens_with_the_same_key_each_store_their_rows(client, tenant_a):
    account = owned_account(tenant_a)
    crm, billing = bearer(tenant_a, *WRITE, name="CRM"), bearer(tenant_a, *WRITE, name="Billing")
    first = api_post(client, SURVEYS_BULK, {"rows": _rows(account, [9, 8])}, crm, idempotency_key="2026-11-23")
    # Another integration picks the same key (the day's date) for a different body: its own request,
    # neither a replay of the CRM's answer nor a 422 conflict.
    second = api_post(client, SURVEYS_BULK, {"rows": _rows(account, [3])}, billing, idempotency_key="2026-11-23")
    assert (first.status_code, second.status_code) == (201, 201), second.content
    assert "Idempotent-Replayed" not in second and second.json()["ids"] != first.json()["ids"]
    # Even the same body from a third token is that token's own request, stored again.
    warehouse = bearer(tenant_a, *WRITE, name="Warehouse")
    third = api_post(client, SURVEYS_BULK, {"rows": _rows(account, [9, 8])}, warehouse, idempotency_key="2026-11-23")
    assert third.status_code == 201 and "Idempotent-Replayed" not in third
    assert _surveys(tenant_a) == 5

    # Each token retrying gets its own first answer back and stores nothing.
    retry = api_post(client, SURVEYS_BULK, {"rows": _rows(account, [9, 8])}, crm, idempotency_key="2026-11-23")
    assert retry.status_code == 201 and retry["Idempotent-Replayed"] == "true"
    assert retry.json() == first.json()
    retry = api_post(client, SURVEYS_BULK, {"rows": _rows(account, [3])}, billing, idempotency_key="2026-11-23")
    assert retry.status_code == 201 and retry["Idempotent-Replayed"] == "true"
    assert retry.json() == second.json()
    # Within one token the key still means one request: another body under it is refused.
    conflict = api_post(client, SURVEYS_BULK, {"rows": _rows(account, [9, 8])}, billing, idempotency_key="2026-11-23")
    assert conflict.status_code == 422 and conflict.json()["code"] == "idempotency_conflict"
    assert _surveys(tenant_a) == 5
    with context.tenant_context(tenant_a.tenant):
        stored = IdempotencyRecord.objects.filter(key="2026-11-23")
        assert stored.count() == 3 and len({record.token_id for record in stored}) == 3


@pytest.mark.django_db
def test_a_session_key_belongs_to_the_user_not_to_their_tokens(client, tenant_a):
    account = owned_account(tenant_a)
    token = bearer(tenant_a, *WRITE)  # the admin's token
    assert api_post(client, SURVEYS_BULK, {"rows": _rows(account, [9])}, token, idempotency_key="k").status_code == 201
    log_in_as(client, tenant_a, Role.ADMIN)  # the same admin, in the browser
    session = api_post(client, SURVEYS_BULK, {"rows": _rows(account, [9])}, idempotency_key="k")
    assert session.status_code == 201 and "Idempotent-Replayed" not in session
    again = api_post(client, SURVEYS_BULK, {"rows": _rows(account, [9])}, idempotency_key="k")
    assert again["Idempotent-Replayed"] == "true" and again.json() == session.json()
    # Another user's session is another credential.
    log_in_as(client, tenant_a, Role.CSM)
    other = api_post(client, SURVEYS_BULK, {"rows": _rows(account, [9])}, idempotency_key="k")
    assert other.status_code == 201 and "Idempotent-Replayed" not in other
    assert _surveys(tenant_a) == 3


@pytest.mark.django_db
def test_the_database_refuses_a_second_answer_for_the_same_credential_and_key(tenant_a):
    """The unique keys are the backstop behind the advisory lock: one answer per token (or per session
    user) and key, while other tokens and sessions remain free to use the key."""
    from django.db import IntegrityError, transaction
    from django.utils import timezone

    from api.services import api_token_create

    admin = tenant_a.user(Role.ADMIN)
    one, _ = api_token_create(tenant=tenant_a.tenant, name="One", scopes=["metrics:write"], actor=admin)
    two, _ = api_token_create(tenant=tenant_a.tenant, name="Two", scopes=["metrics:write"], actor=admin)

    def record(**credential):
        IdempotencyRecord.objects.create(
            tenant=tenant_a.tenant,
            endpoint="api_surveys_bulk",
            key="k",
            request_sha256="0" * 64,
            status_code=201,
            response_body={},
            expires_at=timezone.now() + datetime.timedelta(hours=1),
            **credential,
        )

    with context.tenant_context(tenant_a.tenant):
        record(token=one, user=admin)
        record(token=two, user=admin)
        record(token=None, user=admin)
        for duplicate in ({"token": one, "user": admin}, {"token": None, "user": admin}):
            with pytest.raises(IntegrityError), transaction.atomic():
                record(**duplicate)
