"""Writes for account journeys and decisions/blockers. Each records an audit event."""

from __future__ import annotations

import datetime
from typing import Any, NamedTuple

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import Account
from cs_platform import bounds
from cs_platform.audit.services import audit_record, audit_record_many, model_snapshot
from cs_platform.bulk import bulk_update_rows
from cs_platform.tenancy import context
from cs_platform.tenancy.clock import tenant_today
from cs_platform.tenancy.models import Membership, Role
from journeys.models import (
    AccountJourney,
    ActivityStatus,
    Decision,
    DecisionStatus,
    JourneyActivity,
    JourneyTemplate,
    Phase,
    PhaseActivity,
)


@transaction.atomic
def account_journey_start(
    *, tenant, account: Account, template: JourneyTemplate, started_on: datetime.date, actor=None
) -> AccountJourney:
    """Start a journey and derive every activity's due date from the phase it belongs to: an activity
    is due at its phase's end day, counted from the journey start."""
    bounds.check(started_on=started_on)  # before any due date is counted from it
    with context.tenant_context(tenant):
        if account.tenant_id != tenant.pk or template.tenant_id != tenant.pk:
            raise ValidationError("The account and template must belong to the current tenant.")
        phases = list(template.phases.order_by("order"))
        if not phases:
            raise ValidationError({"template": f"Template “{template}” has no phases."})
        # full_clean(exclude=tenant) skips the (tenant, account, template, started_on) constraint: check it
        # here, so a second start on the same day is a field error rather than an IntegrityError.
        if AccountJourney.objects.filter(account=account, template=template, started_on=started_on).exists():
            raise ValidationError(
                {"started_on": f"{account.name} already has “{template}” started on {started_on:%Y-%m-%d}."}
            )
        journey = AccountJourney(
            tenant=tenant, account=account, template=template, started_on=started_on, current_phase=phases[0]
        )
        journey.full_clean(exclude=["tenant"])
        journey.save()
        activities = PhaseActivity.objects.filter(phase__template=template).select_related("phase")
        rows = JourneyActivity.objects.bulk_create(
            JourneyActivity(
                tenant=tenant,
                journey=journey,
                activity=activity,
                due_on=started_on + datetime.timedelta(days=activity.phase.end_day),
            )
            for activity in activities
        )
        audit_record(
            tenant=tenant,
            actor=actor,
            action="account_journey.start",
            obj=journey,
            after={**model_snapshot(journey), "activities": len(rows)},
        )
    return journey


@transaction.atomic
def journey_activity_complete(
    *, tenant, activity: JourneyActivity, completed_on: datetime.date | None = None, actor=None
) -> JourneyActivity:
    """Mark the activity done on `completed_on` (the tenant's today if None): not before its journey
    started, not in the future, not twice."""
    if completed_on is None:
        completed_on = tenant_today(tenant)
    with context.tenant_context(tenant):
        if not isinstance(completed_on, datetime.date):
            raise ValidationError({"completed_on": "A date is required."})
        bounds.check(completed_on=completed_on)
        if completed_on < activity.journey.started_on:
            raise ValidationError({"completed_on": "An activity cannot be completed before its journey started."})

        if completed_on > tenant_today(tenant):
            raise ValidationError({"completed_on": "An activity cannot be completed in the future."})
        if activity.status == ActivityStatus.DONE:
            raise ValidationError({"completed_on": f"Already completed on {activity.completed_on:%Y-%m-%d}."})
        before = model_snapshot(activity)
        activity.status = ActivityStatus.DONE
        activity.completed_on = completed_on
        activity.save(update_fields=["status", "completed_on"])
        audit_record(
            tenant=tenant,
            actor=actor,
            action="journey_activity.complete",
            obj=activity,
            before=before,
            after=model_snapshot(activity),
        )
    return activity


def _require_member(user, field: str) -> None:
    if not Membership.objects.filter(user=user, is_active=True).exists():
        raise ValidationError({field: f"{user} is not an active member of this tenant."})


@transaction.atomic
def decision_create(
    *,
    tenant,
    account: Account,
    title: str,
    owner,
    due_date: datetime.date,
    fallback: str,
    kind: str = "decision",
    description: str = "",
    customer_impact: str = "",
    journey: AccountJourney | None = None,
    actor=None,
) -> Decision:
    """A decision or blocker needs exactly one owner, a due date and a fallback (seed 002)."""
    with context.tenant_context(tenant):
        if not (fallback or "").strip():
            raise ValidationError({"fallback": "Every decision needs a fallback: what happens if nobody decides."})
        _require_member(owner, "owner")
        if journey is not None and journey.account_id != account.pk:
            raise ValidationError({"journey": "The journey belongs to another account."})
        decision = Decision(
            tenant=tenant,
            account=account,
            journey=journey,
            kind=kind,
            title=title,
            description=description,
            owner=owner,
            due_date=due_date,
            fallback=fallback,
            customer_impact=customer_impact,
        )
        decision.full_clean(exclude=["tenant"])
        decision.save()
        audit_record(tenant=tenant, actor=actor, action="decision.create", obj=decision, after=model_snapshot(decision))
    return decision


