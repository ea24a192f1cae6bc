"""Passwords: the validators, reset by email over real SMTP (expiring, single-use links; the same answer
whether the address has an account; a budget per client address and per email), and the change page."""

from __future__ import annotations

import datetime
import re
import uuid
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from cs_platform.tenancy.models import Role
from tests import factories
from tests.helpers import field_error
from tests.identity.conftest import auth_events, code_for

pytestmark = pytest.mark.django_db

NEW = "quiet-harbour-lantern-42"


def _unique_ip() -> str:
    # The reset budget lives in Redis, shared with earlier runs: a fresh address per test.
    value = uuid.uuid4().int
    return f"10.{value % 250}.{(value >> 8) % 250}.{(value >> 16) % 250 + 1}"


def _change(client, old, new1, new2=None):
    body = {"old_password": old, "new_password1": new1, "new_password2": new2 or new1}
    return client.post(reverse("password_change"), body)


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("Short-pw-1", "at least 12 characters"),
        ("qwerty123456", "too common"),
        ("482910375561029", "entirely numeric"),
        ("csm@alpha.test!", "too similar"),
    ],
)
def test_weak_passwords_are_refused(client, tenant_a, password, message):
    user = tenant_a.user(Role.CSM)
    client.force_login(user)
    response = _change(client, factories.TEST_PASSWORD, password)
    assert response.status_code == 400
    assert message in field_error(response.content.decode(), "new_password2") or message in response.content.decode()
    user.refresh_from_db()
    assert user.check_password(factories.TEST_PASSWORD)


def test_changing_the_password_needs_the_current_one_and_ends_the_other_sessions(client, tenant_a, django_user_model):
    from django.test import Client

    user = tenant_a.user(Role.CSM)
    elsewhere = Client()
    elsewhere.force_login(user)
    client.force_login(user)
    wrong = _change(client, "not-my-password-at-all", NEW)
    assert wrong.status_code == 400 and "current password is not right" in wrong.content.decode()
    # The current password is checked through authenticate(): a wrong one counts like a failed login.
    from axes.models import AccessAttempt

    assert AccessAttempt.objects.filter(username=user.username).exists()
    response = _change(client, factories.TEST_PASSWORD, NEW)
    assert response.status_code == 302 and response["Location"] == reverse("account_security")
    user.refresh_from_db()
    assert user.check_password(NEW)
    assert client.get(reverse("account_list")).status_code == 200  # this session stays
    assert elsewhere.get(reverse("account_list")).status_code == 302  # the other one has ended
    [event] = auth_events(tenant_a, "auth.password_changed", user)
    assert event.actor_id == user.pk and NEW not in str(event.after)


def _request_reset(client, email, ip=None):
    return client.post(reverse("password_reset"), {"email": email}, REMOTE_ADDR=ip or _unique_ip())


def _link_in(message) -> str:
    body = message.message.get_content()
    return urlsplit(re.search(r"http://\S+/password-reset/\S+/\S+/", body).group(0)).path


def test_a_reset_link_arrives_by_smtp_and_works_once(
    client, tenant_a, smtp, eager_tasks, django_capture_on_commit_callbacks
):
    user = tenant_a.user(Role.CSM)
    with django_capture_on_commit_callbacks(execute=True):
        response = _request_reset(client, user.email.upper(), ip="10.3.0.1")
    assert response.status_code == 302 and response["Location"] == reverse("password_reset_sent")
    [message] = smtp.messages
    assert message.rcpt_tos == [user.email]
    assert message.message["Subject"] == "Reset your CS Platform password"
    assert "works once, for 60 minutes" in message.message.get_content()
    link = _link_in(message)

    # Django moves the token out of the address bar (Referer) into the session, then asks the password.
    form_page = client.get(link)
    assert form_page.status_code == 302 and form_page["Location"].endswith("/set-password/")
    weak = client.post(form_page["Location"], {"new_password1": "short", "new_password2": "short"})
    assert weak.status_code == 200 and "at least 12 characters" in weak.content.decode()
    done = client.post(form_page["Location"], {"new_password1": NEW, "new_password2": NEW})
    assert done.status_code == 302 and done["Location"] == reverse("password_reset_done")
    user.refresh_from_db()
    assert user.check_password(NEW)

    # Single use: the token is bound to the old password hash.
    again = client.get(link)
    assert again.status_code == 200 and "This link no longer works" in again.content.decode()
    requested, completed = auth_events(tenant_a, user=user)
    assert (requested.action, requested.actor_id, requested.after) == (
        "auth.password_reset_requested",
        None,
        {"ip": "10.3.0.1"},
    )
    assert (completed.action, completed.actor_id) == ("auth.password_reset_completed", user.pk)
    token = link.rstrip("/").rsplit("/", 1)[1]
    assert token not in str([requested.after, completed.after])


