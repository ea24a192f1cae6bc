"""Browser sessions write through the API only in the roles the pages would let them: every metrics write
(measurements, surveys, incidents, their bulk ingest and incident resolution) is checked by role, and no
write endpoint under /api/v1/ is left to HasScope alone (which stops viewers and nobody else)."""

from __future__ import annotations

import datetime

import pytest
from rest_framework.viewsets import ViewSetMixin

from api.models import IdempotencyRecord
from api.permissions import RoleMayWrite
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from metrics.models import Incident, KpiMeasurement, SurveyResponse
from segments.models import KpiDefinition
from tests import factories
from tests.api.helpers import api_post
from tests.helpers import event_count, log_in_as, owned_account

TODAY = datetime.date.today()
YESTERDAY = TODAY - datetime.timedelta(days=1)

# Who may write, written out here rather than imported, so a change to the code's role sets shows up as
# a failing test. Surveys follow the account page's survey form (FORM_ROLES["survey"]); measurements and
# incidents, which have no page form, the roles that maintain an account's data.
SURVEY_ROLES = {Role.ADMIN, Role.EXECUTIVE, Role.MANAGER, Role.CSM}
BOOK_DATA_ROLES = {Role.ADMIN, Role.MANAGER, Role.CSM}


def _kpi(world, account) -> KpiDefinition:
    with context.tenant_context(world.tenant):
        return KpiDefinition.objects.filter(segment_id=account.segment_id).order_by("sort_order", "pk").first()


def _measurement(world, account) -> dict:
    return {"account": account.pk, "kpi": _kpi(world, account).pk, "measured_on": YESTERDAY.isoformat(), "value": 97}


def _survey(world, account) -> dict:
    return {"account": account.pk, "survey_type": "nps", "score": 9, "responded_on": YESTERDAY.isoformat()}


def _incident(world, account) -> dict:
    return {"account": account.pk, "title": "Payment file rejected", "severity": "sev2"}


# (url, body builder, model written, roles that may write)
WRITES = {
    "measurement": ("/api/v1/measurements/", _measurement, KpiMeasurement, BOOK_DATA_ROLES),
    "measurements bulk": ("/api/v1/measurements/bulk", _measurement, KpiMeasurement, BOOK_DATA_ROLES),
    "survey": ("/api/v1/surveys/", _survey, SurveyResponse, SURVEY_ROLES),
    "surveys bulk": ("/api/v1/surveys/bulk", _survey, SurveyResponse, SURVEY_ROLES),
    "incident": ("/api/v1/incidents/", _incident, Incident, BOOK_DATA_ROLES),
    "incidents bulk": ("/api/v1/incidents/bulk", _incident, Incident, BOOK_DATA_ROLES),
}


def _count(world, model) -> int:
    with context.tenant_context(world.tenant):
        return model.objects.count()


def _refusal(role: str) -> dict:
    return {
        "status": 403,
        "code": "permission_denied",
        "message": f"Your role ({Role(role).label}) cannot do this.",
        "errors": [],
    }


@pytest.mark.django_db
@pytest.mark.parametrize("role", Role.values)
@pytest.mark.parametrize("write", list(WRITES))
def test_session_metrics_writes_are_held_to_the_role(client, tenant_a, write, role):
    url, build, model, allowed_roles = WRITES[write]
    account = owned_account(tenant_a)  # the CSM's, in the manager's team: in every role's book
    row = build(tenant_a, account)
    body = {"rows": [row]} if url.endswith("/bulk") else row
    log_in_as(client, tenant_a, role)
    rows, events = _count(tenant_a, model), event_count(tenant_a.tenant)

    response = api_post(client, url, body, idempotency_key="retry-safe" if url.endswith("/bulk") else None)

    if role in allowed_roles:
        assert response.status_code == 201, response.content
        assert _count(tenant_a, model) == rows + 1
        assert event_count(tenant_a.tenant) > events
    else:
        assert response.status_code == 403, response.content
        assert response["Content-Type"] == "application/json"
        assert response.json() == _refusal(role)
        assert _count(tenant_a, model) == rows and event_count(tenant_a.tenant) == events
        with context.tenant_context(tenant_a.tenant):
            assert not IdempotencyRecord.objects.exists()  # a refusal is not remembered under the key


