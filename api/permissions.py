"""Scope checks for API views: a token needs `<family>:read` for safe methods and `<family>:write`
otherwise; a logged-in browser session is judged by the member's role instead."""

from __future__ import annotations

from rest_framework import exceptions, permissions

from api.models import ApiToken
from cs_platform.tenancy.access import FORM_ROLES, role_of
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


class RoleMayWrite(permissions.BasePermission):
    """Session users write only in the roles the view lists per action (`write_roles`), as the pages
    decide (cs_platform.tenancy.access.FORM_ROLES). A token's writes are judged by its scopes alone
    (HasScope): tokens are created by admins, who choose the families they may write."""

    message = "Your role cannot do this."

    def has_permission(self, request, view) -> bool:
        if request.method in permissions.SAFE_METHODS or isinstance(request.auth, ApiToken):
            return True
        if view.action is None or request.method.lower() not in view.http_method_names:
            return True  # a method the resource does not offer: let the view answer 405
        role = role_of(request._request)
        if role in view.write_roles.get(view.action, frozenset()):
            return True
        if role is not None:
            self.message = f"Your role ({Role(role).label}) cannot do this."
        return False


def require_form_role(request, form: str) -> None:
    """For actions on one object, checked after the object is found (a missing object is a 404 before
    any role refusal, as on the pages): sessions may post what the page's form FORM_ROLES[form] lets
    their role post; a token's scope was already checked by HasScope."""
    if isinstance(request.auth, ApiToken):
        return
    role = role_of(request._request)
    if role not in FORM_ROLES[form]:
        raise exceptions.PermissionDenied(f"Your role ({Role(role).label if role else 'none'}) cannot do this.")
