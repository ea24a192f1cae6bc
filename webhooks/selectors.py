"""Reads for the webhook admin pages, and the set-based detection of the nightly events.

Everything runs in the current tenant's context (tenant-owned managers fail closed without one), so
another tenant's ids read as missing."""

from __future__ import annotations

import datetime
import zoneinfo
from typing import Any

from django.db.models import F, OuterRef, QuerySet, Subquery

from compliance.models import ComplianceStatusSnapshot
from journeys.models import Decision
from metrics.models import HealthSnapshot
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


# --- Admin pages -------------------------------------------------------------------------------------
def endpoints_for_admin() -> list[WebhookEndpoint]:
    """Every endpoint of the tenant, newest first, with its creator and its latest delivery's time and
    status (one query; each latest delivery is an index lookup on (tenant, endpoint, created_at), not a
    count over a log that grows by thousands a night)."""
    latest = WebhookDelivery.objects.filter(endpoint_id=OuterRef("pk")).order_by("-created_at", "-pk")
    return list(
        WebhookEndpoint.objects.select_related("created_by")
        .annotate(
            last_delivery_at=Subquery(latest.values("created_at")[:1]),
            last_delivery_status=Subquery(latest.values("status")[:1]),
        )
        .order_by("-created_at", "-pk")
    )


def endpoint_for_admin(webhook_id: int) -> WebhookEndpoint | None:
    return WebhookEndpoint.objects.select_related("created_by").filter(pk=webhook_id).first()


def deliveries_of(endpoint: WebhookEndpoint) -> QuerySet[WebhookDelivery]:
    """The endpoint's delivery log, newest first (the (tenant, endpoint, created_at) index); the page
    slices it. Payloads are left out of the list: they can be large and are shown per delivery."""
    return (
        WebhookDelivery.objects.filter(endpoint=endpoint)
        .defer("payload", "response_excerpt")
        .order_by("-created_at", "-pk")
    )


def delivery_for_admin(delivery_id: int) -> WebhookDelivery | None:
    return (
        WebhookDelivery.objects.select_related("endpoint", "redelivery_of", "requested_by")
        .filter(pk=delivery_id)
        .first()
    )


def attempts_of(delivery: WebhookDelivery) -> list[WebhookAttempt]:
    return list(WebhookAttempt.objects.filter(delivery=delivery).order_by("number"))


def redeliveries_of(delivery: WebhookDelivery) -> list[WebhookDelivery]:
    return list(WebhookDelivery.objects.filter(redelivery_of=delivery).order_by("created_at", "pk"))


# --- Nightly events ----------------------------------------------------------------------------------
def _changed_on(model, field: str, day: datetime.date, *, extra: str):
    """(account id, account name, previous value, value, `extra`) for each of the day's snapshots of
    `model` whose `field` differs from the account's previous snapshot, whatever day that was. One
    query: each row finds its predecessor through the (tenant, account, snapshot_date) unique index."""
    previous = model.objects.filter(account_id=OuterRef("account_id"), snapshot_date__lt=day).order_by("-snapshot_date")
    return (
        model.objects.filter(snapshot_date=day)
        .annotate(previous_value=Subquery(previous.values(field)[:1]))
        .filter(previous_value__isnull=False)
        .exclude(**{field: F("previous_value")})
        .order_by("account_id")
        .values_list("account_id", "account__name", "previous_value", field, extra)
    )


def band_changes(day: datetime.date) -> list[dict[str, Any]]:
    """Accounts whose health band on `day` differs from their previous snapshot (whatever day that
    was: a gap in the nightly runs must not hide a change). One query: each of the day's snapshots
    looks up its predecessor through the (tenant, account, snapshot_date) unique index. An account's
    first snapshot is no change."""

    rows = _changed_on(HealthSnapshot, "band", day, extra="total")
    return [
        {
            "account": {"id": account_id, "name": name},
            "from_band": before,
            "to_band": after,
            "score": float(total),
            "date": day.isoformat(),
        }
        for account_id, name, before, after, total in rows
    ]


def compliance_changes(day: datetime.date) -> list[dict[str, Any]]:
    """Accounts whose compliance status (the worst of their obligations, as snapshotted by
    compliance_status_recompute) on `day` differs from their previous snapshot. One query, as above."""

    rows = _changed_on(ComplianceStatusSnapshot, "status", day, extra="counts")
    return [
        {
            "account": {"id": account_id, "name": name},
            "scope": "account",  # the account's overall status: the worst of its obligations
            "from_status": before,
            "to_status": after,
            "obligations_by_status": counts,
            "date": day.isoformat(),
        }
        for account_id, name, before, after, counts in rows
    ]


def escalations(tenant, day: datetime.date) -> list[dict[str, Any]]:
    """Decisions escalated by the run of `day` (journeys.services.decisions_escalate stamps
    escalated_at once per decision). The window starts at the beginning of the previous local day, so
    a run that finished after midnight or a re-run loses nothing; the caller's event ids (one per
    decision) keep anything from being sent twice. One query, joined."""

    local = zoneinfo.ZoneInfo(tenant.time_zone)
    since = datetime.datetime.combine(day - datetime.timedelta(days=1), datetime.time.min, tzinfo=local)
    rows = (
        Decision.objects.filter(escalated_at__gte=since)
        .order_by("pk")
        .values_list(
            "pk",
            "title",
            "due_date",
            "escalated_at",
            "account_id",
            "account__name",
            "owner_id",
            "owner__email",
            "escalated_to_id",
            "escalated_to__email",
        )
    )
    return [
        {
            "decision_id": pk,
            "title": title,
            "account": {"id": account_id, "name": account_name},
            "owner": {"id": owner_id, "email": owner_email},
            "escalated_to": {"id": to_id, "email": to_email} if to_id else None,
            "due_date": due.isoformat(),
            "escalated_at": escalated_at.isoformat(),
        }
        for pk, title, due, escalated_at, account_id, account_name, owner_id, owner_email, to_id, to_email in rows
    ]
