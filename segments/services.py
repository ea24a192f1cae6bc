"""Writes for segments and KPI definitions, and the loading of the reference framework."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from cs_platform.audit.services import audit_record, model_snapshot
from cs_platform.tenancy import context
from segments.health_model import DEFAULT_WEIGHTS, GENERIC_WEIGHTS, MEASURES, MeasureConfig
from segments.models import Comparator, Direction, KpiDefinition, Scorecard, ScorecardMeasure, Segment


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
    elsewhere). Validates the band and records before/after. Segment and code are fixed: sent with
    their current values (a client echoing what it read) they are not an edit; other values are refused."""
    if "segment" in changes and getattr(changes["segment"], "pk", changes["segment"]) == kpi.segment_id:
        del changes["segment"]
    if "code" in changes and changes["code"] == kpi.code:
        del changes["code"]
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


# --- Health scorecards --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScorecardConfig:
    measures: tuple[MeasureConfig, ...]
    green_at: float
    red_below: float


def _default_measures(segment_code: str) -> dict[str, int]:
    return DEFAULT_WEIGHTS.get(segment_code, GENERIC_WEIGHTS)


def scorecard_defaults_ensure(*, tenant, actor=None) -> int:
    """Give every segment without a scorecard the default one (weights from segments.health_model).
    Idempotent; returns how many scorecards were created."""
    created = 0
    with transaction.atomic(), context.tenant_context(tenant):
        missing = list(Segment.objects.filter(scorecards__isnull=True))
        for segment in missing:
            card = Scorecard.objects.create(tenant=tenant, segment=segment)
            ScorecardMeasure.objects.bulk_create(
                ScorecardMeasure(tenant=tenant, scorecard=card, measure=measure, weight=Decimal(weight))
                for measure, weight in _default_measures(segment.code).items()
            )
            created += 1
        if created:
            audit_record(
                tenant=tenant,
                actor=actor,
                action="scorecard.defaults",
                object_type="segments.scorecard",
                after={"segments": [s.code for s in missing]},
            )
    return created


def scorecards_for_scoring(*, tenant) -> dict[int, ScorecardConfig]:
    """{segment_id: ScorecardConfig} for the current tenant, defaults created where missing (2 queries)."""
    scorecard_defaults_ensure(tenant=tenant)
    configs: dict[int, ScorecardConfig] = {}
    for card in Scorecard.objects.prefetch_related("measures"):
        configs[card.segment_id] = ScorecardConfig(
            measures=tuple(
                MeasureConfig(m.measure, float(m.weight), float(m.green_at), float(m.red_below))
                for m in card.measures.all()
            ),
            green_at=float(card.green_at),
            red_below=float(card.red_below),
        )
    return configs


_CENTS = Decimal("0.01")


def _threshold_errors(prefix: str, green_at: Any, red_below: Any) -> dict[str, str]:
    errors: dict[str, str] = {}
    for name, value in (("green_at", green_at), ("red_below", red_below)):
        try:
            number = Decimal(str(value))
        except (InvalidOperation, ValueError):
            errors[f"{prefix}{name}"] = f"{value!r} is not a number."
            continue
        if not number.is_finite():  # NaN cannot even be compared with 0 and 100
            errors[f"{prefix}{name}"] = f"{value!r} is not a finite number."
            continue
        if not Decimal(0) <= number <= Decimal(100):
            errors[f"{prefix}{name}"] = f"{value} is outside 0-100."
        elif number != number.quantize(_CENTS):  # the column keeps two decimals: 33.333 would be stored 33.33
            errors[f"{prefix}{name}"] = f"{value}: use at most 2 decimal places."
    if not errors and Decimal(str(red_below)) > Decimal(str(green_at)):
        errors[f"{prefix}red_below"] = f"The red threshold ({red_below}) is above the green one ({green_at})."
    return errors


