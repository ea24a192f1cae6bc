"""Re-authentication ("sudo mode"): a person must have entered their password (and, with MFA, a code)
within REAUTH_SECONDS before a sensitive write: creating API tokens or webhook secrets, changing roles,
MFA or the tenant's security settings, exporting the audit trail from a browser.

Call `require_recent_auth(request)` where the write happens, after the object lookups and role checks
(so another tenant's id is still a 404 and a wrong role still a 403). It raises ReauthRequired: browser
pages turn it into a redirect to the re-authentication page that comes back afterwards
(middleware.ReauthMiddleware); the REST API answers it as a 403 in its one error format with the code
`reauth_required` (it is a DRF PermissionDenied). A bearer token is its own credential and is never
asked to re-authenticate."""

from __future__ import annotations

import functools

from django.conf import settings
from rest_framework import exceptions

from cs_platform.identity import sessions

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


class ReauthRequired(exceptions.PermissionDenied):
    default_code = "reauth_required"

    def __init__(self, detail: str | None = None):
        minutes = max(1, settings.REAUTH_SECONDS // 60)
        super().__init__(
            detail
            or f"Confirm your password first: this needs a sign-in within the last {minutes} minutes. "
            "Re-authenticate at /reauth/ and repeat the request.",
            self.default_code,
        )


def require_recent_auth(request) -> None:
    """Raise ReauthRequired unless the session's person re-authenticated within REAUTH_SECONDS.

    Works with a Django request or a DRF one (whose `auth` is the bearer token, if any)."""
    if getattr(request, "auth", None) is not None:
        return  # a bearer token: its scopes are the credential
    session = getattr(request, "session", None)
    if session is None or not sessions.recently_authenticated(session, settings.REAUTH_SECONDS):
        raise ReauthRequired()


def reauth_required(view):
    """View decorator: unsafe methods (POST...) need a recent re-authentication; reads do not."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method not in SAFE_METHODS and request.user.is_authenticated:
            require_recent_auth(request)
        return view(request, *args, **kwargs)

    return wrapper


class ReauthForWritesAdminMixin:
    """For a Django ModelAdmin whose changes are sensitive (roles, memberships): every POST to its add,
    change, delete or list (bulk actions) pages needs a recent re-authentication first."""

    def _guard(self, request) -> None:
        if request.method not in SAFE_METHODS:
            require_recent_auth(request)

    def changeform_view(self, request, *args, **kwargs):
        self._guard(request)
        return super().changeform_view(request, *args, **kwargs)

    def delete_view(self, request, *args, **kwargs):
        self._guard(request)
        return super().delete_view(request, *args, **kwargs)

    def changelist_view(self, request, *args, **kwargs):
        self._guard(request)
        return super().changelist_view(request, *args, **kwargs)
