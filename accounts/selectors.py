"""Reads of client accounts. visible_accounts() is the one place that decides whose book is whose."""

from __future__ import annotations

import datetime
import functools
from typing import Any

from django.db import connection
from django.db.models import (
    BooleanField,
    CharField,
    DateTimeField,
    F,
    Func,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Cast, Coalesce, Concat, NullIf, Trim

from accounts.models import Account, AccountUserObjectPermission, Contact, Touchpoint, TouchpointKind
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
KPI_WINDOW_DAYS = 120  # as the nightly health: the latest value within this window counts
TIMELINE_SIZE = 50
AUDIT_TRAIL_SIZE = 50


def _plain_number(value) -> str:
    """4.5000 -> "4.5", 100.0000 -> "100": a measurement as people write it."""
    return format(value.normalize(), "f") if value is not None else ""


def account_kpis(account: Account, *, today: datetime.date) -> list[dict[str, Any]]:
    """Every KPI definition of the account's segment with its latest value on or before `today` (and
    the date), the value before it, the trend between them and whether the latest meets the target
    (metrics.scoring.kpi_met, as the nightly score judges it). A latest value older than 120 days is
    "no data". One query: the definitions, each with four correlated LIMIT 1 look-ups on the
    (tenant, account, kpi, measured_on) unique index."""
    from metrics.models import KpiMeasurement
    from metrics.scoring import KpiTarget, kpi_met
    from segments.models import KpiDefinition

    values = KpiMeasurement.objects.filter(
        account_id=account.pk, kpi_id=OuterRef("pk"), measured_on__lte=today
    ).order_by("-measured_on")
    definitions = (
        KpiDefinition.objects.filter(segment_id=account.segment_id)
        .annotate(
            latest_value=Subquery(values.values("value")[:1]),
            latest_on=Subquery(values.values("measured_on")[:1]),
            previous_value=Subquery(values.values("value")[1:2]),
            previous_on=Subquery(values.values("measured_on")[1:2]),
        )
        .order_by("sort_order", "name")
    )
    since = today - datetime.timedelta(days=KPI_WINDOW_DAYS)
    rows = []
    for kpi in definitions:
        target = KpiTarget(
            code=kpi.code,
            name=kpi.name,
            comparator=kpi.comparator,
            direction=kpi.direction,
            low=None if kpi.target_low is None else float(kpi.target_low),
            high=None if kpi.target_high is None else float(kpi.target_high),
            target_text=kpi.target_text,
        )
        fresh = kpi.latest_on is not None and kpi.latest_on > since
        latest = float(kpi.latest_value) if fresh else None
        previous = float(kpi.previous_value) if fresh and kpi.previous_value is not None else None
        trend = None
        if latest is not None and previous is not None:
            trend = "up" if latest > previous else "down" if latest < previous else "flat"
        better = None
        if trend in ("up", "down"):
            better = (trend == "up") == (kpi.direction == "higher")
        rows.append(
            {
                "kpi": kpi,
                "target": target,
                "latest": latest,
                "latest_on": kpi.latest_on if fresh else None,
                "latest_text": _plain_number(kpi.latest_value) if fresh else "",
                "previous_text": _plain_number(kpi.previous_value) if previous is not None else "",
                "stale_on": kpi.latest_on if not fresh else None,
                "previous": previous,
                "previous_on": kpi.previous_on if previous is not None else None,
                "trend": trend,
                "better": better,
                "state": "no_data" if latest is None else "met" if kpi_met(target, latest) else "missed",
            }
        )
    return rows


def account_health(account: Account, *, kpi_names: dict[str, str], days: int = 90) -> tuple[dict | None, dict]:
    """The latest health snapshot of an account already read through visible_accounts, described for
    a reader ("why is it red"), and the `days` up to it as plain lists for the chart and its table:
    {"dates", "totals", "bands"}. Two queries (snapshot, trend; the trend is skipped when the account
    was never scored). They filter by the account's id alone: going through visible_accounts again
    would cost a CSM's book one more query each. KPI names come from the caller's KPI table."""
    from metrics.models import HealthSnapshot
    from metrics.scoring import describe

    trend: dict[str, list] = {"dates": [], "totals": [], "bands": []}
    snapshot = HealthSnapshot.objects.filter(account_id=account.pk).order_by("-snapshot_date").first()
    if snapshot is None:
        return None, trend
    health = {"snapshot": snapshot, "components": describe(snapshot.components, kpi_names=kpi_names)}
    since = snapshot.snapshot_date - datetime.timedelta(days=days)
    for day, total, band in (
        HealthSnapshot.objects.filter(account_id=account.pk, snapshot_date__gt=since)
        .filter(snapshot_date__lte=snapshot.snapshot_date)
        .order_by("snapshot_date")
        .values_list("snapshot_date", "total", "band")
    ):
        trend["dates"].append(day.isoformat())
        trend["totals"].append(float(total))
        trend["bands"].append(band)
    return health, trend


OBLIGATION_BADGES = {
    "compliant": "green",
    "expiring": "yellow",
    "overdue": "red",
    "failed": "red",
    "not_started": "grey",
}


def account_obligations(account: Account) -> list[dict[str, Any]]:
    """The account's compliance obligations by due date, requirement and framework joined, with the
    latest audit result (correlated LIMIT 1 on the (tenant, obligation, audited_on) index) and every
    evidence file. Two queries: obligations, evidence of the account's obligations."""
    from compliance.models import AuditResult, Evidence, Obligation

    audits = AuditResult.objects.filter(obligation_id=OuterRef("pk")).order_by("-audited_on", "-pk")
    obligations = list(
        Obligation.objects.filter(account_id=account.pk)
        .select_related("requirement__framework")
        .annotate(
            audit_outcome=Subquery(audits.values("outcome")[:1]),
            audited_on=Subquery(audits.values("audited_on")[:1]),
            audit_findings=Subquery(audits.values("open_findings")[:1]),
        )
        .order_by("due_date", "pk")
    )
    evidence: dict[int, list] = {}
    for item in Evidence.objects.filter(obligation__account_id=account.pk).order_by("-valid_until", "-pk"):
        evidence.setdefault(item.obligation_id, []).append(item)
    return [
        {"obligation": o, "badge": OBLIGATION_BADGES.get(o.status, "grey"), "evidence": evidence.get(o.pk, [])}
        for o in obligations
    ]


def _author_of(object_type: str, action: str) -> Subquery:
    """Who recorded a row, from the audit event its service wrote (index (tenant, object_type, object_id))."""
    from cs_platform.audit.models import AuditEvent

    return Subquery(
        AuditEvent.objects.filter(
            object_type=object_type, object_id=Cast(OuterRef("pk"), output_field=CharField()), action=action
        )
        .order_by("seq")
        .values("actor_label")[:1]
    )


def _timeline_label(source: str, code: str) -> str:
    from metrics.models import SurveyType

    if source == "touchpoint":
        return TouchpointKind(code).label if code in TouchpointKind.values else code
    if source == "survey":
        return f"{SurveyType(code).name if code in SurveyType.values else code.upper()} survey"
    return "Incident opened" if source == "incident_opened" else "Incident resolved"


def account_timeline(account: Account, *, before: datetime.datetime | None = None) -> dict[str, Any]:
    """Touchpoints, incidents (opened, and resolved) and survey responses of one account merged newest
    first: the TIMELINE_SIZE latest strictly before `before` (or all), each as {"source", "code", "at",
    "title", "score", "note", "author", "pk"}; `older` is the cursor for the next page, or None.
    One query: a UNION ALL of the four kinds, each part ordered and limited on its (tenant, account,
    time) index where the database allows it. A touchpoint's author is its author; an incident's or a
    survey's is the actor of the audit event that recorded it."""
    from metrics.models import Incident, SurveyResponse

    text, number, moment = CharField(), IntegerField(), DateTimeField()
    parts = [
        Touchpoint.objects.filter(account_id=account.pk).annotate(
            tl_source=Value("touchpoint", text),
            tl_code=F("kind"),
            tl_at=F("occurred_at"),
            tl_title=F("subject"),
            tl_score=Cast(Value(None), number),
            tl_note=F("notes"),
            tl_author=Coalesce(
                NullIf(
                    Trim(Concat("author__first_name", Value(" "), "author__last_name", output_field=text)), Value("")
                ),
                "author__username",
                output_field=text,
            ),
        ),
        Incident.objects.filter(account_id=account.pk).annotate(
            tl_source=Value("incident_opened", text),
            tl_code=F("severity"),
            tl_at=F("opened_at"),
            tl_title=F("title"),
            tl_score=Cast(Value(None), number),
            tl_note=F("external_ref"),
            tl_author=_author_of("metrics.incident", "incident.open"),
        ),
        Incident.objects.filter(account_id=account.pk, resolved_at__isnull=False).annotate(
            tl_source=Value("incident_resolved", text),
            tl_code=F("severity"),
            tl_at=F("resolved_at"),
            tl_title=F("title"),
            tl_score=Cast(Value(None), number),
            tl_note=F("external_ref"),
            tl_author=_author_of("metrics.incident", "incident.resolve"),
        ),
        SurveyResponse.objects.filter(account_id=account.pk).annotate(
            tl_source=Value("survey", text),
            tl_code=F("survey_type"),
            tl_at=Cast("responded_on", moment),
            tl_title=Value("", text),
            tl_score=Cast("score", number),
            tl_note=F("comment"),
            tl_author=_author_of("metrics.surveyresponse", "survey_response.create"),
        ),
    ]
    columns = ("source", "code", "at", "title", "score", "note", "author", "pk")
    limited = connection.features.supports_slicing_ordering_in_compound
    queries = []
    for part in parts:
        part = part.annotate(tl_pk=F("pk"))
        if before is not None:
            part = part.filter(tl_at__lt=before)
        part = part.values_list(*(f"tl_{c}" for c in columns))
        queries.append(part.order_by("-tl_at")[: TIMELINE_SIZE + 1] if limited else part.order_by())
    merged = queries[0].union(*queries[1:], all=True).order_by("-tl_at", "-tl_pk")[: TIMELINE_SIZE + 1]
    rows = [dict(zip(columns, row, strict=True)) for row in merged]
    for row in rows:
        row["label"] = _timeline_label(row["source"], row["code"])
    older = rows[TIMELINE_SIZE - 1]["at"] if len(rows) > TIMELINE_SIZE else None
    return {"rows": rows[:TIMELINE_SIZE], "older": older}


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
    from cs_platform.audit.models import AuditEvent

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


def account_360(
    user,
    account_id: int,
    *,
    membership: Membership | None,
    today: datetime.date,
    timeline_before: datetime.datetime | None = None,
) -> dict[str, Any] | None:
    """Everything the account page shows, or None when the account is not in the user's book (or
    not in the tenant). A fixed number of queries whatever the size of the tenant or of the account:
    the account through visible_accounts, segment and owner joined (for a CSM or a manager, one more
    before it: the ids of their book); then contacts, KPI table, latest health snapshot, its 90-day
    trend (skipped when never scored), decisions, journeys, their phases, their activities,
    obligations with latest audit, evidence, timeline, audit trail. Everything after the account
    reads by its id: the account read is the visibility check."""
    from journeys.selectors import account_decisions, account_journeys

    account = account_detail(user, account_id, membership)
    if account is None:
        return None
    contacts = account_contacts(account)
    kpis = account_kpis(account, today=today)
    health, trend = account_health(account, kpi_names={row["kpi"].code: row["kpi"].name for row in kpis})
    decisions = account_decisions(account, today=today)
    return {
        "account": account,
        "days_to_renewal": (account.renewal_date - today).days if account.renewal_date else None,
        "days_since_renewal": (today - account.renewal_date).days if account.renewal_date else None,
        "contacts": contacts,
        "primary_contacts": [c for c in contacts if c.is_primary or c.is_executive_sponsor],
        "kpis": kpis,
        "health": health,
        "trend": trend,
        "trend_rows": list(zip(trend["dates"], trend["totals"], trend["bands"], strict=True)),
        "decisions": decisions,
        "journeys": account_journeys(account, today=today, open_late_decisions=decisions["open_late"]),
        "obligations": account_obligations(account),
        "timeline": account_timeline(account, before=timeline_before),
        "audit_trail": account_audit_trail(account),
    }


# --- REST API (accounts.api) ---------------------------------------------------------------------------
# Relations of an account that are not its history: who may work on it (guardian rows, rebuilt on
# reassignment) is access control, not a record of the client.
_NOT_HISTORY = frozenset({"user_permissions"})


def api_account_keys(accounts: QuerySet[Account], *, as_of: datetime.date | None) -> QuerySet[Account]:
    """The visible `accounts` as the API list pages them: no join, so `ORDER BY name, id LIMIT n` runs
    on the (tenant, name) index and reads n rows. Joined and sorted first, the same page cost
    PostgreSQL every account of a 10,000-account tenant: Row-Level Security hides the row count from
    the planner, which then estimates ~1% of it and sorts after the joins.
    `h` (the health snapshot of `as_of`, dashboards.selectors.on_day) joins only when a filter uses it;
    `renewal_key` is renewal_date with "no date" sorting last, so cursor pagination can order by it
    (a NULL position cannot be compared)."""
    from dashboards.selectors import on_day

    return accounts.annotate(
        h=on_day("health_snapshots", as_of), renewal_key=Coalesce("renewal_date", Value(datetime.date.max))
    )


def api_account_rows(accounts: QuerySet[Account], *, as_of: datetime.date | None) -> QuerySet[Account]:
    """The `accounts` with segment code and owner CSM e-mail joined and the health of the tenant's latest nightly
    run (`as_of`: dashboards.selectors.health_as_of) as ONE LEFT JOIN on the (tenant, account, day)
    unique index: annotations health_score, health_band, health_as_of (None when the account was not
    scored that night). One query. The list reads a page's rows with it by id, after paging on
    api_account_keys; a single account (retrieve, write answers) reads through it directly."""
    # Columns rather than select_related: a page builds 100 Account objects, not 300 model instances.
    return api_account_keys(accounts, as_of=as_of).annotate(
        segment_code=F("segment__code"),
        owner_csm_email=F("owner_csm__email"),
        health_score=F("h__total"),
        health_band=F("h__band"),
        health_as_of=F("h__snapshot_date"),
    )


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
