"""The reference data equals seed 000, value by value: the seed's facts are kept in seed_000_facts.py, so
the suite needs nothing outside the repository."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from compliance.models import Framework
from cs_platform.tenancy import context
from journeys.models import JourneyTemplate
from segments import reference
from segments.models import KpiDefinition, Segment
from tests.segments import seed_000_facts as seed


def test_segments_kpis_and_targets_match_the_seed_verbatim():
    assert [s.name for s in reference.SEGMENTS] == [s.name for s in seed.SEGMENTS]
    for spec, expected in zip(reference.SEGMENTS, seed.SEGMENTS, strict=True):
        assert tuple(spec.characteristics) == expected.characteristics
        assert tuple(spec.success_factors) == expected.success_factors
        assert tuple((k.name, k.target_text) for k in spec.kpis) == expected.key_metrics


def _numbers(text: str) -> list[Decimal]:
    return [Decimal(n) for n in re.findall(r"\d+(?:\.\d+)?", text)]


def test_numeric_bands_are_the_numbers_the_seed_states():
    for spec, expected in zip(reference.SEGMENTS, seed.SEGMENTS, strict=True):
        for kpi, (_, target) in zip(spec.kpis, expected.key_metrics, strict=True):
            stated = _numbers(target)
            band = [v for v in (kpi.target_low, kpi.target_high) if v is not None]
            if kpi.comparator == "top_quartile":
                assert stated == [] and kpi.target_low == Decimal("75")  # 75th percentile and above
            elif kpi.comparator == "between":
                assert band == stated, kpi  # "25-35%" -> 25..35
            elif kpi.comparator == "eq":
                assert stated == [Decimal("100")] and band == [Decimal("100"), Decimal("100")], kpi
            else:
                assert band == stated, kpi
            plus = "+" in target
            less = target.startswith("<")
            assert (kpi.comparator == "gte") == plus, kpi
            assert (kpi.comparator == "lt") == less, kpi
            assert kpi.direction == ("lower" if less else "higher"), kpi


@pytest.mark.parametrize(
    ("segment", "kpi", "comparator", "low", "high"),
    [
        ("insurer", "Customer retention rates", "gte", "95", None),
        ("wealth", "Client retention rates", "gte", "98", None),
        ("fintech", "Integration deployment speed", "lt", None, "45"),
        ("bank", "Compliance audit success rate", "eq", "100", "100"),
        ("bank", "Risk reduction achievement", "between", "25", "35"),
    ],
)
def test_headline_targets(segment, kpi, comparator, low, high):
    spec = next(s for s in reference.SEGMENTS if s.code == segment)
    found = next(k for k in spec.kpis if k.name == kpi)
    assert (found.comparator, found.target_low, found.target_high) == (
        comparator,
        Decimal(low) if low else None,
        Decimal(high) if high else None,
    )


def test_journey_phases_match_the_seed():
    assert [(p.name, p.start_day, p.end_day) for p in reference.PHASES] == [
        (p.name, p.start_day, p.end_day) for p in seed.PHASES
    ]
    for spec, expected in zip(reference.PHASES, seed.PHASES, strict=True):
        assert tuple(spec.activities) == expected.activities
        assert tuple(spec.criteria) == expected.criteria
        assert spec.objective == expected.objective


def test_frameworks_cover_every_standard_the_seed_names():
    names = {f.name for f in reference.FRAMEWORKS}
    for name in seed.REGULATIONS:
        assert name in names, name
    # "SOC 1/2" is one bullet in the seed and two frameworks here (separate reports, separate audits).
    expected = [n for s in seed.SECURITY_STANDARDS for n in (["SOC 1", "SOC 2"] if s == "SOC 1/2" else [s])]
    for name in expected:
        assert name in names, name


@pytest.mark.django_db
def test_a_new_tenant_gets_the_reference_data_loaded_by_the_service(tenant_a):
    with context.tenant_context(tenant_a.tenant):
        loaded = {
            s.code: [
                (k.name, k.target_text, k.comparator, k.target_low, k.target_high, k.unit, k.direction)
                for k in s.kpis.order_by("sort_order")
            ]
            for s in Segment.objects.prefetch_related("kpis")
        }
        template = JourneyTemplate.objects.get(is_default=True)
        phases = [
            (p.name, p.start_day, p.end_day, [a.text for a in p.activities.all()], [c.text for c in p.criteria.all()])
            for p in template.phases.prefetch_related("activities", "criteria")
        ]
        frameworks = set(Framework.objects.values_list("name", flat=True))
        assert KpiDefinition.objects.filter(is_reference=True).count() == 16
    for spec in reference.SEGMENTS:
        assert loaded[spec.code] == [
            (k.name, k.target_text, k.comparator, k.target_low, k.target_high, k.unit, k.direction) for k in spec.kpis
        ]
    assert phases == [(p.name, p.start_day, p.end_day, list(p.activities), list(p.criteria)) for p in reference.PHASES]
    assert frameworks == {f.name for f in reference.FRAMEWORKS}


@pytest.mark.django_db
def test_reference_data_is_editable_per_tenant_without_touching_others(tenant_a, tenant_b):
    from segments.services import kpi_definition_update

    with context.tenant_context(tenant_a.tenant):
        kpi = KpiDefinition.objects.get(segment__code="insurer", code="policy_renewal")
    kpi_definition_update(tenant=tenant_a.tenant, kpi=kpi, target_low=Decimal("97"), target_text="97%+ policy renewal")
    with context.tenant_context(tenant_b.tenant):
        other = KpiDefinition.objects.get(segment__code="insurer", code="policy_renewal")
    assert other.target_low == Decimal("95")
    with context.tenant_context(tenant_a.tenant):
        kpi.refresh_from_db()
    assert kpi.target_low == Decimal("97")


@pytest.mark.django_db
def test_an_inverted_band_is_refused_with_a_field_error(tenant_a):
    from django.core.exceptions import ValidationError

    from segments.services import kpi_definition_update

    with context.tenant_context(tenant_a.tenant):
        kpi = KpiDefinition.objects.get(segment__code="bank", code="risk_reduction")
    with pytest.raises(ValidationError) as raised:
        kpi_definition_update(tenant=tenant_a.tenant, kpi=kpi, target_low=Decimal("40"), target_high=Decimal("30"))
    assert raised.value.message_dict == {"target_high": ["The upper end of the band is below the lower end."]}
