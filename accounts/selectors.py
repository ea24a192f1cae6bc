"""Reads of client accounts. visible_accounts() is the one place that decides whose book is whose."""

from __future__ import annotations

import functools
from typing import Any

from django.db import connection
from django.db.models import (
    BooleanField,
    CharField,
    F,
    Func,
    Q,
    QuerySet,
)
from django.db.models.functions import Cast

from accounts.models import Account, AccountUserObjectPermission, Contact, Touchpoint
from cs_platform.audit.models import AuditEvent
from cs_platform.tenancy.models import Membership, Role
from cs_platform.tenancy.policy import Capability
from cs_platform.tenancy.selectors import team_user_ids

VIEW_PERMISSION = "view_account"


def _membership_of(user) -> Membership | None:
    membership = getattr(user, "_cs_membership", None)
    if membership is not None:
        return membership
    if not getattr(user, "is_authenticated", False):
        return None
    return Membership.objects.filter(user=user, is_active=True).first()


def visible_accounts(user, membership: Membership | None = None) -> QuerySet[Account]:
    """The accounts `user` may see in the current tenant, by role (README, Roles; the capabilities are
    cs_platform.tenancy.policy's):

    * SEE_WHOLE_TENANT (admin, executive, compliance, viewer): every account of the tenant;
    * SEE_TEAM_BOOK (manager): accounts whose CSM permission or owner is in the manager's team (themselves
      and everyone reporting to them, at any depth);
    * HOLD_ACCOUNTS otherwise (csm): accounts on which they hold the guardian object permission view_account;
    * no membership in the current tenant, or none of these: nothing.
    Filtered by the current tenant through the fail-closed manager (and RLS on PostgreSQL)."""
    membership = membership or _membership_of(user)
    accounts = Account.objects.all()
    if membership is None or not membership.is_active:
        return accounts.none()
    role = membership.role
    if role in Capability.SEE_WHOLE_TENANT.roles:
        return accounts
    # A restricted book is read into a list of ids once (one query) and every page query then filters
    # on that list. Nested IN-subqueries through the permission table made the planner nest loops
    # three deep whenever its statistics lagged behind a bulk import (minutes for 500 accounts).
    if role in Capability.SEE_TEAM_BOOK.roles:
        team = team_user_ids(membership)
        ids = Account.objects.filter(Q(pk__in=_permitted_account_ids(team)) | Q(owner_csm_id__in=team))
        return accounts.filter(pk__in=list(ids.values_list("pk", flat=True)))
    if role in Capability.HOLD_ACCOUNTS.roles:
        return accounts.filter(pk__in=list(_permitted_account_ids([user.pk])))
    return accounts.none()


def book_segments(memberships: list[Membership]) -> dict[int, set[int]]:
    """For each restricted-book membership (CSM or manager) of the current tenant: the segment ids of
    the accounts visible_accounts() would give it, keyed by membership pk. Whole-tenant and inactive
    memberships are left out. Three queries however many members: the active team structure, the
    view permissions' (user, segment) pairs and the owned accounts' (owner, segment) pairs; the team
    trees are walked in memory with team_user_ids' rules (active reports, any depth)."""
    restricted = [
        m
        for m in memberships
        if m.is_active
        and m.role not in Capability.SEE_WHOLE_TENANT.roles
        and m.role in Capability.SEE_TEAM_BOOK.roles | Capability.HOLD_ACCOUNTS.roles
    ]
    if not restricted:
        return {}
    reports: dict[int, list[tuple[int, int]]] = {}
    for pk, user_id, manager_id in Membership.objects.filter(is_active=True).values_list("pk", "user_id", "manager_id"):
        if manager_id is not None:
            reports.setdefault(manager_id, []).append((pk, user_id))
    teams: dict[int, set[int]] = {}
    for m in restricted:
        team, frontier = {m.user_id}, [m.pk] if m.role in Capability.SEE_TEAM_BOOK.roles else []
        while frontier:
            rows = [row for pk in frontier for row in reports.get(pk, ())]
            frontier = [pk for pk, user_id in rows if user_id not in team]
            team.update(user_id for _, user_id in rows)
        teams[m.pk] = team
    everyone = sorted(set().union(*teams.values()))
    permitted: dict[int, set[int]] = {}
    for user_id, segment_id in (
        AccountUserObjectPermission.objects.filter(user_id__in=everyone, permission_id=_view_permission_id())
        .values_list("user_id", "content_object__segment_id")
        .distinct()
    ):
        permitted.setdefault(user_id, set()).add(segment_id)
    owned: dict[int, set[int]] = {}
    managers_team = sorted(set().union(*(teams[m.pk] for m in restricted if m.role in Capability.SEE_TEAM_BOOK.roles)))
    if managers_team:
        for owner_id, segment_id in (
            Account.objects.filter(owner_csm_id__in=managers_team).values_list("owner_csm_id", "segment_id").distinct()
        ):
            owned.setdefault(owner_id, set()).add(segment_id)
    result: dict[int, set[int]] = {}
    for m in restricted:
        if m.role in Capability.SEE_TEAM_BOOK.roles:  # a manager's book: permissions or ownership in the team
            result[m.pk] = set().union(*(permitted.get(u, set()) | owned.get(u, set()) for u in teams[m.pk]))
        else:
            result[m.pk] = set(permitted.get(m.user_id, ()))
    return result


