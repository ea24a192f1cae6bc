"""REST API v1: segments (with their KPI definitions nested) and KPI definitions (issue #5). Every
member reads; admins, or tokens with segments:write, edit descriptions and targets and add KPIs."""

from __future__ import annotations

import pytest

from cs_platform.audit.models import AuditEvent
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from segments.models import KpiDefinition, Segment
from tests import factories
from tests.api.helpers import bearer, field_errors, list_query_count
from tests.helpers import last_event

SEGMENTS = "/api/v1/segments/"
KPIS = "/api/v1/kpis/"


def _errors(response) -> dict[str, str]:
    assert response.status_code == 400 and response.json()["code"] == "invalid", response.content
    return field_errors(response)


def _kpi(world, code: str = "bank") -> KpiDefinition:
    segment = factories.segment_of(world.tenant, code)
    with context.tenant_context(world.tenant):
        return KpiDefinition.objects.filter(segment=segment).order_by("sort_order", "pk").first()


def _reload(world, obj):
    with context.tenant_context(world.tenant):
        return type(obj).objects.get(pk=obj.pk)


def _event_count(world, action: str) -> int:
    with context.tenant_context(world.tenant):
        return AuditEvent.objects.filter(action=action).count()


def _list_query_counts(client, world, url: str, page_size: int, add) -> list[int]:
    """Queries of one list page with the rows there are, then after `add(10)` more (in the tenant's context)."""
    auth = bearer(world, "segments:read")
    client.get(url, **auth)  # warm-up: the token's last-used stamp
    counts = []
    for extra in (0, 10):
        with context.tenant_context(world.tenant):
            add(extra)
        counts.append(list_query_count(client, url, auth, {"page_size": page_size}))
    return counts


# --- Segments ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_segments_list_every_segment_with_its_kpis_nested(client, tenant_a, tenant_b):
    client.force_login(tenant_a.user(Role.VIEWER))
    response = client.get(SEGMENTS, {"page_size": 100})
    assert response.status_code == 200, response.content
    rows = response.json()["results"]
    with context.tenant_context(tenant_a.tenant):
        expected = list(Segment.objects.order_by("sort_order", "pk").values_list("code", flat=True))
        kpi_count = KpiDefinition.objects.filter(segment__code="bank").count()
    assert [row["code"] for row in rows] == expected and expected
    bank = next(row for row in rows if row["code"] == "bank")
    assert len(bank["kpis"]) == kpi_count > 0
    assert set(bank["kpis"][0]) >= {"id", "code", "name", "target_text", "comparator", "target_low", "weight"}
    # Another tenant's segment is not there; its id is a 404.
    assert client.get(f"{SEGMENTS}{factories.segment_of(tenant_b.tenant).pk}/").status_code == 404
    assert client.get(f"{SEGMENTS}{bank['id']}/").json() == bank


@pytest.mark.django_db
def test_the_segment_list_is_a_fixed_number_of_queries(client, tenant_a):
    def add(count: int) -> None:
        for index in range(count):
            Segment.objects.create(tenant=tenant_a.tenant, code=f"extra-{index}", name=f"Extra {index}")

    # the token's tenant (lookup), token, membership, the segments page, their KPIs (one prefetch).
    assert _list_query_counts(client, tenant_a, SEGMENTS, 100, add) == [5, 5]