@transaction.atomic
def decision_resolve(
    *, tenant, decision: Decision, resolution: str, apply_fallback: bool = False, actor=None
) -> Decision:
    with context.tenant_context(tenant):
        if decision.status in (DecisionStatus.RESOLVED, DecisionStatus.FALLBACK_APPLIED):
            raise ValidationError(
                {"status": f"“{decision.title}” is already closed ({decision.get_status_display()})."}
            )
        if not resolution.strip():
            raise ValidationError({"resolution": "Say what was decided."})
        bounds.check_text(resolution=resolution)
        before = model_snapshot(decision)
        decision.status = DecisionStatus.FALLBACK_APPLIED if apply_fallback else DecisionStatus.RESOLVED
        decision.resolution = resolution
        decision.resolved_at = timezone.now()
        decision.save(update_fields=["status", "resolution", "resolved_at"])
        audit_record(
            tenant=tenant,
            actor=actor,
            action="decision.resolve",
            obj=decision,
            before=before,
            after=model_snapshot(decision),
        )
    return decision


AT_RISK_WITHIN_DAYS = 7
ESCALATE_AFTER_DAYS = 2  # unresolved 48 hours past the due date


def journey_status_of(
    *, day: datetime.date, overdue_activities: int, due_soon: int, open_late_decisions: int, all_done: bool
) -> tuple[str, str]:
    """late: an activity is past its due date and not done; at risk: an activity falls due within
    7 days, or a decision on the account is past due; completed: everything done; else on track."""
    if all_done:
        return "completed", "All activities done."
    if overdue_activities:
        return "late", f"{overdue_activities} activit{'y' if overdue_activities == 1 else 'ies'} past due"
    if open_late_decisions:
        return "at_risk", f"{open_late_decisions} decision(s) past due"
    if due_soon:
        return "at_risk", f"{due_soon} activit{'y' if due_soon == 1 else 'ies'} due within {AT_RISK_WITHIN_DAYS} days"
    return "on_track", ""


def current_phase_of(phases: list[tuple[int, int, int]], elapsed: int) -> int | None:
    """The phase (pk) a journey is in `elapsed` days after its start, from its template's phases as
    (pk, start_day, end_day) in order: the one whose window holds the day; past the last, the last;
    before the first (or in a gap), the first."""
    current = next((pk for pk, start, end in phases if start <= elapsed < end), None)
    if current is None and phases:
        current = phases[-1][0] if elapsed >= phases[-1][2] else phases[0][0]
    return current


class _JourneyRow(NamedTuple):
    pk: int
    account_id: int
    template_id: int
    started_on: datetime.date
    current_phase_id: int | None
    status: str
    status_reason: str
    completed_on: datetime.date | None
    onboarding_days: int | None
    time_to_value_days: int | None
    total: int
    done: int
    overdue: int
    due_soon: int
    onboarding_total: int
    onboarding_done: int
    onboarding_end: datetime.date | None
    first_value: datetime.date | None
    last_done: datetime.date | None


