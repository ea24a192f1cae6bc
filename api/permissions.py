"""The API's permission classes, both project defaults (settings.REST_FRAMEWORK): a token needs
`<family>:read` for safe methods and `<family>:write` otherwise (HasScope); a logged-in browser session needs
the capability its view declares for what it calls (HasCapability), from cs_platform.tenancy.policy as the
pages do. A refusal on one object waits until the object is found (RefuseAfterLookup), as on the pages."""

from __future__ import annotations

from rest_framework import permissions

from api.models import ApiToken
from cs_platform.tenancy.policy import Capability, refusal, role_of

# The key of `capabilities` that covers every action the view does not name (a view all of whose
# answers need one capability, such as the audit trail's).
EVERY_ACTION = "*"


class HasScope(permissions.BasePermission):
    """Views declare `scope_family` ("accounts", "metrics"...); None means any valid token will do. A session
    passes for any active member: what their role may do is HasCapability's."""

    message = "This token lacks the scope for this request."

    def has_permission(self, request, view) -> bool:
        family = getattr(view, "scope_family", None)
        write = request.method not in permissions.SAFE_METHODS
        if isinstance(request.auth, ApiToken):
            if family is None:
                return True
            return f"{family}:{'write' if write else 'read'}" in request.auth.scopes
        return role_of(request._request) is not None


def _key(view, request) -> str | None:
    """The name `capabilities` lists a request under: a viewset's action (None for a method the router does
    not map), or for a plain APIView (bulk ingest) the lower-case method it handles."""
    if hasattr(view, "action"):
        return view.action
    method = request.method.lower()
    return method if method in view.http_method_names and hasattr(view, method) else None


class HasCapability(permissions.BasePermission):
    """Views declare `capabilities`: {action: Capability} for a viewset (its action names: "create",
    "partial_update", "resolve"...), {lower-case method: Capability} for a plain APIView, and "*"
    (EVERY_ACTION) for every action not named. A session member needs the capability of what they call.
    A write the view does not list is refused (fail closed); a read it does not list is open to every
    member, whose querysets are their book.

    A token is judged by its scopes alone (HasScope): tokens are created by members holding
    MANAGE_API_TOKENS (admins), who choose the families they may write, and a token authenticates only while
    its creator still holds that capability (api.authentication), so the role behind every token is an
    admin's."""

    message = "Your role cannot do this."

    def has_permission(self, request, view) -> bool:
        if isinstance(request.auth, ApiToken):
            return True
        key = _key(view, request)
        if key is None or request.method.lower() not in view.http_method_names:
            return True  # a method the resource does not offer: let the view answer 405
        declared: dict[str, Capability] = getattr(view, "capabilities", {})
        capability = declared.get(key, declared.get(EVERY_ACTION))
        if capability is None and request.method in permissions.SAFE_METHODS:
            return True
        role = role_of(request._request)
        if capability is not None and role in capability.roles:
            return True
        if role is not None:
            self.message = refusal(role)
        return False


class RefuseAfterLookup:
    """For views on one object: a refusal (scope or capability) waits until the object is looked up, so an id
    outside the caller's tenant or book answers 404 whatever they may do (policy: a 403 would confirm that
    the id exists), and a found one gets the 403. Only refusals pay for the lookup."""

    def permission_denied(self, request, message=None, code=None):
        lookup = getattr(self, "lookup_url_kwarg", None) or getattr(self, "lookup_field", None)
        caller = isinstance(request.auth, ApiToken) or role_of(request._request) is not None
        if caller and lookup in getattr(self, "kwargs", {}):
            self.get_object()  # Http404 for an object that does not exist for the caller
        super().permission_denied(request, message=message, code=code)
