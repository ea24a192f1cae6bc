"""Decision and journey forms from the account page: add a decision or blocker, resolve it, complete
a journey activity. Allowed roles store and audit; others get 403; objects outside the user's book or
tenant answer 404; bad input is refused on its field, kept, and nothing is stored."""

from __future__ import annotations

import datetime
import re

import pytest
from django.urls import reverse

from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from cs_platform.tenancy.policy import Capability
from journeys.models import Decision, JourneyActivity
from tests import factories
from tests.helpers import event_count, field_error, last_event, log_in_as, owned_account, page_text

TODAY = datetime.date.today()


def _decisions(tenant) -> list[Decision]:
    with context.tenant_context(tenant):
        return list(Decision.objects.order_by("pk"))


def _decision_data(world, **overrides) -> dict:
    data = {
        "kind": "blocker",
        "title": "Approve the data residency plan",
        "description": "Client legal must sign off.",
        "owner": str(world.user(Role.MANAGER).pk),
        "due_date": (TODAY + datetime.timedelta(days=10)).isoformat(),
        "fallback": "Host in the US region",
        "journey": "",
    }
    data.update(overrides)
    return data


def _activity(journey, index=0) -> JourneyActivity:
    with context.tenant_context(journey.tenant):
        return list(journey.activity_progress.order_by("pk"))[index]


# --- Add a decision --------------------------------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize("role", Role.values)
def test_decision_create_by_role(client, tenant_a, role):
    account = owned_account(tenant_a)
    journey = factories.journey_of(account)
    log_in_as(client, tenant_a, role)
    url = reverse("decision_create", args=[account.pk])
    before = event_count(tenant_a.tenant)
    response = client.post(url, _decision_data(tenant_a, journey=str(journey.pk)))
    if role not in Capability.MANAGE_DECISIONS.roles:
        assert response.status_code == 403 and client.get(url).status_code == 403
        assert _decisions(tenant_a.tenant) == [] and event_count(tenant_a.tenant) == before
        return
    assert response.status_code == 302
    assert response["Location"] == reverse("account_detail", args=[account.pk]) + "#decisions"
    (decision,) = _decisions(tenant_a.tenant)
    assert (decision.kind, decision.owner_id, decision.journey_id, decision.fallback, decision.status) == (
        "blocker",
        tenant_a.user(Role.MANAGER).pk,
        journey.pk,
        "Host in the US region",
        "open",
    )
    event = last_event(tenant_a.tenant)
    assert event.action == "decision.create" and event.actor_id == tenant_a.user(role).pk
    assert "Blocker added: Approve the data residency plan." in page_text(client.get(response["Location"]))


@pytest.mark.django_db
def test_decision_form_offers_active_members_and_this_accounts_journeys(client, tenant_a, tenant_b):
    account = owned_account(tenant_a)
    mine = factories.journey_of(account)
    factories.journey_of(owned_account(tenant_a, name="Other Bank"), started_on=TODAY - datetime.timedelta(days=3))
    log_in_as(client, tenant_a, Role.CSM)
    body = page_text(client.get(reverse("decision_create", args=[account.pk])))
    owners = re.search(r'<select name="owner".*?</select>', body, re.S).group(0)
    assert owners.count("<option") == len(Role.values) + 1  # the tenant's six members and "choose"
    assert tenant_b.user(Role.CSM).get_full_name() not in owners
    journeys = re.search(r'<select name="journey".*?</select>', body, re.S).group(0)
    assert journeys.count("<option") == 2 and f'value="{mine.pk}"' in journeys


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("case", "field", "message"),
    [
        ("no-fallback", "fallback", "Every decision needs a fallback"),
        ("other-tenant-owner", "owner", "Select a valid choice."),
        ("other-account-journey", "journey", "Select a valid choice."),
        ("no-due-date", "due_date", "This field is required."),
        ("no-title", "title", "This field is required."),
    ],
)
def test_decision_bad_input_is_refused_on_its_field_and_kept(client, tenant_a, tenant_b, case, field, message):
    account = owned_account(tenant_a)
    overrides = {
        "no-fallback": {"fallback": "   "},
        "other-tenant-owner": {"owner": str(tenant_b.user(Role.CSM).pk)},
        "other-account-journey": {"journey": str(factories.journey_of(owned_account(tenant_a, name="Other Bank")).pk)},
        "no-due-date": {"due_date": ""},
        "no-title": {"title": ""},
    }[case]
    log_in_as(client, tenant_a, Role.CSM)
    before = event_count(tenant_a.tenant)
    response = client.post(reverse("decision_create", args=[account.pk]), _decision_data(tenant_a, **overrides))
    body = page_text(response)
    assert response.status_code == 400 and message in field_error(body, field)
    assert _decisions(tenant_a.tenant) == [] and event_count(tenant_a.tenant) == before
    assert "Client legal must sign off." in body  # the input is kept


