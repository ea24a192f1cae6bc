"""Reads of journeys and decisions, always within the user's visible accounts."""

from __future__ import annotations

import datetime
from typing import Any

from django.db.models import Case, Count, F, IntegerField, Q, QuerySet, Value, When

from accounts.models import Account
from accounts.selectors import visible_accounts
from cs_platform.tenancy.models import Membership
from journeys.models import AccountJourney, ActivityStatus, Decision, DecisionStatus, JourneyActivity, Phase
from journeys.services import current_phase_of, journey_status_of
from segments.models import Segment

OPEN_STATUSES = (DecisionStatus.OPEN, DecisionStatus.ESCALATED)
ACCOUNT_DECISIONS_SHOWN = 100


def account_decisions(account: Account, *, today: datetime.date) -> dict[str, Any]:
    """The decisions and blockers of one account (already read through visible_accounts): open and
    escalated ones first by due date, then closed ones, most recent due first; owner, escalation
    target and journey joined. One query. At most ACCOUNT_DECISIONS_SHOWN rows; `more` says whether
    older closed ones were left out. Each decision gets `is_open` and `overdue` (open, past due)."""
    is_open = Q(status__in=OPEN_STATUSES)
    rows = list(
        Decision.objects.filter(account_id=account.pk)
        .select_related("owner", "escalated_to", "journey__template")
        .annotate(open_rank=Case(When(is_open, then=Value(0)), default=Value(1), output_field=IntegerField()))
        # Open ones soonest due first; closed ones (second key NULL for all of them) latest due first.
        .order_by("open_rank", Case(When(is_open, then=F("due_date"))).asc(), "-due_date", "-pk")[
            : ACCOUNT_DECISIONS_SHOWN + 1
        ]
    )
    more = len(rows) > ACCOUNT_DECISIONS_SHOWN
    rows = rows[:ACCOUNT_DECISIONS_SHOWN]
    for decision in rows:
        decision.is_open = decision.status in OPEN_STATUSES
        decision.overdue = decision.is_open and decision.due_date < today
    return {"decisions": rows, "more": more, "open_late": sum(1 for d in rows if d.overdue)}


def account_journeys(account: Account, *, today: datetime.date, open_late_decisions: int = 0) -> list[dict[str, Any]]:
    """One account's journeys, latest first, each with its template's phases in order (day window and
    the dates that window means from the journey's start) and each phase's activities (status, due,
    completed). Status, reason and current phase are worked out as of `today` with the nightly's own
    rules (journeys.services.journey_status_of, current_phase_of), so completing an activity shows at
    once. Three queries whatever the number of journeys and activities: journeys with their
    templates, the phases of those templates, the activities of those journeys with their template
    activity."""
    journeys = list(
        AccountJourney.objects.filter(account_id=account.pk).select_related("template").order_by("-started_on", "-pk")
    )
    phases_by_template: dict[int, list[Phase]] = {}
    for phase in Phase.objects.filter(
        template_id__in=AccountJourney.objects.filter(account_id=account.pk).values("template_id")
    ).order_by("template_id", "order"):
        phases_by_template.setdefault(phase.template_id, []).append(phase)
    activities: dict[tuple[int, int], list[JourneyActivity]] = {}
    for activity in (
        JourneyActivity.objects.filter(journey__account_id=account.pk)
        .select_related("activity")
        .order_by("activity__order", "pk")
    ):
        activities.setdefault((activity.journey_id, activity.activity.phase_id), []).append(activity)

    soon = today + datetime.timedelta(days=7)
    result = []
    for journey in journeys:
        phases = phases_by_template.get(journey.template_id, [])
        current = current_phase_of([(p.pk, p.start_day, p.end_day) for p in phases], (today - journey.started_on).days)
        counts = {"total": 0, "done": 0, "overdue": 0, "due_soon": 0}
        phase_rows = []
        for phase in phases:
            rows = activities.get((journey.pk, phase.pk), [])
            for activity in rows:
                done = activity.status == ActivityStatus.DONE
                activity.overdue = not done and activity.due_on < today
                counts["total"] += 1
                counts["done"] += done
                counts["overdue"] += activity.overdue
                counts["due_soon"] += not done and activity.due_on <= soon
            phase_rows.append(
                {
                    "phase": phase,
                    "starts_on": journey.started_on + datetime.timedelta(days=phase.start_day),
                    "ends_on": journey.started_on + datetime.timedelta(days=phase.end_day),
                    "is_current": phase.pk == current,
                    "activities": rows,
                    "done": sum(1 for a in rows if a.status == ActivityStatus.DONE),
                }
            )
        status, reason = journey_status_of(
            day=today,
            overdue_activities=counts["overdue"],
            due_soon=counts["due_soon"],
            open_late_decisions=open_late_decisions,
            all_done=counts["total"] > 0 and counts["done"] == counts["total"],
        )
        result.append(
            {
                "journey": journey,
                "phases": phase_rows,
                "current_phase": next((row["phase"] for row in phase_rows if row["is_current"]), None),
                "status": status,
                "status_label": status.replace("_", " "),
                "reason": reason,
                "done": counts["done"],
                "total": counts["total"],
            }
        )
    return result


