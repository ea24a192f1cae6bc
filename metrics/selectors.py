"""Reads of measurements and health snapshots, within the user's visible accounts."""

from __future__ import annotations

import datetime
from decimal import Decimal

from django.db.models import Avg, Count, F, FilteredRelation, Max, Q, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from accounts.models import Account
from accounts.selectors import visible_accounts
from compliance.models import ComplianceStatusSnapshot
from cs_platform.tenancy import context
from journeys.models import AccountJourney, Decision
from metrics.models import HealthSnapshot, Incident, KpiMeasurement, NightlyRun, RunStatus, SurveyResponse
from segments.health_model import (
    DECISION_WINDOW_DAYS,
    INCIDENT_WINDOW_DAYS,
    KPI_WINDOW_DAYS,
    SURVEY_WINDOW_DAYS,
    AccountInputs,
    KpiTarget,
    SurveyStats,
)
from segments.models import KpiDefinition, Segment


# --- The reference day of the pages ------------------------------------------------------------------
def health_as_of() -> datetime.date | None:
    """The newest nightly snapshot date of the tenant (one indexed query): every figure on a page
    is "as of the last nightly run", so today's page before tonight's run shows yesterday's state."""
    return HealthSnapshot.objects.aggregate(day=Max("snapshot_date"))["day"]


def on_day(relation: str, day: datetime.date | None) -> FilteredRelation:
    """An account's daily snapshot row (health or compliance) of `day`, as a LEFT JOIN. The join names
    the tenant too, so it runs on the (tenant, account, day) unique index: without it PostgreSQL
    reached each account's snapshots through the account index and read a year of rows per account."""
    return FilteredRelation(
        relation,
        condition=Q(
            **{
                f"{relation}__snapshot_date": day or datetime.date.min,
                f"{relation}__tenant_id": context.require_tenant_id(),
            }
        ),
    )


def _ago(day: datetime.date, days: int) -> datetime.date:
    return day - datetime.timedelta(days=days)


def health_inputs(
    *, day: datetime.date, account_ids: list[int] | None = None
) -> tuple[dict[int, tuple[int, AccountInputs]], dict[int, tuple[Decimal | None, Decimal | None]]]:
    """Everything the health measures need, for every account of the current tenant (or a chunk),
    in a fixed number of grouped queries whatever the number of accounts:

    1 accounts, 2 KPI definitions, 3 latest KPI value per account and KPI (window function),
    4 survey aggregates per account and type, 5 incidents of the window, 6 journeys,
    7 compliance snapshots of the day, 8 decision closure per account, 9 snapshots 7 and 30 days back.
    Returns ({account_id: (segment_id, AccountInputs)}, {account_id: (total 7 days ago, total 30 days ago)})."""
    scope = {} if account_ids is None else {"account_id__in": account_ids}
    accounts = Account.objects.all() if account_ids is None else Account.objects.filter(pk__in=account_ids)
    inputs: dict[int, tuple[int, AccountInputs]] = {}
    segment_codes = dict(Segment.objects.values_list("pk", "code"))
    for pk, segment_id, renewal in accounts.values_list("pk", "segment_id", "renewal_date"):
        inputs[pk] = (
            segment_id,
            AccountInputs(
                segment_code=segment_codes.get(segment_id, ""),
                days_to_renewal=None if renewal is None else (renewal - day).days,
            ),
        )

    targets = {
        k.pk: KpiTarget(
            code=k.code,
            name=k.name,
            comparator=k.comparator,
            direction=k.direction,
            low=None if k.target_low is None else float(k.target_low),
            high=None if k.target_high is None else float(k.target_high),
            target_text=k.target_text,
        )
        for k in KpiDefinition.objects.all()
    }
    latest = (
        KpiMeasurement.objects.filter(measured_on__lte=day, measured_on__gt=_ago(day, KPI_WINDOW_DAYS), **scope)
        .annotate(
            rank=Window(RowNumber(), partition_by=[F("account_id"), F("kpi_id")], order_by=F("measured_on").desc())
        )
        .filter(rank=1)
        .values_list("account_id", "kpi_id", "value")
    )
    for account_id, kpi_id, value in latest:
        if account_id in inputs and kpi_id in targets:
            inputs[account_id][1].kpis.append((targets[kpi_id], float(value)))

    surveys = (
        SurveyResponse.objects.filter(
            responded_on__lte=day, responded_on__gt=day - datetime.timedelta(days=SURVEY_WINDOW_DAYS), **scope
        )
        .values("account_id", "survey_type")
        .annotate(
            n=Count("id"),
            avg=Avg("score"),
            promoters=Count("id", filter=Q(score__gte=9)),
            detractors=Count("id", filter=Q(score__lte=6)),
        )
        .order_by()
    )
    for row in surveys:
        if row["account_id"] not in inputs:
            continue
        stats = SurveyStats(row["n"], float(row["avg"]), row["promoters"], row["detractors"])
        setattr(inputs[row["account_id"]][1], row["survey_type"], stats)

    since = timezone.make_aware(
        datetime.datetime.combine(day - datetime.timedelta(days=INCIDENT_WINDOW_DAYS), datetime.time())
    )
    until = timezone.make_aware(datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time()))
    incidents = Incident.objects.filter(opened_at__gte=since, opened_at__lt=until, **scope).values_list(
        "account_id", "escalated", "opened_at", "resolved_at"
    )
    for account_id, escalated, opened, resolved in incidents:
        if account_id not in inputs:
            continue
        account_inputs = inputs[account_id][1]
        account_inputs.escalations += 1 if escalated else 0
        if resolved is not None and resolved < until:
            account_inputs.resolved_hours.append((resolved - opened).total_seconds() / 3600.0)

    # The most recent journey of each account speaks for it.
    for account_id, status in (
        AccountJourney.objects.filter(started_on__lte=day, **scope)
        .order_by("account_id", "started_on", "id")
        .values_list("account_id", "status")
    ):
        if account_id in inputs:
            inputs[account_id][1].journey_status = status

    for account_id, status in ComplianceStatusSnapshot.objects.filter(snapshot_date=day, **scope).values_list(
        "account_id", "status"
    ):
        if account_id in inputs:
            inputs[account_id][1].compliance_status = status

    closed = Q(status__in=("resolved", "fallback"), resolved_at__isnull=False)
    decisions = (
        Decision.objects.filter(due_date__lte=day, due_date__gt=_ago(day, DECISION_WINDOW_DAYS), **scope)
        .values("account_id")
        .annotate(due=Count("id"), on_time=Count("id", filter=closed & Q(resolved_at__date__lte=F("due_date"))))
        .order_by()
    )
    for row in decisions:
        if row["account_id"] in inputs:
            inputs[row["account_id"]][1].decisions_due = row["due"]
            inputs[row["account_id"]][1].decisions_closed_on_time = row["on_time"]

    back_7, back_30 = day - datetime.timedelta(days=7), day - datetime.timedelta(days=30)
    previous: dict[int, tuple[Decimal | None, Decimal | None]] = {}
    for account_id, snapshot_date, total in HealthSnapshot.objects.filter(
        snapshot_date__in=(back_7, back_30), **scope
    ).values_list("account_id", "snapshot_date", "total"):
        seven, thirty = previous.get(account_id, (None, None))
        previous[account_id] = (total, thirty) if snapshot_date == back_7 else (seven, total)
    return inputs, previous


