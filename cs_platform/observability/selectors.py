"""Reads of the observability app."""

from __future__ import annotations

from django.utils import timezone

from cs_platform.observability.models import Heartbeat

BEAT = "beat"


def heartbeat_age_seconds(name: str = BEAT) -> float | None:
    """Seconds since the heartbeat `name` was last recorded; None if it never was. One query."""
    at = Heartbeat.objects.filter(name=name).values_list("at", flat=True).first()
    return None if at is None else max(0.0, (timezone.now() - at).total_seconds())
