"""Reads of segments and their health scorecards, within the current tenant."""

from __future__ import annotations

from segments.models import KpiDefinition, Scorecard, Segment


def scorecards_overview() -> list[Scorecard]:
    """Every scorecard of the current tenant with its segment and measures (two queries)."""
    return list(Scorecard.objects.select_related("segment").prefetch_related("measures").order_by("segment__name"))


def scorecard_for_edit(scorecard_id: int) -> Scorecard | None:
    """One scorecard of the current tenant with its segment and measures, or None (another tenant's
    scorecard does not exist here: the tenant manager and Row-Level Security both filter it out)."""
    return Scorecard.objects.select_related("segment").prefetch_related("measures").filter(pk=scorecard_id).first()


def segments_with_kpis():
    """Every segment of the current tenant with its KPI definitions (two queries: segments, KPIs)."""
    from django.db.models import Prefetch

    kpis = KpiDefinition.objects.order_by("sort_order", "name", "pk")
    return Segment.objects.prefetch_related(Prefetch("kpis", queryset=kpis))


def kpi_definitions():
    """Every KPI definition of the current tenant, segment joined (one query)."""

    return KpiDefinition.objects.select_related("segment")
