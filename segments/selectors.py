"""Reads of segments and their health scorecards, within the current tenant."""

from __future__ import annotations

from segments.models import Scorecard


def scorecards_overview() -> list[Scorecard]:
    """Every scorecard of the current tenant with its segment and measures (two queries)."""
    return list(Scorecard.objects.select_related("segment").prefetch_related("measures").order_by("segment__name"))


def scorecard_for_edit(scorecard_id: int) -> Scorecard | None:
    """One scorecard of the current tenant with its segment and measures, or None (another tenant's
    scorecard does not exist here: the tenant manager and Row-Level Security both filter it out)."""
    return Scorecard.objects.select_related("segment").prefetch_related("measures").filter(pk=scorecard_id).first()
