"""Cross-tenant operations reads: aggregates for /readyz and /metrics, never tenant content.

On PostgreSQL each is one call of a SECURITY DEFINER lookup (monitoring migration 0001); on SQLite (the
demo, no RLS) the same rows through the models' plain managers."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.db.models import Count, Max, Min, OuterRef, Subquery

from cs_platform.outbox import UNFINISHED
from cs_platform.tenancy import system
from cs_platform.tenancy.models import Tenant
from metrics.models import NightlyRun, RunStatus
from scorecards.models import ScorecardDelivery
from webhooks.models import WebhookDelivery


@dataclass(frozen=True)
class TenantNightly:
    tenant_id: int
    slug: str
    created_at: datetime.datetime
    last_done: datetime.datetime | None


@dataclass(frozen=True)
class Backlog:
    kind: str  # scorecard_email | webhook
    status: str
    waiting: int
    oldest: datetime.datetime | None


def nightly_run_ages() -> list[TenantNightly]:
    """Every tenant with the finish time of its last successful nightly run (None: never). One query."""
    if system.uses_database_lookups():
        return [TenantNightly(*row) for row in system.lookup_rows("cs_nightly_run_ages")]
    last = (
        NightlyRun._plain.filter(tenant_id=OuterRef("pk"), status=RunStatus.DONE)
        .values("tenant_id")
        .annotate(last=Max("finished_at"))
        .values("last")
    )
    rows = Tenant.objects.order_by("pk").annotate(last_done=Subquery(last))
    return [TenantNightly(t.pk, t.slug, t.created_at, t.last_done) for t in rows]


def delivery_backlog() -> list[Backlog]:
    """Emails (weekly scorecards) and webhook deliveries still to send, by status, with the oldest's
    creation time. One query on PostgreSQL, two on SQLite."""
    if system.uses_database_lookups():
        return [Backlog(*row) for row in system.lookup_rows("cs_delivery_backlog")]
    rows = []
    for kind, model in (("scorecard_email", ScorecardDelivery), ("webhook", WebhookDelivery)):
        grouped = (
            model._plain.filter(status__in=UNFINISHED).values("status").annotate(n=Count("pk"), o=Min("created_at"))
        )
        rows += [Backlog(kind, row["status"], row["n"], row["o"]) for row in grouped.order_by("status")]
    return rows
