"""Reads of journeys and decisions, always within the user's visible accounts."""

from __future__ import annotations

import datetime

from django.db.models import QuerySet

from accounts.selectors import visible_accounts
from journeys.models import AccountJourney, Decision, DecisionStatus

OPEN_STATUSES = (DecisionStatus.OPEN, DecisionStatus.ESCALATED)


def journeys_for_user(user, membership=None) -> QuerySet[AccountJourney]:
    return AccountJourney.objects.filter(account__in=visible_accounts(user, membership)).select_related(
        "account", "template", "current_phase"
    )


def overdue_decisions(user, *, today: datetime.date, membership=None) -> QuerySet[Decision]:
    """Open decisions past their due date, oldest first (one query)."""
    return (
        Decision.objects.filter(
            account__in=visible_accounts(user, membership), status__in=OPEN_STATUSES, due_date__lt=today
        )
        .select_related("account", "owner")
        .order_by("due_date")
    )
