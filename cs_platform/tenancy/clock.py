"""The tenant's calendar: one answer to "what day is it?" for pages, the API, services and the nightly job.

A tenant's day is its own time zone's date, not the server's: "overdue", "not in the future" and "today's
snapshot" must mean the same thing on every page, in every API answer and in the night's run, wherever
the server runs. Everything that needs today's date for a tenant calls tenant_today().
"""

from __future__ import annotations

import datetime
import zoneinfo

from django.utils import timezone


def tenant_zone(tenant) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(tenant.time_zone)


def tenant_today(tenant, *, now: datetime.datetime | None = None) -> datetime.date:
    """The date in the tenant's time zone at `now` (default: this instant)."""
    return (now or timezone.now()).astimezone(tenant_zone(tenant)).date()