def decision_for_user(user, decision_id: int, membership: Membership | None = None) -> Decision | None:
    """A decision whose account the user may see, account joined; None otherwise (one query)."""
    return (
        Decision.objects.filter(account__in=visible_accounts(user, membership), pk=decision_id)
        .select_related("account", "owner")
        .first()
    )


def activity_for_user(user, activity_id: int, membership: Membership | None = None) -> JourneyActivity | None:
    """A journey activity whose account the user may see, with its journey, account, template
    activity and phase joined; None otherwise (one query)."""
    return (
        JourneyActivity.objects.filter(journey__account__in=visible_accounts(user, membership), pk=activity_id)
        .select_related("journey__account", "journey__template", "activity__phase")
        .first()
    )


def decision_owner_choices() -> list[Membership]:
    """Who can own a decision: the tenant's active members, user joined, by name (one query)."""
    members = Membership.objects.filter(is_active=True).select_related("user")
    return sorted(members, key=lambda m: (m.user.get_full_name() or m.user.get_username()).lower())


def account_journey_choices(account: Account) -> list[AccountJourney]:
    """The journeys a decision of `account` may belong to, latest first (one query)."""
    return list(AccountJourney.objects.filter(account_id=account.pk).select_related("template").order_by("-started_on"))


# --- The decisions page: every decision and blocker of the book -----------------------------------------
# Which decisions the page lists. "closed_week" is the seven days ending today (the weekly scorecard's
# "closed in the last 7 days" links here); "overdue" is open past its due date.
DECISION_VIEWS: dict[str, str] = {
    "open": "Open",
    "overdue": "Overdue",
    "escalated": "Escalated",
    "closed_week": "Closed in the last 7 days",
    "closed": "Closed",
    "all": "All",
}
# Sort keys (the listing helpers whitelist them); each ends with pk so pages never overlap.
DECISION_SORTS: dict[str, tuple[str, ...]] = {
    "due": ("due_date", "pk"),
    "account": ("account__name", "due_date", "pk"),
    "owner": ("owner__last_name", "owner__first_name", "owner__username", "due_date", "pk"),
    "kind": ("kind", "due_date", "pk"),
    "status": ("status", "due_date", "pk"),
    "created": ("created_at", "pk"),
    "closed": ("resolved_at", "pk"),
}


def _closed_since(today: datetime.date, zone: datetime.tzinfo) -> datetime.datetime:
    """The start of the seven days ending with `today`, in the tenant's zone."""
    return datetime.datetime.combine(today - datetime.timedelta(days=6), datetime.time(), tzinfo=zone)


def _view_filter(view: str, *, today: datetime.date, zone: datetime.tzinfo) -> Q:
    is_open = Q(status__in=OPEN_STATUSES)
    return {
        "open": is_open,
        "overdue": is_open & Q(due_date__lt=today),
        "escalated": Q(status=DecisionStatus.ESCALATED),
        "closed_week": ~is_open & Q(resolved_at__gte=_closed_since(today, zone)),
        "closed": ~is_open,
        "all": Q(),
    }[view]


def decision_counts(accounts: QuerySet[Account], *, today: datetime.date, zone: datetime.tzinfo) -> dict[str, int]:
    """How many decisions of the visible `accounts` each view of the page holds (one aggregate query)."""
    decisions = Decision.objects.filter(account__in=accounts)
    return decisions.aggregate(
        **{view: Count("pk", filter=_view_filter(view, today=today, zone=zone)) for view in DECISION_VIEWS}
    )


def decision_filter_choices(accounts: QuerySet[Account]) -> dict[str, list[tuple[str, str]]]:
    """The filter form's choices: the people owning a decision on the visible `accounts`, by name (one
    query), and the segments (one query)."""

    owners = (
        Decision.objects.filter(account__in=accounts)
        .values_list("owner_id", "owner__first_name", "owner__last_name", "owner__username")
        .distinct()
        .order_by("owner__last_name", "owner__first_name", "owner__username")
    )
    return {
        "owner": [(str(pk), f"{first} {last}".strip() or username) for pk, first, last, username in owners],
        "segment": list(Segment.objects.order_by("sort_order").values_list("code", "name")),
    }


