"""Writes for segments and KPI definitions, and the loading of the reference framework."""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction

from cs_platform.audit.services import audit_record, model_snapshot
from cs_platform.tenancy import context
from segments import reference
from segments.models import Comparator, Direction, KpiDefinition, Segment


@transaction.atomic
def reference_data_load(*, tenant, actor=None) -> dict[str, int]:
    """Load seed 000's segments, KPI targets, journey template and compliance frameworks into a tenant.

    Idempotent: rows that already exist (by their natural key) are left as the tenant edited them.
    Records one audit event with the counts created, rather than hundreds of near-identical ones."""
    from compliance.models import Framework, Requirement
    from journeys.models import JourneyTemplate, Phase, PhaseActivity, SuccessCriterion

    created = {"segments": 0, "kpis": 0, "phases": 0, "frameworks": 0, "requirements": 0}
    with context.tenant_context(tenant):
        for order, spec in enumerate(reference.SEGMENTS):
            segment, made = Segment.objects.get_or_create(
                code=spec.code,
                defaults={
                    "tenant": tenant,
                    "name": spec.name,
                    "characteristics": list(spec.characteristics),
                    "success_factors": [{"name": n, "description": d} for n, d in spec.success_factors],
                    "sort_order": order,
                },
            )
            created["segments"] += made
            for kpi_order, kpi in enumerate(spec.kpis):
                _, made = KpiDefinition.objects.get_or_create(
                    segment=segment,
                    code=kpi.code,
                    defaults={
                        "tenant": tenant,
                        "name": kpi.name,
                        "target_text": kpi.target_text,
                        "unit": kpi.unit,
                        "direction": kpi.direction,
                        "comparator": kpi.comparator,
                        "target_low": kpi.target_low,
                        "target_high": kpi.target_high,
                        "weight": kpi.weight,
                        "is_reference": True,
                        "sort_order": kpi_order,
                    },
                )
                created["kpis"] += made
        template, made = JourneyTemplate.objects.get_or_create(
            name=reference.JOURNEY_NAME,
            defaults={
                "tenant": tenant,
                "is_default": True,
                "is_reference": True,
                "description": "Seed 000: the three phases of a financial-services client journey.",
            },
        )
        if made:
            for order, spec in enumerate(reference.PHASES, start=1):
                phase = Phase.objects.create(
                    tenant=tenant,
                    template=template,
                    order=order,
                    name=spec.name,
                    objective=spec.objective,
                    start_day=spec.start_day,
                    end_day=spec.end_day,
                )
                PhaseActivity.objects.bulk_create(
                    PhaseActivity(tenant=tenant, phase=phase, order=i, text=t) for i, t in enumerate(spec.activities, 1)
                )
                SuccessCriterion.objects.bulk_create(
                    SuccessCriterion(tenant=tenant, phase=phase, order=i, text=t)
                    for i, t in enumerate(spec.criteria, 1)
                )
                created["phases"] += 1
        for spec in reference.FRAMEWORKS:
            framework, made = Framework.objects.get_or_create(
                code=spec.code,
                defaults={"tenant": tenant, "name": spec.name, "description": spec.description, "is_reference": True},
            )
            created["frameworks"] += made
            for code, title in spec.requirements:
                _, made = Requirement.objects.get_or_create(
                    framework=framework, code=code, defaults={"tenant": tenant, "title": title}
                )
                created["requirements"] += made
        if any(created.values()):
            audit_record(
                tenant=tenant,
                actor=actor,
                action="reference_data.load",
                object_type="tenancy.tenant",
                object_id=tenant.pk,
                after=created,
            )
    return created


def _validate_band(*, comparator: str, direction: str, target_low, target_high) -> None:
    errors = {}
    if comparator not in Comparator.values:
        errors["comparator"] = f"Unknown comparator {comparator!r}."
    if direction not in Direction.values:
        errors["direction"] = f"Unknown direction {direction!r}."
    if comparator in ("gte", "top_quartile") and target_low is None:
        errors["target_low"] = "A minimum is required for an 'at least' target."
    if comparator == "lt" and target_high is None:
        errors["target_high"] = "A maximum is required for a 'less than' target."
    if comparator in ("between", "eq") and (target_low is None or target_high is None):
        errors["target_low"] = "Both ends of the band are required."
    if target_low is not None and target_high is not None and Decimal(target_low) > Decimal(target_high):
        errors["target_high"] = "The upper end of the band is below the lower end."
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def kpi_definition_update(*, tenant, kpi: KpiDefinition, actor=None, **changes) -> KpiDefinition:
    """Edit a KPI's target band, wording or weight for one tenant (the reference stays as loaded
    elsewhere). Validates the band and records before/after."""
    allowed = {
        "name",
        "description",
        "target_text",
        "unit",
        "direction",
        "comparator",
        "target_low",
        "target_high",
        "weight",
    }
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationError({field: "This field cannot be edited." for field in sorted(unknown)})
    with context.tenant_context(tenant):
        before = model_snapshot(kpi)
        for name, value in changes.items():
            setattr(kpi, name, value)
        _validate_band(
            comparator=kpi.comparator, direction=kpi.direction, target_low=kpi.target_low, target_high=kpi.target_high
        )
        kpi.full_clean(exclude=["tenant", "segment"])
        kpi.save()
        audit_record(
            tenant=tenant,
            actor=actor,
            action="kpi_definition.update",
            obj=kpi,
            before=before,
            after=model_snapshot(kpi),
        )
    return kpi
