"""Nightly per-segment figures, so portfolio pages for whole-tenant readers do not aggregate every
account on each request."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from cs_platform.tenancy.models import TenantOwned


class SegmentSnapshot(TenantOwned):
    """One segment's scorecard over every account of the tenant on one day, written by the nightly run
    after health (dashboards.services.segment_snapshots_compute) with the same selector the pages use
    for restricted books, so both paths give the same numbers.

    figures: dashboards.selectors.SegmentSummary as JSON (counts, ARR as text, bands, NPS/CSAT,
    audits, and per KPI: accounts reporting, mean of latest values, accounts on target, trend)."""

    segment = models.ForeignKey("segments.Segment", on_delete=models.CASCADE, related_name="+")
    snapshot_date = models.DateField()
    figures = models.JSONField(default=dict)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-snapshot_date"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "segment", "snapshot_date"], name="segmentsnap_tenant_day_uniq")
        ]
        indexes = [models.Index(fields=["tenant", "snapshot_date"], name="segmentsnap_tenant_day_idx")]
