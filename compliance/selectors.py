"""Reads of compliance data, within the user's visible accounts."""

from __future__ import annotations

from django.db.models import Count, QuerySet

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