class _ClockedGenerator(PasswordResetTokenGenerator):
    """Django's reset-token generator with its clock set: a token stamped `seconds` ago, as if the email
    had been sent then (same secret and algorithm, so the site's generator checks it as its own)."""

    def __init__(self, seconds_ago: int):
        super().__init__()
        self.moment = datetime.datetime.now() - datetime.timedelta(seconds=seconds_ago)

    def _now(self):
        return self.moment


def _link_made_seconds_ago(user, seconds: int) -> str:
    token = _ClockedGenerator(seconds).make_token(user)
    return reverse(
        "password_reset_confirm", kwargs={"uidb64": urlsafe_base64_encode(force_bytes(user.pk)), "token": token}
    )


@pytest.mark.parametrize(("age", "works"), [(3600 - 60, True), (3600 + 1, False)])
def test_a_reset_link_expires_after_an_hour(client, tenant_a, age, works):
    response = client.get(_link_made_seconds_ago(tenant_a.user(Role.CSM), age))
    assert (response.status_code == 302) is works
    assert ("This link no longer works" in response.content.decode()) is not works


def test_the_reset_link_lifetime_is_configurable(client, tenant_a, settings):
    settings.PASSWORD_RESET_TIMEOUT = 600
    assert client.get(_link_made_seconds_ago(tenant_a.user(Role.CSM), 601)).status_code == 200  # refused
    assert client.get(_link_made_seconds_ago(tenant_a.user(Role.CSM), 590)).status_code == 302


def test_the_answer_is_the_same_whether_the_address_has_an_account(
    client, tenant_a, smtp, eager_tasks, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        known = _request_reset(client, tenant_a.user(Role.CSM).email)
        unknown = _request_reset(client, "nobody-here@example.test")
    assert (known.status_code, known["Location"]) == (unknown.status_code, unknown["Location"])
    assert client.get(known["Location"]).content == client.get(unknown["Location"]).content
    assert [m.rcpt_tos for m in smtp.messages] == [[tenant_a.user(Role.CSM).email]]


def test_reset_requests_are_budgeted_per_client_address(client, settings):
    settings.PASSWORD_RESET_RATE = "3/hour"
    ip = _unique_ip()
    answers = [_request_reset(client, f"{uuid.uuid4().hex}@example.test", ip=ip).status_code for _ in range(4)]
    assert answers == [302, 302, 302, 429]
    assert _request_reset(client, f"{uuid.uuid4().hex}@example.test").status_code == 302  # another address


def test_reset_requests_are_budgeted_per_email_address(client, tenant_a, settings):
    settings.PASSWORD_RESET_RATE = "3/hour"
    email = f"{uuid.uuid4().hex}@example.test"
    answers = [_request_reset(client, email).status_code for _ in range(4)]
    assert answers == [302, 302, 302, 429]
    throttled = _request_reset(client, email)
    assert "Too many reset requests" in throttled.content.decode()


def test_a_completed_reset_lifts_the_accounts_lockout_but_not_mfa(client, tenant_a, settings):
    from cs_platform.identity import services

    user = tenant_a.user(Role.CSM)
    device = services.mfa_enrollment_start(user=user)
    services.mfa_enrollment_confirm(user=user, device=device, code=code_for(device), ip=None)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(
            reverse("login"), {"username": user.username, "password": "wrong-wrong-wrong"}, REMOTE_ADDR="10.3.1.1"
        )
    link = _link_made_seconds_ago(user, 5)
    form_page = client.get(link)
    client.post(form_page["Location"], {"new_password1": NEW, "new_password2": NEW})
    response = client.post(reverse("login"), {"username": user.username, "password": NEW}, REMOTE_ADDR="10.3.1.2")
    assert response.status_code == 302 and response["Location"] == reverse("login_verify")  # the code is still due
