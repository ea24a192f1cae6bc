"""Who may do what: the one table of capabilities by role (README, Roles), and the checks built on it.

Pages (`requires`), the API (api.permissions.HasCapability), templates (`can`, put in every page's context by
cs_platform.tenancy.context_processors) and the tests all read this table; no other module lists roles to
decide what someone may do. Which accounts a role sees (its book) is accounts.selectors.visible_accounts,
built on the SEE_* capabilities below.

One rule for refusals, pages and API alike:
* what lies outside your tenant, or outside your book, does not exist for you: 404, the answer a wrong id
  gets, so a refusal never confirms that an id exists (objects are looked up before any role check);
* a page or action your role may not use, on something that exists for you: 403 with the reason (the site's
  403 page, in its layout, with a way back; the API's JSON error);
* logged in but not an active member of any tenant: 404, except home, which answers 403 with how to get
  access.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Collection
from enum import StrEnum

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404

from cs_platform.tenancy.models import Membership, Role


class Capability(StrEnum):
    """What a person may do, named after the doing. `roles` are the roles that may; `does` completes
    "Your role cannot ..." and the README's table."""

    # What they see.
    SEE_WHOLE_TENANT = "see_whole_tenant"
    SEE_TEAM_BOOK = "see_team_book"
    HOLD_ACCOUNTS = "hold_accounts"
    VIEW_AUDIT_TRAIL = "view_audit_trail"
    VIEW_NIGHTLY_RUNS = "view_nightly_runs"
    # What they record about the accounts of their book.
    LOG_TOUCHPOINTS = "log_touchpoints"
    RECORD_SURVEYS = "record_surveys"
    MANAGE_DECISIONS = "manage_decisions"
    RUN_JOURNEYS = "run_journeys"
    EDIT_ACCOUNTS = "edit_accounts"
    ADD_ACCOUNTS = "add_accounts"
    DELETE_ACCOUNTS = "delete_accounts"
    REASSIGN_ACCOUNTS = "reassign_accounts"
    RECORD_MEASUREMENTS = "record_measurements"
    MANAGE_INCIDENTS = "manage_incidents"
    UPLOAD_EVIDENCE = "upload_evidence"
    ADD_OBLIGATIONS = "add_obligations"
    RECORD_AUDITS = "record_audits"
    # The tenant's settings.
    EDIT_SEGMENTS = "edit_segments"
    EDIT_HEALTH_MODEL = "edit_health_model"
    MANAGE_API_TOKENS = "manage_api_tokens"
    MANAGE_WEBHOOKS = "manage_webhooks"
    MANAGE_WEEKLY_EMAIL = "manage_weekly_email"
    MANAGE_SECURITY_SETTINGS = "manage_security_settings"

    @property
    def roles(self) -> frozenset[str]:
        return POLICY[self].roles

    @property
    def does(self) -> str:
        return POLICY[self].does


@dataclasses.dataclass(frozen=True)
class Rule:
    roles: frozenset[str]
    does: str


# Groups the table below repeats; each capability still names its own roles, so one may change alone.
_EVERY_ACCOUNT = frozenset({Role.ADMIN, Role.EXECUTIVE, Role.COMPLIANCE, Role.VIEWER})
# Executives are read-mostly but record what they hear from a client (touchpoints, surveys, decisions).
_HEARS_CLIENTS = frozenset({Role.ADMIN, Role.EXECUTIVE, Role.MANAGER, Role.CSM})
# The roles that maintain an account's data: its fields and contacts, its journeys, and the operational data
# that feed the health score (KPI measurements, support incidents). Not executives (read-mostly),
# compliance officers (who file compliance records) or viewers (who post nothing).
_MAINTAINS_BOOK = frozenset({Role.ADMIN, Role.MANAGER, Role.CSM})
# Compliance officers file compliance records, as do those who maintain the account.
_FILES_COMPLIANCE = frozenset({Role.ADMIN, Role.MANAGER, Role.CSM, Role.COMPLIANCE})
_MOVES_BOOKS = frozenset({Role.ADMIN, Role.MANAGER})
_ADMINS = frozenset({Role.ADMIN})

