"""The nightly-run readiness check: every tenant's last successful nightly run is recent."""

from __future__ import annotations

import dataclasses
import datetime

from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils import timezone
from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable

from monitoring.selectors import TenantNightly, nightly_run_ages


def stale_tenants(rows: list[TenantNightly], now: datetime.datetime, limit: datetime.timedelta) -> list[TenantNightly]:
    """Tenants whose last finished nightly run is older than `limit`; a tenant that never had one counts
    once it has existed that long (a tenant created this afternoon has its first run tonight)."""
    return [row for row in rows if (row.last_done or row.created_at) < now - limit]


@dataclasses.dataclass
class NightlyRunAge(HealthCheck):
    """Fails when any tenant's last finished nightly run is older than READINESS_NIGHTLY_MAX_AGE_HOURS
    (default 30: a run every 24 h, due at 02:00 local, dispatched every 15 minutes, with hours to spare
    for retries). Public output is a count; the tenants are in the log and /metrics."""

    timeout = datetime.timedelta(seconds=5)

    async def run(self):
        try:
            rows = await sync_to_async(nightly_run_ages, thread_sensitive=True)()
        except Exception as exc:
            raise ServiceUnavailable("nightly runs unreadable") from exc
        limit = datetime.timedelta(hours=settings.READINESS_NIGHTLY_MAX_AGE_HOURS)
        stale = stale_tenants(rows, timezone.now(), limit)
        if stale:
            import logging

            logging.getLogger(__name__).warning(
                "nightly runs stale for tenants %s", ", ".join(f"{row.slug} (id {row.tenant_id})" for row in stale)
            )
            raise ServiceUnavailable(
                f"{len(stale)} of {len(rows)} tenants have no nightly run finished in the last "
                f"{settings.READINESS_NIGHTLY_MAX_AGE_HOURS} h"
            )
