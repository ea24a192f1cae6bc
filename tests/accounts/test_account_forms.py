"""The everyday account forms: log a touchpoint, record a survey response, reassign the account.
Each: allowed roles store and audit; other roles get 403 and nothing is stored; accounts outside the
user's book or tenant answer 404; bad input names the field, keeps the input and stores nothing."""

from __future__ import annotations

import datetime
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account, Touchpoint
from accounts.selectors import visible_accounts
from cs_platform.identity.services import membership_create
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from cs_platform.tenancy.policy import Capability
from metrics.models import SurveyResponse
from tests import factories
from tests.helpers import event_count, field_error, last_event, log_in_as, owned_account, page_text

TODAY = datetime.date.today()
LOCAL = "%Y-%m-%dT%H:%M"


def _count(model, tenant) -> int:
    with context.tenant_context(tenant):
        return model.objects.count()


def _widget(body: str, field: str) -> str:
    """The opening tag of a field's input, select or textarea."""
    return re.search(rf'<(?:input|select|textarea)[^>]*id="id_{field}"[^>]*>', body).group(0)


def _touchpoint(**overrides) -> dict:
    data = {
        "kind": "call",
        "occurred_at": (timezone.localtime() - datetime.timedelta(hours=1)).strftime(LOCAL),
        "subject": "Weekly check-in",
        "notes": "Discussed the ISO 20022 cut-over.",
        "contact": "",
    }
    data.update(overrides)
    return data


def _survey(**overrides) -> dict:
    data = {"survey_type": "nps", "score": "9", "responded_on": TODAY.isoformat(), "contact": "", "comment": "Great"}
    data.update(overrides)
    return data


# --- Touchpoints ---------------------------------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize("role", Role.values)
def test_touchpoint_form_by_role(client, tenant_a, role):
    account = owned_account(tenant_a)
    contact = factories.ContactFactory(tenant=tenant_a.tenant, account=account, name="Priya Raman")
    log_in_as(client, tenant_a, role)
    url = reverse("touchpoint_log", args=[account.pk])
    before = event_count(tenant_a.tenant)
    response = client.post(url, _touchpoint(contact=str(contact.pk)))
    if role not in Capability.LOG_TOUCHPOINTS.roles:
        assert response.status_code == 403 and client.get(url).status_code == 403
        assert _count(Touchpoint, tenant_a.tenant) == 0 and event_count(tenant_a.tenant) == before
        return
    assert response.status_code == 302
    assert response["Location"] == reverse("account_detail", args=[account.pk]) + "#timeline"
    with context.tenant_context(tenant_a.tenant):
        touchpoint = Touchpoint.objects.get()
    assert (touchpoint.subject, touchpoint.contact_id, touchpoint.author_id) == (
        "Weekly check-in",
        contact.pk,
        tenant_a.user(role).pk,
    )
    event = last_event(tenant_a.tenant)
    assert event.action == "touchpoint.log" and event.object_id == str(touchpoint.pk)
    assert event.actor_id == tenant_a.user(role).pk
    page = page_text(client.get(response["Location"]))
    assert "Touchpoint logged: Weekly check-in." in page  # the success message


@pytest.mark.django_db
def test_touchpoint_form_page_offers_only_this_accounts_contacts(client, tenant_a):
    account = owned_account(tenant_a)
    factories.ContactFactory(tenant=tenant_a.tenant, account=account, name="Priya Raman")
    factories.ContactFactory(tenant=tenant_a.tenant, name="Someone Elsewhere")
    log_in_as(client, tenant_a, Role.CSM)
    body = page_text(client.get(reverse("touchpoint_log", args=[account.pk])))
    assert "Priya Raman" in body and "Someone Elsewhere" not in body
    assert 'type="datetime-local"' in body and '<label for="id_subject">' in body


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        (
            {"occurred_at": (timezone.localtime() + datetime.timedelta(days=1)).strftime(LOCAL)},
            "occurred_at",
            "A touchpoint cannot be in the future.",
        ),
        ({"subject": ""}, "subject", "This field is required."),
        ({"kind": "pigeon"}, "kind", "Select a valid choice."),
        ({"occurred_at": "next tuesday"}, "occurred_at", "Enter a valid date/time."),
        ("other-account-contact", "contact", "Select a valid choice."),
    ],
)
def test_touchpoint_bad_input_is_refused_on_its_field_and_kept(client, tenant_a, overrides, field, message):
    account = owned_account(tenant_a)
    if overrides == "other-account-contact":
        stranger = factories.ContactFactory(tenant=tenant_a.tenant, name="Someone Elsewhere")
        overrides = {"contact": str(stranger.pk)}
    log_in_as(client, tenant_a, Role.CSM)
    before = event_count(tenant_a.tenant)
    data = _touchpoint(subject="Kept subject", **{k: v for k, v in overrides.items() if k != "subject"})
    if "subject" in overrides:
        data["subject"] = overrides["subject"]
    response = client.post(reverse("touchpoint_log", args=[account.pk]), data)
    body = page_text(response)
    assert response.status_code == 400
    assert message in field_error(body, field)
    assert 'aria-invalid="true"' in _widget(body, field)
    assert _count(Touchpoint, tenant_a.tenant) == 0 and event_count(tenant_a.tenant) == before
    if field != "subject":
        assert 'value="Kept subject"' in body  # the user's input is shown back
    assert "Discussed the ISO 20022 cut-over." in body


