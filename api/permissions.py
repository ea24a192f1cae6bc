"""Scope checks for API views: a token needs `<family>:read` for safe methods and `<family>:write`
otherwise; a logged-in browser session is judged by the member's role instead."""

from __future__ import annotations

from rest_framework import exceptions, permissions

from api.models import ApiToken
from cs_platform.tenancy.access import FORM_ROLES, role_of
from cs_platform.tenancy.models import Role

# Session roles that may write the data of the accounts in their book where no page form decides:
# account fields and contacts (accounts.api), KPI measurements and incidents (metrics.api). Executives
# are read-mostly and post only what they hear from a client (touchpoints, surveys, decisions: see
# FORM_ROLES), compliance officers file evidence, viewers post nothing.
BOOK_WRITERS = frozenset({Role.ADMIN, Role.MANAGER, Role.CSM})


def _role_refusal(role: str | None) -> str:
    return f"Your role ({Role(role).label if role else 'none'}) cannot do this."


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
        if write and role == Role.VIEWER:
            self.message = _role_refusal(role)  # a session has no scopes: name what refused it
            return False
        return True


def _write_key(view, request) -> str | None:
    """The name `write_roles` lists a write under: a viewset's action (None for a method the router does
    not map), or for a plain APIView (bulk ingest) the lower-case method it handles."""
    if hasattr(view, "action"):
        return view.action
    method = request.method.lower()
    return method if method in view.http_method_names and hasattr(view, method) else None


class RoleMayWrite(permissions.BasePermission):
    """Session users write only in the roles the view lists per action (`write_roles`; for a plain
    APIView, per lower-case method), as the pages decide (cs_platform.tenancy.access.FORM_ROLES). A write
    the view does not list is refused: fail closed.

    A token's writes are judged by its scopes alone (HasScope): tokens are created by admins, who choose
    the families they may write, and a token authenticates only while its creator is still an active
    admin of the tenant (api.authentication), so the role behind every token write is an admin's."""

    message = "Your role cannot do this."

    def has_permission(self, request, view) -> bool:
        if request.method in permissions.SAFE_METHODS or isinstance(request.auth, ApiToken):
            return True
        key = _write_key(view, request)
        if key is None or request.method.lower() not in view.http_method_names:
            return True  # a method the resource does not offer: let the view answer 405
        role = role_of(request._request)
        if role in view.write_roles.get(key, frozenset()):
            return True
        if role is not None:
            self.message = _role_refusal(role)
        return False


def require_form_role(request, form: str) -> None:
    """For actions on one object, checked after the object is found (a missing object is a 404 before
    any role refusal, as on the pages): sessions may post what the page's form FORM_ROLES[form] lets
    their role post; a token's scope was already checked by HasScope (and its creator is an admin)."""
    if isinstance(request.auth, ApiToken):
        return
    role = role_of(request._request)
    if role not in FORM_ROLES[form]:
        raise exceptions.PermissionDenied(_role_refusal(role))
