"""Request budgets per API token and per user, and the failed-authentication counter per client address.

Budgets are sliding windows (as DRF's own throttles: at most N requests in any `duration` seconds) kept
in the shared cache, with two properties DRF's throttles lack:

* **Atomic.** With Redis (production, the suite) one Lua script prunes, counts and records a request for
  every budget it is subject to, so concurrent requests cannot all read "N-1 used" and all go through
  (DRF reads a list, appends and writes it back: 17 % over the budget under load). Other cache backends
  (the demo's LocMemCache) do the same under a process-wide lock.
* **A refused request costs nothing.** All of a request's budgets (its token's and its user's) are
  checked first and the request is recorded in all of them only if all allow it. DRF evaluates one
  throttle after the other and each records the request before the next decides, so a noisy integration
  over its token budget used up its owner's user budget, starving their other tokens and browser use.

Rates are read from settings.API_THROTTLE_RATES on every request (not at import, as DRF's classes do),
so they can be configured per deployment and changed in tests.

When the cache cannot be reached, settings.API_THROTTLE_FAIL_OPEN decides: let the request through
un-throttled (the default; the response carries `X-Throttle-Degraded`, the Prometheus counter
api_throttle_degraded_requests_total counts it, and a WARNING is logged at most once a minute per
process), or refuse it with 503 and Retry-After. Refusing every integration while
Redis restarts is worse than a few minutes of un-throttled traffic."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
import time
import uuid

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from prometheus_client import Counter
from redis.exceptions import NoScriptError
from rest_framework import exceptions, status
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

from api.models import ApiToken
from cs_platform.cache_errors import CACHE_ERRORS

logger = logging.getLogger(__name__)

DEGRADED_HEADER = "X-Throttle-Degraded"
UNAVAILABLE_RETRY_AFTER = 30  # seconds: a fail-closed 503's Retry-After, about a Redis restart
WARNING_INTERVAL = 60  # seconds between two "throttling degraded" warnings of one process
# Every degraded request, where the rate-limited warning shows only the first of each minute. On the
# default registry, so any /metrics exporter of the process (django-prometheus) publishes it.
DEGRADED_REQUESTS = Counter(
    "api_throttle_degraded_requests",
    "API requests whose budgets could not be checked because the cache was unavailable.",
    ["outcome"],  # allowed (API_THROTTLE_FAIL_OPEN=true) or refused (false)
)


class ThrottlingUnavailable(exceptions.APIException):
    """503 in api.errors' format: request budgets cannot be checked (the cache is down) and
    API_THROTTLE_FAIL_OPEN is false. DRF's handler turns `wait` into Retry-After, as for a 429."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "throttling_unavailable"
    default_detail = "Request budgets cannot be checked right now, so requests are refused: retry later."

    def __init__(self, wait: int):
        super().__init__()
        self.wait = wait


class _RateParser(SimpleRateThrottle):
    def __init__(self):  # DRF's reads the rate here, from its import-time copy of the settings
        pass


def parse_rate(rate: str) -> tuple[int, int]:
    """(requests, seconds) of a rate such as 1200/min, by DRF's own parser."""
    return _RateParser().parse_rate(rate)


@dataclasses.dataclass(frozen=True)
class Budget:
    key: str  # before the cache's KEY_PREFIX and version
    limit: int
    duration: int  # seconds


@dataclasses.dataclass(frozen=True)
class Verdict:
    allowed: bool
    wait: float | None  # refused: seconds until every budget that refused has room again


# --- Atomic sliding windows in Redis ------------------------------------------------------------------------
# Each budget is a sorted set of its requests' times (microseconds of the Redis server's clock, so web
# servers with skewed clocks agree). KEYS are the budgets; ARGV[1] is this request's unique member, then
# each budget's limit and window (microseconds). Returns {1, 0} when recorded in every budget, or
# {0, wait}: microseconds until each refusing budget's oldest request that must go has left its window.
_CONSUME_LUA = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local wait = -1
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[2 * i])
  local window = tonumber(ARGV[2 * i + 1])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local used = redis.call('ZCARD', key)
  if used >= limit then
    local blocking = redis.call('ZRANGE', key, used - limit, used - limit, 'WITHSCORES')
    local free_in = tonumber(blocking[2]) + window - now
    if free_in > wait then wait = free_in end
  end
end
if wait >= 0 then
  return {0, math.max(wait, 1)}
end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[1])
  redis.call('PEXPIRE', key, math.ceil(tonumber(ARGV[2 * i + 1]) / 1000) + 1000)