@pytest.mark.django_db
def test_an_admin_patches_a_segments_description_audited(client, tenant_a):
    segment = factories.segment_of(tenant_a.tenant)
    client.force_login(tenant_a.user(Role.ADMIN))
    body = {
        "description": "Retail and commercial banks.",
        "characteristics": ["Basel III"],
        "success_factors": [{"name": "Clean exams", "description": "No findings."}],
        "code": "renamed",  # read-only: ignored
    }
    response = client.patch(f"{SEGMENTS}{segment.pk}/", body, content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json()["code"] == "bank" and response.json()["characteristics"] == ["Basel III"]
    segment = _reload(tenant_a, segment)
    assert segment.success_factors == [{"name": "Clean exams", "description": "No findings."}]
    event = last_event(tenant_a.tenant)
    assert (event.action, event.object_id, event.after["description"]) == (
        "segment.update",
        str(segment.pk),
        "Retail and commercial banks.",
    )
    response = client.patch(f"{SEGMENTS}{segment.pk}/", {"characteristics": "x"}, content_type="application/json")
    assert "characteristics" in _errors(response)
    response = client.patch(f"{SEGMENTS}{segment.pk}/", {"name": ""}, content_type="application/json")
    assert "name" in _errors(response)
    assert client.put(f"{SEGMENTS}{segment.pk}/", {"name": "X"}, content_type="application/json").status_code == 405
    assert client.post(SEGMENTS, {"name": "X"}, content_type="application/json").status_code == 405


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.MANAGER, Role.CSM, Role.EXECUTIVE, Role.COMPLIANCE, Role.VIEWER])
def test_only_admins_edit_segments_and_kpis(client, tenant_a, role):
    segment, kpi = factories.segment_of(tenant_a.tenant), _kpi(tenant_a)
    client.force_login(tenant_a.user(role))
    assert client.get(f"{KPIS}{kpi.pk}/").status_code == 200
    for response in (
        client.patch(f"{SEGMENTS}{segment.pk}/", {"description": "x"}, content_type="application/json"),
        client.patch(f"{KPIS}{kpi.pk}/", {"weight": "10"}, content_type="application/json"),
        client.post(KPIS, {"segment": segment.pk, "code": "x"}, content_type="application/json"),
    ):
        assert response.status_code == 403, response.content
        assert response.json()["code"] == "permission_denied"
    assert _reload(tenant_a, kpi).weight == kpi.weight


@pytest.mark.django_db
def test_segment_token_scopes(client, tenant_a):
    kpi = _kpi(tenant_a)
    read_only = bearer(tenant_a, "segments:read")
    assert client.get(KPIS, **read_only).status_code == 200
    response = client.patch(f"{KPIS}{kpi.pk}/", {"weight": "10"}, content_type="application/json", **read_only)
    assert response.status_code == 403
    assert client.get(SEGMENTS, **bearer(tenant_a, "accounts:read", "metrics:write")).status_code == 403
    writer = bearer(tenant_a, "segments:write")
    response = client.patch(f"{KPIS}{kpi.pk}/", {"weight": "10"}, content_type="application/json", **writer)
    assert response.status_code == 200 and response.json()["weight"] == "10.00"


# --- KPI definitions -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_kpis_list_with_filters_and_other_tenants_404(client, tenant_a, tenant_b):
    auth = bearer(tenant_a, "segments:read")
    insurer = factories.segment_of(tenant_a.tenant, "insurer")
    with context.tenant_context(tenant_a.tenant):
        insurer_kpis = sorted(KpiDefinition.objects.filter(segment=insurer).values_list("pk", flat=True))
    rows = client.get(KPIS, {"segment_code": "insurer", "page_size": 100}, **auth).json()["results"]
    assert [row["id"] for row in rows] == insurer_kpis and {row["segment_code"] for row in rows} == {"insurer"}
    rows = client.get(KPIS, {"segment": insurer.pk, "page_size": 100}, **auth).json()["results"]
    assert [row["id"] for row in rows] == insurer_kpis
    theirs = _kpi(tenant_b)
    assert client.get(f"{KPIS}{theirs.pk}/", **auth).status_code == 404
    patch = client.patch(
        f"{KPIS}{theirs.pk}/", {"weight": "1"}, content_type="application/json", **bearer(tenant_a, "segments:write")
    )
    assert patch.status_code == 404


@pytest.mark.django_db
def test_an_admin_edits_a_kpi_target_audited(client, tenant_a):
    kpi = _kpi(tenant_a)
    client.force_login(tenant_a.user(Role.ADMIN))
    body = {"comparator": "between", "target_low": "25", "target_high": "35", "target_text": "25-35 %"}
    response = client.patch(f"{KPIS}{kpi.pk}/", body, content_type="application/json")
    assert response.status_code == 200, response.content
    assert (response.json()["target_low"], response.json()["target_high"]) == ("25.0000", "35.0000")
    event = last_event(tenant_a.tenant)
    assert (event.action, event.object_id, event.after["comparator"]) == (
        "kpi_definition.update",
        str(kpi.pk),
        "between",
    )
    assert event.before["comparator"] == kpi.comparator


