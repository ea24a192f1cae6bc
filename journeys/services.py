"""Writes for account journeys and decisions/blockers. Each records an audit event."""

from __future__ import annotations

import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import Account
from cs_platform.audit.services import audit_record, model_snapshot
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Membership
from journeys.models import (
    AccountJourney,
    ActivityStatus,
    Decision,
    DecisionStatus,
    JourneyActivity,
    JourneyTemplate,
    PhaseActivity,
)


@transaction.atomic
def account_journey_start(
    *, tenant, account: Account, template: JourneyTemplate, started_on: datetime.date, actor=None
) -> AccountJourney:
    """Start a journey and derive every activity's due date from the phase it belongs to: an activity
    is due at its phase's end day, counted from the journey start."""
    with context.tenant_context(tenant):
        if account.tenant_id != tenant.pk or template.tenant_id != tenant.pk:
            raise ValidationError("The account and template must belong to the current tenant.")
        phases = list(template.phases.order_by("order"))
        if not phases:
            raise ValidationError({"template": f"Template “{template}” has no phases."})
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
    *, tenant, activity: JourneyActivity, completed_on: datetime.date, actor=None
) -> JourneyActivity:
    with context.tenant_context(tenant):
        if completed_on < activity.journey.started_on:
            raise ValidationError({"completed_on": "An activity cannot be completed before its journey started."})
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
            tenant=tenant, account=account, journey=journey, kind=kind, title=title, description=description,
            owner=owner, due_date=due_date, fallback=fallback,
        )  # fmt: skip
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
        before = model_snapshot(decision)
        decision.status = DecisionStatus.FALLBACK_APPLIED if apply_fallback else DecisionStatus.RESOLVED
        decision.resolution = resolution
        decision.resolved_at = timezone.now()
        decision.save(update_fields=["status", "resolution", "resolved_at"])
        audit_record(
            tenant=tenant, actor=actor, action="decision.resolve", obj=decision, before=before,
            after=model_snapshot(decision),
        )  # fmt: skip
    return decision
