"""Segments and KPI definitions filter like every other list (django-filter): by code, by name (contains,
any case), and KPIs by segment code, direction, comparator, unit and origin. A bad choice is a 400 naming
the parameter, never an ignored filter."""

from __future__ import annotations

import pytest

from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from segments.models import KpiDefinition, Segment
from tests.api.helpers import bearer, field_errors, result_ids

SEGMENTS = "/api/v1/segments/"
KPIS = "/api/v1/kpis/"


def _ids(client, url: str, auth: dict, **params) -> list[int]:
    return result_ids(client.get(url, {"page_size": 500, **params}, **auth))


def _db(world, model, **filters) -> list[int]:
    with context.tenant_context(world.tenant):
        return sorted(model.objects.filter(**filters).values_list("pk", flat=True))


@pytest.mark.django_db
def test_segments_filter_by_code_name_and_kpi_code(client, tenant_a, tenant_b):
    auth = bearer(tenant_a, "segments:read")
    with context.tenant_context(tenant_a.tenant):
        segments = list(Segment.objects.order_by("pk"))
        insurer = Segment.objects.get(code="insurer")
        kpi = KpiDefinition.objects.filter(segment=insurer).order_by("pk").first()
    assert len(segments) >= 4  # the seed's four segments: a filter must narrow them

    assert _ids(client, SEGMENTS, auth, code="insurer") == [insurer.pk]
    assert _ids(client, SEGMENTS, auth, code="nope") == []
    # Part of one name, in another case: contains, any case.
    fragment = insurer.name.split()[0][1:].upper()
    expected = [s.pk for s in segments if fragment.lower() in s.name.lower()]
    assert insurer.pk in expected and len(expected) < len(segments)
    assert sorted(_ids(client, SEGMENTS, auth, name=fragment)) == expected
    # Segments tracking a KPI code, each once however many of its KPIs match.
    with_kpi = _db(tenant_a, Segment, kpis__code=kpi.code)
    assert sorted(_ids(client, SEGMENTS, auth, kpi_code=kpi.code)) == sorted(set(with_kpi))
    assert len(_ids(client, SEGMENTS, auth, kpi_code=kpi.code)) == len(set(with_kpi))
    # Filters combine with the ordering.
    both = _ids(client, SEGMENTS, auth, name=fragment, ordering="-name")
    assert sorted(both) == expected


@pytest.mark.django_db
def test_kpis_filter_by_code_name_segment_direction_comparator_unit_and_origin(client, tenant_a):
    auth = bearer(tenant_a, "segments:read")
    with context.tenant_context(tenant_a.tenant):
        everything = list(KpiDefinition.objects.select_related("segment").order_by("pk"))
    assert len(everything) > 4
    sample = everything[0]

    def check(params: dict, expected: list[int]) -> None:
        assert 0 < len(expected) < len(everything), (params, "pick a value that narrows the list")
        assert sorted(_ids(client, KPIS, auth, **params)) == expected, params

    check({"code": sample.code}, _db(tenant_a, KpiDefinition, code=sample.code))
    fragment = sample.name.split()[0].upper()
    check({"name": fragment}, _db(tenant_a, KpiDefinition, name__icontains=fragment))
    check({"segment_code": sample.segment.code}, _db(tenant_a, KpiDefinition, segment__code=sample.segment.code))
    check({"direction": "lower"}, _db(tenant_a, KpiDefinition, direction="lower"))
    check({"comparator": sample.comparator}, _db(tenant_a, KpiDefinition, comparator=sample.comparator))
    check({"unit": sample.unit.upper()}, _db(tenant_a, KpiDefinition, unit__iexact=sample.unit))
    check(
        {"segment_code": sample.segment.code, "direction": sample.direction},
        _db(tenant_a, KpiDefinition, segment__code=sample.segment.code, direction=sample.direction),
    )
    from decimal import Decimal

    from segments.services import kpi_definition_create

    own = kpi_definition_create(
        tenant=tenant_a.tenant,
        segment=sample.segment,
        actor=tenant_a.user(Role.ADMIN),
        code="wire_stp_rate",
        name="Wire straight-through rate",
        target_text="At least 95 %",
        unit="%",
        direction="higher",
        comparator="gte",
        target_low=Decimal("95"),
    )
    assert _ids(client, KPIS, auth, is_reference="false") == [own.pk]
    assert sorted(_ids(client, KPIS, auth, is_reference="true")) == [k.pk for k in everything if k.is_reference]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "params", "field"),
    [(KPIS, {"direction": "sideways"}, "direction"), (KPIS, {"comparator": "gt"}, "comparator")],
)
def test_a_bad_choice_is_a_400_on_the_parameter(client, tenant_a, url, params, field):
    response = client.get(url, params, **bearer(tenant_a, "segments:read"))
    assert response.status_code == 400
    assert list(field_errors(response)) == [field]


@pytest.mark.django_db
def test_the_schema_documents_the_filters(client):
    paths = client.get("/api/schema/?format=json").json()["paths"]
    segment_params = {p["name"] for p in paths[SEGMENTS]["get"]["parameters"]}
    assert {"code", "name", "kpi_code", "ordering"} <= segment_params
    kpi_params = {p["name"] for p in paths[KPIS]["get"]["parameters"]}
    assert {"code", "name", "segment", "segment_code", "direction", "comparator", "unit", "is_reference"} <= kpi_params
