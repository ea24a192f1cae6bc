"""Login and logout through the real pages: the audit events, the two-step login for a person with an
authenticator (TOTP or a single-use recovery code), wrong codes counting as failed logins, the code
step's time limit, and where people are sent back to."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY

from cs_platform.identity import services, sessions
from cs_platform.tenancy.models import Role
from tests import factories
from tests.identity.conftest import auth_events, code_for

pytestmark = pytest.mark.django_db


def _login(client, user, password=factories.TEST_PASSWORD, **extra):
    return client.post(
        reverse("login"), {"username": user.username, "password": password, **extra}, REMOTE_ADDR="10.2.0.1"
    )


def _enrolled(user):
    """A confirmed authenticator and recovery codes, through the services, as the enrolment page does."""
    device = services.mfa_enrollment_start(user=user)
    codes = services.mfa_enrollment_confirm(user=user, device=device, code=code_for(device), ip="10.2.0.9")
    device.refresh_from_db()
    return device, codes


def test_login_and_logout_are_audit_events_of_each_of_the_users_tenants(client, tenant_a, tenant_b):
    consultant = factories.UserFactory(username="consultant@example.test")
    factories.MembershipFactory(tenant=tenant_a.tenant, user=consultant, role=Role.EXECUTIVE)
    factories.MembershipFactory(tenant=tenant_b.tenant, user=consultant, role=Role.VIEWER)
    assert _login(client, consultant).status_code == 302
    assert client.post(reverse("logout"), REMOTE_ADDR="10.2.0.1").status_code == 302
    for world in (tenant_a, tenant_b):
        login, logout = auth_events(world, user=consultant)
        assert (login.action, login.actor_id, login.after) == (
            "auth.login",
            consultant.pk,
            {"ip": "10.2.0.1", "method": "password"},
        )
        assert (logout.action, logout.actor_id, logout.after) == (
            "auth.logout",
            consultant.pk,
            {"ip": "10.2.0.1", "reason": "logout"},
        )


def test_a_person_with_an_authenticator_logs_in_in_two_steps(client, tenant_a, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # django-otp's own slow-down after a wrong code: tested below
    user = tenant_a.user(Role.CSM)
    device, _ = _enrolled(user)
    response = _login(client, user, next="/decisions/")
    assert response.status_code == 302 and response["Location"] == reverse("login_verify")
    # The password alone logs nobody in: every page still asks for a login.
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("account_list"))["Location"].startswith(reverse("login"))
    wrong = client.post(reverse("login_verify"), {"code": "000000"}, REMOTE_ADDR="10.2.0.1")
    assert wrong.status_code == 400 and "That code is not right" in wrong.content.decode()
    response = client.post(reverse("login_verify"), {"code": code_for(device, 1)}, REMOTE_ADDR="10.2.0.1")
    assert response.status_code == 302 and response["Location"] == "/decisions/"
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    assert client.get(reverse("account_list")).status_code == 200
    methods = [(e.action, e.after.get("method") or e.after.get("reason")) for e in auth_events(tenant_a, user=user)]
    assert methods[-2:] == [("auth.login_failed", "invalid_code"), ("auth.login", "password+totp")]


def test_a_recovery_code_logs_in_once(client, tenant_a, settings):
    settings.OTP_STATIC_THROTTLE_FACTOR = 0
    user = tenant_a.user(Role.CSM)
    _, codes = _enrolled(user)
    _login(client, user)
    typed = f"{codes[0][:4].upper()}-{codes[0][4:].upper()}"  # as read off paper: upper case, a dash
    assert client.post(reverse("login_verify"), {"code": typed}).status_code == 302
    [used] = auth_events(tenant_a, "auth.recovery_code_used", user)
    assert used.after == {"ip": "127.0.0.1", "left": len(codes) - 1}
    assert codes[0] not in str(used.after)
    client.logout()
    _login(client, user)
    assert client.post(reverse("login_verify"), {"code": codes[0]}).status_code == 400
    assert client.post(reverse("login_verify"), {"code": codes[1]}).status_code == 302


def test_wrong_codes_count_as_failed_logins_and_lock_the_account(client, tenant_a, settings):
    # django-otp would also slow down the device; take that out to see axes' own count.
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    user = tenant_a.user(Role.CSM)
    device, _ = _enrolled(user)
    _login(client, user)
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert client.post(reverse("login_verify"), {"code": "000000"}).status_code == 400
    locked = client.post(reverse("login_verify"), {"code": "000000"})
    assert locked.status_code == 429
    # The lockout covers the password step too, and the pending login is gone.
    assert sessions.PENDING not in client.session
    assert _login(client, user).status_code == 429
    reasons = [e.after["reason"] for e in auth_events(tenant_a, "auth.login_failed", user)]
    assert reasons == ["invalid_code"] * settings.AXES_FAILURE_LIMIT + ["locked_out"]


def test_after_a_wrong_code_the_authenticator_makes_the_next_try_wait(client, tenant_a, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 60  # a minute after the first failure (django-otp doubles it each time)
    user = tenant_a.user(Role.CSM)
    device, _ = _enrolled(user)
    _login(client, user)
    client.post(reverse("login_verify"), {"code": "000000"})
    refused = client.post(reverse("login_verify"), {"code": code_for(device, 1)})  # the right code, too soon
    assert refused.status_code == 400 and "Too many wrong codes in a row" in refused.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_code_step_expires(client, tenant_a):
    user = tenant_a.user(Role.CSM)
    device, _ = _enrolled(user)
    _login(client, user)
    session = client.session
    session[sessions.PENDING] = {
        **session[sessions.PENDING],
        "at": sessions.now() - settings.MFA_LOGIN_STEP_SECONDS - 1,
    }
    session.save()
    response = client.post(reverse("login_verify"), {"code": code_for(device)})
    assert response.status_code == 302 and response["Location"] == reverse("login")
    assert "_auth_user_id" not in client.session


def test_the_code_step_without_a_password_step_goes_back_to_login(client):
    response = client.get(reverse("login_verify"))
    assert response.status_code == 302 and response["Location"] == reverse("login")


@pytest.mark.parametrize(
    ("next_url", "lands_on"),
    [
        ("/decisions/", "/decisions/"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
    ],
)
def test_login_returns_only_to_pages_of_this_site(client, tenant_a, next_url, lands_on):
    response = _login(client, tenant_a.user(Role.CSM), next=next_url)
    assert response.status_code == 302 and response["Location"] == lands_on


def test_the_admins_own_login_form_is_never_served(client):
    response = client.get("/admin/login/?next=/admin/tenancy/tenant/")
    assert response.status_code == 302
    assert response["Location"] == reverse("login") + "?next=%2Fadmin%2Ftenancy%2Ftenant%2F"


def test_logging_in_stamps_the_session_clocks_even_through_force_login(client, tenant_a):
    client.force_login(tenant_a.user(Role.CSM))
    session = client.session
    assert session[sessions.AUTH_AT] == session[sessions.SEEN_AT] == session[sessions.REAUTH_AT]
    assert session[sessions.HAS_MFA] is False


@pytest.mark.parametrize(
    "body",
    [
        {"username": "csm@alpha.test\x00", "password": "x"},
        {"username": "csm@alpha.test", "password": "x\x00y"},
        {"username": "a" * 5000, "password": "x"},
        {"username": "csm@alpha.test", "password": "p" * 5000},
        {"username": "", "password": ""},
    ],
)
def test_hostile_login_input_is_a_form_error_not_a_500(client, tenant_a, body):
    response = client.post(reverse("login"), body)
    # A NUL byte never reaches the form: cs_platform.bad_requests answers 400 before any view.
    expected = 400 if any("\x00" in value for value in body.values()) else 200
    assert response.status_code == expected and "_auth_user_id" not in client.session


def test_a_nul_in_the_next_parameter_is_refused_before_the_login_form(client, tenant_a):
    response = _login(client, tenant_a.user(Role.CSM), next="/accounts/\x00")
    assert response.status_code == 400 and "_auth_user_id" not in client.session


def test_password_fields_are_bounded_everywhere(client, tenant_a):
    client.force_login(tenant_a.user(Role.CSM))
    huge = "p" * 5000
    body = {"old_password": huge, "new_password1": huge, "new_password2": huge}
    response = client.post(reverse("password_change"), body)
    assert response.status_code == 400 and "at most 4096 characters" in response.content.decode()


@pytest.mark.parametrize("url", ["login_verify", "reauth", "password_reset"])
def test_nul_bytes_in_the_other_identity_forms_are_form_errors(client, tenant_a, url):
    client.force_login(tenant_a.user(Role.CSM))
    body = {"code": "12\x0034", "password": "a\x00b", "email": "a\x00@example.test"}
    assert client.post(reverse(url), body).status_code in (302, 400)