@pytest.mark.django_db
def test_touchpoint_service_refuses_another_accounts_contact(tenant_a):
    # The form only offers the account's contacts; the service is the backstop for other callers.
    from django.core.exceptions import ValidationError

    from accounts.services import touchpoint_log

    account = owned_account(tenant_a)
    stranger = factories.ContactFactory(tenant=tenant_a.tenant)
    with pytest.raises(ValidationError) as raised:
        touchpoint_log(
            tenant=tenant_a.tenant,
            account=account,
            kind="call",
            subject="x",
            occurred_at=timezone.now(),
            contact=stranger,
        )
    assert "contact" in raised.value.message_dict


# --- Surveys ---------------------------------------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize("role", Role.values)
def test_survey_form_by_role(client, tenant_a, role):
    account = owned_account(tenant_a)
    log_in_as(client, tenant_a, role)
    url = reverse("survey_record", args=[account.pk])
    before = event_count(tenant_a.tenant)
    response = client.post(url, _survey(survey_type="csat", score="4"))
    if role not in Capability.RECORD_SURVEYS.roles:
        assert response.status_code == 403 and client.get(url).status_code == 403
        assert _count(SurveyResponse, tenant_a.tenant) == 0 and event_count(tenant_a.tenant) == before
        return
    assert response.status_code == 302
    with context.tenant_context(tenant_a.tenant):
        stored = SurveyResponse.objects.get()
    assert (stored.survey_type, stored.score, stored.responded_on, stored.comment) == ("csat", 4, TODAY, "Great")
    event = last_event(tenant_a.tenant)
    assert event.action == "survey_response.create" and event.actor_id == tenant_a.user(role).pk


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"survey_type": "nps", "score": "11"}, "score", "A NPS score must be a whole number from 0 to 10."),
        ({"survey_type": "csat", "score": "0"}, "score", "A CSAT score must be a whole number from 1 to 5."),
        ({"survey_type": "ces", "score": "8"}, "score", "A CES score must be a whole number from 1 to 7."),
        ({"score": "nine"}, "score", "Enter a whole number."),
        (
            {"responded_on": (TODAY + datetime.timedelta(days=1)).isoformat()},
            "responded_on",
            "A survey response cannot be dated in the future.",
        ),
        ("other-account-contact", "contact", "Select a valid choice."),
    ],
)
def test_survey_bad_input_is_refused_on_its_field_and_kept(client, tenant_a, overrides, field, message):
    account = owned_account(tenant_a)
    if overrides == "other-account-contact":
        overrides = {"contact": str(factories.ContactFactory(tenant=tenant_a.tenant).pk)}
    log_in_as(client, tenant_a, Role.CSM)
    before = event_count(tenant_a.tenant)
    response = client.post(reverse("survey_record", args=[account.pk]), _survey(comment="Keep me", **overrides))
    body = page_text(response)
    assert response.status_code == 400 and message in field_error(body, field)
    assert _count(SurveyResponse, tenant_a.tenant) == 0 and event_count(tenant_a.tenant) == before
    assert "Keep me" in body
    if field == "score":
        assert f'value="{overrides["score"]}"' in body


# --- Reassign --------------------------------------------------------------------------------------------
@pytest.fixture
def teams(tenant_a):
    """A second CSM in the manager's team, and a CSM in nobody's team."""
    tenant, admin = tenant_a.tenant, tenant_a.user(Role.ADMIN)
    teammate = factories.UserFactory(username="teammate@alpha.test", first_name="Tess", last_name="Mate")
    membership_create(
        tenant=tenant, user=teammate, role=Role.CSM, manager=tenant_a.memberships[Role.MANAGER], actor=admin
    )
    loner = factories.UserFactory(username="loner@alpha.test", first_name="Lone", last_name="Ranger")
    membership_create(tenant=tenant, user=loner, role=Role.CSM, actor=admin)
    return teammate, loner


def _owner_of(account):
    with context.tenant_context(account.tenant):
        return Account.objects.get(pk=account.pk).owner_csm


def _sees(user, account) -> bool:
    with context.tenant_context(account.tenant):
        return visible_accounts(user).filter(pk=account.pk).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("role", Role.values)
