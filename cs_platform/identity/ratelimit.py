"""Fixed-window request budgets in the shared cache (Redis in production), for endpoints that are not
logins and so are not counted by django-axes: password reset requests."""

from __future__ import annotations

import hashlib
import time

from django.core.cache import cache

from cs_platform.cache_errors import CACHE_ERRORS


class BudgetUnavailable(RuntimeError):
    """The cache holding the budgets is down: the caller refuses with a clear "try again later"."""


_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """'5/hour' -> (5, 3600); the same notation as the API's rates (settings._rate validates it)."""
    count, _, period = rate.partition("/")
    return int(count), _PERIODS[period.strip()[0]]


def within_budget(scope: str, subject: str, rate: str) -> bool:
    """Count one request for `subject` (an address, an email) and say whether it is within the budget.

    The subject is hashed into the key: the cache never holds the email addresses people asked about.
    Raises BudgetUnavailable when the cache cannot be reached."""
    budget, duration = parse_rate(rate)
    now = time.time()
    window = int(now // duration)
    remaining = int(duration - (now - window * duration)) + 1
    digest = hashlib.sha256(subject.encode("utf-8")).hexdigest()[:32]
    key = f"ratelimit:{scope}:{digest}:{window}"
    # add() then incr(): atomic in Redis, so concurrent requests all count.
    try:
        cache.add(key, 0, timeout=remaining)
        try:
            used = cache.incr(key)
        except ValueError:  # expired between add() and incr()
            cache.add(key, 1, timeout=remaining)
            used = 1
    except CACHE_ERRORS as error:
        # Fail closed: an uncounted reset form would let anyone mail-bomb an address while Redis is down.
        raise BudgetUnavailable(f"{scope} budget cannot be checked: the cache is unavailable") from error
    return used <= budget
