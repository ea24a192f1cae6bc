"""A token acts with its creator's admin rights, so it authenticates only while the creator is an active
admin of the token's tenant. Demotion or deactivation suspends it (401, nothing written); re-promotion or
re-activation brings it back. Suspension, not revocation (api/authentication.py says why)."""

from __future__ import annotations

import datetime

import pytest

from cs_platform.tenancy import context
from cs_platform.tenancy.models import Membership, Role
from metrics.models import SurveyResponse
from tests.api.helpers import api_post, bearer
from tests.helpers import event_count, owned_account

ME = "/api/v1/me/"
SURVEYS = "/api/v1/surveys/"


def _set_membership(world, **fields) -> None:
    with context.tenant_context(world.tenant):
        Membership.objects.filter(pk=world.memberships[Role.ADMIN].pk).update(**fields)


def _surveys(world) -> int:
    with context.tenant_context(world.tenant):
        return SurveyResponse.objects.count()


def _survey(account, score: int) -> dict:
    day = datetime.date.today() - datetime.timedelta(days=1)
    return {"account": account.pk, "survey_type": "nps", "score": score, "responded_on": day.isoformat()}


def _refused(response, message: str) -> None:
    assert response.status_code == 401, response.content
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json() == {"status": 401, "code": "authentication_failed", "message": message, "errors": []}


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.MANAGER, Role.CSM, Role.EXECUTIVE, Role.COMPLIANCE, Role.VIEWER])
def test_a_demoted_creators_token_stops_working_until_re_promoted(client, tenant_a, role):
    account = owned_account(tenant_a)
    auth = bearer(tenant_a, "metrics:read", "metrics:write")
    assert api_post(client, SURVEYS, _survey(account, 9), auth).status_code == 201

    _set_membership(tenant_a, role=role)
    events = event_count(tenant_a.tenant)
    _refused(client.get(ME, **auth), "Token owner is no longer an admin of this tenant.")
    _refused(api_post(client, SURVEYS, _survey(account, 3), auth), "Token owner is no longer an admin of this tenant.")
    assert _surveys(tenant_a) == 1 and event_count(tenant_a.tenant) == events

    _set_membership(tenant_a, role=Role.ADMIN)
    me = client.get(ME, **auth)
    assert me.status_code == 200 and (me.json()["auth"], me.json()["role"]) == ("token", Role.ADMIN)
    assert api_post(client, SURVEYS, _survey(account, 7), auth).status_code == 201
    assert _surveys(tenant_a) == 2


@pytest.mark.django_db
def test_a_deactivated_creators_token_stops_working_until_re_activated(client, tenant_a):
    account = owned_account(tenant_a)
    auth = bearer(tenant_a, "metrics:read", "metrics:write")
    assert client.get(ME, **auth).status_code == 200

    _set_membership(tenant_a, is_active=False)
    _refused(client.get(ME, **auth), "Token owner is no longer a member.")
    _refused(api_post(client, SURVEYS, _survey(account, 3), auth), "Token owner is no longer a member.")
    assert _surveys(tenant_a) == 0

    _set_membership(tenant_a, is_active=True)
    assert client.get(ME, **auth).status_code == 200
    assert api_post(client, SURVEYS, _survey(account, 7), auth).status_code == 201


@pytest.mark.django_db
def test_an_admin_elsewhere_does_not_keep_a_token_of_this_tenant_alive(client, tenant_a, tenant_b):
    """Admin rights count in the token's own tenant only: the creator staying admin of another tenant
    does not keep a token alive after the demotion here."""
    from cs_platform.identity.services import membership_create

    admin = tenant_a.user(Role.ADMIN)
    membership_create(tenant=tenant_b.tenant, user=admin, role=Role.ADMIN)
    auth = bearer(tenant_a, "accounts:read")
    _set_membership(tenant_a, role=Role.CSM)
    _refused(client.get(ME, **auth), "Token owner is no longer an admin of this tenant.")


@pytest.mark.django_db
def test_the_role_check_costs_no_query(client, tenant_a, django_assert_num_queries):
    auth = bearer(tenant_a, "accounts:read")
    client.get(ME, **auth)  # the last-used mark is written once a minute: out of the way
    # The token's tenant (the SECURITY DEFINER lookup), the token with tenant and creator, the creator's
    # membership (which carries the role), the count of the caller's accounts: as before the role check.
    with django_assert_num_queries(4):
        assert client.get(ME, **auth).status_code == 200


@pytest.mark.django_db
def test_the_tokens_page_marks_a_suspended_token(client, tenant_a):
    from django.urls import reverse

    from tests import factories

    bearer(tenant_a, "metrics:read")  # created by the fixture's admin
    other_admin = factories.UserFactory(username="second-admin@alpha.test")
    factories.MembershipFactory(tenant=tenant_a.tenant, user=other_admin, role=Role.ADMIN)
    client.force_login(other_admin)
    client.get(reverse("account_list"))  # the session's tenant
    assert 'class="badge red suspended"' not in client.get(reverse("api_tokens")).content.decode()
    _set_membership(tenant_a, role=Role.MANAGER)
    body = client.get(reverse("api_tokens")).content.decode()
    assert 'class="badge red suspended"' in body and "no longer an admin here" in body