def _permitted_account_ids(user_ids: list[int]):
    return (
        AccountUserObjectPermission.objects.filter(user_id__in=user_ids, permission_id=_view_permission_id())
        .values_list("content_object_id", flat=True)
        .distinct()
    )


@functools.cache
def _view_permission_id() -> int:
    # auth_permission is global and fixed after migrate: look the id up once per process instead of
    # joining the permission table into every book query.
    from django.contrib.auth.models import Permission

    return Permission.objects.get(codename=VIEW_PERMISSION, content_type__app_label="accounts").pk


def account_detail(user, account_id: int, membership: Membership | None = None) -> Account | None:
    return visible_accounts(user, membership).select_related("segment", "owner_csm").filter(pk=account_id).first()


def account_contacts(account: Account) -> list[Contact]:
    """The account's contacts, primary ones and the executive sponsor first, then by name (one query).
    The same list feeds the header and the contact choices of the touchpoint and survey forms."""
    return list(Contact.objects.filter(account_id=account.pk).order_by("-is_primary", "-is_executive_sponsor", "name"))


def reassign_candidates(*, membership: Membership) -> list[Membership]:
    """Whom `membership` may hand an account to (active memberships, user joined, by name): a manager,
    the CSMs of their team; an admin, any active CSM or manager; anyone else, nobody.
    One query (plus, for a manager, the team walk: one query per level)."""
    candidates = Membership.objects.filter(is_active=True).select_related("user")
    if membership.role == Role.MANAGER:
        candidates = candidates.filter(role=Role.CSM, user_id__in=team_user_ids(membership))
    elif membership.role == Role.ADMIN:
        candidates = candidates.filter(role__in=Capability.HOLD_ACCOUNTS.roles)
    else:
        return []
    return sorted(candidates, key=lambda m: (m.user.get_full_name() or m.user.get_username()).lower())


# --- Account 360 ---------------------------------------------------------------------------------------
AUDIT_TRAIL_SIZE = 50


# Everything on an account that its services audit, by the object_type they record (model label).
_AUDITED_CHILDREN: dict[str, tuple[str, str]] = {
    "accounts.touchpoint": ("accounts.Touchpoint", "account_id"),
    "accounts.contact": ("accounts.Contact", "account_id"),
    "journeys.decision": ("journeys.Decision", "account_id"),
    "journeys.accountjourney": ("journeys.AccountJourney", "account_id"),
    "journeys.journeyactivity": ("journeys.JourneyActivity", "journey__account_id"),
    "compliance.obligation": ("compliance.Obligation", "account_id"),
    "compliance.evidence": ("compliance.Evidence", "obligation__account_id"),
    "compliance.auditresult": ("compliance.AuditResult", "obligation__account_id"),
    "metrics.surveyresponse": ("metrics.SurveyResponse", "account_id"),
    "metrics.incident": ("metrics.Incident", "account_id"),
}


_OBJECT_LABELS = {
    "accounts.account": "Account",
    "accounts.touchpoint": "Touchpoint",
    "accounts.contact": "Contact",
    "journeys.decision": "Decision",
    "journeys.accountjourney": "Journey",
    "journeys.journeyactivity": "Activity",
    "compliance.obligation": "Obligation",
    "compliance.evidence": "Evidence",
    "compliance.auditresult": "Audit",
    "metrics.surveyresponse": "Survey response",
    "metrics.incident": "Incident",
}
_SUMMARY_SKIP = {"id", "tenant_id", "account_id", "created_at", "updated_at", "recorded_at", "computed_at"}
_SUMMARY_FIELDS = 6


def _object_ids(model_label: str, lookup: str, account_id: int):
    """The text primary keys of an account's children, as the audit trail stores object ids."""
    from django.apps import apps

    model = apps.get_model(model_label)
    rows = model.objects.filter(**{lookup: account_id}).annotate(pk_text=Cast("pk", output_field=CharField()))
    return rows.order_by().values("pk_text")