POLICY: dict[Capability, Rule] = {
    Capability.SEE_WHOLE_TENANT: Rule(_EVERY_ACCOUNT, "see every account of the tenant"),
    Capability.SEE_TEAM_BOOK: Rule(frozenset({Role.MANAGER}), "see the accounts of their team"),
    Capability.HOLD_ACCOUNTS: Rule(frozenset({Role.MANAGER, Role.CSM}), "be given accounts to look after"),
    # The trail also holds every user, token and settings change with before/after values: compliance
    # officers own it and admins run the tenant; others ask compliance for an export.
    Capability.VIEW_AUDIT_TRAIL: Rule(frozenset({Role.ADMIN, Role.COMPLIANCE}), "read the audit trail"),
    Capability.VIEW_NIGHTLY_RUNS: Rule(_ADMINS, "follow the nightly runs"),
    Capability.LOG_TOUCHPOINTS: Rule(_HEARS_CLIENTS, "log touchpoints"),
    Capability.RECORD_SURVEYS: Rule(_HEARS_CLIENTS, "record survey responses"),
    Capability.MANAGE_DECISIONS: Rule(_HEARS_CLIENTS, "add and resolve decisions and blockers"),
    Capability.RUN_JOURNEYS: Rule(_MAINTAINS_BOOK, "start journeys and complete their activities"),
    Capability.EDIT_ACCOUNTS: Rule(_MAINTAINS_BOOK, "change accounts and their contacts"),
    Capability.ADD_ACCOUNTS: Rule(_MOVES_BOOKS, "add accounts"),
    Capability.DELETE_ACCOUNTS: Rule(_MOVES_BOOKS, "delete accounts created by mistake"),
    Capability.REASSIGN_ACCOUNTS: Rule(_MOVES_BOOKS, "hand accounts to another CSM"),
    Capability.RECORD_MEASUREMENTS: Rule(_MAINTAINS_BOOK, "record KPI measurements"),
    Capability.MANAGE_INCIDENTS: Rule(_MAINTAINS_BOOK, "open and resolve support incidents"),
    Capability.UPLOAD_EVIDENCE: Rule(_FILES_COMPLIANCE, "upload compliance evidence"),
    Capability.ADD_OBLIGATIONS: Rule(_FILES_COMPLIANCE, "add compliance obligations"),
    Capability.RECORD_AUDITS: Rule(_FILES_COMPLIANCE, "record compliance audit results"),
    Capability.EDIT_SEGMENTS: Rule(_ADMINS, "change segments and their KPI definitions"),
    Capability.EDIT_HEALTH_MODEL: Rule(_ADMINS, "change the health model's weights and bands"),
    # A token acts with its creator's rights, and only while its creator holds this capability.
    Capability.MANAGE_API_TOKENS: Rule(_ADMINS, "create and revoke API tokens"),
    Capability.MANAGE_WEBHOOKS: Rule(_ADMINS, "manage webhooks"),
    Capability.MANAGE_WEEKLY_EMAIL: Rule(_ADMINS, "follow and retry the weekly email's deliveries"),
    Capability.MANAGE_SECURITY_SETTINGS: Rule(_ADMINS, "change the tenant's security settings"),
}

# The page each role lands on (home): the portfolio for those who see the whole tenant's figures, the
# compliance dashboard for compliance officers, their (team's) book for managers and CSMs.
HOME_PAGE: dict[str, str] = {
    Role.ADMIN: "portfolio",
    Role.EXECUTIVE: "portfolio",
    Role.VIEWER: "portfolio",
    Role.COMPLIANCE: "compliance",
    Role.MANAGER: "book",
    Role.CSM: "book",
}


def role_of(request) -> str | None:
    """The role of the request's active membership in its tenant, or None."""
    membership: Membership | None = getattr(request, "membership", None)
    return membership.role if membership is not None and membership.is_active else None


def member_can(membership: Membership | None, capability: Capability) -> bool:
    return membership is not None and membership.is_active and membership.role in capability.roles


def can(request, capability: Capability) -> bool:
    return role_of(request) in capability.roles


def capabilities_of(role: str | None) -> dict[str, bool]:
    """{capability: allowed} for templates (`{% if can.manage_webhooks %}`), so nobody sees a button or a
    link that would be refused."""
    return {capability.value: role in capability.roles for capability in Capability}


def refusal(role: str | None, capability: Capability | None = None) -> str:
    """The reason a 403 gives. The API says "do this" (its message predates the capabilities)."""
    label = Role(role).label if role else "none"
    return f"Your role ({label}) cannot {capability.does if capability else 'do this'}."


def requires(
    capability: Capability | None = None,
    *,
    methods: Collection[str] | None = None,
    exists: Callable[..., object] | None = None,
):
    """The pages' one guard (it includes login_required). Anonymous: the login page. Logged in without an
    active membership: 404. A member whose role lacks `capability`: 403 with the reason, except that when
    `exists` is given (the view's lookup, called with the view's arguments; it returns the object, or None
    or raises Http404 when it does not exist for the member) an object outside their tenant or book answers
    404 first. `methods` limits the check to those methods (a page every member reads, whose form not every
    role may post); without `capability` any member passes."""
    guarded_methods = {method.upper() for method in methods} if methods is not None else None

    def decorate(view):
        @functools.wraps(view)
        def guarded(request, *args, **kwargs):
            role = role_of(request)
            if role is None:
                raise Http404("No such page.")
            if (
                capability is not None
                and role not in capability.roles
                and (guarded_methods is None or request.method in guarded_methods)
            ):
                if exists is not None and exists(request, *args, **kwargs) is None:
                    raise Http404("No such page.")
                raise PermissionDenied(refusal(role, capability))
            return view(request, *args, **kwargs)

        return login_required(guarded)

    return decorate


def mfa_required(user, memberships) -> bool:
    """Whether this person must pass the MFA step before reaching any page: every platform superuser,
    and anyone with an active membership whose role their tenant requires MFA for (memberships_for_user's
    list, tenants joined, so the check costs no query)."""
    if getattr(user, "is_superuser", False):
        return True
    return any(m.is_active and m.role in (m.tenant.mfa_required_roles or ()) for m in memberships)
