"""The reference data equals seed 000, value by value, parsed from the seed file itself."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings

from compliance.models import Framework
from cs_platform.tenancy import context
from journeys.models import JourneyTemplate
from segments import reference
from segments.models import KpiDefinition, Segment

# The suite must pass in a plain clone with nothing beside it, so it reads its own copy of seed 000;
# where the shared seeds are beside the clone (CI, a developer's checkout), the copy must equal them.
SEED_COPY = Path(__file__).with_name("seed_000.txt")
SHARED_SEEDS = Path(settings.BASE_DIR).parent / "shared" / "seeds"


def _seed_text() -> str:
    return SEED_COPY.read_text(encoding="utf-8")


@pytest.mark.skipif(not any(SHARED_SEEDS.glob("000_*.txt")), reason="no shared seeds beside this clone")
def test_the_copy_of_seed_000_is_the_shared_seed():
    [shared] = sorted(SHARED_SEEDS.glob("000_*.txt"))
    assert shared.read_text(encoding="utf-8") == _seed_text(), f"{SEED_COPY} differs from {shared}: copy it again"


def _section(text: str, heading: str, level: int = 3) -> str:
    marker = "#" * level + " " + heading
    start = text.index(marker) + len(marker)
    following = re.search(rf"\n#{{1,{level}}} ", text[start:])
    return text[start : start + following.start()] if following else text[start:]


def _bullets(block: str, label: str) -> list[str]:
    part = block.split(f"**{label}**:", 1)[1]
    part = re.split(r"\n\*\*[^*]+\*\*:", part, maxsplit=1)[0]
    return [line[2:].strip() for line in part.splitlines() if line.startswith("- ")]


def _parse_segments(text: str) -> dict[str, dict]:
    segments_block = _section(text, "Financial Services Customer Segments", level=2)
    parsed = {}
    for name in re.findall(r"^### (.+)$", segments_block, flags=re.M):
        block = _section(segments_block, name)
        metrics = []
        for line in _bullets(block, "Key Metrics"):
            match = re.fullmatch(r"(.+?) \(target: (.+)\)", line)
            assert match, line
            metrics.append((match.group(1), match.group(2)))
        factors = []
        for line in _bullets(block, "Success Factors"):
            match = re.fullmatch(r"\*\*(.+?)\*\*: (.+)", line)
            factors.append((match.group(1), match.group(2)))
        parsed[name] = {
            "characteristics": _bullets(block, "Characteristics"),
            "factors": factors,
            "metrics": metrics,
        }
    return parsed


def test_segments_kpis_and_targets_match_the_seed_verbatim():
    seed = _parse_segments(_seed_text())
    assert list(seed) == [s.name for s in reference.SEGMENTS]
    for spec in reference.SEGMENTS:
        expected = seed[spec.name]
        assert list(spec.characteristics) == expected["characteristics"]
        assert list(spec.success_factors) == expected["factors"]
        assert [(k.name, k.target_text) for k in spec.kpis] == expected["metrics"]


def _numbers(text: str) -> list[Decimal]:
    return [Decimal(n) for n in re.findall(r"\d+(?:\.\d+)?", text)]


def test_numeric_bands_are_the_numbers_the_seed_states():
    for spec in reference.SEGMENTS:
        for kpi in spec.kpis:
            stated = _numbers(kpi.target_text)
            band = [v for v in (kpi.target_low, kpi.target_high) if v is not None]
            if kpi.comparator == "top_quartile":
                assert stated == [] and kpi.target_low == Decimal("75")  # 75th percentile and above
            elif kpi.comparator == "between":
                assert band == stated, kpi  # "25-35%" -> 25..35
            elif kpi.comparator == "eq":
                assert stated == [Decimal("100")] and band == [Decimal("100"), Decimal("100")], kpi
            else:
                assert band == stated, kpi
            plus = "+" in kpi.target_text
            less = kpi.target_text.startswith("<")
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
    text = _section(_seed_text(), "Financial Services Customer Journey", level=2)
    phases = re.findall(r"^### (.+) Phase \((\d+)-(\d+) days\)$", text, flags=re.M)
    assert [(p.name, p.start_day, p.end_day) for p in reference.PHASES] == [
        (name, int(a), int(b)) for name, a, b in phases
    ]
    for spec, (name, a, b) in zip(reference.PHASES, phases, strict=True):
        block = _section(text, f"{name} Phase ({a}-{b} days)")
        assert list(spec.activities) == _bullets(block, "Key Activities")
        assert list(spec.criteria) == _bullets(block, "Success Criteria")
        assert spec.objective == re.search(r"\*\*Objective\*\*: (.+)", block).group(1)


def test_frameworks_cover_every_standard_the_seed_names():
    text = _seed_text()
    names = {f.name for f in reference.FRAMEWORKS}
    regulatory = re.findall(r"^- \*\*(.+?)\*\*:", _section(text, "Regulatory Environment"), flags=re.M)
    standards = re.findall(r"^- \*\*(.+?)\*\*:", _section(text, "Security and Compliance Standards"), flags=re.M)
    assert regulatory == ["SEC Regulations", "FINRA Rules", "State Regulations", "Federal Regulations"]
    for name in regulatory:
        assert name in names
    # "SOC 1/2" is one bullet in the seed and two frameworks here (separate reports, separate audits).
    expected = [n for s in standards for n in (["SOC 1", "SOC 2"] if s == "SOC 1/2" else [s])]
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
