"""Login throttling (django-axes): failures lock the account and, separately, the client address; each
further lockout lasts longer; the lockout is a clear 429 page; every attempt is recorded (axes' tables
and the audit trail); the address is never taken from a forged X-Forwarded-For."""

from __future__ import annotations

import json
import logging

import pytest
from axes.models import AccessAttempt, AccessFailureLog
from django.conf import settings
from django.test import RequestFactory
from django.urls import reverse
from rest_framework.throttling import BaseThrottle

from cs_platform.identity.client_address import client_address
from cs_platform.identity.models import LoginLockout
from cs_platform.tenancy.models import Role
from tests import factories
from tests.identity.conftest import age_login_records, auth_events

pytestmark = pytest.mark.django_db

WRONG = "not-the-password-at-all"


def _try(client, username, password=WRONG, ip="10.0.0.1", **headers):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=ip, **headers)


def test_failures_on_one_account_from_many_addresses_lock_that_account(client, tenant_a):
    user, other = tenant_a.user(Role.CSM), tenant_a.user(Role.VIEWER)
    limit = settings.AXES_FAILURE_LIMIT
    for n in range(limit - 1):
        assert _try(client, user.username, ip=f"10.0.1.{n}").status_code == 200  # the form, with its error
    locked = _try(client, user.username, ip="10.0.1.99")
    assert locked.status_code == 429
    assert locked["Retry-After"] == "900"
    assert "paused for <strong>15 minutes</strong>" in locked.content.decode()
    # The right password, from an address that never failed, is refused while the lockout lasts.
    refused = _try(client, user.username, factories.TEST_PASSWORD, ip="10.0.1.200")
    assert refused.status_code == 429 and "_auth_user_id" not in client.session
    # Only that account: another one logs in from those same addresses.
    assert _try(client, other.username, factories.TEST_PASSWORD, ip="10.0.1.0").status_code == 302


def test_failures_from_one_address_on_many_accounts_lock_that_address(client, tenant_a):
    user = tenant_a.user(Role.CSM)
    limit = settings.AXES_FAILURE_LIMIT
    responses = [_try(client, f"nobody{n}@example.test", ip="10.0.2.1").status_code for n in range(limit)]
    assert responses == [200] * (limit - 1) + [429]
    # Anyone, with the right password, is refused from that address...
    assert _try(client, user.username, factories.TEST_PASSWORD, ip="10.0.2.1").status_code == 429
    # ...and not from another one.
    assert _try(client, user.username, factories.TEST_PASSWORD, ip="10.0.2.2").status_code == 302


def test_each_further_lockout_lasts_longer_and_the_history_is_forgotten_after_a_week(client, tenant_a):
    user = tenant_a.user(Role.CSM)
    limit = settings.AXES_FAILURE_LIMIT
    for level, wait in enumerate([900, 3600, 4 * 3600, 24 * 3600, 24 * 3600], start=1):
        for _ in range(limit):
            response = _try(client, user.username, ip="10.0.3.1")
        assert response.status_code == 429, level
        assert int(response["Retry-After"]) == wait, level
        assert LoginLockout.objects.order_by("-started_at").values_list("level", flat=True)[0] == level
        # A minute before its end the lockout still holds (and this attempt, recorded, restarts it)...
        age_login_records(wait - 60)
        assert _try(client, user.username, factories.TEST_PASSWORD, ip="10.0.3.1").status_code == 429
        # ...and once it has run its full length from that attempt, it is over.
        age_login_records(wait + 1)
    assert _try(client, user.username, factories.TEST_PASSWORD, ip="10.0.3.1").status_code == 302
    client.logout()
    # A week on, earlier lockouts no longer count: the next one is the first step again.
    age_login_records(settings.LOGIN_LOCKOUT_MEMORY_SECONDS + 1)
    for _ in range(limit):
        response = _try(client, user.username, ip="10.0.3.1")
    assert response.status_code == 429 and response["Retry-After"] == "900"


def test_a_longer_lockout_survives_axes_cleaning_up_after_other_peoples_shorter_ones(client, tenant_a):
    # axes deletes expired attempt rows whenever anyone fails; a level-2 lockout (1 hour) must not be
    # cleaned away by someone else's failure after 15 minutes.
    user = tenant_a.user(Role.CSM)
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit):
        _try(client, user.username, ip="10.0.4.1")
    age_login_records(901)
    for _ in range(limit):
        response = _try(client, user.username, ip="10.0.4.1")
    assert response["Retry-After"] == "3600"
    age_login_records(20 * 60)
    _try(client, "someone-else@example.test", ip="10.0.4.2")  # triggers axes' clean-up
    assert _try(client, user.username, factories.TEST_PASSWORD, ip="10.0.4.3").status_code == 429


