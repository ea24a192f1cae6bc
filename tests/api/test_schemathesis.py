"""Schemathesis over every operation of the live OpenAPI schema, with a token holding every scope.

The schema is fetched from /api/schema/ through the WSGI application (so it is the schema the server
really serves), then Hypothesis generates requests for each operation from it. Path parameters are
pinned to real objects of the caller's tenant so that detail, update and action operations reach the
code behind the 404 as well. Each response must not be a 5xx and must conform to the schema: a
documented status code, content type, headers and body.

The tenant is 14 hours ahead of UTC, so generated dates and times are shifted at the edge of every
conversion; and once every operation has been fuzzed, every read operation is called again and no stored
date may lie outside the platform's bounds: a value a write stored must not break a later read (issue
#15: a bulk incident dated 0001-01-01T00:00:00+14:00 was stored and made the incidents list answer 500
for everyone from then on)."""

from __future__ import annotations

import re
import traceback

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connections
from django.test import Client, override_settings
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.models import ALL_SCOPES
from api.services import api_token_create
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from cs_platform.tenancy.selectors import out_of_bounds_dates
from tests import factories
from tests.committed import purge_tenant
from tests.conftest import make_world

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Enough to reach past the happy path on every operation while keeping the suite's budget (about
# 20 requests per operation).
EXAMPLES_PER_OPERATION = 20


def _objects(world) -> dict[str, int]:
    """One object of the caller's tenant per URL keyword argument, all on one account."""
    tenant = world.tenant
    account = factories.AccountFactory(tenant=tenant, name="Fuzzed Federal Credit Union")
    obligation = factories.ObligationFactory(tenant=tenant, account=account)
    journey = factories.journey_of(account)
    factories.HealthSnapshotFactory(tenant=tenant, account=account)
    with context.tenant_context(tenant):
        activity_id = journey.activity_progress.order_by("pk").values_list("pk", flat=True)[0]
    objects = {
        "account_id": account.pk,
        "contact_id": factories.ContactFactory(tenant=tenant, account=account).pk,
        "touchpoint_id": factories.TouchpointFactory(tenant=tenant, account=account).pk,
        "segment_id": account.segment_id,
        "measurement_id": factories.KpiMeasurementFactory(tenant=tenant, account=account).pk,
        "survey_id": factories.SurveyResponseFactory(tenant=tenant, account=account).pk,
        "incident_id": factories.IncidentFactory(tenant=tenant, account=account).pk,
        "journey_id": journey.pk,
        "activity_id": activity_id,
        "decision_id": factories.DecisionFactory(tenant=tenant, account=account, owner=world.user(Role.CSM)).pk,
        "obligation_id": obligation.pk,
        "evidence_id": factories.EvidenceFactory(tenant=tenant, obligation=obligation).pk,
        "audit_result_id": factories.AuditResultFactory(tenant=tenant, obligation=obligation).pk,
        "status_id": factories.ComplianceStatusSnapshotFactory(tenant=tenant, account=account).pk,
    }
    from segments.models import KpiDefinition

    with context.tenant_context(tenant):
        objects["kpi_id"] = KpiDefinition.objects.filter(segment_id=account.segment_id).order_by("pk")[0].pk
        from cs_platform.audit.models import AuditEvent

        objects["event_id"] = AuditEvent.objects.order_by("-seq").values_list("pk", flat=True)[0]
    return objects


def _run(operation, headers: dict, path_parameters: dict) -> None:
    strategy = operation.as_strategy(path_parameters=path_parameters or None)

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,  # the same requests on every run: a failure reproduces
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def check(case):
        case.call_and_validate(headers=headers, checks=CHECKS)

    check()


@pytest.fixture
def fuzzed_world(django_db_setup, django_db_blocker):
    """A tenant committed to the database (not one rolled-back test transaction): a request that fails
    in the database must fail alone, as on a server, not abort the transaction under every later
    request. Purged afterwards by the owner role (the audit table refuses DELETE to the app role)."""
    with django_db_blocker.unblock():
        world = make_world("fuzz", "Fuzz Customer Success")
        world.tenant.time_zone = "Etc/GMT-14"  # UTC+14 at every date, year 1 included
        world.tenant.save(update_fields=["time_zone"])
        try:
            yield world
        finally:
            connections["default"].close()
            purge_tenant(world.tenant.pk, [user.pk for user in world.users.values()])


def test_every_operation_conforms_to_the_live_schema(fuzzed_world):
    objects = _objects(fuzzed_world)
    _, plaintext = api_token_create(
        tenant=fuzzed_world.tenant,
        name="Schemathesis",
        scopes=list(ALL_SCOPES),
        actor=fuzzed_world.user(Role.ADMIN),
    )
    headers = {"Authorization": f"Bearer {plaintext}"}
    # A WSGI request starts and ends by closing "old" database connections; Django's test client
    # disconnects the same signal so the test keeps its connection.
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    try:
        total, ran, failures = _fuzz(headers, objects)
    finally:
        for signal in (request_started, request_finished):
            signal.connect(close_old_connections)
    assert total >= 50, f"only {total} operations in the schema: is an app's api.py not registered?"
    assert ran == total
    assert not failures, "\n\n".join(failures)
    reads, failed = _read_everything_again(headers, objects)
    assert reads >= 30, f"only {reads} read operations read again"
    assert not failed, "reads that fail after the fuzzed writes:\n" + "\n".join(failed)
    with context.tenant_context(fuzzed_world.tenant):
        assert not out_of_bounds_dates(), "the API stored dates outside the platform's bounds"


def _read_everything_again(headers: dict, objects: dict) -> tuple[int, list[str]]:
    """Every GET operation once more, with the pinned objects, after all the fuzzed writes were stored:
    (how many were read, the ones that failed)."""
    client = Client(raise_request_exception=False)
    reads, failed = 0, []
    with override_settings(API_THROTTLE_RATES={"token": "100000/min", "user": "100000/min"}):
        schema = schemathesis.openapi.from_wsgi("/api/schema/", WSGIHandler())
        for result in schema.get_all_operations():
            operation = result.ok()
            if operation.method.upper() != "GET":
                continue
            path = re.sub(r"{(\w+)}", lambda m: str(objects[m[1]]), operation.full_path)
            status = client.get(path, HTTP_AUTHORIZATION=headers["Authorization"]).status_code
            reads += 1
            if status >= 500:
                failed.append(f"GET {path} -> {status}")
    return reads, failed


def _fuzz(headers: dict, objects: dict) -> tuple[int, int, list[str]]:
    # Thousands of requests from one token: throttling is tested on its own (test_api_conventions.py).
    with override_settings(API_THROTTLE_RATES={"token": "100000/min", "user": "100000/min"}):
        schema = schemathesis.openapi.from_wsgi("/api/schema/", WSGIHandler())
        failures, ran, total = [], 0, 0
        for result in schema.get_all_operations():
            total += 1
            operation = result.ok()
            names = re.findall(r"{(\w+)}", operation.path)
            unknown = [name for name in names if name not in objects]
            if unknown:
                failures.append(f"{operation.label}: no test object for path parameters {unknown}")
                continue
            try:
                _run(operation, headers, {name: objects[name] for name in names})
            except Exception:  # collect every operation's failure, not just the first
                failures.append(f"{operation.label}:\n{traceback.format_exc(limit=3)}")
            ran += 1
    return total, ran, failures
