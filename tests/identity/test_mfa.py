"""MFA with django-otp: enrolment (server-side QR code, the secret in text, confirmation, recovery codes
shown once and never kept in the session), regenerating and removing (after re-authentication), and the
enforcement: a role the tenant requires MFA for, and every platform superuser, must pass the code step
(or enrol first) before reaching any page, the REST API, or the Django admin."""

from __future__ import annotations

import base64
import re

import pytest
from django.contrib import admin
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from cs_platform.identity import services, sessions
from cs_platform.identity.services import tenant_mfa_policy_set
from cs_platform.tenancy.models import Role
from cs_platform.tenancy.policy import Capability
from tests import factories
from tests.helpers import force_login_verified
from tests.identity.conftest import auth_events, code_for

pytestmark = pytest.mark.django_db


def _enrol_through_the_page(client):
    page = client.get(reverse("mfa_enroll"))
    device = TOTPDevice.objects.get(confirmed=False, name="Authenticator app")
    response = client.post(reverse("mfa_enroll"), {"code": code_for(device)})
    return page, device, response


def _codes_in(response) -> list[str]:
    return [
        c.replace(" ", "")
        for c in re.findall(r"<li><code>([a-z2-7]{4} [a-z2-7]{4})</code></li>", response.content.decode())
    ]


def test_enrolment_shows_a_qr_code_and_the_secret_and_then_the_recovery_codes_once(client, tenant_a):
    user = tenant_a.user(Role.CSM)
    client.force_login(user)
    body = client.get(reverse("mfa_enroll")).content.decode()
    assert '<svg width="' in body and 'class="qr-code"' in body  # drawn on the server, inline
    secret = re.search(r'<code class="secret">([A-Z2-7 ]+)</code>', body).group(1)
    assert secret in client.get(reverse("mfa_enroll")).content.decode()  # a reload shows the same key
    page, device, response = _enrol_through_the_page(client)
    secret = secret.replace(" ", "")
    assert base64.b32decode(secret + "=" * (-len(secret) % 8)) == device.bin_key
    assert response.status_code == 200
    codes = _codes_in(response)
    assert len(codes) == 10 and len(set(codes)) == 10
    device.refresh_from_db()
    assert device.confirmed
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id  # this session counts as verified
    assert not any(code in str(dict(client.session.items())) for code in codes)  # never in the session
    assert "10 unused recovery codes left" in client.get(reverse("account_security")).content.decode()
    [event] = auth_events(tenant_a, "auth.mfa_enrolled", user)
    assert event.after == {"ip": "127.0.0.1", "replaced": False, "recovery_codes": 10}
    assert not any(code in str(event.after) for code in codes)


def test_a_wrong_confirmation_code_enrols_nothing(client, tenant_a):
    client.force_login(tenant_a.user(Role.CSM))
    client.get(reverse("mfa_enroll"))
    response = client.post(reverse("mfa_enroll"), {"code": "123456"})
    assert response.status_code == 400 and "That code is not right" in response.content.decode()
    assert not TOTPDevice.objects.filter(confirmed=True).exists()
    assert not auth_events(tenant_a, "auth.mfa_enrolled")


def test_regenerating_recovery_codes_needs_reauthentication_and_replaces_them(client, tenant_a):
    user = tenant_a.user(Role.CSM)
    client.force_login(user)
    _, device, enrolled = _enrol_through_the_page(client)
    old = _codes_in(enrolled)
    _age_reauth(client)
    response = client.post(reverse("mfa_recovery_codes"), HTTP_REFERER="http://testserver/account/security/")
    assert response.status_code == 302
    assert response["Location"] == reverse("reauth") + "?next=%2Faccount%2Fsecurity%2F"
    _reauthenticate(client, device)
    response = client.post(reverse("mfa_recovery_codes"))
    new = _codes_in(response)
    assert len(new) == 10 and not set(new) & set(old)
    held = set(StaticToken.objects.filter(device__user=user).values_list("token", flat=True))
    assert held == set(new)
    assert len(auth_events(tenant_a, "auth.recovery_codes_regenerated", user)) == 1