def test_attempts_during_a_lockout_are_still_recorded(client, tenant_a):
    user = tenant_a.user(Role.CSM)
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit + 2):
        _try(client, user.username, ip="10.0.5.1")
    attempt = AccessAttempt.objects.get(username=user.username, ip_address="10.0.5.1")
    assert attempt.failures_since_start == limit + 2
    assert AccessFailureLog.objects.filter(username=user.username).count() == limit + 2
    assert AccessFailureLog.objects.filter(username=user.username, locked_out=True).count() == 3
    reasons = [e.after["reason"] for e in auth_events(tenant_a, "auth.login_failed", user)]
    assert reasons == ["invalid_credentials"] * limit + ["locked_out"] * 2
    # One lockout, however many attempts hit it.
    assert LoginLockout.objects.count() == 1
    [lockout] = auth_events(tenant_a, "auth.lockout", user)
    assert lockout.after == {"ip": "10.0.5.1", "level": 1, "seconds": 900, "failure_limit": limit}
    assert lockout.actor_id is None and lockout.object_id == str(user.pk)


def test_failed_logins_are_audited_without_the_password_and_unknown_names_are_logged(client, tenant_a, caplog):
    user = tenant_a.user(Role.CSM)
    _try(client, user.username, password="hunter2-my-secret-guess", ip="10.0.6.1")
    [event] = auth_events(tenant_a, "auth.login_failed", user)
    assert event.after == {"ip": "10.0.6.1", "reason": "invalid_credentials"}
    assert "hunter2" not in json.dumps([event.before, event.after, event.actor_label, event.object_id])
    with caplog.at_level(logging.WARNING, logger="cs_platform.identity"):
        _try(client, "ghost@example.test", ip="10.0.6.1")
    assert "auth.login_failed unknown username='ghost@example.test' ip=10.0.6.1" in caplog.text
    assert len(auth_events(tenant_a, "auth.login_failed")) == 1  # no tenant to chain it to


def test_the_lockout_page_does_not_tell_whether_the_account_exists(client, tenant_a):
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit):
        real = _try(client, tenant_a.user(Role.CSM).username, ip="10.0.7.1")
    for _ in range(limit):
        ghost = _try(client, "ghost@example.test", ip="10.0.7.2")
    assert (real.status_code, real["Retry-After"]) == (ghost.status_code, ghost["Retry-After"]) == (429, "900")
    assert real.content == ghost.content


def test_a_forged_x_forwarded_for_changes_nothing(client, tenant_a):
    # No trusted proxy (API_NUM_PROXIES=0): the connecting address counts, whatever the header says.
    limit = settings.AXES_FAILURE_LIMIT
    for n in range(limit):
        response = _try(client, f"nobody{n}@example.test", ip="10.0.8.1", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}")
    assert response.status_code == 429
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"10.0.8.1"}


def test_behind_one_trusted_proxy_the_proxys_entry_counts_not_the_clients(client, tenant_a, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    limit = settings.AXES_FAILURE_LIMIT
    # The client forges a different leftmost entry each time; the proxy appends the real address.
    for n in range(limit):
        response = _try(
            client, f"nobody{n}@example.test", ip="10.9.9.9", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}, 192.0.2.7"
        )
    assert response.status_code == 429
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"192.0.2.7"}


@pytest.mark.parametrize("proxies", [0, 1, 2])
@pytest.mark.parametrize(
    "forwarded", [None, "192.0.2.7", "198.51.100.1, 192.0.2.7", "198.51.100.1, 203.0.113.5, 192.0.2.7"]
)
def test_the_address_is_the_one_the_apis_per_address_budget_uses(settings, proxies, forwarded):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": proxies}
    headers = {"REMOTE_ADDR": "10.1.1.1"} | ({"HTTP_X_FORWARDED_FOR": forwarded} if forwarded else {})
    request = RequestFactory().post("/login/", **headers)
    assert client_address(request) == BaseThrottle().get_ident(request)


def test_a_malformed_forwarded_entry_falls_back_to_the_connecting_address(settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    request = RequestFactory().post("/login/", REMOTE_ADDR="10.1.1.1", HTTP_X_FORWARDED_FOR="not-an-address")
    assert client_address(request) == "10.1.1.1"