@pytest.mark.django_db
@pytest.mark.parametrize("role", Role.values)
def test_session_incident_resolution_is_held_to_the_role(client, tenant_a, role):
    incident = factories.IncidentFactory(tenant=tenant_a.tenant, account=owned_account(tenant_a))
    log_in_as(client, tenant_a, role)
    events = event_count(tenant_a.tenant)
    response = api_post(client, f"/api/v1/incidents/{incident.pk}/resolve/", {})
    with context.tenant_context(tenant_a.tenant):
        resolved_at = Incident.objects.get(pk=incident.pk).resolved_at
    if role in BOOK_DATA_ROLES:
        assert response.status_code == 200, response.content
        assert resolved_at is not None
    else:
        assert response.status_code == 403, response.content
        assert response.json() == _refusal(role)
        assert resolved_at is None and event_count(tenant_a.tenant) == events


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.EXECUTIVE, Role.COMPLIANCE])
def test_a_refused_role_learns_nothing_about_another_tenants_incident(client, tenant_a, tenant_b, role):
    theirs = factories.IncidentFactory(tenant=tenant_b.tenant)
    log_in_as(client, tenant_a, role)
    response = api_post(client, f"/api/v1/incidents/{theirs.pk}/resolve/", {})
    assert response.status_code == 404  # the object does not exist for them: no "your role cannot"
    assert response.json()["code"] == "not_found"


@pytest.mark.django_db
def test_tokens_are_judged_by_scope_not_by_the_refused_roles(client, tenant_a):
    """The role check is for sessions: an admin's metrics:write token still writes (its creator is an admin)."""
    from tests.api.helpers import bearer

    account = owned_account(tenant_a)
    auth = bearer(tenant_a, "metrics:write")
    for url, build, model, _roles in WRITES.values():
        row = build(tenant_a, account)
        if model is KpiMeasurement:
            row["value"] = 50  # the same day again: replaces, still a 201
        response = api_post(client, url, {"rows": [row]} if url.endswith("/bulk") else row, auth)
        assert response.status_code == 201, (url, response.content)


# --- every write endpoint is role-checked ----------------------------------------------------------------

_WRITE_METHODS = ("post", "put", "patch", "delete")


def _api_write_handlers():
    """(view class, method, action or method name) for every write the /api/v1/ URLs route."""
    from cs_platform.api_urls import extra_v1, router

    seen = set()
    for pattern in [*extra_v1, *router.urls]:
        view = pattern.callback
        cls = view.cls
        if issubclass(cls, ViewSetMixin):
            pairs = [(method, action) for method, action in view.actions.items() if method in _WRITE_METHODS]
        else:
            pairs = [(method, method) for method in _WRITE_METHODS if hasattr(cls, method)]
        for method, action in pairs:
            if method in cls.http_method_names and (cls, method, action) not in seen:
                seen.add((cls, method, action))
                yield cls, method, action


def test_no_api_write_is_left_to_the_scope_check_alone():
    """Every write endpoint lists its session roles for RoleMayWrite (the page form's roles where a page
    form does the same write). HasScope alone lets every role but viewers write: the hole metrics had."""
    handlers = list(_api_write_handlers())
    assert len(handlers) >= 15  # accounts, contacts, touchpoints, segments, KPIs, metrics, journeys...
    unchecked = []
    for cls, method, action in handlers:
        if RoleMayWrite in cls.permission_classes:
            roles = cls.write_roles.get(action)
            if not roles or Role.VIEWER in roles or not set(roles) <= set(Role.values):
                unchecked.append(f"{cls.__name__}.{action}: write_roles {roles!r}")
        else:
            unchecked.append(f"{cls.__name__}.{action} ({method.upper()})")
    assert not unchecked, unchecked
