import datetime

import pytest
from django.core.exceptions import ValidationError

from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from journeys.models import DecisionStatus, JourneyTemplate
from journeys.services import account_journey_start, decision_create, decision_resolve
from tests import factories
from tests.helpers import event_count, last_event

START = datetime.date(2026, 1, 5)


def _template(tenant):
    with context.tenant_context(tenant):
        return JourneyTemplate.objects.get(is_default=True)


@pytest.mark.django_db
def test_starting_a_journey_derives_due_dates_from_the_phases(tenant_a):
    account = factories.AccountFactory(tenant=tenant_a.tenant)
    journey = account_journey_start(
        tenant=tenant_a.tenant, account=account, template=_template(tenant_a.tenant), started_on=START
    )
    with context.tenant_context(tenant_a.tenant):
        dues = sorted(
            {(a.activity.phase.name, a.due_on) for a in journey.activity_progress.select_related("activity__phase")}
        )
        assert journey.current_phase.name == "Compliance Assessment"
        assert journey.activity_progress.count() == 12
    assert dues == [
        ("Compliance Assessment", START + datetime.timedelta(days=45)),
        ("Integration and Implementation", START + datetime.timedelta(days=120)),
        ("Performance Optimization", START + datetime.timedelta(days=240)),
    ]
    event = last_event(tenant_a.tenant)
    assert event.action == "account_journey.start" and event.after["activities"] == 12


@pytest.mark.django_db
def test_a_decision_needs_a_fallback_and_an_owner_in_the_tenant(tenant_a, tenant_b):
    account = factories.AccountFactory(tenant=tenant_a.tenant)
    before = event_count(tenant_a.tenant)
    with pytest.raises(ValidationError) as raised:
        decision_create(
            tenant=tenant_a.tenant,
            account=account,
            title="Approve SSO rollout",
            owner=tenant_a.user(Role.CSM),
            due_date=START,
            fallback="  ",
        )
    assert "fallback" in raised.value.message_dict
    with pytest.raises(ValidationError) as raised:
        decision_create(
            tenant=tenant_a.tenant,
            account=account,
            title="Approve SSO rollout",
            owner=tenant_b.user(Role.CSM),
            due_date=START,
            fallback="Keep password login",
        )
    assert "not an active member" in raised.value.message_dict["owner"][0]
    assert event_count(tenant_a.tenant) == before  # nothing written, nothing audited


@pytest.mark.django_db
def test_overdue_decisions_and_resolution(tenant_a):
    account = factories.AccountFactory(tenant=tenant_a.tenant)
    owner = tenant_a.user(Role.CSM)
    late = decision_create(
        tenant=tenant_a.tenant,
        account=account,
        title="Choose the core banking connector",
        owner=owner,
        due_date=START,
        fallback="Use the file-based connector",
    )
    decision_create(
        tenant=tenant_a.tenant,
        account=account,
        title="Sign the DPA",
        owner=owner,
        due_date=START + datetime.timedelta(days=30),
        fallback="Delay EU data onboarding",
    )
    with context.tenant_context(tenant_a.tenant):
        from accounts.selectors import visible_accounts
        from dashboards.selectors import overdue_decisions

        overdue = overdue_decisions(visible_accounts(tenant_a.user(Role.ADMIN)), today=START + datetime.timedelta(3))
        titles = [d.title for d in overdue["items"]]
    assert titles == ["Choose the core banking connector"]
    decision_resolve(tenant=tenant_a.tenant, decision=late, resolution="Fallback taken", apply_fallback=True)
    assert late.status == DecisionStatus.FALLBACK_APPLIED
    assert last_event(tenant_a.tenant).before["status"] == "open"
    with pytest.raises(ValidationError, match="already closed"):
        decision_resolve(tenant=tenant_a.tenant, decision=late, resolution="again")
