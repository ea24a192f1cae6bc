"""Reads of compliance data, within the user's visible accounts."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from accounts.selectors import visible_accounts
from compliance.models import Obligation


def obligations_for_user(user, membership=None) -> QuerySet[Obligation]:
    return Obligation.objects.filter(account__in=visible_accounts(user, membership)).select_related(
        "account", "requirement__framework"
    )


def obligation_status_counts(user, membership=None) -> dict[str, int]:
    """{status: count} over the user's visible accounts, in one grouped query."""
    rows = obligations_for_user(user, membership).order_by().values("status").annotate(n=Count("id"))
    return {row["status"]: row["n"] for row in rows}


def audit_pass_rates_by_segment(*, day, window_days: int = 365) -> list[dict]:
    """Per segment: audits in the trailing window, how many passed, and the pass rate (%), from one
    grouped query. Tenant-wide (compliance and executive views)."""
    import datetime

    from compliance.models import AuditOutcome, AuditResult

    since = day - datetime.timedelta(days=window_days)
    rows = (
        AuditResult.objects.filter(audited_on__gt=since, audited_on__lte=day)
        .values("obligation__account__segment__code", "obligation__account__segment__name")
        .annotate(audits=Count("id"), passed=Count("id", filter=Q(outcome=AuditOutcome.PASSED)))
        .order_by("obligation__account__segment__code")
    )
    return [
        {
            "segment": row["obligation__account__segment__code"],
            "segment_name": row["obligation__account__segment__name"],
            "audits": row["audits"],
            "passed": row["passed"],
            "pass_rate": round(row["passed"] * 100.0 / row["audits"], 1),
        }
        for row in rows
    ]
