"""Reads of measurements and health snapshots, within the user's visible accounts."""

from __future__ import annotations

import datetime

from django.db.models import QuerySet

from accounts.selectors import visible_accounts
from metrics.models import HealthSnapshot, KpiMeasurement


def kpi_series(user, *, account_id: int, kpi_id: int, since: datetime.date, membership=None) -> list[dict]:
    """One KPI's time series for one visible account, as plain dicts for charts (one query)."""
    rows = (
        KpiMeasurement.objects.filter(
            account__in=visible_accounts(user, membership), account_id=account_id, kpi_id=kpi_id, measured_on__gte=since
        )
        .order_by("measured_on")
        .values_list("measured_on", "value")
    )
    return [{"date": day.isoformat(), "value": float(value)} for day, value in rows]


def latest_health(user, *, on: datetime.date, membership=None) -> QuerySet[HealthSnapshot]:
    return HealthSnapshot.objects.filter(
        account__in=visible_accounts(user, membership), snapshot_date=on
    ).select_related("account")
