"""The API's request budgets (api/throttling.py): a refused request costs no other budget, concurrent
requests cannot overrun a budget, and the API keeps answering when Redis is down (fail open with a
warning, or 503 with Retry-After when configured to fail closed). The basics (429, Retry-After, rates from
settings, the failed-token budget) are in test_api_conventions.py."""

from __future__ import annotations

import logging
import threading

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from api.models import ApiToken
from api.services import api_token_create
from api.throttling import DEGRADED_HEADER, WARNING_INTERVAL, _reset_warning_interval
from cs_platform.tenancy.models import Role
from tests.api.helpers import authorization

ME = "/api/v1/me/"
UNKNOWN = authorization("csp_0badc0de_" + "x" * 32)


@pytest.fixture(autouse=True)
def _fresh_budgets():
    # Budgets live in the shared cache (the suite's own Redis database); each test starts with full ones.
    cache.clear()
    _reset_warning_interval()
    yield
    cache.clear()


def _token(world, name: str) -> tuple[ApiToken, dict]:
    token, plaintext = api_token_create(
        tenant=world.tenant, name=name, scopes=["accounts:read"], actor=world.user(Role.ADMIN)
    )
    return token, authorization(plaintext)


def _used(key: str) -> int:
    """Requests recorded in a budget: the size of its sorted set in Redis."""
    client = cache._cache.get_client(write=True)
    return client.zcard(cache.make_and_validate_key(key))


# --- fairness: a refused request costs nothing else ---------------------------------------------------------


@pytest.mark.django_db
def test_a_noisy_token_does_not_starve_its_owners_other_tokens_or_browser(client, tenant_a, settings):
    settings.API_THROTTLE_RATES = {**settings.API_THROTTLE_RATES, "token": "5/min", "user": "8/min"}
    noisy, noisy_headers = _token(tenant_a, "Noisy")
    quiet, quiet_headers = _token(tenant_a, "Quiet")
    codes = [client.get(ME, **noisy_headers).status_code for _ in range(40)]
    assert codes == [200] * 5 + [429] * 35
    # The 35 refusals were charged to nobody: the user's budget holds the 5 answered requests only.
    assert _used(f"throttle:user:{tenant_a.user(Role.ADMIN).pk}") == 5
    assert _used(f"throttle:token:{noisy.pk}") == 5
    # So the same admin's other token and their browser share the 3 left of the user budget.
    assert [client.get(ME, **quiet_headers).status_code for _ in range(2)] == [200, 200]
    client.force_login(tenant_a.user(Role.ADMIN))
    assert client.get(ME).status_code == 200
    refused = client.get(ME)  # now the user budget is used up: 8 answered requests
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60 and refused.json()["retry_after"] == int(refused["Retry-After"])
    client.logout()
    assert client.get(ME, **quiet_headers).status_code == 429
    # Refused by the user budget, the quiet token's own budget was not charged either.
    assert _used(f"throttle:token:{quiet.pk}") == 2


@pytest.mark.django_db
def test_retry_after_is_when_the_refusing_budget_has_room(client, tenant_a, settings):
    # DRF's wait(): the oldest request that must leave the window, so with a one-hour window Retry-After is
    # close to an hour, not the minute of the token budget that still has room.
    settings.API_THROTTLE_RATES = {**settings.API_THROTTLE_RATES, "token": "100/min", "user": "2/hour"}
    _, headers = _token(tenant_a, "Hourly")
    assert [client.get(ME, **headers).status_code for _ in range(2)] == [200, 200]
    refused = client.get(ME, **headers)
    assert refused.status_code == 429
    assert 3590 <= int(refused["Retry-After"]) <= 3600