def journey_status_recompute(*, tenant, day: datetime.date, actor=None) -> dict[str, Any]:
    """Current phase, status, onboarding time and time-to-value of every journey as of `day`.
    Set-based: one aggregate query over activities, one over decisions, one bulk update."""
    from django.db.models import Count, Max, Min, Q

    soon = day + datetime.timedelta(days=AT_RISK_WITHIN_DAYS)
    not_done = ~Q(activity_progress__status=ActivityStatus.DONE)
    with transaction.atomic(), context.tenant_context(tenant):
        done = Q(activity_progress__status=ActivityStatus.DONE)
        onboarding_phase = Q(activity_progress__activity__phase__order__lte=2)  # assessment + integration
        value_phase = Q(activity_progress__activity__phase__order=3)  # performance optimization
        # Plain tuples, not model instances: building 100,000 annotated instances cost more than the
        # aggregate query itself; only the journeys that change become objects, for the update.
        journeys = list(
            AccountJourney.objects.annotate(
                total=Count("activity_progress"),
                done=Count("activity_progress", filter=done),
                overdue=Count("activity_progress", filter=not_done & Q(activity_progress__due_on__lt=day)),
                due_soon=Count("activity_progress", filter=not_done & Q(activity_progress__due_on__lte=soon)),
                onboarding_total=Count("activity_progress", filter=onboarding_phase),
                onboarding_done=Count("activity_progress", filter=onboarding_phase & done),
                onboarding_end=Max("activity_progress__completed_on", filter=onboarding_phase),
                first_value=Min("activity_progress__completed_on", filter=value_phase & done),
                last_done=Max("activity_progress__completed_on"),
            ).values_list(
                "pk",
                "account_id",
                "template_id",
                "started_on",
                "current_phase_id",
                "status",
                "status_reason",
                "completed_on",
                "onboarding_days",
                "time_to_value_days",
                "total",
                "done",
                "overdue",
                "due_soon",
                "onboarding_total",
                "onboarding_done",
                "onboarding_end",
                "first_value",
                "last_done",
            )
        )
        phases: dict[int, list[tuple[int, int, int]]] = {}
        for pk, template_id, start, end in Phase.objects.order_by("order").values_list(
            "pk", "template_id", "start_day", "end_day"
        ):
            phases.setdefault(template_id, []).append((pk, start, end))
        late_decisions = dict(
            Decision.objects.filter(status__in=("open", "escalated"), due_date__lt=day)
            .values("account_id")
            .annotate(n=Count("id"))
            .values_list("account_id", "n")
        )
        changed, events = [], []
        counts: dict[str, int] = {}
        for row in journeys:
            journey = _JourneyRow(*row)
            elapsed = (day - journey.started_on).days
            current = current_phase_of(phases.get(journey.template_id, []), elapsed)
            all_done = journey.total > 0 and journey.done == journey.total
            status, reason = journey_status_of(
                day=day,
                overdue_activities=journey.overdue,
                due_soon=journey.due_soon,
                open_late_decisions=late_decisions.get(journey.account_id, 0),
                all_done=all_done,
            )
            # Activities recorded as done before the journey's start (back-filled history) count as
            # day 0: a negative duration would violate the column and abort the tenant's whole run.
            onboarding = (
                max(0, (journey.onboarding_end - journey.started_on).days)
                if journey.onboarding_total and journey.onboarding_done == journey.onboarding_total
                else None
            )
            ttv = max(0, (journey.first_value - journey.started_on).days) if journey.first_value else None
            completed_on = journey.last_done if all_done else None
            new = (current, status, reason[:255], completed_on, onboarding, ttv)
            old = (
                journey.current_phase_id,
                journey.status,
                journey.status_reason,
                journey.completed_on,
                journey.onboarding_days,
                journey.time_to_value_days,
            )
            counts[status] = counts.get(status, 0) + 1
            # Only real changes are written: a quiet night touches no journey row.
            if new != old:
                changed.append(
                    AccountJourney(
                        pk=journey.pk,
                        tenant_id=tenant.pk,
                        current_phase_id=current,
                        status=status,
                        status_reason=reason[:255],
                        completed_on=completed_on,
                        onboarding_days=onboarding,
                        time_to_value_days=ttv,
                        status_computed_on=day,
                    )
                )
            if old[1] != status:
                events.append(
                    {
                        "action": "account_journey.status_change",
                        "object_type": "journeys.accountjourney",
                        "object_id": journey.pk,
                        "before": {"status": old[1]},
                        "after": {"status": status, "reason": reason, "as_of": day.isoformat()},
                    }
                )
        bulk_update_rows(
            AccountJourney,
            changed,
            [
                "current_phase",
                "status",
                "status_reason",
                "completed_on",
                "onboarding_days",
                "time_to_value_days",
                "status_computed_on",
            ],
        )
        audit_record_many(tenant=tenant, actor=actor, events=events)
    return {"journeys": len(journeys), "status_changes": len(events), "by_status": counts}


def decisions_escalate(*, tenant, day: datetime.date, actor=None) -> dict[str, int]:
    """Escalate, once, every open decision more than 48 hours past due to its owner's manager (or,
    when the owner has no manager, to the tenant's first admin). Already-escalated decisions are left
    alone, so re-running never escalates twice."""

    cutoff = day - datetime.timedelta(days=ESCALATE_AFTER_DAYS + 1)  # due at end of due_date, +48 h
    with transaction.atomic(), context.tenant_context(tenant):
        due = list(
            Decision.objects.filter(status=DecisionStatus.OPEN, escalated_at__isnull=True, due_date__lte=cutoff)
            .select_for_update(of=("self",))
            .values_list("pk", "owner_id", "due_date")
        )
        memberships = list(Membership.objects.filter(is_active=True).values_list("user_id", "manager__user_id", "role"))
        managers = {user_id: manager_user for user_id, manager_user, _ in memberships}
        admins = sorted(user_id for user_id, _, role in memberships if role == Role.ADMIN)
        now = timezone.now()
        updates, events = [], []
        for pk, owner_id, due_date in due:
            target = managers.get(owner_id) or (admins[0] if admins else None)
            updates.append(
                Decision(
                    pk=pk,
                    tenant_id=tenant.pk,
                    status=DecisionStatus.ESCALATED,
                    escalated_at=now,
                    escalated_to_id=target,
                )
            )
            events.append(
                {
                    "action": "decision.escalate",
                    "object_type": "journeys.decision",
                    "object_id": pk,
                    "before": {"status": "open"},
                    "after": {
                        "status": "escalated",
                        "escalated_to": target,
                        "due_date": due_date.isoformat(),
                        "rule": "unresolved 48 hours past due",
                    },
                }
            )
        bulk_update_rows(Decision, updates, ["status", "escalated_at", "escalated_to"])
        audit_record_many(tenant=tenant, actor=actor, events=events)
    return {"escalated": len(updates)}