class _EqualsAnyOf(Func):
    """`column = ANY(ARRAY(subquery))`. On PostgreSQL that is an index condition on (tenant,
    object_type, object_id), the array being computed once; a plain IN (subquery) under an OR becomes
    a filter run over every event of the type in the tenant."""

    output_field = BooleanField()

    def as_sql(self, compiler, connection, **extra_context):
        column, subquery = self.get_source_expressions()
        column_sql, column_params = compiler.compile(column)
        subquery_sql, subquery_params = compiler.compile(subquery)
        return f"{column_sql} = ANY({subquery_sql})", (*column_params, *subquery_params)


def _object_id_in(subquery) -> Q:
    if connection.vendor == "postgresql":
        from django.contrib.postgres.expressions import ArraySubquery

        return Q(_EqualsAnyOf(F("object_id"), ArraySubquery(subquery)))
    return Q(object_id__in=subquery)


def _change_summary(before: Any, after: Any) -> list[dict[str, str]]:
    """The fields an event changed, as {"field", "before", "after"} (values shortened for a table);
    for a creation, the values set. At most _SUMMARY_FIELDS, then a "+N more" row."""
    before = before if isinstance(before, dict) else {}
    after = after if isinstance(after, dict) else {}
    changes = []
    for key in list(dict.fromkeys([*before, *after])):
        if key in _SUMMARY_SKIP or before.get(key) == after.get(key):
            continue
        old, new = before.get(key), after.get(key)
        if not before and new in (None, "", [], {}):
            continue  # a creation's empty fields say nothing
        changes.append({"field": key.removesuffix("_id"), "before": _short(old), "after": _short(new)})
    if len(changes) > _SUMMARY_FIELDS:
        extra = len(changes) - _SUMMARY_FIELDS
        changes = changes[:_SUMMARY_FIELDS] + [{"field": f"+{extra} more", "before": "", "after": ""}]
    return changes


def _short(value: Any) -> str:
    if value is None or value == "":
        return "—"
    text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return text if len(text) <= 60 else text[:59] + "…"


def account_audit_trail(account: Account, *, limit: int = AUDIT_TRAIL_SIZE) -> list[dict[str, Any]]:
    """The latest `limit` audit events on the account and on everything of it that is audited
    (touchpoints, contacts, decisions, journeys and their activities, obligations, evidence, audit
    results, survey responses, incidents), newest first, each with a before -> after summary.
    One query: an OR over (object_type, object_id) pairs whose ids come from subqueries casting the
    children's primary keys to text."""

    match = Q(object_type="accounts.account", object_id=str(account.pk))
    for object_type, (model_label, lookup) in _AUDITED_CHILDREN.items():
        match |= Q(object_type=object_type) & _object_id_in(_object_ids(model_label, lookup, account.pk))
    events = (
        AuditEvent.objects.filter(match)
        .order_by("-seq")
        .only("seq", "created_at", "actor_label", "action", "object_type", "object_id", "before", "after")[:limit]
    )
    return [
        {
            "event": event,
            "object_label": _OBJECT_LABELS.get(event.object_type, event.object_type),
            "changes": _change_summary(event.before, event.after),
        }
        for event in events
    ]


# --- Deleting an account ---------------------------------------------------------------------------
# Relations of an account that are not its history: who may work on it (guardian rows, rebuilt on
# reassignment) is access control, not a record of the client.
_NOT_HISTORY = frozenset({"user_permissions"})


def account_history(account: Account) -> list[str]:
    """The names of the account's relations that hold rows (touchpoints, contacts, health_snapshots,
    kpi_measurements, survey_responses, incidents, obligations, journeys, decisions...): anything a
    regulated record must keep. One query: an EXISTS per relation, found from the model so a new
    relation is covered without editing this list."""
    from django.db.models import Exists

    checks = {}
    for relation in Account._meta.related_objects:
        name = relation.get_accessor_name()
        if not relation.one_to_many or name in _NOT_HISTORY:
            continue
        rows = relation.related_model._default_manager.filter(**{relation.field.name: account.pk})
        checks[f"has_{name}"] = Exists(rows)  # prefixed: an annotation may not shadow the relation
    flags = Account.objects.filter(pk=account.pk).annotate(**checks).values(*checks).first() or {}
    return sorted(key.removeprefix("has_") for key, present in flags.items() if present)


def visible_contacts(user, membership: Membership | None = None) -> QuerySet[Contact]:
    """Contacts of the accounts in the user's book (an IN-subquery on visible_accounts)."""
    return Contact.objects.filter(account__in=visible_accounts(user, membership).values("pk"))


def visible_touchpoints(user, membership: Membership | None = None) -> QuerySet[Touchpoint]:
    """Touchpoints of the accounts in the user's book, author joined (an IN-subquery on visible_accounts)."""
    return Touchpoint.objects.filter(account__in=visible_accounts(user, membership).values("pk")).select_related(
        "author"
    )
