"""Reads behind the account 360 page: the account with its contacts, KPI table, health and its trend,
decisions, journeys, obligations, timeline and audit trail, in a fixed number of queries whatever the
size of the tenant or of the account. The page joins every domain app's data about one account, so it
lives here, above them (README, "Architecture")."""

from __future__ import annotations

import datetime
from typing import Any

from django.db import connection
from django.db.models import (
    CharField,
    DateTimeField,
    F,
    IntegerField,
    OuterRef,
    Subquery,
    Value,
)
from django.db.models.functions import Cast, Coalesce, Concat, NullIf, Trim

from accounts.models import Account, Touchpoint, TouchpointKind
from accounts.selectors import account_audit_trail, account_contacts, account_detail
from compliance.models import AuditResult, Evidence, Obligation
from cs_platform.audit.models import AuditEvent
from cs_platform.tenancy.models import Membership
from journeys.selectors import account_decisions, account_journeys
from metrics.models import HealthSnapshot, Incident, KpiMeasurement, SurveyResponse, SurveyType
from segments.health_model import (
    KPI_WINDOW_DAYS,  # the page shows the KPIs as the health score reads them
    KpiTarget,
    describe,
    kpi_met,
)
from segments.models import KpiDefinition

TIMELINE_SIZE = 50


def _plain_number(value) -> str:
    """4.5000 -> "4.5", 100.0000 -> "100": a measurement as people write it."""
    return format(value.normalize(), "f") if value is not None else ""


def account_kpis(account: Account, *, today: datetime.date) -> list[dict[str, Any]]:
    """Every KPI definition of the account's segment with its latest value on or before `today` (and
    the date), the value before it, the trend between them and whether the latest meets the target
    (segments.health_model.kpi_met, as the nightly score judges it). A latest value older than 120 days is
    "no data". One query: the definitions, each with four correlated LIMIT 1 look-ups on the
    (tenant, account, kpi, measured_on) unique index."""

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

    return Subquery(
        AuditEvent.objects.filter(
            object_type=object_type, object_id=Cast(OuterRef("pk"), output_field=CharField()), action=action
        )
        .order_by("seq")
        .values("actor_label")[:1]
    )


def _timeline_label(source: str, code: str) -> str:

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