@pytest.mark.django_db
def test_the_throttle_costs_no_database_query(client, tenant_a, settings):
    settings.API_THROTTLE_RATES = {**settings.API_THROTTLE_RATES, "token": "2/min", "user": "100/min"}
    _, headers = _token(tenant_a, "Counted")
    assert client.get(ME, **headers).status_code == 200  # the first also stamps the token's last use
    with CaptureQueriesContext(connection) as answered:
        assert client.get(ME, **headers).status_code == 200
    with CaptureQueriesContext(connection) as refused:
        assert client.get(ME, **headers).status_code == 429
    # Authentication: the token's tenant (cs_api_token_tenant, SECURITY DEFINER), the token with its tenant
    # and creator, the creator's membership. Then the budgets, all in Redis; the answered request also
    # counts the caller's visible accounts. A refused request stops after authentication.
    sql = [q["sql"] for q in refused]
    assert len(refused) == 3, sql
    assert "cs_api_token_tenant" in sql[0] and '"api_apitoken"' in sql[1] and '"tenancy_membership"' in sql[2]
    assert len(answered) == 4, [q["sql"] for q in answered]


@pytest.mark.django_db
def test_other_cache_backends_keep_the_same_rules(client, tenant_a, settings):
    # The demo runs without Redis (LocMemCache): the same windows, atomic within the process.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.API_THROTTLE_RATES = {**settings.API_THROTTLE_RATES, "token": "2/min", "user": "3/min"}
    _, noisy = _token(tenant_a, "Noisy")
    _, quiet = _token(tenant_a, "Quiet")
    assert [client.get(ME, **noisy).status_code for _ in range(6)] == [200, 200, 429, 429, 429, 429]
    assert [client.get(ME, **quiet).status_code for _ in range(2)] == [200, 429]
    refused = client.get(ME, **quiet)
    assert 1 <= int(refused["Retry-After"]) <= 60


# --- accuracy: concurrent requests never overrun a budget ---------------------------------------------------


def test_concurrent_requests_get_exactly_the_budget(tenant_committed, django_db_blocker, settings):
    """Real concurrent requests (threads, each with its own client and database connection, all against
    the suite's Redis) from two tokens of one admin: exactly the user budget is answered, neither token
    goes over its own, and the rest are 429 with Retry-After. DRF's read-append-write history let about
    17 % more through."""
    from django.contrib.auth import get_user_model
    from django.db import connections
    from django.test import Client

    from cs_platform.identity.services import membership_create

    settings.API_THROTTLE_RATES = {**settings.API_THROTTLE_RATES, "token": "15/min", "user": "25/min"}
    with django_db_blocker.unblock():
        admin = get_user_model().objects.create_user(username="throttle-race", email="throttle-race@committed.test")
        membership_create(tenant=tenant_committed, user=admin, role=Role.ADMIN)
        tokens = [
            api_token_create(tenant=tenant_committed, name=name, scopes=["accounts:read"], actor=admin)
            for name in ("one", "two")
        ]
    threads_per_token, requests_per_thread = 4, 5  # 20 requests per token, 40 in all
    barrier = threading.Barrier(threads_per_token * len(tokens))
    answers: list[tuple[int, int, str | None]] = []  # (token index, status, Retry-After)
    errors: list[BaseException] = []

    def send(index: int, plaintext: str) -> None:
        try:
            with django_db_blocker.unblock():
                http = Client(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
                barrier.wait()
                for _ in range(requests_per_thread):
                    response = http.get(ME)
                    answers.append((index, response.status_code, response.get("Retry-After")))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=send, args=(index, plaintext))
        for index, (_, plaintext) in enumerate(tokens)
        for _ in range(threads_per_token)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert len(answers) == 40
    answered = [index for index, status, _ in answers if status == 200]
    assert len(answered) == 25, sorted(status for _, status, _ in answers)
    assert max(answered.count(0), answered.count(1)) <= 15
    refused = [retry_after for _, status, retry_after in answers if status != 200]
    assert len(refused) == 15 and all(1 <= int(seconds) <= 60 for seconds in refused), refused
    assert _used(f"throttle:user:{admin.pk}") == 25
    # tenant_committed purges the tenant's rows; the user row goes with the test database.


