"""Request budgets per API token and per user. Rates are read from settings on every request (not at
import, as DRF's own classes do) so they can be configured per deployment and changed in tests."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

from api.models import ApiToken


class _SettingsRateThrottle(SimpleRateThrottle):
    def __init__(self):  # DRF's reads the rate here, from its import-time copy of the settings
        pass

    def get_rate(self) -> str | None:
        return settings.API_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request, view) -> bool:
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)


class TokenRateThrottle(_SettingsRateThrottle):
    """Each token has its own budget, so one noisy integration cannot starve another."""

    scope = "token"

    def get_cache_key(self, request, view) -> str | None:
        if isinstance(request.auth, ApiToken):
            return f"throttle:token:{request.auth.pk}"
        return None


class UserRateThrottle(_SettingsRateThrottle):
    """All of a user's tokens and their browser session share one budget."""

    scope = "user"

    def get_cache_key(self, request, view) -> str | None:
        if request.user and request.user.is_authenticated:
            return f"throttle:user:{request.user.pk}"
        return None


# --- Failed token authentications per client address ------------------------------------------------------
# The throttles above run after authentication, so they never see a request whose token is unknown: that
# one is answered 401 at once, and a client could try tokens without limit or be told nothing when a
# broken retry loop floods us. These count unknown or malformed bearer tokens per client address
# (REST_FRAMEWORK NUM_PROXIES decides which X-Forwarded-For entry that is, as for DRF's own throttles) in
# fixed windows; past the window's budget, the address's unknown tokens get 429 with Retry-After.


def failed_auth_record(request) -> float | None:
    """Count one unknown or malformed token from this client address; the seconds until its window ends
    once the address has gone past the window's budget, else None."""
    rate = settings.API_THROTTLE_RATES.get("failed_auth")
    if not rate:
        return None
    budget, duration = _SettingsRateThrottle().parse_rate(rate)  # DRF's parser, as the throttles above use
    now = time.time()
    window = int(now // duration)
    remaining = duration - (now - window * duration)
    key = f"throttle:failed-auth:{BaseThrottle().get_ident(request)}:{window}"
    # add() then incr(): atomic in Redis, so concurrent failures all count.
    cache.add(key, 0, timeout=int(remaining) + 1)
    try:
        failures = cache.incr(key)
    except ValueError:  # expired between add() and incr()
        cache.add(key, 1, timeout=int(remaining) + 1)
        failures = 1
    return remaining if failures > budget else None