@pytest.mark.django_db
def test_decision_service_refuses_an_owner_of_another_tenant_and_a_foreign_journey(tenant_a, tenant_b):
    from django.core.exceptions import ValidationError

    from journeys.services import decision_create

    account = owned_account(tenant_a)
    foreign_journey = factories.journey_of(owned_account(tenant_a, name="Other Bank"))
    common = {"tenant": tenant_a.tenant, "account": account, "title": "t", "due_date": TODAY, "fallback": "f"}
    with pytest.raises(ValidationError) as raised:
        decision_create(owner=tenant_b.user(Role.CSM), **common)
    assert "owner" in raised.value.message_dict
    with pytest.raises(ValidationError) as raised:
        decision_create(owner=tenant_a.user(Role.CSM), journey=foreign_journey, **common)
    assert "journey" in raised.value.message_dict


# --- Resolve a decision ----------------------------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize("role", Role.values)
def test_decision_resolve_by_role(client, tenant_a, role):
    account = owned_account(tenant_a)
    decision = factories.DecisionFactory(tenant=tenant_a.tenant, account=account, owner=tenant_a.user(Role.CSM))
    log_in_as(client, tenant_a, role)
    url = reverse("decision_resolve", args=[decision.pk])
    before = event_count(tenant_a.tenant)
    response = client.post(url, {"resolution": "Client chose ISO 20022 pacs.008"})
    (stored,) = _decisions(tenant_a.tenant)
    if role not in Capability.MANAGE_DECISIONS.roles:
        assert response.status_code == 403 and client.get(url).status_code == 403
        assert stored.status == "open" and event_count(tenant_a.tenant) == before
        return
    assert response.status_code == 302
    assert (stored.status, stored.resolution) == ("resolved", "Client chose ISO 20022 pacs.008")
    event = last_event(tenant_a.tenant)
    assert event.action == "decision.resolve" and event.before["status"] == "open"
    assert event.actor_id == tenant_a.user(role).pk


@pytest.mark.django_db
def test_resolving_with_the_fallback_and_refusals(client, tenant_a):
    account = owned_account(tenant_a)
    decision = factories.DecisionFactory(tenant=tenant_a.tenant, account=account, owner=tenant_a.user(Role.CSM))
    log_in_as(client, tenant_a, Role.CSM)
    url = reverse("decision_resolve", args=[decision.pk])
    page = page_text(client.get(url))
    assert decision.title in page and "Keep the current format" in page and 'name="apply_fallback"' in page

    before = event_count(tenant_a.tenant)
    response = client.post(url, {"resolution": "  ", "apply_fallback": "on"})
    assert response.status_code == 400 and "Say what was decided." in field_error(page_text(response), "resolution")
    assert _decisions(tenant_a.tenant)[0].status == "open" and event_count(tenant_a.tenant) == before

    assert client.post(url, {"resolution": "Nobody decided", "apply_fallback": "on"}).status_code == 302
    assert _decisions(tenant_a.tenant)[0].status == "fallback"
    again = client.post(url, {"resolution": "Twice"})
    assert again.status_code == 400 and "is already closed" in page_text(again)


@pytest.mark.django_db
def test_decisions_outside_the_book_or_the_tenant_answer_404(client, tenant_a, tenant_b):
    outside_book = factories.DecisionFactory(tenant=tenant_a.tenant, owner=tenant_a.user(Role.CSM))
    other_tenant = factories.DecisionFactory(tenant=tenant_b.tenant, owner=tenant_b.user(Role.CSM))
    log_in_as(client, tenant_a, Role.CSM)
    for decision in (outside_book, other_tenant):
        url = reverse("decision_resolve", args=[decision.pk])
        assert client.get(url).status_code == 404
        assert client.post(url, {"resolution": "x"}).status_code == 404
    url = reverse("decision_create", args=[outside_book.account_id])
    assert client.post(url, _decision_data(tenant_a)).status_code == 404
    log_in_as(client, tenant_a, Role.VIEWER)
    assert client.post(reverse("decision_resolve", args=[other_tenant.pk]), {"resolution": "x"}).status_code == 404
    assert all(d.status == "open" for d in _decisions(tenant_a.tenant) + _decisions(tenant_b.tenant))


