"""Writes of the observability app. A heartbeat is a fact about the deployment, not a change to any
tenant's data, so it records no audit event (it would add one to no tenant's chain every minute)."""

from __future__ import annotations

import datetime

from django.utils import timezone

from cs_platform.observability.models import Heartbeat


def heartbeat_record(*, name: str, at: datetime.datetime | None = None) -> Heartbeat:
    """Upsert the heartbeat `name` to `at` (now). One statement (INSERT ... ON CONFLICT on PostgreSQL)."""
    at = at or timezone.now()
    beat, _ = Heartbeat.objects.update_or_create(name=name, defaults={"at": at})
    return beat