@pytest.mark.django_db
def test_kpi_edit_errors_name_the_field(client, tenant_a):
    kpi = _kpi(tenant_a)
    client.force_login(tenant_a.user(Role.ADMIN))
    url = f"{KPIS}{kpi.pk}/"
    cases = [
        ({"comparator": "between", "target_low": "40", "target_high": "30"}, "target_high", "below the lower"),
        ({"comparator": "lt", "target_high": None}, "target_high", "maximum is required"),
        ({"comparator": "most"}, "comparator", "valid choice"),
        ({"weight": "heavy"}, "weight", "number"),
        ({"sort_order": 3}, "sort_order", "cannot be edited"),
        ({"code": "renamed"}, "code", "cannot be edited"),
    ]
    for body, field, reason in cases:
        errors = _errors(client.patch(url, body, content_type="application/json"))
        assert field in errors and reason.lower() in errors[field].lower(), (body, errors)
    assert _event_count(tenant_a, "kpi_definition.update") == 0
    # Echoing the code and segment it already has is not an edit.
    response = client.patch(
        url, {"code": kpi.code, "segment": kpi.segment_id, "weight": "30"}, content_type="application/json"
    )
    assert response.status_code == 200, response.content


@pytest.mark.django_db
def test_an_admin_adds_a_tenant_kpi_audited(client, tenant_a, tenant_b):
    segment = factories.segment_of(tenant_a.tenant)
    auth = bearer(tenant_a, "segments:read", "segments:write")
    body = {
        "segment": segment.pk,
        "code": "wire_stp_rate",
        "name": "Wire straight-through rate",
        "target_text": "≥ 95 %",
        "unit": "%",
        "direction": "higher",
        "comparator": "gte",
        "target_low": "95",
        "weight": "20",
    }
    response = client.post(KPIS, body, content_type="application/json", **auth)
    assert response.status_code == 201, response.content
    created = response.json()
    assert (created["is_reference"], created["segment_code"], created["target_low"]) == (False, "bank", "95.0000")
    event = last_event(tenant_a.tenant)
    assert (event.action, event.object_id, event.after["code"]) == (
        "kpi_definition.create",
        str(created["id"]),
        "wire_stp_rate",
    )
    # It is nested in its segment from now on.
    nested = client.get(f"{SEGMENTS}{segment.pk}/", **auth).json()["kpis"]
    assert "wire_stp_rate" in [kpi["code"] for kpi in nested]

    cases = [
        (body, "code", "already has"),
        ({**body, "code": "x1", "target_low": None}, "target_low", "minimum is required"),
        ({**body, "code": "x2", "segment": factories.segment_of(tenant_b.tenant).pk}, "segment", "No such segment."),
        ({**body, "code": "not a slug"}, "code", "slug"),
        ({key: value for key, value in body.items() if key != "unit"}, "unit", "required"),
    ]
    for case, field, reason in cases:
        errors = _errors(client.post(KPIS, case, content_type="application/json", **auth))
        assert field in errors and reason.lower() in errors[field].lower(), (case, errors)
    assert _event_count(tenant_a, "kpi_definition.create") == 1


@pytest.mark.django_db
def test_the_kpi_list_is_a_fixed_number_of_queries(client, tenant_a):
    segment = factories.segment_of(tenant_a.tenant)

    def add(count: int) -> None:
        for index in range(count):
            KpiDefinition.objects.create(
                tenant=tenant_a.tenant,
                segment=segment,
                code=f"extra-{index}",
                name=f"Extra {index}",
                target_text="-",
                unit="%",
                direction="higher",
                comparator="gte",
                target_low=1,
            )

    # the token's tenant (lookup), token, membership, the KPIs page with its segment joined.
    assert _list_query_counts(client, tenant_a, KPIS, 500, add) == [4, 4]