# --- Complete an activity --------------------------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize("role", Role.values)
def test_activity_complete_by_role(client, tenant_a, role):
    account = owned_account(tenant_a)
    journey = factories.journey_of(account, started_on=TODAY - datetime.timedelta(days=20))
    activity = _activity(journey)
    log_in_as(client, tenant_a, role)
    url = reverse("activity_complete", args=[activity.pk])
    before = event_count(tenant_a.tenant)
    response = client.post(url, {"completed_on": TODAY.isoformat()})
    stored = _activity(journey)
    if role not in Capability.RUN_JOURNEYS.roles:
        assert response.status_code == 403 and client.get(url).status_code == 403
        assert stored.status == "not_started" and event_count(tenant_a.tenant) == before
        return
    assert response.status_code == 302
    assert response["Location"] == reverse("account_detail", args=[account.pk]) + "#journeys"
    assert (stored.status, stored.completed_on) == ("done", TODAY)
    event = last_event(tenant_a.tenant)
    assert event.action == "journey_activity.complete" and event.object_id == str(activity.pk)
    assert event.actor_id == tenant_a.user(role).pk
    # The account page reflects it at once.
    page = page_text(client.get(response["Location"]))
    assert "1 of 12 activities done" in page and page.count(">Complete</button>") == 11


@pytest.mark.django_db
def test_the_complete_button_on_the_account_page_posts_today(client, tenant_a):
    account = owned_account(tenant_a)
    journey = factories.journey_of(account, started_on=TODAY - datetime.timedelta(days=5))
    activity = _activity(journey)
    log_in_as(client, tenant_a, Role.CSM)
    page = page_text(client.get(reverse("account_detail", args=[account.pk])))
    form = page.split(f'action="{reverse("activity_complete", args=[activity.pk])}"', 1)[1].split("</form>", 1)[0]
    posted = dict(re.findall(r'name="(\w+)" value="([^"]*)"', form))
    assert posted["completed_on"] == TODAY.isoformat()
    page = page_text(client.get(reverse("activity_complete", args=[activity.pk])))  # the confirm form
    assert f'value="{TODAY.isoformat()}"' in page and "Mark as completed" in page


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("days_from_today", "message"),
    [
        (1, "An activity cannot be completed in the future."),
        (-30, "An activity cannot be completed before its journey started."),
    ],
)
def test_activity_dates_in_the_future_or_before_the_start_are_refused(client, tenant_a, days_from_today, message):
    account = owned_account(tenant_a)
    journey = factories.journey_of(account, started_on=TODAY - datetime.timedelta(days=20))
    activity = _activity(journey)
    log_in_as(client, tenant_a, Role.CSM)
    before = event_count(tenant_a.tenant)
    bad = (TODAY + datetime.timedelta(days=days_from_today)).isoformat()
    response = client.post(reverse("activity_complete", args=[activity.pk]), {"completed_on": bad})
    body = page_text(response)
    assert response.status_code == 400 and message in field_error(body, "completed_on")
    assert f'value="{bad}"' in body
    assert _activity(journey).status == "not_started" and event_count(tenant_a.tenant) == before


@pytest.mark.django_db
def test_activities_outside_the_book_or_the_tenant_answer_404(client, tenant_a, tenant_b):
    outside_book = _activity(factories.journey_of(factories.AccountFactory(tenant=tenant_a.tenant)))
    other_tenant = _activity(factories.journey_of(owned_account(tenant_b)))
    log_in_as(client, tenant_a, Role.CSM)
    for activity in (outside_book, other_tenant):
        url = reverse("activity_complete", args=[activity.pk])
        assert client.get(url).status_code == 404
        assert client.post(url, {"completed_on": TODAY.isoformat()}).status_code == 404
    with context.tenant_context(tenant_a.tenant):
        assert not JourneyActivity.objects.filter(status="done").exists()
    with context.tenant_context(tenant_b.tenant):
        assert not JourneyActivity.objects.filter(status="done").exists()


@pytest.mark.django_db
def test_a_decisions_expected_customer_impact_is_kept_and_shown_on_the_account(client, tenant_a):
    account = owned_account(tenant_a)
    log_in_as(client, tenant_a, Role.CSM)
    impact = "Month-end payment files rejected for 40 credit unions"
    data = _decision_data(tenant_a, customer_impact=impact)
    response = client.post(reverse("decision_create", args=[account.pk]), data)
    assert response.status_code == 302
    (decision,) = _decisions(tenant_a.tenant)
    assert decision.customer_impact == impact
    assert last_event(tenant_a.tenant).after["customer_impact"] == impact
    assert f"Impact: {impact}" in page_text(client.get(reverse("account_detail", args=[account.pk])))