def nightly_runs(*, limit: int = 60):
    """The tenant's recent nightly runs, newest first (one query). For tenant admins. Each run carries
    `stuck`: running, but its heartbeat is older than NIGHTLY_STALE_SECONDS (the watchdog will fail it)."""
    now = timezone.now()
    runs = list(NightlyRun.objects.order_by("-run_date")[:limit])
    for run in runs:
        run.stuck = run.is_stale(now)
    return runs


def nightly_run_attention(runs=None):
    """The tenant's latest nightly run if an admin must see it: failed, or stuck (running without a
    heartbeat), else None. The pages then say so plainly instead of showing the last completed run's
    figures as if current. `runs`: nightly_runs() already read (no query), else one query."""
    if runs is not None:
        latest = runs[0] if runs else None
    else:
        latest = NightlyRun.objects.order_by("-run_date").first()
        if latest is not None:
            latest.stuck = latest.is_stale(timezone.now())
    if latest is None or not (latest.status == RunStatus.FAILED or latest.stuck):
        return None
    return latest


# --- API v1 (issue #5): every query goes through the caller's book -------------------------------------
def _book(user, membership):
    return visible_accounts(user, membership)


def measurements_visible(user, membership):
    """KPI measurements of the accounts `user` may see, with the KPI joined (its code is in each row)."""
    return KpiMeasurement.objects.filter(account__in=_book(user, membership)).select_related("kpi")


def surveys_visible(user, membership):
    """Survey responses of the accounts `user` may see."""
    return SurveyResponse.objects.filter(account__in=_book(user, membership))


def incidents_visible(user, membership):
    """Incidents of the accounts `user` may see."""
    return Incident.objects.filter(account__in=_book(user, membership))


def health_history(user, membership):
    """Every daily health snapshot of the accounts `user` may see (filtered and paginated by the caller)."""
    return HealthSnapshot.objects.filter(account__in=_book(user, membership))


def health_latest(user, membership):
    """The latest snapshot of each visible account: the snapshots of the tenant's newest nightly date
    (health_as_of: every page is "as of the last nightly run", and the nightly scores
    every account), on the (tenant, day, band) index. An account created since that run has no row yet.
    One aggregate query for the date, then one query for the page."""
    day = health_as_of()
    if day is None:
        return HealthSnapshot.objects.none()
    return health_history(user, membership).filter(snapshot_date=day)


def kpi_names() -> dict[str, str]:
    """{KPI code: name} of the current tenant, for describing snapshot components (one query)."""
    return dict(KpiDefinition.objects.values_list("code", "name"))
