"""Request budgets per API token and per user. Rates are read from settings on every request (not at
import, as DRF's own classes do) so they can be configured per deployment and changed in tests."""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

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
