"""Scope checks for API views: a token needs `<family>:read` for safe methods and `<family>:write`
otherwise; a logged-in browser session is judged by the member's role instead."""

from __future__ import annotations

from rest_framework import permissions

from api.models import ApiToken
from cs_platform.tenancy.access import role_of
from cs_platform.tenancy.models import Role


class HasScope(permissions.BasePermission):
    """Views declare `scope_family` ("accounts", "metrics"...); None means any valid token will do."""

    message = "This token lacks the scope for this request."

    def has_permission(self, request, view) -> bool:
        family = getattr(view, "scope_family", None)
        write = request.method not in permissions.SAFE_METHODS
        if isinstance(request.auth, ApiToken):
            if family is None:
                return True
            return f"{family}:{'write' if write else 'read'}" in request.auth.scopes
        role = role_of(request._request)
        if role is None:
            return False
        # Session users: any member reads; viewers post nothing (DESIGN.md, Roles).
        return not write or role != Role.VIEWER
