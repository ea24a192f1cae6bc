"""Session lifetimes: an idle timeout and an absolute lifetime end the session and send the person to
the login page with a message; the idle stamp is written at most once a minute, not on every request.
Time is moved by editing the session's stamps (cs_platform.identity.sessions), never by sleeping."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from cs_platform.identity import sessions
from cs_platform.tenancy.models import Role
from tests.identity.conftest import auth_events

pytestmark = pytest.mark.django_db


def _age(client, key: str, seconds: float) -> None:
    session = client.session
    session[key] = sessions.now() - seconds
    session.save()


def test_a_session_idle_past_the_timeout_ends_with_a_message(client, tenant_a):
    user = tenant_a.user(Role.CSM)
    client.force_login(user)
    _age(client, sessions.SEEN_AT, settings.SESSION_IDLE_TIMEOUT_SECONDS + 1)
    response = client.get(reverse("decision_list"))
    assert response.status_code == 302
    assert response["Location"] == reverse("login") + "?next=%2Fdecisions%2F"
    assert "_auth_user_id" not in client.session
    page = client.get(response["Location"]).content.decode()
    assert "You were logged out after 30 minutes without activity" in page
    [event] = auth_events(tenant_a, "auth.logout", user)
    assert event.after == {"ip": "127.0.0.1", "reason": "idle_timeout"} and event.actor_id is None


def test_a_session_past_its_absolute_lifetime_ends_however_active_it_was(client, tenant_a):
    user = tenant_a.user(Role.CSM)
    client.force_login(user)
    _age(client, sessions.AUTH_AT, settings.SESSION_MAX_AGE_SECONDS + 1)
    response = client.get(reverse("account_list"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert "reached its 12-hour limit" in client.get(response["Location"]).content.decode()
    assert [e.after["reason"] for e in auth_events(tenant_a, "auth.logout", user)] == ["max_age"]


def test_an_active_session_lives_on_and_its_idle_clock_restarts(client, tenant_a):
    client.force_login(tenant_a.user(Role.CSM))
    _age(client, sessions.SEEN_AT, settings.SESSION_IDLE_TIMEOUT_SECONDS - 5)
    assert client.get(reverse("account_list")).status_code == 200
    assert sessions.now() - client.session[sessions.SEEN_AT] < 5
    _age(client, sessions.SEEN_AT, settings.SESSION_IDLE_TIMEOUT_SECONDS - 5)
    assert client.get(reverse("account_list")).status_code == 200  # 2 x (timeout - 5 s) since login: still in


def test_the_timeouts_are_configurable(client, tenant_a, settings):
    settings.SESSION_IDLE_TIMEOUT_SECONDS = 300
    client.force_login(tenant_a.user(Role.CSM))
    _age(client, sessions.SEEN_AT, 301)
    assert client.get(reverse("account_list")).status_code == 302


def test_the_idle_stamp_is_written_at_most_once_a_minute(client, tenant_a):
    client.force_login(tenant_a.user(Role.CSM))
    url = reverse("account_list")
    client.get(url)

    def queries_with_stamp_aged(seconds: float) -> list[str]:
        _age(client, sessions.SEEN_AT, seconds)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        # (The session save runs in a savepoint inside the test's transaction: not a query of its own.)
        return [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]

    fresh, half_a_minute = queries_with_stamp_aged(1), queries_with_stamp_aged(30)
    assert len(fresh) == len(half_a_minute)
    assert not any(q.startswith('UPDATE "django_session"') for q in half_a_minute)
    stale = queries_with_stamp_aged(61)
    writes = [q for q in stale if q.startswith('UPDATE "django_session"')]
    assert len(writes) == 1 and len(stale) == len(fresh) + 1


def test_an_api_call_on_an_expired_session_is_unauthenticated(client, tenant_a):
    client.force_login(tenant_a.user(Role.ADMIN))
    assert client.get("/api/v1/me/").status_code == 200
    _age(client, sessions.SEEN_AT, settings.SESSION_IDLE_TIMEOUT_SECONDS + 1)
    response = client.get("/api/v1/me/")
    assert response.status_code == 401 and response.json()["code"] == "not_authenticated"


def test_the_session_cookie_and_row_expire_with_the_absolute_lifetime(client, tenant_a):
    client.force_login(tenant_a.user(Role.CSM))
    response = client.get(reverse("account_list"))
    assert settings.SESSION_COOKIE_AGE == settings.SESSION_MAX_AGE_SECONDS
    assert client.session.get_expiry_age() <= settings.SESSION_MAX_AGE_SECONDS
    assert response.status_code == 200