# --- Redis down ---------------------------------------------------------------------------------------------


def _degraded(outcome: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("api_throttle_degraded_requests_total", {"outcome": outcome}) or 0.0


def _throttle_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "api.throttling" and r.levelno == logging.WARNING]


@pytest.mark.django_db
def test_with_redis_down_the_api_fails_open_with_one_warning(client, tenant_a, settings, redis_cache, caplog):
    settings.API_THROTTLE_RATES = {**settings.API_THROTTLE_RATES, "token": "3/min", "user": "100/min"}
    settings.API_THROTTLE_FAIL_OPEN = True
    _, headers = _token(tenant_a, "Integration")
    first = client.get(ME, **headers)
    assert first.status_code == 200 and DEGRADED_HEADER not in first

    redis_cache.stop()
    caplog.set_level(logging.WARNING, logger="api.throttling")
    counted = _degraded("allowed")
    down = [client.get(ME, **headers) for _ in range(6)]  # over the 3/min budget: nothing counts it
    assert [r.status_code for r in down] == [200] * 6
    assert all(r[DEGRADED_HEADER] == "cache-unavailable" for r in down)
    # The browser session and unknown tokens (whose failures cannot be counted) get real answers too.
    assert client.get(ME, **UNKNOWN).status_code == 401
    client.force_login(tenant_a.user(Role.ADMIN))
    assert client.get(ME).status_code == 200
    client.logout()
    # One warning for the whole outage (at most one per WARNING_INTERVAL per process), naming the cause.
    warnings = _throttle_warnings(caplog)
    assert len(warnings) == 1, warnings
    assert "cache is unavailable" in warnings[0] and "ConnectionError" in warnings[0] and WARNING_INTERVAL == 60
    # The metric counts every one: the 6 token requests, the unknown token, the session's request.
    assert _degraded("allowed") - counted == 8

    redis_cache.start()  # an empty Redis: the budget starts again, the script is loaded again
    back = [client.get(ME, **headers) for _ in range(4)]
    assert [r.status_code for r in back] == [200, 200, 200, 429]
    assert all(DEGRADED_HEADER not in r for r in back)
    assert 1 <= int(back[-1]["Retry-After"]) <= 60


@pytest.mark.django_db
def test_with_redis_down_fail_closed_answers_503_with_retry_after(client, tenant_a, settings, redis_cache, caplog):
    settings.API_THROTTLE_RATES = {**settings.API_THROTTLE_RATES, "token": "3/min", "user": "100/min"}
    settings.API_THROTTLE_FAIL_OPEN = False
    _, headers = _token(tenant_a, "Integration")
    assert client.get(ME, **headers).status_code == 200

    redis_cache.stop()
    caplog.set_level(logging.WARNING, logger="api.throttling")
    counted = _degraded("refused")
    for response in (client.get(ME, **headers), client.get(ME, **UNKNOWN)):
        assert response.status_code == 503
        assert response["Content-Type"] == "application/json"
        assert response["Retry-After"] == "30"
        body = response.json()
        assert (body["status"], body["code"], body["retry_after"]) == (503, "throttling_unavailable", 30)
        assert body["message"] and body["errors"] == []
    warnings = _throttle_warnings(caplog)
    assert len(warnings) == 1 and "API_THROTTLE_FAIL_OPEN=false" in warnings[0], warnings
    assert _degraded("refused") - counted == 2

    redis_cache.start()
    assert [client.get(ME, **headers).status_code for _ in range(4)] == [200, 200, 200, 429]


def test_a_bad_fail_open_setting_fails_loudly():
    from django.core.exceptions import ImproperlyConfigured

    from cs_platform.settings import _bool, _setting

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("API_THROTTLE_FAIL_OPEN", "sometimes")
        with pytest.raises(ImproperlyConfigured, match="API_THROTTLE_FAIL_OPEN='sometimes' is not valid"):
            _setting("API_THROTTLE_FAIL_OPEN", _bool, True)
