"""Setting a tenant up: the tenant row and seed 000's reference data. Each write records an audit event
in the new tenant's chain."""

from __future__ import annotations

from django.db import transaction

from compliance.models import Framework, Requirement
from cs_platform.audit.services import audit_record, model_snapshot
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Tenant
from journeys.models import JourneyTemplate, Phase, PhaseActivity, SuccessCriterion
from segments import reference
from segments.models import KpiDefinition, Segment
from segments.services import scorecard_defaults_ensure


@transaction.atomic
def tenant_create(
    *, name: str, slug: str, time_zone: str = "UTC", actor=None, load_reference_data: bool = True
) -> Tenant:
    """Create a tenant and load the financial-services reference data (segments, KPI targets,
    journey template, compliance frameworks) into it, so every tenant starts from seed 000."""
    tenant = Tenant(name=name, slug=slug, time_zone=time_zone)
    tenant.full_clean()
    tenant.save()
    with context.tenant_context(tenant):
        audit_record(tenant=tenant, actor=actor, action="tenant.create", obj=tenant, after=model_snapshot(tenant))
        if load_reference_data:
            reference_data_load(tenant=tenant, actor=actor)
    return tenant


@transaction.atomic
def reference_data_load(*, tenant, actor=None) -> dict[str, int]:
    """Load seed 000's segments, KPI targets, journey template and compliance frameworks into a tenant.

    Idempotent: rows that already exist (by their natural key) are left as the tenant edited them.
    Records one audit event with the counts created, rather than hundreds of near-identical ones."""
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
        scorecard_defaults_ensure(tenant=tenant, actor=actor)
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
