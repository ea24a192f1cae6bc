"""Browser sessions write through the API only with the capability of what they write
(cs_platform.tenancy.policy): every metrics write (measurements, surveys, incidents, their bulk ingest and
incident resolution) is checked by role, and every write endpoint under /api/v1/ declares its capability."""

from __future__ import annotations

import datetime

import pytest
from rest_framework.viewsets import ViewSetMixin

from api.models import IdempotencyRecord
from api.permissions import EVERY_ACTION, HasCapability
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from cs_platform.tenancy.policy import Capability
from metrics.models import Incident, KpiMeasurement, SurveyResponse
from segments.models import KpiDefinition
from tests import factories
from tests.api.helpers import api_post
from tests.helpers import event_count, log_in_as, owned_account

TODAY = datetime.date.today()
YESTERDAY = TODAY - datetime.timedelta(days=1)

# Who may write: the policy's (its table is pinned by tests/tenancy/test_policy.py against README's).
SURVEY_ROLES = Capability.RECORD_SURVEYS.roles
MEASUREMENT_ROLES = Capability.RECORD_MEASUREMENTS.roles
INCIDENT_ROLES = Capability.MANAGE_INCIDENTS.roles


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
    "measurement": ("/api/v1/measurements/", _measurement, KpiMeasurement, MEASUREMENT_ROLES),
    "measurements bulk": ("/api/v1/measurements/bulk", _measurement, KpiMeasurement, MEASUREMENT_ROLES),
    "survey": ("/api/v1/surveys/", _survey, SurveyResponse, SURVEY_ROLES),
    "surveys bulk": ("/api/v1/surveys/bulk", _survey, SurveyResponse, SURVEY_ROLES),
    "incident": ("/api/v1/incidents/", _incident, Incident, INCIDENT_ROLES),
    "incidents bulk": ("/api/v1/incidents/bulk", _incident, Incident, INCIDENT_ROLES),
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
    if role in INCIDENT_ROLES:
        assert response.status_code == 200, response.content
        assert resolved_at is not None
    else:
        assert response.status_code == 403, response.content
        assert response.json() == _refusal(role)
        assert resolved_at is None and event_count(tenant_a.tenant) == events


@pytest.mark.django_db
@pytest.mark.parametrize("role", sorted(set(Role.values) - INCIDENT_ROLES))
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


def test_every_api_write_declares_its_capability():
    """Every write endpoint runs HasCapability (the project default, not overridden) and names the capability
    of each write it serves; one it did not name would be refused to every session (fail closed), so this
    also catches a write nobody could use from a browser. The viewer, who posts nothing, holds none."""
    handlers = list(_api_write_handlers())
    assert len(handlers) >= 15  # accounts, contacts, touchpoints, segments, KPIs, metrics, journeys...
    unchecked = []
    for cls, method, action in handlers:
        declared = getattr(cls, "capabilities", {})
        capability = declared.get(action, declared.get(EVERY_ACTION))
        if not any(isinstance(permission, HasCapability) for permission in cls().get_permissions()):
            unchecked.append(f"{cls.__name__}: no HasCapability")
        elif not isinstance(capability, Capability) or Role.VIEWER in capability.roles:
            unchecked.append(f"{cls.__name__}.{action} ({method.upper()}): {capability!r}")
    assert not unchecked, unchecked
