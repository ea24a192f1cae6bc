"""Login, logout and tenant switching through the real middleware."""

import pytest
from django.urls import reverse

from cs_platform.tenancy.models import Role
from tests import factories


@pytest.mark.django_db
def test_wrong_credentials_give_a_clear_message_not_a_stack_trace(client, tenant_a):
    response = client.post(reverse("login"), {"username": tenant_a.user(Role.CSM).username, "password": "wrong"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_login_then_home_then_logout(client, tenant_a):
    user = tenant_a.user(Role.VIEWER)
    response = client.post(reverse("login"), {"username": user.username, "password": factories.TEST_PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("home")
    home = client.get(reverse("home"))
    assert home.status_code == 200 and tenant_a.tenant.name in home.content.decode()
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("home")).status_code == 302


@pytest.mark.django_db
def test_a_user_in_two_tenants_switches_between_them(client, tenant_a, tenant_b):
    consultant = factories.UserFactory(username="consultant@example.test")
    factories.MembershipFactory(tenant=tenant_a.tenant, user=consultant, role=Role.EXECUTIVE)
    factories.MembershipFactory(tenant=tenant_b.tenant, user=consultant, role=Role.VIEWER)
    factories.AccountFactory(tenant=tenant_a.tenant, name="Alpha Federal Credit Union")
    factories.AccountFactory(tenant=tenant_b.tenant, name="Bravo Mutual Assurance")
    client.force_login(consultant)

    first = client.get(reverse("account_list")).content.decode()
    assert "Alpha Federal Credit Union" in first and "Bravo Mutual Assurance" not in first
    assert 'name="tenant"' in first  # the switcher is offered

    response = client.post(reverse("switch_tenant"), {"tenant": tenant_b.tenant.slug}, follow=True)
    body = response.content.decode()
    assert f"Switched to {tenant_b.tenant.name}" in body
    assert "Viewer" in body  # the role in the new tenant
    listed = client.get(reverse("account_list")).content.decode()
    assert "Bravo Mutual Assurance" in listed and "Alpha Federal Credit Union" not in listed


@pytest.mark.django_db
def test_a_link_naming_a_tenant_opens_its_page_whatever_tenant_the_session_was_on(client, tenant_a, tenant_b):
    # The weekly email's links carry ?tenant=<slug>: a member of two tenants reading tenant A's email
    # while the browser is on tenant B must see A's account, not a 404.
    consultant = factories.UserFactory(username="consultant@example.test")
    factories.MembershipFactory(tenant=tenant_a.tenant, user=consultant, role=Role.EXECUTIVE)
    factories.MembershipFactory(tenant=tenant_b.tenant, user=consultant, role=Role.EXECUTIVE)
    account = factories.AccountFactory(tenant=tenant_a.tenant, name="Alpha Federal Credit Union")
    client.force_login(consultant)
    client.post(reverse("switch_tenant"), {"tenant": tenant_b.tenant.slug})
    url = reverse("account_detail", args=[account.pk])
    assert client.get(url).status_code == 404  # on tenant B the account does not exist
    response = client.get(url, {"tenant": tenant_a.tenant.slug})
    assert response.status_code == 200 and "Alpha Federal Credit Union" in response.content.decode()
    assert client.get(url).status_code == 200  # the session stays on A afterwards


@pytest.mark.django_db
def test_a_link_naming_a_foreign_tenant_or_a_post_changes_nothing(client, tenant_a, tenant_b):
    account_b = factories.AccountFactory(tenant=tenant_b.tenant, name="Bravo Mutual Assurance")
    client.force_login(tenant_a.user(Role.EXECUTIVE))
    url = reverse("account_detail", args=[account_b.pk])
    assert client.get(url, {"tenant": tenant_b.tenant.slug}).status_code == 404  # not a member of B
    assert client.get(reverse("account_list"), {"tenant": tenant_b.tenant.slug}).context["current_tenant"] == (
        tenant_a.tenant
    )
    consultant = factories.UserFactory(username="consultant@example.test")
    factories.MembershipFactory(tenant=tenant_a.tenant, user=consultant, role=Role.EXECUTIVE)
    factories.MembershipFactory(tenant=tenant_b.tenant, user=consultant, role=Role.EXECUTIVE)
    client.force_login(consultant)
    client.post(reverse("switch_tenant"), {"tenant": tenant_a.tenant.slug})
    # A form posted to a URL that names another tenant does not move the session (nor the write) there.
    client.post(reverse("switch_tenant") + f"?tenant={tenant_b.tenant.slug}", {"tenant": tenant_a.tenant.slug})
    assert client.get(reverse("account_list")).context["current_tenant"] == tenant_a.tenant


@pytest.mark.django_db
def test_switching_to_an_unknown_or_foreign_tenant_is_refused_clearly(client, tenant_a, tenant_b):
    client.force_login(tenant_a.user(Role.ADMIN))
    for slug in ("no-such-tenant", tenant_b.tenant.slug):
        body = client.post(reverse("switch_tenant"), {"tenant": slug}, follow=True).content.decode()
        assert f"You have no membership in a tenant called “{slug}”." in body
        assert tenant_a.tenant.name in body  # still in tenant A


@pytest.mark.django_db
def test_a_user_without_membership_is_told_so(client):
    loner = factories.UserFactory(username="loner@example.test")
    client.force_login(loner)
    response = client.get(reverse("home"))
    assert response.status_code == 403
    assert "not an active member of any tenant" in response.content.decode()


def test_healthz_needs_no_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.content == b"ok"