def test_removing_mfa_needs_reauthentication(client, tenant_a):
    user = tenant_a.user(Role.CSM)
    client.force_login(user)
    _, device, _ = _enrol_through_the_page(client)
    _age_reauth(client)
    assert client.post(reverse("mfa_remove"))["Location"].startswith(reverse("reauth"))
    assert TOTPDevice.objects.filter(user=user).exists()
    _reauthenticate(client, device)
    assert client.post(reverse("mfa_remove")).status_code == 302
    assert (
        not TOTPDevice.objects.filter(user=user).exists() and not StaticToken.objects.filter(device__user=user).exists()
    )
    assert len(auth_events(tenant_a, "auth.mfa_removed", user)) == 1
    assert "Set up an authenticator app" in client.get(reverse("account_security")).content.decode()


def test_mfa_cannot_be_removed_while_required(client, tenant_a):
    user = tenant_a.user(Role.CSM)
    tenant_mfa_policy_set(tenant=tenant_a.tenant, roles=[Role.CSM], actor=tenant_a.user(Role.ADMIN))
    force_login_verified(client, user)
    response = client.post(reverse("mfa_remove"), follow=True)
    assert "MFA is required for your account" in response.content.decode()
    assert TOTPDevice.objects.filter(user=user).exists()
    assert not auth_events(tenant_a, "auth.mfa_removed")


def test_moving_to_a_new_authenticator_needs_reauthentication_and_replaces_the_old_one(client, tenant_a):
    user = tenant_a.user(Role.CSM)
    client.force_login(user)
    _, old_device, _ = _enrol_through_the_page(client)
    _age_reauth(client)
    client.get(reverse("mfa_enroll"))
    new_device = TOTPDevice.objects.get(user=user, confirmed=False)
    refused = client.post(reverse("mfa_enroll"), {"code": code_for(new_device)})
    assert refused.status_code == 302 and refused["Location"].startswith(reverse("reauth"))
    _reauthenticate(client, old_device)
    response = client.post(reverse("mfa_enroll"), {"code": code_for(new_device, 1)})
    assert response.status_code == 200 and len(_codes_in(response)) == 10
    assert list(TOTPDevice.objects.filter(user=user).values_list("pk", flat=True)) == [new_device.pk]
    assert auth_events(tenant_a, "auth.mfa_enrolled", user)[-1].after["replaced"] is True


# --- Enforcement -------------------------------------------------------------------------------------------


def test_a_role_the_tenant_requires_mfa_for_must_enrol_before_any_page(client, tenant_a):
    csm, viewer = tenant_a.user(Role.CSM), tenant_a.user(Role.VIEWER)
    client.force_login(csm)
    assert client.get(reverse("account_list")).status_code == 200  # not required yet
    tenant_mfa_policy_set(tenant=tenant_a.tenant, roles=[Role.CSM], actor=tenant_a.user(Role.ADMIN))
    # From the next request on, every page sends the CSM to the MFA step, which sends them to enrol.
    response = client.get(reverse("account_list"))
    assert response.status_code == 302 and response["Location"] == reverse("login_verify") + "?next=%2Faccounts%2F"
    step = client.get(response["Location"])
    assert step.status_code == 302 and step["Location"] == reverse("mfa_enroll") + "?next=%2Faccounts%2F"
    for url in (reverse("home"), reverse("decision_list"), reverse("account_security"), reverse("reauth")):
        assert client.get(url)["Location"].startswith(reverse("login_verify")), url
    api = client.get("/api/v1/me/")
    assert api.status_code == 403 and api.json()["code"] == "mfa_required"
    # Enrolment is reachable, and once done the pages open.
    _, _, enrolled = _enrol_through_the_page(client)
    assert enrolled.status_code == 200
    assert 'href="/accounts/"' in enrolled.content.decode()  # "Continue" goes back where they were going
    assert client.get(reverse("account_list")).status_code == 200
    # Roles not required are untouched.
    client.force_login(viewer)
    assert client.get(reverse("account_list")).status_code == 200