end
return {1, 0}
"""
_CONSUME_SHA = hashlib.sha1(_CONSUME_LUA.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1
_fallback_lock = threading.Lock()


def budgets_consume(budgets: list[Budget]) -> Verdict:
    """Record one request in every budget if every budget has room, else in none. Raises one of
    CACHE_ERRORS when the cache cannot be reached."""
    cache = caches["default"]
    if isinstance(cache, RedisCache):
        keys = [cache.make_and_validate_key(budget.key) for budget in budgets]  # KEY_PREFIX and version
        client = cache._cache.get_client(write=True)
        args = [uuid.uuid4().hex]
        for budget in budgets:
            args += [budget.limit, budget.duration * 1_000_000]
        try:
            allowed, wait = client.evalsha(_CONSUME_SHA, len(keys), *keys, *args)
        except NoScriptError:  # first use since Redis started: the script is not loaded yet
            allowed, wait = client.eval(_CONSUME_LUA, len(keys), *keys, *args)
        return Verdict(allowed=bool(allowed), wait=None if allowed else wait / 1_000_000)
    return _consume_locked(cache, budgets)


def _consume_locked(cache, budgets: list[Budget]) -> Verdict:
    """The same sliding windows for other cache backends, atomic within this process only (the demo's
    LocMemCache is per process anyway)."""
    now = time.time()
    with _fallback_lock:
        histories, wait = [], None
        for budget in budgets:
            history = [t for t in cache.get(budget.key, []) if t > now - budget.duration]
            histories.append(history)
            if len(history) >= budget.limit:
                free_in = history[len(history) - budget.limit] + budget.duration - now
                wait = max(wait or 0.0, free_in)
        if wait is not None:
            return Verdict(allowed=False, wait=wait)
        for budget, history in zip(budgets, histories, strict=True):
            cache.set(budget.key, [*history, now], budget.duration + 1)
        return Verdict(allowed=True, wait=None)


# --- The cache is unavailable ----------------------------------------------------------------------------
_warning_lock = threading.Lock()
_last_warning = 0.0  # time.monotonic() of the last warning logged, 0 for never
_unlogged = 0  # degraded requests since then


def cache_unavailable(request, error: Exception) -> None:
    """A budget could not be checked. Fail open (return, the response marked degraded) or closed (raise
    ThrottlingUnavailable, a 503 with Retry-After), as settings.API_THROTTLE_FAIL_OPEN says; either way
    log a WARNING, at most one per WARNING_INTERVAL per process so an outage does not flood the logs."""
    global _last_warning, _unlogged
    fail_open = settings.API_THROTTLE_FAIL_OPEN
    DEGRADED_REQUESTS.labels(outcome="allowed" if fail_open else "refused").inc()
    with _warning_lock:
        _unlogged += 1
        now = time.monotonic()
        due = _last_warning == 0.0 or now - _last_warning >= WARNING_INTERVAL
        if due:
            _last_warning, count, _unlogged = now, _unlogged, 0
    if due:
        logger.warning(
            "API throttling degraded: the cache is unavailable (%s: %s); %s. %d request(s) affected since the "
            "last warning of this process.",
            type(error).__name__,
            error,
            "requests go through un-throttled (API_THROTTLE_FAIL_OPEN=true)"
            if fail_open
            else "requests are refused with 503 (API_THROTTLE_FAIL_OPEN=false)",
            count,
        )
    if not fail_open:
        raise ThrottlingUnavailable(wait=UNAVAILABLE_RETRY_AFTER)
    # DRF adds the view's `headers` to its response, the error responses included.
    view = (getattr(request, "parser_context", None) or {}).get("view")
    if view is not None and getattr(view, "headers", None) is not None:
        view.headers[DEGRADED_HEADER] = "cache-unavailable"


def _reset_warning_interval() -> None:
    """For tests: the next degraded request logs its warning at once."""
    global _last_warning, _unlogged
    with _warning_lock:
        _last_warning, _unlogged = 0.0, 0


# --- The throttle ------------------------------------------------------------------------------------------


class ApiRateThrottle(BaseThrottle):
    """A token's own budget (one noisy integration cannot starve another) and its user's budget (all of a
    user's tokens and their browser session together), checked together: see the module's docstring."""

    def __init__(self):
        self._wait: float | None = None

    def budgets(self, request) -> list[Budget]:
        rates = settings.API_THROTTLE_RATES
        budgets = []
        if isinstance(request.auth, ApiToken) and rates.get("token"):
            budgets.append(Budget(f"throttle:token:{request.auth.pk}", *parse_rate(rates["token"])))
        if request.user and request.user.is_authenticated and rates.get("user"):
            budgets.append(Budget(f"throttle:user:{request.user.pk}", *parse_rate(rates["user"])))
        return budgets

    def allow_request(self, request, view) -> bool:
        budgets = self.budgets(request)
        if not budgets:
            return True
        try:
            verdict = budgets_consume(budgets)
        except CACHE_ERRORS as error:
            cache_unavailable(request, error)
            return True
        self._wait = verdict.wait
        return verdict.allowed

    def wait(self) -> float | None:
        return self._wait


# --- Failed token authentications per client address ------------------------------------------------------
# The throttle above runs after authentication, so it never sees a request whose token is unknown: that
# one is answered 401 at once, and a client could try tokens without limit or be told nothing when a
# broken retry loop floods us. These count unknown or malformed bearer tokens per client address
# (REST_FRAMEWORK NUM_PROXIES decides which X-Forwarded-For entry that is, as for DRF's own throttles) in
# fixed windows; past the window's budget, the address's unknown tokens get 429 with Retry-After.


def failed_auth_record(request) -> float | None:
    """Count one unknown or malformed token from this client address; the seconds until its window ends
    once the address has gone past the window's budget, else None. Without the cache: not counted
    (fail open) or ThrottlingUnavailable (fail closed)."""
    rate = settings.API_THROTTLE_RATES.get("failed_auth")
    if not rate:
        return None
    budget, duration = parse_rate(rate)
    now = time.time()
    window = int(now // duration)
    remaining = duration - (now - window * duration)
    key = f"throttle:failed-auth:{BaseThrottle().get_ident(request)}:{window}"
    cache = caches["default"]
    try:
        # add() then incr(): atomic in Redis, so concurrent failures all count.
        cache.add(key, 0, timeout=int(remaining) + 1)
        try:
            failures = cache.incr(key)
        except ValueError:  # expired between add() and incr()
            cache.add(key, 1, timeout=int(remaining) + 1)
            failures = 1
    except CACHE_ERRORS as error:
        cache_unavailable(request, error)
        return None
    return remaining if failures > budget else None
