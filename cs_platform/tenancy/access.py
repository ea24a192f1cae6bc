"""Who may do what in the browser, by role (DESIGN.md, Roles). Pages read through visible_accounts();
this module only answers "may this role open this page / post this form"."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404

from cs_platform.tenancy.models import Membership, Role

# Forms a person uses on an account, and the roles that may post them. Viewers post nothing;
# executives are read-mostly but may record what they hear from a client (touchpoints, surveys,
# decisions); compliance officers file evidence; only managers and admins move a book between CSMs.
FORM_ROLES: dict[str, frozenset[str]] = {
    "touchpoint": frozenset({Role.ADMIN, Role.EXECUTIVE, Role.MANAGER, Role.CSM}),
    "survey": frozenset({Role.ADMIN, Role.EXECUTIVE, Role.MANAGER, Role.CSM}),
    "decision": frozenset({Role.ADMIN, Role.EXECUTIVE, Role.MANAGER, Role.CSM}),
    "activity": frozenset({Role.ADMIN, Role.MANAGER, Role.CSM}),
    "evidence": frozenset({Role.ADMIN, Role.MANAGER, Role.CSM, Role.COMPLIANCE}),
    "reassign": frozenset({Role.ADMIN, Role.MANAGER}),
}
# Roles that see every account and every figure of the tenant: they land on the portfolio.
PORTFOLIO_ROLES = frozenset({Role.ADMIN, Role.EXECUTIVE, Role.VIEWER})
# Who changes the tenant's security settings (which roles must use MFA).
SECURITY_SETTINGS_ROLES = frozenset({Role.ADMIN})


def role_of(request) -> str | None:
    membership: Membership | None = getattr(request, "membership", None)
    return membership.role if membership is not None and membership.is_active else None


def can_post(request, form: str) -> bool:
    return role_of(request) in FORM_ROLES[form]


def forms_allowed(request) -> dict[str, bool]:
    """{form: allowed} for templates, so a viewer never sees a button that would be refused."""
    return {form: can_post(request, form) for form in FORM_ROLES}


def require_member(request) -> Membership:
    """The request's membership; no membership in any tenant reads as a page that does not exist."""
    if role_of(request) is None:
        raise Http404("No such page.")
    return request.membership


def require_roles(request, roles) -> Membership:
    """Roles outside `roles` get the same 404 as a missing page: no hint that it exists."""
    membership = require_member(request)
    if membership.role not in roles:
        raise Http404("No such page.")
    return membership


def require_form(request, form: str) -> Membership:
    """A member who may see the account but not post this form gets 403 with the reason: they
    already know the page exists, so hiding it would only confuse them."""
    membership = require_member(request)
    if membership.role not in FORM_ROLES[form]:
        raise PermissionDenied(f"Your role ({membership.get_role_display()}) cannot do this.")
    return membership


def mfa_required(user, memberships) -> bool:
    """Whether this person must pass the MFA step before reaching any page: every platform superuser,
    and anyone with an active membership whose role their tenant requires MFA for (memberships_for_user's
    list, tenants joined, so the check costs no query)."""
    if getattr(user, "is_superuser", False):
        return True
    return any(m.is_active and m.role in (m.tenant.mfa_required_roles or ()) for m in memberships)