def decision_rows(
    accounts: QuerySet[Account], *, filters: dict[str, str], today: datetime.date, zone: datetime.tzinfo
) -> QuerySet[Decision]:
    """The decisions of the visible `accounts` that the page's `filters` select (view, kind, owner,
    segment, free text on title and account name), account, owner and escalation target joined, with
    `is_open` and `overdue` as of `today`. One query for any page of rows (the caller orders and slices)."""
    view = filters.get("status", "open")
    rows = Decision.objects.filter(account__in=accounts).filter(_view_filter(view, today=today, zone=zone))
    if "kind" in filters:
        rows = rows.filter(kind=filters["kind"])
    if "owner" in filters:
        rows = rows.filter(owner_id=filters["owner"])
    if "segment" in filters:
        rows = rows.filter(account__segment__code=filters["segment"])
    if "q" in filters:
        rows = rows.filter(Q(title__icontains=filters["q"]) | Q(account__name__icontains=filters["q"]))
    is_open = Q(status__in=OPEN_STATUSES)
    return rows.select_related("account", "owner", "escalated_to").annotate(
        is_open=Case(When(is_open, then=Value(True)), default=Value(False)),
        overdue=Case(When(is_open & Q(due_date__lt=today), then=Value(True)), default=Value(False)),
    )


# --- REST API (journeys/api.py) -------------------------------------------------------------------------


def journey_list(user, membership: Membership | None = None) -> QuerySet[AccountJourney]:
    """The user's book's journeys, account, template and current phase joined (journey_list_as_of adds
    the activity counts). One query for any page of rows."""
    return AccountJourney.objects.filter(account__in=visible_accounts(user, membership)).select_related(
        "account", "template", "current_phase"
    )


def journey_list_as_of(journeys: QuerySet[AccountJourney], *, today: datetime.date) -> QuerySet[AccountJourney]:
    """`journeys` with their activity counts: total, done, and overdue (not done, due before `today`)."""
    not_done = ~Q(activity_progress__status=ActivityStatus.DONE)
    return journeys.annotate(
        activities_total=Count("activity_progress"),
        activities_done=Count("activity_progress", filter=Q(activity_progress__status=ActivityStatus.DONE)),
        activities_overdue=Count("activity_progress", filter=not_done & Q(activity_progress__due_on__lt=today)),
    )


def journey_phases(journey: AccountJourney, *, today: datetime.date) -> list[dict[str, Any]]:
    """One journey's template phases in order, each with its dates from the journey's start, whether it
    is the journey's current phase (as the nightly last set it) and its activities (template text,
    status, due, completed, overdue as of `today`). Two queries: the phases, the journey's activities."""
    phases = list(Phase.objects.filter(template_id=journey.template_id).order_by("order"))
    by_phase: dict[int, list[JourneyActivity]] = {}
    activities = JourneyActivity.objects.filter(journey_id=journey.pk).select_related("activity")
    for activity in activities.order_by("activity__order", "pk"):
        activity.overdue = activity.status != ActivityStatus.DONE and activity.due_on < today
        by_phase.setdefault(activity.activity.phase_id, []).append(activity)
    return [
        {
            "id": phase.pk,
            "order": phase.order,
            "name": phase.name,
            "objective": phase.objective,
            "start_day": phase.start_day,
            "end_day": phase.end_day,
            "starts_on": journey.started_on + datetime.timedelta(days=phase.start_day),
            "ends_on": journey.started_on + datetime.timedelta(days=phase.end_day),
            "is_current": phase.pk == journey.current_phase_id,
            "activities": by_phase.get(phase.pk, []),
        }
        for phase in phases
    ]


def activity_list(user, membership: Membership | None = None) -> QuerySet[JourneyActivity]:
    """The journey activities of the user's book, journey (account), template activity and its phase
    joined. One query for any page of rows."""
    return JourneyActivity.objects.filter(journey__account__in=visible_accounts(user, membership)).select_related(
        "journey__account", "activity__phase"
    )


def decision_list(user, membership: Membership | None = None) -> QuerySet[Decision]:
    """The decisions and blockers of the user's book, account, owner and escalation target joined.
    One query for any page of rows."""
    return Decision.objects.filter(account__in=visible_accounts(user, membership)).select_related(
        "account", "owner", "escalated_to"
    )