@transaction.atomic
def scorecard_update(
    *,
    tenant,
    scorecard: Scorecard,
    measures: list[dict[str, Any]],
    green_at: Any = None,
    red_below: Any = None,
    actor=None,
) -> Scorecard:
    """Replace a scorecard's measures. Rejected, naming the field, when a measure is unknown or
    repeated, a weight is negative, the weights do not sum to 100, or a threshold is outside 0-100."""
    errors: dict[str, str] = {}
    seen: set[str] = set()
    total = Decimal(0)
    for index, item in enumerate(measures):
        code = item.get("measure")
        if code not in MEASURES:
            errors[f"measures[{index}].measure"] = f"Unknown measure {code!r}; known: {', '.join(sorted(MEASURES))}."
        elif code in seen:
            errors[f"measures[{index}].measure"] = f"Measure {code!r} is listed twice."
        seen.add(code)
        try:
            weight = Decimal(str(item.get("weight")))
            if not weight.is_finite():
                raise InvalidOperation
            if weight < 0:
                errors[f"measures[{index}].weight"] = "A weight cannot be negative."
            elif weight != weight.quantize(_CENTS):
                errors[f"measures[{index}].weight"] = "Use at most 2 decimal places."
            total += weight
        except (InvalidOperation, ValueError):
            errors[f"measures[{index}].weight"] = f"{item.get('weight')!r} is not a number."
        errors.update(_threshold_errors(f"measures[{index}].", item.get("green_at", 75), item.get("red_below", 50)))
    if not any(key.endswith(".weight") for key in errors) and total != Decimal(100):
        errors["weights"] = f"The weights add up to {total.normalize():f}, not 100."
    green = scorecard.green_at if green_at is None else green_at
    red = scorecard.red_below if red_below is None else red_below
    errors.update(_threshold_errors("", green, red))
    if errors:
        raise ValidationError(errors)
    with context.tenant_context(tenant):
        old_measures = [{"measure": m.measure, "weight": str(m.weight)} for m in scorecard.measures.all()]
        before = {"green_at": str(scorecard.green_at), "red_below": str(scorecard.red_below), "measures": old_measures}
        scorecard.green_at, scorecard.red_below = Decimal(str(green)), Decimal(str(red))
        scorecard.save()
        scorecard.measures.all().delete()
        ScorecardMeasure.objects.bulk_create(
            ScorecardMeasure(
                tenant=tenant,
                scorecard=scorecard,
                measure=item["measure"],
                weight=Decimal(str(item["weight"])),
                green_at=Decimal(str(item.get("green_at", 75))),
                red_below=Decimal(str(item.get("red_below", 50))),
            )
            for item in measures
        )
        audit_record(
            tenant=tenant,
            actor=actor,
            action="scorecard.update",
            obj=scorecard,
            before=before,
            after={
                "green_at": str(green),
                "red_below": str(red),
                "measures": [{"measure": i["measure"], "weight": str(i["weight"])} for i in measures],
            },
        )
    return scorecard


# --- Segment descriptions and tenant KPIs (REST API) ------------------------------------------------------
SEGMENT_FIELDS = {"name", "description", "characteristics", "success_factors", "sort_order"}


def _strings_error(value: Any) -> str | None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        return "Expected a list of strings."
    return None


def _success_factors_error(value: Any) -> str | None:
    if not isinstance(value, list) or not all(
        isinstance(item, dict)
        and set(item) <= {"name", "description"}
        and isinstance(item.get("name"), str)
        and isinstance(item.get("description", ""), str)
        for item in value
    ):
        return 'Expected a list of {"name", "description"} objects.'
    return None


@transaction.atomic
def segment_update(*, tenant, segment: Segment, actor=None, **changes: Any) -> Segment:
    """Edit a segment's descriptive fields (name, description, characteristics, success factors,
    display order). The code is not editable: scorecard defaults, reference loading and the CSV
    import find a segment by it."""
    unknown = set(changes) - SEGMENT_FIELDS
    if unknown:
        raise ValidationError({field: "This field cannot be edited." for field in sorted(unknown)})
    errors = {}
    if "characteristics" in changes and (message := _strings_error(changes["characteristics"])):
        errors["characteristics"] = message
    if "success_factors" in changes and (message := _success_factors_error(changes["success_factors"])):
        errors["success_factors"] = message
    if errors:
        raise ValidationError(errors)
    with context.tenant_context(tenant):
        before = model_snapshot(segment)
        for name, value in changes.items():
            setattr(segment, name, value)
        segment.full_clean(exclude=["tenant"], validate_unique=False)
        segment.save()
        audit_record(
            tenant=tenant,
            actor=actor,
            action="segment.update",
            obj=segment,
            before=before,
            after=model_snapshot(segment),
        )
    return segment


KPI_CREATE_FIELDS = {
    "code",
    "name",
    "description",
    "target_text",
    "unit",
    "direction",
    "comparator",
    "target_low",
    "target_high",
    "weight",
    "sort_order",
}


@transaction.atomic
def kpi_definition_create(*, tenant, segment: Segment, actor=None, **fields: Any) -> KpiDefinition:
    """Add a tenant's own KPI to a segment (not from the reference framework: is_reference False).
    Validated as kpi_definition_update validates an edit (the band against the comparator), plus a
    code unique within the segment."""
    unknown = set(fields) - KPI_CREATE_FIELDS
    if unknown:
        raise ValidationError({field: "Unknown field." for field in sorted(unknown)})
    with context.tenant_context(tenant):
        if segment.tenant_id != tenant.pk:
            raise ValidationError({"segment": "Unknown segment."})
        kpi = KpiDefinition(tenant=tenant, segment=segment, is_reference=False, **fields)
        _validate_band(
            comparator=kpi.comparator, direction=kpi.direction, target_low=kpi.target_low, target_high=kpi.target_high
        )
        kpi.full_clean(exclude=["tenant", "segment"], validate_unique=False)
        if KpiDefinition.objects.filter(segment=segment, code=kpi.code).exists():
            raise ValidationError({"code": f"The segment already has a KPI with the code “{kpi.code}”."})
        kpi.save()
        audit_record(tenant=tenant, actor=actor, action="kpi_definition.create", obj=kpi, after=model_snapshot(kpi))
    return kpi
