"""Session lifetimes, the MFA gate and the re-authentication redirect.

Order (settings): SessionLifetimeMiddleware after OTPMiddleware and before TenantMiddleware (an expired
session loads no tenant); MfaRequiredMiddleware and ReauthMiddleware after TenantMiddleware (the gate
reads the memberships it loaded, at no extra query)."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpResponseRedirect, JsonResponse
from django.urls import reverse

from cs_platform.identity import reauth, sessions
from cs_platform.identity.client_address import client_address
from cs_platform.identity.navigation import return_path
from cs_platform.identity.services import auth_logout_record
from cs_platform.tenancy.policy import mfa_required

logger = logging.getLogger("cs_platform.identity")


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def _api_error(status: int, code: str, message: str) -> JsonResponse:
    # The REST API's one error format (api.errors), written out here: the platform cannot import the API.
    return JsonResponse({"status": status, "code": code, "message": message, "errors": []}, status=status)


def _to(request, url_name: str, next_url: str | None = None):
    url = reverse(url_name)
    if next_url:
        url += "?" + urlencode({"next": next_url})
    return HttpResponseRedirect(url)


class SessionLifetimeMiddleware:
    """Ends a session SESSION_IDLE_TIMEOUT_SECONDS after its last request or SESSION_MAX_AGE_SECONDS after
    its login, and sends the person to the login page with a message. API calls on such a session
    simply continue unauthenticated (401). The idle stamp is rewritten at most every
    SESSION_IDLE_REFRESH_SECONDS, so a page's query count does not grow by a session write."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated:
            ended = self._check(request)
            if ended is not None:
                return ended
        return self.get_response(request)

    def _check(self, request):
        session = request.session
        moment = sessions.now()
        started, seen = session.get(sessions.AUTH_AT), session.get(sessions.SEEN_AT)
        if not isinstance(started, int | float) or not isinstance(seen, int | float):
            # A session from before these stamps existed: its clocks start now.
            session[sessions.AUTH_AT] = session[sessions.SEEN_AT] = moment
            return None
        if moment - started > settings.SESSION_MAX_AGE_SECONDS:
            reason = "max_age"
            text = f"Your session reached its {settings.SESSION_MAX_AGE_SECONDS // 3600}-hour limit. Log in again."
        elif moment - seen > settings.SESSION_IDLE_TIMEOUT_SECONDS:
            reason = "idle_timeout"
            text = (
                f"You were logged out after {settings.SESSION_IDLE_TIMEOUT_SECONDS // 60} minutes without "
                "activity. Log in again."
            )
        else:
            if moment - seen >= min(settings.SESSION_IDLE_REFRESH_SECONDS, settings.SESSION_IDLE_TIMEOUT_SECONDS / 2):
                session[sessions.SEEN_AT] = moment
            return None
        user = request.user
        logout(request)
        auth_logout_record(user=user, ip=client_address(request), reason=reason)
        if _is_api(request):
            return None
        messages.info(request, text)
        return _to(request, "login", return_path(request))


# Pages a person who still owes the MFA step may open: the step itself, enrolment, and leaving.
_MFA_STEP_PAGES = frozenset({"login", "login_verify", "logout", "mfa_enroll", "admin_login"})


class MfaRequiredMiddleware:
    """Nobody who must use MFA reaches anything else before passing it: a superuser, a member whose
    tenant requires MFA for their role, and anyone with an authenticator (their login asked for its
    code; a session that skipped that step, e.g. the admin's own login form, is sent to it). Without an
    authenticator yet, the person is sent to set one up. The REST API answers 403 `mfa_required`."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if user.is_authenticated and not user.is_verified():
            owes = request.session.get(sessions.HAS_MFA) or mfa_required(user, request.memberships)
            if owes and not self._exempt(request):
                if _is_api(request):
                    return _api_error(403, "mfa_required", "Complete the MFA step in the browser before using the API.")
                return _to(request, "login_verify", return_path(request))
        return self.get_response(request)

    @staticmethod
    def _exempt(request) -> bool:
        match = getattr(request, "resolver_match", None)
        if match is None:
            from django.urls import Resolver404, resolve

            try:
                match = resolve(request.path_info)
            except Resolver404:
                return False
        return match.url_name in _MFA_STEP_PAGES and not match.namespace


class ReauthMiddleware:
    """Turns ReauthRequired raised by a page into a redirect to the re-authentication page, which comes
    back to where the person was. (API views answer it themselves: it is a DRF exception.)"""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, reauth.ReauthRequired):
            return None
        if _is_api(request):
            return _api_error(403, "reauth_required", str(exception.detail))
        messages.info(request, "Confirm it is you to continue.")
        return _to(request, "reauth", return_path(request))
