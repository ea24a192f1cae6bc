"""REST API v1: KPI measurements, survey responses, incidents and health scores: happy paths with their
audit events, scopes, the caller's book, other tenants (404 / 400 on the field) and list query counts."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from metrics.models import Incident, KpiMeasurement, SurveyResponse
from segments.models import KpiDefinition
from tests import factories
from tests.api.helpers import api_post, bearer, list_query_count
from tests.helpers import last_event, owned_account

TODAY = datetime.date.today()
ALL_METRICS = ("metrics:read", "metrics:write", "health:read")


def _kpi(world, account, index: int = 0) -> KpiDefinition:
    with context.tenant_context(world.tenant):
        return list(KpiDefinition.objects.filter(segment_id=account.segment_id).order_by("sort_order", "pk"))[index]


# --- measurements -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_measurement_create_goes_through_the_service_and_is_audited(client, tenant_a):
    account = owned_account(tenant_a)
    kpi = _kpi(tenant_a, account)
    body = {"account": account.pk, "kpi": kpi.pk, "measured_on": TODAY.isoformat(), "value": "97.25"}
    response = api_post(client, "/api/v1/measurements/", body, bearer(tenant_a, *ALL_METRICS))
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["account"] == account.pk and data["kpi"] == kpi.pk and data["kpi_code"] == kpi.code
    assert Decimal(data["value"]) == Decimal("97.25") and data["source"] == "api"
    event = last_event(tenant_a.tenant)
    assert event.action == "kpi_measurement.create" and event.object_id == str(data["id"])
    assert event.actor_id == tenant_a.user(Role.ADMIN).pk


@pytest.mark.django_db
def test_measurement_list_filters_and_retrieve(client, tenant_a):
    account, other = owned_account(tenant_a), owned_account(tenant_a, name="Other Bank")
    kpi = _kpi(tenant_a, account)
    old = factories.KpiMeasurementFactory(
        tenant=tenant_a.tenant, account=account, kpi=kpi, measured_on=TODAY - datetime.timedelta(days=30)
    )
    new = factories.KpiMeasurementFactory(tenant=tenant_a.tenant, account=account, kpi=kpi, measured_on=TODAY)
    elsewhere = factories.KpiMeasurementFactory(tenant=tenant_a.tenant, account=other, kpi=kpi, measured_on=TODAY)
    auth = bearer(tenant_a, *ALL_METRICS)
    ids = [row["id"] for row in client.get("/api/v1/measurements/", **auth).json()["results"]]
    assert ids == [elsewhere.pk, new.pk, old.pk]  # newest day first, then newest id
    ids = [row["id"] for row in client.get(f"/api/v1/measurements/?account={account.pk}", **auth).json()["results"]]
    assert ids == [new.pk, old.pk]
    after = (TODAY - datetime.timedelta(days=1)).isoformat()
    url = f"/api/v1/measurements/?account={account.pk}&measured_after={after}&kpi_code={kpi.code}"
    assert [row["id"] for row in client.get(url, **auth).json()["results"]] == [new.pk]
    url = f"/api/v1/measurements/?ordering=measured_on&account={account.pk}"
    assert [row["id"] for row in client.get(url, **auth).json()["results"]] == [old.pk, new.pk]
    assert client.get(f"/api/v1/measurements/{old.pk}/", **auth).json()["measured_on"] == old.measured_on.isoformat()


@pytest.mark.django_db
def test_measurement_refuses_a_kpi_of_another_segment_and_a_future_day(client, tenant_a):
    account = owned_account(tenant_a)
    with context.tenant_context(tenant_a.tenant):
        foreign = KpiDefinition.objects.exclude(segment_id=account.segment_id).first()
    auth = bearer(tenant_a, *ALL_METRICS)
    body = {"account": account.pk, "kpi": foreign.pk, "measured_on": TODAY.isoformat(), "value": 1}
    response = api_post(client, "/api/v1/measurements/", body, auth)
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "kpi"
    body = {
        "account": account.pk,
        "kpi": _kpi(tenant_a, account).pk,
        "value": 1,
        "measured_on": (TODAY + datetime.timedelta(days=3)).isoformat(),
    }
    response = api_post(client, "/api/v1/measurements/", body, auth)
    assert response.status_code == 400, response.content
    with context.tenant_context(tenant_a.tenant):
        assert not KpiMeasurement.objects.exists()


@pytest.mark.django_db
def test_other_tenants_rows_are_404_and_their_ids_a_400_on_the_field(client, tenant_a, tenant_b):
    theirs = factories.KpiMeasurementFactory(tenant=tenant_b.tenant)
    their_survey = factories.SurveyResponseFactory(tenant=tenant_b.tenant)
    their_incident = factories.IncidentFactory(tenant=tenant_b.tenant)
    auth = bearer(tenant_a, *ALL_METRICS)
    assert client.get(f"/api/v1/measurements/{theirs.pk}/", **auth).status_code == 404
    assert client.get(f"/api/v1/surveys/{their_survey.pk}/", **auth).status_code == 404
    assert client.get(f"/api/v1/incidents/{their_incident.pk}/", **auth).status_code == 404
    assert api_post(client, f"/api/v1/incidents/{their_incident.pk}/resolve/", {}, auth).status_code == 404
    assert client.get("/api/v1/measurements/", **auth).json()["results"] == []
    mine = owned_account(tenant_a)
    body = {"account": theirs.account_id, "kpi": _kpi(tenant_a, mine).pk, "measured_on": TODAY.isoformat(), "value": 1}
    response = api_post(client, "/api/v1/measurements/", body, auth)
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["account"]
    body = {"account": mine.pk, "kpi": theirs.kpi_id, "measured_on": TODAY.isoformat(), "value": 1}
    response = api_post(client, "/api/v1/measurements/", body, auth)
    assert response.status_code == 400 and [e["field"] for e in response.json()["errors"]] == ["kpi"]
    with context.tenant_context(tenant_b.tenant):
        assert Incident.objects.get(pk=their_incident.pk).resolved_at is None


@pytest.mark.django_db
def test_a_csm_sees_and_writes_only_their_book(client, tenant_a):
    mine = owned_account(tenant_a)
    not_mine = factories.AccountFactory(tenant=tenant_a.tenant)
    visible = factories.KpiMeasurementFactory(tenant=tenant_a.tenant, account=mine)
    hidden = factories.KpiMeasurementFactory(tenant=tenant_a.tenant, account=not_mine)
    client.force_login(tenant_a.user(Role.CSM))
    assert [r["id"] for r in client.get("/api/v1/measurements/").json()["results"]] == [visible.pk]
    assert client.get(f"/api/v1/measurements/{hidden.pk}/").status_code == 404
    body = {
        "account": not_mine.pk,
        "kpi": _kpi(tenant_a, not_mine).pk,
        "value": 2,
        "measured_on": (TODAY - datetime.timedelta(days=1)).isoformat(),
    }
    response = client.post("/api/v1/measurements/", body, content_type="application/json")
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "account"


@pytest.mark.django_db
def test_scopes_are_enforced(client, tenant_a):
    account = owned_account(tenant_a)
    read_only = bearer(tenant_a, "metrics:read")
    body = {"account": account.pk, "kpi": _kpi(tenant_a, account).pk, "measured_on": TODAY.isoformat(), "value": 1}
    assert client.get("/api/v1/measurements/", **read_only).status_code == 200
    assert api_post(client, "/api/v1/measurements/", body, read_only).status_code == 403
    assert api_post(client, "/api/v1/measurements/bulk", {"rows": [body]}, read_only).status_code == 403
    assert client.get("/api/v1/health-scores/", **read_only).status_code == 403  # health is its own family
    health_only = bearer(tenant_a, "health:read")
    assert client.get("/api/v1/health-scores/", **health_only).status_code == 200
    assert client.get("/api/v1/surveys/", **health_only).status_code == 403
    client.force_login(tenant_a.user(Role.VIEWER))
    assert client.get("/api/v1/measurements/").status_code == 200
    assert client.post("/api/v1/measurements/", body, content_type="application/json").status_code == 403
    with context.tenant_context(tenant_a.tenant):
        assert not KpiMeasurement.objects.exists()


# --- surveys and incidents ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_survey_create_list_and_audit(client, tenant_a):
    account = owned_account(tenant_a)
    auth = bearer(tenant_a, *ALL_METRICS)
    body = {"account": account.pk, "survey_type": "csat", "score": 4, "responded_on": TODAY.isoformat()}
    response = api_post(client, "/api/v1/surveys/", body, auth)
    assert response.status_code == 201, response.content
    survey_id = response.json()["id"]
    event = last_event(tenant_a.tenant)
    assert event.action == "survey_response.create" and event.object_id == str(survey_id)
    assert [r["id"] for r in client.get("/api/v1/surveys/?survey_type=csat", **auth).json()["results"]] == [survey_id]
    assert client.get("/api/v1/surveys/?survey_type=nps", **auth).json()["results"] == []
    response = api_post(client, "/api/v1/surveys/", dict(body, score=6), auth)  # CSAT is 1-5
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "score"
    with context.tenant_context(tenant_a.tenant):
        assert SurveyResponse.objects.count() == 1


@pytest.mark.django_db
def test_incident_open_resolve_and_audit(client, tenant_a):
    account = owned_account(tenant_a)
    auth = bearer(tenant_a, *ALL_METRICS)
    opened = (timezone.now() - datetime.timedelta(hours=5)).isoformat()
    body = {"account": account.pk, "title": "Statements late", "severity": "sev3", "opened_at": opened}
    response = api_post(client, "/api/v1/incidents/", body, auth)
    assert response.status_code == 201, response.content
    incident_id = response.json()["id"]
    assert last_event(tenant_a.tenant).action == "incident.open"
    assert [r["id"] for r in client.get("/api/v1/incidents/?open=true", **auth).json()["results"]] == [incident_id]
    response = api_post(client, f"/api/v1/incidents/{incident_id}/resolve/", {}, auth)
    assert response.status_code == 200, response.content
    assert response.json()["resolved_at"] is not None
    event = last_event(tenant_a.tenant)
    assert event.action == "incident.resolve" and event.object_id == str(incident_id)
    assert client.get("/api/v1/incidents/?open=true", **auth).json()["results"] == []
    response = api_post(client, f"/api/v1/incidents/{incident_id}/resolve/", {}, auth)
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "resolved_at"


# --- health scores --------------------------------------------------------------------------------------------

_COMPONENTS = [
    {
        "measure": "nps",
        "weight": 20.0,
        "raw": 40.0,
        "score": 70.0,
        "effective_weight": 25.0,
        "contribution": 17.5,
        "band": "yellow",
        "missing": False,
        "facts": {"n": 12},
    },
    {
        "measure": "kpi_attainment",
        "weight": 30.0,
        "raw": 50.0,
        "score": 50.0,
        "effective_weight": 37.5,
        "contribution": 18.75,
        "band": "red",
        "missing": False,
        "facts": {"met": 1, "of": 2, "kpis": []},
    },
]


@pytest.mark.django_db
def test_health_history_and_latest_with_components(client, tenant_a, tenant_b):
    account, other = owned_account(tenant_a), owned_account(tenant_a, name="Other Bank")
    yesterday = TODAY - datetime.timedelta(days=1)
    for day, band in ((yesterday, "yellow"), (TODAY, "red")):
        factories.HealthSnapshotFactory(
            tenant=tenant_a.tenant, account=account, snapshot_date=day, band=band, components=_COMPONENTS
        )
    factories.HealthSnapshotFactory(tenant=tenant_a.tenant, account=other, snapshot_date=TODAY, band="green")
    factories.HealthSnapshotFactory(tenant=tenant_b.tenant, snapshot_date=TODAY)
    auth = bearer(tenant_a, "health:read")
    rows = client.get(f"/api/v1/health-scores/?account={account.pk}", **auth).json()["results"]
    assert [(r["date"], r["band"]) for r in rows] == [(TODAY.isoformat(), "red"), (yesterday.isoformat(), "yellow")]
    components = rows[0]["components"]
    assert [c["measure"] for c in components] == ["kpi_attainment", "nps"]  # heaviest first, as on the page
    assert components[0]["display"] == "1 of 2 targets met" and components[1]["label"]
    assert Decimal(rows[0]["score"]) == Decimal("72.50") and rows[0]["account_name"] == account.name
    url = f"/api/v1/health-scores/?band=yellow&date_before={yesterday.isoformat()}"
    assert [r["date"] for r in client.get(url, **auth).json()["results"]] == [yesterday.isoformat()]
    latest = client.get("/api/v1/health-scores/latest/", **auth).json()["results"]
    assert [(r["account"], r["date"]) for r in latest] == sorted(
        [(account.pk, TODAY.isoformat()), (other.pk, TODAY.isoformat())]
    )


# --- query counts ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("rows", [2, 20])
def test_list_query_counts_do_not_grow_with_rows(client, tenant_a, rows):
    account = owned_account(tenant_a)
    for n in range(rows):
        day = TODAY - datetime.timedelta(days=n)
        factories.KpiMeasurementFactory(tenant=tenant_a.tenant, account=account, measured_on=day)
        factories.SurveyResponseFactory(tenant=tenant_a.tenant, account=account, responded_on=day)
        factories.IncidentFactory(tenant=tenant_a.tenant, account=account)
        factories.HealthSnapshotFactory(
            tenant=tenant_a.tenant, account=account, snapshot_date=day, components=_COMPONENTS
        )
    auth = bearer(tenant_a, *ALL_METRICS)
    client.get("/api/v1/me/", **auth)  # the token's last_used_at is touched once, not on every request
    # Token authentication: 1 token + membership lookup. Then the page (1, the KPI joined), under
    # an admin's whole-tenant book (a subquery, not a query).
    base = list_query_count(client, "/api/v1/me/", auth) - 1  # me: authentication + the account count
    assert list_query_count(client, "/api/v1/measurements/", auth) == base + 1
    assert list_query_count(client, "/api/v1/surveys/", auth) == base + 1
    assert list_query_count(client, "/api/v1/incidents/", auth) == base + 1
    # Health history: the page (account joined) + the tenant's KPI names for the components.
    assert list_query_count(client, "/api/v1/health-scores/", auth) == base + 2
    # Latest: the newest snapshot date, the page, the KPI names.
    assert list_query_count(client, "/api/v1/health-scores/latest/", auth) == base + 3
    assert len(client.get("/api/v1/health-scores/", **auth).json()["results"]) == rows
