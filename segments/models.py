"""Client segments and their KPI definitions (seed 000 reference data, editable per tenant)."""

from __future__ import annotations

from django.db import models

from cs_platform.tenancy.models import TenantOwned


class Segment(TenantOwned):
    code = models.SlugField(max_length=40)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    characteristics = models.JSONField(default=list, blank=True)
    # [{"name": "Regulatory Compliance", "description": "..."}]
    success_factors = models.JSONField(default=list, blank=True)
    sort_order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["sort_order", "name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "code"], name="segment_tenant_code_uniq")]

    def __str__(self) -> str:
        return self.name


class Direction(models.TextChoices):
    HIGHER_IS_BETTER = "higher", "Higher is better"
    LOWER_IS_BETTER = "lower", "Lower is better"


class Comparator(models.TextChoices):
    AT_LEAST = "gte", "At least"
    LESS_THAN = "lt", "Less than"
    EXACTLY = "eq", "Exactly"
    BETWEEN = "between", "Within band"
    TOP_QUARTILE = "top_quartile", "Top quartile"


class KpiDefinition(TenantOwned):
    """A segment's KPI: what is measured, in which unit, and the target band the seed states.

    `target_low`/`target_high` hold the band (e.g. 25-35 % reduction); `comparator` says how a value
    is judged against it; `target_text` keeps the seed's own wording for display and audit."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="kpis")
    code = models.SlugField(max_length=60)
    name = models.CharField(max_length=160)
    description = models.CharField(max_length=255, blank=True)
    target_text = models.CharField(max_length=255)
    unit = models.CharField(max_length=80)
    direction = models.CharField(max_length=10, choices=Direction.choices)
    comparator = models.CharField(max_length=15, choices=Comparator.choices)
    target_low = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    target_high = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    weight = models.DecimalField(max_digits=6, decimal_places=2, default=25)
    is_reference = models.BooleanField(default=False, help_text="Loaded from the reference framework.")
    sort_order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["segment", "sort_order", "name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "segment", "code"], name="kpidef_tenant_segment_code_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.target_text})"


class Scorecard(TenantOwned):
    """A segment's health scorecard: weighted measures (weights sum to 100) and the total's bands."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="scorecards")
    green_at = models.DecimalField(max_digits=5, decimal_places=2, default=70, help_text="Total >= this is green.")
    red_below = models.DecimalField(max_digits=5, decimal_places=2, default=50, help_text="Total < this is red.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "segment"], name="scorecard_tenant_segment_uniq")]

    def __str__(self) -> str:
        return f"Scorecard for {self.segment}"


class ScorecardMeasure(TenantOwned):
    """One measure of a scorecard. `measure` is a code of segments.health_model.MEASURES; its 0-100 score is
    banded with this measure's own thresholds."""

    scorecard = models.ForeignKey(Scorecard, on_delete=models.CASCADE, related_name="measures")
    measure = models.CharField(max_length=40)
    weight = models.DecimalField(max_digits=5, decimal_places=2)
    green_at = models.DecimalField(max_digits=5, decimal_places=2, default=75)
    red_below = models.DecimalField(max_digits=5, decimal_places=2, default=50)

    class Meta:
        ordering = ["scorecard", "-weight", "measure"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "scorecard", "measure"], name="scorecardmeasure_tenant_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.measure} ({self.weight}%)"
