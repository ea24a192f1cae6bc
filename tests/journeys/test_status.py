"""Journey status from due dates, and decisions escalating once to the owner's manager."""

from __future__ import annotations

import datetime

import pytest

from cs_platform.audit.models import AuditEvent
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from journeys.models import AccountJourney, Decision, JourneyActivity, JourneyTemplate
from journeys.services import (
    account_journey_start,
    decision_create,
    decisions_escalate,
    journey_activity_complete,
    journey_status_recompute,
)
from tests import factories

START = datetime.date(2026, 1, 1)


def _journey(tenant):
    account = factories.AccountFactory(tenant=tenant)
    with context.tenant_context(tenant):
        template = JourneyTemplate.objects.get(is_default=True)
    return account_journey_start(tenant=tenant, account=account, template=template, started_on=START)


def _status(tenant, journey):
    with context.tenant_context(tenant):  # RLS hides the phase row outside the tenant
        journey.refresh_from_db()
        return journey.status, journey.current_phase.name


@pytest.mark.django_db
def test_status_follows_the_phase_due_dates(tenant_a):
    tenant = tenant_a.tenant
    journey = _journey(tenant)
    journey_status_recompute(tenant=tenant, day=START + datetime.timedelta(days=10))
    assert _status(tenant, journey) == ("on_track", "Compliance Assessment")
    journey_status_recompute(tenant=tenant, day=START + datetime.timedelta(days=40))  # phase 1 due in 5 days
    assert _status(tenant, journey) == ("at_risk", "Compliance Assessment")
    journey_status_recompute(tenant=tenant, day=START + datetime.timedelta(days=50))  # phase 1 past due
    assert _status(tenant, journey) == ("late", "Integration and Implementation")
    assert "4 activities past due" in journey.status_reason

    with context.tenant_context(tenant):
        activities = list(JourneyActivity.objects.filter(journey=journey).select_related("activity__phase"))
    for activity in activities:
        if activity.activity.phase.order <= 2:
            journey_activity_complete(
                tenant=tenant, activity=activity, completed_on=START + datetime.timedelta(days=100)
            )
    first_value = next(a for a in activities if a.activity.phase.order == 3)
    journey_activity_complete(tenant=tenant, activity=first_value, completed_on=START + datetime.timedelta(days=130))
    journey_status_recompute(tenant=tenant, day=START + datetime.timedelta(days=131))
    with context.tenant_context(tenant):
        journey.refresh_from_db()
    assert (journey.status, journey.onboarding_days, journey.time_to_value_days) == ("on_track", 100, 130)
    with context.tenant_context(tenant):
        changes = list(
            AuditEvent.objects.filter(action="account_journey.status_change").values_list("after__status", flat=True)
        )
    assert changes == ["at_risk", "late", "on_track"]


@pytest.mark.django_db
def test_overdue_decisions_escalate_once_to_the_owners_manager(tenant_a):
    tenant = tenant_a.tenant
    journey = _journey(tenant)
    csm, manager = tenant_a.user(Role.CSM), tenant_a.user(Role.MANAGER)
    late = decision_create(
        tenant=tenant,
        account=journey.account,
        title="Approve data residency",
        owner=csm,
        due_date=START,
        fallback="Host in the US region",
    )
    fresh = decision_create(
        tenant=tenant,
        account=journey.account,
        title="Pick SSO provider",
        owner=csm,
        due_date=START + datetime.timedelta(days=1),
        fallback="Use password login",
    )
    # Day 3 after the first due date: more than 48 hours past due only for `late`.
    day = START + datetime.timedelta(days=3)
    assert decisions_escalate(tenant=tenant, day=day) == {"escalated": 1}
    assert decisions_escalate(tenant=tenant, day=day) == {"escalated": 0}  # not repeated
    assert decisions_escalate(tenant=tenant, day=day + datetime.timedelta(days=1)) == {"escalated": 1}  # `fresh` now
    with context.tenant_context(tenant):
        late.refresh_from_db()
        fresh.refresh_from_db()
        events = list(AuditEvent.objects.filter(action="decision.escalate").order_by("seq"))
    assert late.status == "escalated" and late.escalated_to == manager and late.escalated_at is not None
    assert [e.object_id for e in events] == [str(late.pk), str(fresh.pk)]
    assert events[0].after["escalated_to"] == manager.pk


@pytest.mark.django_db
def test_an_owner_without_manager_escalates_to_a_tenant_admin(tenant_a):
    tenant = tenant_a.tenant
    journey = _journey(tenant)
    decision = decision_create(
        tenant=tenant,
        account=journey.account,
        title="Sign-off",
        owner=tenant_a.user(Role.VIEWER),
        due_date=START,
        fallback="Proceed",
    )
    decisions_escalate(tenant=tenant, day=START + datetime.timedelta(days=5))
    with context.tenant_context(tenant):
        assert Decision.objects.get(pk=decision.pk).escalated_to == tenant_a.user(Role.ADMIN)
        assert AccountJourney.objects.count() == 1


@pytest.mark.django_db
def test_activities_done_before_a_corrected_start_count_as_day_zero(tenant_a):
    # A journey whose start date is later corrected (here: moved after its completed activities)
    # must not abort the tenant's nightly run with a negative duration.
    tenant = tenant_a.tenant
    journey = _journey(tenant)
    with context.tenant_context(tenant):
        activities = list(JourneyActivity.objects.filter(journey=journey).select_related("activity__phase"))
    for activity in activities:
        if activity.activity.phase.order <= 3:
            journey_activity_complete(tenant=tenant, activity=activity, completed_on=START + datetime.timedelta(days=5))
    with context.tenant_context(tenant):
        AccountJourney.objects.filter(pk=journey.pk).update(started_on=START + datetime.timedelta(days=20))
    journey_status_recompute(tenant=tenant, day=START + datetime.timedelta(days=30))
    with context.tenant_context(tenant):
        journey.refresh_from_db()
    assert (journey.onboarding_days, journey.time_to_value_days) == (0, 0)