def test_a_required_member_with_an_authenticator_enters_a_code_to_continue(client, tenant_a, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    user = tenant_a.user(Role.ADMIN)
    device = services.mfa_enrollment_start(user=user)
    services.mfa_enrollment_confirm(user=user, device=device, code=code_for(device), ip=None)
    tenant_mfa_policy_set(tenant=tenant_a.tenant, roles=[Role.ADMIN], actor=user)
    client.force_login(user)  # a session that skipped the code step
    assert (
        client.get(reverse("api_tokens"))["Location"] == reverse("login_verify") + "?next=%2Fsettings%2Fapi-tokens%2F"
    )
    response = client.post(reverse("login_verify") + "?next=%2Fsettings%2Fapi-tokens%2F", {"code": code_for(device, 1)})
    assert response.status_code == 302 and response["Location"] == "/settings/api-tokens/"
    assert client.get(reverse("api_tokens")).status_code == 200
    assert auth_events(tenant_a, "auth.login", user)[-1].after["method"] == "session+totp"


def test_a_person_with_an_authenticator_but_no_requirement_still_owes_the_code(client, tenant_a):
    # A session that logged in without the code (the admin's form, before this change) is sent to it.
    user = tenant_a.user(Role.CSM)
    device = services.mfa_enrollment_start(user=user)
    services.mfa_enrollment_confirm(user=user, device=device, code=code_for(device), ip=None)
    client.force_login(user)
    assert client.get(reverse("account_list"))["Location"].startswith(reverse("login_verify"))


def test_a_platform_superuser_always_needs_mfa(client):
    superuser = factories.UserFactory(username="root@platform.test", is_staff=True, is_superuser=True)
    client.force_login(superuser)
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"] == reverse("login_verify") + "?next=%2Fadmin%2F"
    assert client.get(response["Location"])["Location"].startswith(reverse("mfa_enroll"))
    force_login_verified(client, superuser)
    assert client.get("/admin/").status_code == 200


def test_the_admin_site_itself_refuses_a_superuser_who_has_not_passed_mfa():
    superuser = factories.UserFactory(username="root2@platform.test", is_staff=True, is_superuser=True)
    request = RequestFactory().get("/admin/")
    request.user = superuser
    superuser.is_verified = lambda: False
    assert admin.site.has_permission(request) is False
    superuser.is_verified = lambda: True
    assert admin.site.has_permission(request) is True


def test_a_superuser_logs_into_the_admin_with_password_and_code(client, settings):
    superuser = factories.UserFactory(username="root3@platform.test", is_staff=True, is_superuser=True)
    device = services.mfa_enrollment_start(user=superuser)
    services.mfa_enrollment_confirm(user=superuser, device=device, code=code_for(device), ip=None)
    start = client.get("/admin/")
    login_page = client.get(start["Location"])  # /admin/login/ sends to our login, keeping where to go
    assert login_page.status_code == 302 and login_page["Location"] == "/login/?next=%2Fadmin%2F"
    step = client.post(
        "/login/?next=%2Fadmin%2F",
        {"username": superuser.username, "password": factories.TEST_PASSWORD, "next": "/admin/"},
    )
    assert step["Location"] == reverse("login_verify")
    assert client.get("/admin/").status_code == 302  # not yet
    done = client.post(reverse("login_verify"), {"code": code_for(device, 1)})
    assert done["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_bearer_tokens_are_not_subject_to_the_browser_mfa_step(client, tenant_a):
    from tests.api.helpers import bearer

    tenant_mfa_policy_set(tenant=tenant_a.tenant, roles=list(Role.values), actor=tenant_a.user(Role.ADMIN))
    assert client.get("/api/v1/me/", **bearer(tenant_a, "accounts:read")).status_code == 200


# --- The tenant's setting ----------------------------------------------------------------------------------


def test_tenant_admins_choose_the_roles_that_must_use_mfa(client, tenant_a):
    admin_user = tenant_a.user(Role.ADMIN)
    client.force_login(admin_user)
    services.mfa_enrollment_confirm(
        user=tenant_a.user(Role.CSM),
        device=(d := services.mfa_enrollment_start(user=tenant_a.user(Role.CSM))),
        code=code_for(d),
        ip=None,
    )
    client.get(reverse("home"))  # the first page stores the active tenant in the session
    with CaptureQueriesContext(connection) as queries:
        page = client.get(reverse("security_settings"))
    # session, user, memberships (tenant joined), per-role coverage (members, with MFA).
    assert len(queries.captured_queries) == 4, [q["sql"] for q in queries.captured_queries]
    body = page.content.decode()
    assert page.status_code == 200 and 'name="roles" value="csm"' in body
    assert re.search(
        r"Customer success manager</label></th>\s*<td class=\"num\">1</td>\s*<td class=\"num\">1</td>", body
    )

    response = client.post(reverse("security_settings"), {"roles": [Role.COMPLIANCE, Role.EXECUTIVE]})
    assert response.status_code == 302 and response["Location"] == reverse("security_settings")
    tenant_a.tenant.refresh_from_db()
    assert tenant_a.tenant.mfa_required_roles == [Role.EXECUTIVE, Role.COMPLIANCE]  # in the roles' order
    from tests.helpers import last_event

    event = last_event(tenant_a.tenant)
    assert (event.action, event.actor_id, event.before, event.after) == (
        "tenant.mfa_policy_set",
        admin_user.pk,
        {"mfa_required_roles": []},
        {"mfa_required_roles": ["executive", "compliance"]},
    )
    bad = client.post(reverse("security_settings"), {"roles": ["root"]})
    assert bad.status_code == 400 and "not one of the available choices" in bad.content.decode()
    # An admin who makes MFA mandatory for admins is sent to set it up at once, like every other admin.
    client.post(reverse("security_settings"), {"roles": [Role.ADMIN]})
    assert client.get(reverse("security_settings"))["Location"].startswith(reverse("login_verify"))


def test_changing_the_mfa_setting_needs_reauthentication(client, tenant_a):
    client.force_login(tenant_a.user(Role.ADMIN))
    _age_reauth(client)
    response = client.post(reverse("security_settings"), {"roles": [Role.CSM]})
    assert response.status_code == 302 and response["Location"].startswith(reverse("reauth"))
    tenant_a.tenant.refresh_from_db()
    assert tenant_a.tenant.mfa_required_roles == []


@pytest.mark.parametrize("role", sorted(set(Role.values) - Capability.MANAGE_SECURITY_SETTINGS.roles))
def test_only_tenant_admins_see_the_security_settings(client, tenant_a, role):
    client.force_login(tenant_a.user(role))
    assert client.get(reverse("security_settings")).status_code == 403
    assert client.post(reverse("security_settings"), {"roles": []}).status_code == 403


def test_unknown_roles_are_refused_by_the_service_too(tenant_a):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        tenant_mfa_policy_set(tenant=tenant_a.tenant, roles=["superadmin"], actor=None)


# --- helpers ----------------------------------------------------------------------------------------------


def _age_reauth(client) -> None:
    session = client.session
    session[sessions.REAUTH_AT] = sessions.now() - 3600
    session.save()


def _reauthenticate(client, device) -> None:
    response = client.post(reverse("reauth"), {"password": factories.TEST_PASSWORD, "code": code_for(device, 1)})
    assert response.status_code == 302, response.content.decode()


def test_a_session_that_owes_the_code_cannot_replace_the_authenticator(client, tenant_a):
    # The enrolment page is open before the MFA step (to enrol); with an app already, it is not.
    user = tenant_a.user(Role.CSM)
    device = services.mfa_enrollment_start(user=user)
    services.mfa_enrollment_confirm(user=user, device=device, code=code_for(device), ip=None)
    client.force_login(user)
    for response in (client.get(reverse("mfa_enroll")), client.post(reverse("mfa_enroll"), {"code": "123456"})):
        assert response.status_code == 302 and response["Location"] == reverse("login_verify")
    assert TOTPDevice.objects.filter(user=user).count() == 1
