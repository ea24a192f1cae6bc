"""Reads of the weekly scorecard emails' delivery records: what is still to send, and the admins'
deliveries page. (The email's content, recipients and schedule: scorecards.content, .recipients,
.schedule.)"""

from __future__ import annotations

from django.db.models import Count

from cs_platform.outbox import WAITING
from scorecards.models import ScorecardDelivery
from scorecards.weeks import IsoWeek


def deliveries_waiting(week: IsoWeek) -> list[tuple[int, str]]:
    """(id, address) of the current tenant's deliveries of `week` not sent yet (pending or retrying)."""
    return list(
        ScorecardDelivery.objects.filter(week=str(week), status__in=WAITING).order_by("pk").values_list("pk", "email")
    )


def deliveries_overview(
    week: IsoWeek, *, problem_statuses, max_rows: int, recent_weeks: int
) -> tuple[dict[str, int], list, list[str]]:
    """For the admins' deliveries page, in three queries: the week's counts per status, the rows an
    admin may need to act on (with their users), and the recent weeks that have deliveries."""
    counts = dict(
        ScorecardDelivery.objects.filter(week=str(week))
        .order_by()
        .values("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    problems = list(
        ScorecardDelivery.objects.filter(week=str(week), status__in=problem_statuses)
        .select_related("user")
        .order_by("status", "email", "pk")[:max_rows]
    )
    weeks = list(
        ScorecardDelivery.objects.order_by("-week_start").values_list("week", flat=True).distinct()[:recent_weeks]
    )
    return counts, problems, weeks