def test_reassign_by_role(client, tenant_a, teams, role):
    teammate, _ = teams
    account = owned_account(tenant_a)
    csm = tenant_a.user(Role.CSM)
    log_in_as(client, tenant_a, role)
    url = reverse("account_reassign", args=[account.pk])
    before = event_count(tenant_a.tenant)
    response = client.post(url, {"owner_csm": str(teammate.pk)})
    if role not in Capability.REASSIGN_ACCOUNTS.roles:
        assert response.status_code == 403 and client.get(url).status_code == 403
        assert _owner_of(account) == csm and event_count(tenant_a.tenant) == before
        return
    assert response.status_code == 302 and response["Location"] == reverse("account_detail", args=[account.pk])
    assert _owner_of(account) == teammate
    assert _sees(teammate, account) and not _sees(csm, account)  # the permissions moved with it
    with context.tenant_context(tenant_a.tenant):
        from cs_platform.audit.models import AuditEvent

        update = AuditEvent.objects.filter(action="account.update", object_id=str(account.pk)).latest("seq")
    assert update.before["owner_csm_id"] == csm.pk and update.after["owner_csm_id"] == teammate.pk
    assert update.actor_id == tenant_a.user(role).pk


@pytest.mark.django_db
def test_managers_choose_among_their_team_and_admins_among_all_csms(client, tenant_a, teams):
    teammate, loner = teams
    account = owned_account(tenant_a)
    log_in_as(client, tenant_a, Role.MANAGER)
    body = page_text(client.get(reverse("account_reassign", args=[account.pk])))
    assert "Tess Mate" in body and "Lone Ranger" not in body
    response = client.post(reverse("account_reassign", args=[account.pk]), {"owner_csm": str(loner.pk)})
    assert response.status_code == 400 and "Select a valid choice." in field_error(page_text(response), "owner_csm")
    assert _owner_of(account) == tenant_a.user(Role.CSM)
    log_in_as(client, tenant_a, Role.ADMIN)
    body = page_text(client.get(reverse("account_reassign", args=[account.pk])))
    assert "Tess Mate" in body and "Lone Ranger" in body and tenant_a.user(Role.VIEWER).get_full_name() not in body
    assert client.post(reverse("account_reassign", args=[account.pk]), {"owner_csm": str(loner.pk)}).status_code == 302
    assert _owner_of(account) == loner


@pytest.mark.django_db
def test_reassign_refuses_viewers_other_tenants_and_the_current_owner(client, tenant_a, tenant_b):
    account = owned_account(tenant_a)
    log_in_as(client, tenant_a, Role.ADMIN)
    url = reverse("account_reassign", args=[account.pk])
    before = event_count(tenant_a.tenant)
    for user, message in (
        (tenant_a.user(Role.VIEWER), "Select a valid choice."),
        (tenant_b.user(Role.CSM), "Select a valid choice."),
        (tenant_a.user(Role.CSM), "is already assigned to"),
    ):
        response = client.post(url, {"owner_csm": str(user.pk)})
        assert response.status_code == 400 and message in field_error(page_text(response), "owner_csm"), user
    assert _owner_of(account) == tenant_a.user(Role.CSM) and event_count(tenant_a.tenant) == before


# --- 404s -------------------------------------------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize("name", ["touchpoint_log", "survey_record", "account_reassign"])
def test_accounts_outside_the_book_or_the_tenant_answer_404(client, tenant_a, tenant_b, name):
    outside_book = factories.AccountFactory(tenant=tenant_a.tenant)  # nobody granted the CSM
    other_tenant = owned_account(tenant_b)
    data = {**_touchpoint(), **_survey(), "owner_csm": str(tenant_a.user(Role.CSM).pk)}
    role = Role.MANAGER if name == "account_reassign" else Role.CSM
    log_in_as(client, tenant_a, role)
    for account in (outside_book, other_tenant):
        url = reverse(name, args=[account.pk])
        assert client.get(url).status_code == 404 and client.post(url, data).status_code == 404
    log_in_as(client, tenant_a, Role.VIEWER)  # 404 beats 403: a viewer learns nothing of another tenant
    assert client.post(reverse(name, args=[other_tenant.pk]), data).status_code == 404
    assert _count(Touchpoint, tenant_a.tenant) == _count(SurveyResponse, tenant_a.tenant) == 0
    assert _count(Touchpoint, tenant_b.tenant) == _count(SurveyResponse, tenant_b.tenant) == 0
    assert _owner_of(other_tenant) == tenant_b.user(Role.CSM)


@pytest.mark.django_db
def test_reassign_service_checks_the_actors_role_and_team(tenant_a, teams):
    # The form only offers allowed people; the service holds the rule for any other caller.
    from django.core.exceptions import ValidationError

    from accounts.services import account_reassign

    teammate, loner = teams
    account = owned_account(tenant_a)
    cases = [
        (tenant_a.user(Role.MANAGER), loner, "Choose a CSM of your team."),
        (tenant_a.user(Role.ADMIN), tenant_a.user(Role.VIEWER), "Choose an active CSM or manager."),
        (tenant_a.user(Role.CSM), teammate, "Only managers and admins reassign accounts."),
    ]
    for actor, owner, message in cases:
        with pytest.raises(ValidationError) as raised:
            account_reassign(tenant=tenant_a.tenant, account=account, owner_csm=owner, actor=actor)
        assert raised.value.message_dict == {"owner_csm": [message]}
    assert _owner_of(account) == tenant_a.user(Role.CSM)
