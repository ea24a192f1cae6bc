"""Reads behind the home pages, the account list, the portfolio and the per-segment scorecards.

Everything is aggregated over `accounts`, the user's `visible_accounts(user, membership)` computed
once by the view, so a CSM's portfolio is their book and an executive's is the tenant. Each selector
names its queries; none runs a query per account, so page query counts do not grow with the book
(tests/dashboards assert them)."""

from __future__ import annotations

import dataclasses
import datetime
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import (
    Case,
    Count,
    DecimalField,
    F,
    IntegerField,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from accounts.models import Account, LifecycleStage, Touchpoint
from compliance.models import AuditOutcome, AuditResult
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Membership
from cs_platform.tenancy.policy import Capability, member_can
from cs_platform.tenancy.selectors import team_user_ids
from dashboards.models import SegmentSnapshot
from journeys.models import ActivityStatus, Decision, JourneyActivity
from journeys.selectors import OPEN_STATUSES
from metrics.models import HealthBand, HealthSnapshot, SurveyResponse
from metrics.selectors import on_day
from segments.health_model import KPI_WINDOW_DAYS, KpiTarget, kpi_met, nps_from_counts
from segments.models import KpiDefinition, Segment

BANDS = ("red", "yellow", "grey", "green")  # worst first: the order of risk
AT_RISK_BANDS = ("red", "yellow")  # the account list's band=at_risk, the weekly email's renewals at risk
TREND_DAYS = 90
TREND_STEP_DAYS = 7  # band trend points: weekly, so 90 days cost 13 snapshot dates, not 90
SURVEY_DAYS = 90
AUDIT_DAYS = 365
RENEWAL_DAYS = 90
KPI_TREND_BUCKETS = 3  # three 30-day windows make the KPI trend
RENEWAL_WINDOWS = {"overdue": (None, 0), "30": (0, 30), "60": (0, 60), "90": (0, 90), "180": (0, 180)}


# --- Account rows (home book, account list, segment drill-down) ------------------------------------------
_RISK = Case(
    *(When(h__band=band, then=Value(rank)) for rank, band in enumerate(BANDS)),
    default=Value(len(BANDS)),  # never scored: after green, they are not known to be at risk
    output_field=IntegerField(),
)


def account_rows(accounts: QuerySet[Account], *, as_of: datetime.date | None) -> QuerySet[Account]:
    """The visible `accounts` with segment, owner CSM, the health of `as_of` (total, band, 30-day change)
    and the compliance status of that day joined in: one query, whatever the page sorts by.
    Annotations: health_total, health_band, health_change_30d, compliance, risk (0 = red)."""
    return (
        accounts.select_related("segment", "owner_csm")
        .annotate(h=on_day("health_snapshots", as_of), c=on_day("compliance_snapshots", as_of))
        .annotate(
            health_total=F("h__total"),
            health_band=F("h__band"),
            health_change_30d=F("h__change_30d"),
            compliance=F("c__status"),
            risk=_RISK,
        )
    )


# Sort keys of the account list; each maps to columns (ties broken by name so pages are stable).
ACCOUNT_SORTS: dict[str, tuple[str, ...]] = {
    "risk": ("risk", "health_change_30d", "health_total", "name"),
    "name": ("name",),
    "segment": ("segment__sort_order", "name"),
    "arr": ("arr", "name"),
    "renewal": ("renewal_date", "name"),
    "health": ("health_total", "name"),
    "owner": ("owner_csm__last_name", "owner_csm__first_name", "name"),
    "compliance": ("compliance", "name"),
}


def filter_accounts(rows: QuerySet[Account], filters: dict[str, str], *, today: datetime.date) -> QuerySet[Account]:
    """Apply the account list's filters (already whitelisted by cs_platform.listing.list_params):
    segment (code), band (or "at_risk": red or yellow; "none": not scored), owner (user id, or "none"),
    renewal window, compliance status, q (name)."""
    if "segment" in filters:
        rows = rows.filter(segment__code=filters["segment"])
    if "band" in filters:
        band = filters["band"]
        if band == "none":
            rows = rows.filter(h__band__isnull=True)
        else:
            rows = rows.filter(h__band__in=AT_RISK_BANDS) if band == "at_risk" else rows.filter(h__band=band)
    if "owner" in filters:
        owner = filters["owner"]
        rows = rows.filter(owner_csm__isnull=True) if owner == "none" else rows.filter(owner_csm_id=int(owner))
    if "renewal" in filters:
        low, high = RENEWAL_WINDOWS[filters["renewal"]]
        if low is None:
            rows = rows.filter(renewal_date__lt=today)
        else:
            rows = rows.filter(
                renewal_date__gte=today + datetime.timedelta(days=low),
                renewal_date__lte=today + datetime.timedelta(days=high),
            )
    if "compliance" in filters:
        rows = rows.filter(c__status=filters["compliance"])
    if "q" in filters:
        rows = rows.filter(name__icontains=filters["q"])
    return rows


def list_filter_choices(accounts: QuerySet[Account]) -> dict[str, list[tuple[str, str]]]:
    """Choices for the account list's filter form: segments (one query) and the owners that appear
    in the visible `accounts` (one query)."""
    segments = [(code, name) for code, name in Segment.objects.order_by("sort_order").values_list("code", "name")]
    owners = (
        accounts.filter(owner_csm__isnull=False)
        .values_list("owner_csm_id", "owner_csm__first_name", "owner_csm__last_name", "owner_csm__username")
        .distinct()
        .order_by("owner_csm__last_name", "owner_csm__first_name")
    )
    return {
        "segment": segments,
        "owner": [(str(pk), f"{first} {last}".strip() or username) for pk, first, last, username in owners],
    }


# --- Home: the CSM's day --------------------------------------------------------------------------------
def book_band_counts(rows: QuerySet[Account]) -> dict[str, int]:
    """{band: accounts} over a book, "none" for never scored (one grouped query)."""
    counts = {band: 0 for band in (*BANDS, "none")}
    for band, n in rows.order_by().values_list("health_band").annotate(n=Count("id")):
        counts[band or "none"] += n
    return counts


def renewals_due(rows: QuerySet[Account], *, today: datetime.date, days: int = RENEWAL_DAYS, limit: int = 20):
    """Accounts renewing within `days`, soonest first, with their health (one query)."""
    return list(
        rows.filter(renewal_date__gte=today, renewal_date__lte=today + datetime.timedelta(days=days)).order_by(
            "renewal_date", "name"
        )[:limit]
    )


def overdue_activities(accounts: QuerySet[Account], *, today: datetime.date, limit: int = 20) -> dict[str, Any]:
    """Journey activities past due and not done on the visible `accounts`, oldest first: the first `limit`
    (one query) and how many there are (one query)."""

    overdue = JourneyActivity.objects.filter(journey__account__in=accounts, due_on__lt=today).exclude(
        status=ActivityStatus.DONE
    )
    items = list(
        overdue.select_related("journey__account", "activity__phase").order_by("due_on", "journey__account__name")[
            :limit
        ]
    )
    return {"items": items, "total": overdue.count()}


def overdue_decisions(accounts: QuerySet[Account], *, today: datetime.date, limit: int = 20) -> dict[str, Any]:
    """Open or escalated decisions and blockers on the visible `accounts` past their due date, oldest
    first: the first `limit` with owner and account (one query) and how many there are (one query)."""

    decisions = Decision.objects.filter(account__in=accounts, status__in=OPEN_STATUSES, due_date__lt=today)
    items = list(decisions.select_related("account", "owner", "escalated_to").order_by("due_date", "pk")[:limit])
    return {"items": items, "total": decisions.count()}


def recent_touchpoints(accounts: QuerySet[Account], *, limit: int = 10) -> list[Touchpoint]:
    """The latest touchpoints on the visible `accounts` with account and author (one query)."""
    return list(
        Touchpoint.objects.filter(account__in=accounts)
        .select_related("account", "author")
        .order_by("-occurred_at")[:limit]
    )


@dataclass
class CsmLoad:
    user_id: int
    name: str
    role: str
    accounts: int = 0
    arr: Decimal = Decimal(0)
    bands: dict[str, int] = field(default_factory=lambda: {band: 0 for band in (*BANDS, "none")})
    overdue_activities: int = 0
    open_decisions: int = 0
    overdue_decisions: int = 0


def team_load(membership: Membership, *, as_of: datetime.date | None, today: datetime.date) -> list[CsmLoad]:
    """A manager's team, one row per member: accounts they own, ARR, accounts per health band,
    overdue journey activities and open/overdue decisions they own. Four queries whatever the team
    or book size: members, accounts grouped by owner and band, activities grouped by owner,
    decisions grouped by owner."""

    team = team_user_ids(membership)
    members = (
        Membership.objects.filter(user_id__in=team, is_active=True)
        .select_related("user")
        .order_by("user__last_name", "user__first_name")
    )
    loads = {
        m.user_id: CsmLoad(user_id=m.user_id, name=m.user.get_full_name() or m.user.username, role=m.get_role_display())
        for m in members
    }
    owned = (
        Account.objects.filter(owner_csm_id__in=loads)
        .annotate(h=on_day("health_snapshots", as_of))
        .values_list("owner_csm_id", "h__band")
        .annotate(n=Count("id"), arr_sum=Coalesce(Sum("arr"), Value(Decimal(0)), output_field=DecimalField()))
        .order_by()
    )
    for owner_id, band, n, arr in owned:
        load = loads[owner_id]
        load.accounts += n
        load.arr += arr
        load.bands[band or "none"] += n
    activities = (
        JourneyActivity.objects.filter(journey__account__owner_csm_id__in=loads, due_on__lt=today)
        .exclude(status=ActivityStatus.DONE)
        .values_list("journey__account__owner_csm_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    for owner_id, n in activities:
        loads[owner_id].overdue_activities = n
    decisions = (
        Decision.objects.filter(owner_id__in=loads, status__in=OPEN_STATUSES)
        .values_list("owner_id")
        .annotate(n=Count("id"), late=Count("id", filter=Q(due_date__lt=today)))
        .order_by()
    )
    for owner_id, n, late in decisions:
        loads[owner_id].open_decisions = n
        loads[owner_id].overdue_decisions = late
    return list(loads.values())


# --- Portfolio and segment scorecards -----------------------------------------------------------------------
@dataclass
class KpiRow:
    kpi_id: int
    code: str
    name: str
    unit: str
    target_text: str
    direction: str
    accounts: int = 0  # accounts with a value in the window
    actual: float | None = None  # mean of each account's latest value
    met: bool | None = None  # the mean judged against the target
    on_target: int = 0  # accounts whose own latest value meets the target
    trend: list[float | None] = field(default_factory=list)  # mean per 30-day window, oldest first

    @property
    def off_target(self) -> int:
        return self.accounts - self.on_target

    @property
    def attainment(self) -> float | None:
        """Share of reporting accounts on target, in %."""
        return None if not self.accounts else round(self.on_target * 100.0 / self.accounts, 1)

    @property
    def trend_word(self) -> str:
        points = [p for p in self.trend if p is not None]
        if len(points) < 2 or points[-1] == points[0]:
            return "flat"
        rising = points[-1] > points[0]
        better = rising if self.direction == "higher" else not rising
        return f"{'up' if rising else 'down'} ({'better' if better else 'worse'})"


@dataclass
class SegmentSummary:
    segment_id: int
    code: str
    name: str
    accounts: int = 0
    arr: Decimal = Decimal(0)
    churned: int = 0
    churned_arr: Decimal = Decimal(0)
    renewing_90d: int = 0
    bands: dict[str, int] = field(default_factory=lambda: {band: 0 for band in (*BANDS, "none")})
    avg_health: float | None = None
    nps: float | None = None
    nps_responses: int = 0
    csat: float | None = None
    csat_responses: int = 0
    audits: int = 0
    audits_passed: int = 0
    kpis: list[KpiRow] = field(default_factory=list)

    @property
    def retention(self) -> float | None:
        return None if not self.accounts else round((self.accounts - self.churned) * 100.0 / self.accounts, 1)

    @property
    def churn(self) -> float | None:
        return None if not self.accounts else round(self.churned * 100.0 / self.accounts, 1)

    @property
    def arr_retention(self) -> float | None:
        return None if not self.arr else round(float((self.arr - self.churned_arr) * 100 / self.arr), 1)

    @property
    def audit_pass_rate(self) -> float | None:
        return None if not self.audits else round(self.audits_passed * 100.0 / self.audits, 1)

    @property
    def kpis_met(self) -> int:
        return sum(1 for k in self.kpis if k.met)

    @property
    def kpis_reporting(self) -> int:
        return sum(1 for k in self.kpis if k.met is not None)


def _visible_sql(accounts: QuerySet[Account], segment_id: int | None) -> tuple[str, tuple]:
    """SQL and params selecting the ids of the visible accounts (optionally of one segment), to embed
    in hand-written aggregate queries: the same rule as every other page, compiled by the ORM."""
    if segment_id is not None:
        accounts = accounts.filter(segment_id=segment_id)
    return accounts.order_by().values("pk").query.sql_with_params()


def _kpi_figures(
    accounts: QuerySet[Account], *, as_of: datetime.date, segment_id: int | None
) -> tuple[dict[int, tuple[int, float, int]], dict[int, list[tuple[datetime.date, int, float]]]]:
    """Two queries. (1) Per KPI: accounts reporting, mean of each account's latest value in the KPI
    window, and accounts whose latest value meets the target (the same rule as
    segments.health_model.kpi_met, in SQL). (2) Per KPI and day of the last 90 days: measurements and their
    sum, which the caller folds into 30-day means (a handful of rows per KPI, whatever the accounts)."""
    try:
        visible, params = _visible_sql(accounts, segment_id)
    except EmptyResultSet:
        return {}, {}  # an empty book (a CSM with no account yet) compiles to no SQL: nothing to read
    tenant_id = context.require_tenant_id()
    since = as_of - datetime.timedelta(days=KPI_WINDOW_DAYS)
    window = "m.tenant_id = %s AND m.measured_on > %s AND m.measured_on <= %s AND m.account_id IN"
    if connection.vendor == "postgresql":
        # DISTINCT ON reads each (account, KPI)'s newest row in one sorted pass; MATERIALIZED keeps the
        # planner from re-running it per KPI definition (it guessed one definition, not sixteen).
        latest = f"""
            WITH latest AS MATERIALIZED (
                SELECT DISTINCT ON (m.account_id, m.kpi_id) m.kpi_id, m.value
                FROM metrics_kpimeasurement m WHERE {window} ({visible})
                ORDER BY m.account_id, m.kpi_id, m.measured_on DESC
            )"""  # noqa: S608
        newest = "TRUE"
    else:
        latest = f"""
            WITH latest AS (
                SELECT m.kpi_id, m.value,
                       ROW_NUMBER() OVER (PARTITION BY m.account_id, m.kpi_id ORDER BY m.measured_on DESC) AS rn
                FROM metrics_kpimeasurement m WHERE {window} ({visible})
            )"""  # noqa: S608
        newest = "l.rn = 1"
    latest_sql = f"""{latest}
        SELECT l.kpi_id, COUNT(*), AVG(l.value),
               SUM(CASE WHEN (k.comparator = 'lt' AND l.value < k.target_high)
                          OR (k.comparator <> 'lt' AND l.value >= k.target_low) THEN 1 ELSE 0 END)
        FROM latest l JOIN segments_kpidefinition k ON k.id = l.kpi_id AND k.tenant_id = %s
        WHERE {newest}
        GROUP BY l.kpi_id
    """  # noqa: S608 - `visible` is ORM-compiled SQL with its own params
    trend_sql = f"""
        SELECT m.kpi_id, m.measured_on, COUNT(*), SUM(m.value)
        FROM metrics_kpimeasurement m
        WHERE m.tenant_id = %s AND m.measured_on > %s AND m.measured_on <= %s AND m.account_id IN ({visible})
        GROUP BY m.kpi_id, m.measured_on
    """  # noqa: S608
    trend_since = as_of - datetime.timedelta(days=30 * KPI_TREND_BUCKETS)
    with connection.cursor() as cursor:
        cursor.execute(latest_sql, (tenant_id, since, as_of, *params, tenant_id))
        latest = {kpi_id: (n, float(avg), int(met or 0)) for kpi_id, n, avg, met in cursor.fetchall()}
        cursor.execute(trend_sql, (tenant_id, trend_since, as_of, *params))
        by_day: dict[int, list[tuple[datetime.date, int, float]]] = defaultdict(list)
        for kpi_id, day, n, total in cursor.fetchall():
            if isinstance(day, str):  # SQLite hands dates back as text in raw queries
                day = datetime.date.fromisoformat(day)
            by_day[kpi_id].append((day, n, float(total)))
    return latest, by_day


def _kpi_trend(points: list[tuple[datetime.date, int, float]], *, as_of: datetime.date) -> list[float | None]:
    sums = [[0, 0.0] for _ in range(KPI_TREND_BUCKETS)]
    for day, n, total in points:
        bucket = KPI_TREND_BUCKETS - 1 - min((as_of - day).days // 30, KPI_TREND_BUCKETS - 1)
        sums[bucket][0] += n
        sums[bucket][1] += total
    return [round(total / n, 2) if n else None for n, total in sums]


def segment_summaries(
    accounts: QuerySet[Account], *, as_of: datetime.date | None, today: datetime.date, segment_id: int | None = None
) -> list[SegmentSummary]:
    """Per segment (or one segment): accounts, ARR, churn and retention, renewals due, today's health
    band distribution and mean, NPS and CSAT of the last 90 days, compliance audit pass rate of the
    last 365 days, and every KPI's actual against its seed target with attainment and trend.

    Seven queries whatever the number of accounts: segments, KPI definitions, accounts grouped by
    segment and band, surveys grouped by segment and type, audits grouped by segment, KPI latest
    values grouped by KPI, KPI daily sums of the last 90 days."""

    segments = Segment.objects.order_by("sort_order", "name")
    if segment_id is not None:
        segments = segments.filter(pk=segment_id)
    summaries = {s.pk: SegmentSummary(segment_id=s.pk, code=s.code, name=s.name) for s in segments}
    if not summaries:
        return []
    visible = accounts.filter(segment_id__in=summaries)
    churned = Q(lifecycle_stage=LifecycleStage.CHURNED)
    rows = (
        visible.annotate(h=on_day("health_snapshots", as_of))
        .values_list("segment_id", "h__band")
        .annotate(
            n=Count("id"),
            arr_sum=Coalesce(Sum("arr"), Value(Decimal(0)), output_field=DecimalField()),
            churned_n=Count("id", filter=churned),
            churned_arr=Coalesce(Sum("arr", filter=churned), Value(Decimal(0)), output_field=DecimalField()),
            renewing=Count(
                "id", filter=Q(renewal_date__gte=today, renewal_date__lte=today + datetime.timedelta(days=RENEWAL_DAYS))
            ),
            health_sum=Sum("h__total"),
        )
        .order_by()
    )
    health_sums: dict[int, tuple[int, Decimal]] = defaultdict(lambda: (0, Decimal(0)))
    for seg_id, band, n, arr, n_churned, arr_churned, renewing, health_sum in rows:
        summary = summaries[seg_id]
        summary.accounts += n
        summary.arr += arr
        summary.churned += n_churned
        summary.churned_arr += arr_churned
        summary.renewing_90d += renewing
        summary.bands[band or "none"] += n
        if band is not None and health_sum is not None:
            scored, total = health_sums[seg_id]
            health_sums[seg_id] = (scored + n, total + health_sum)
    for seg_id, (scored, total) in health_sums.items():
        summaries[seg_id].avg_health = round(float(total) / scored, 1) if scored else None

    since = today - datetime.timedelta(days=SURVEY_DAYS)
    surveys = (
        SurveyResponse.objects.filter(account__in=visible, responded_on__gt=since, responded_on__lte=today)
        .values_list("account__segment_id", "survey_type")
        .annotate(
            n=Count("id"),
            score_sum=Sum("score"),
            promoters=Count("id", filter=Q(score__gte=9)),
            detractors=Count("id", filter=Q(score__lte=6)),
        )
        .order_by()
    )
    for seg_id, survey_type, n, score_sum, promoters, detractors in surveys:
        summary = summaries[seg_id]
        if survey_type == "nps":
            summary.nps, summary.nps_responses = round(nps_from_counts(promoters, detractors, n), 1), n
        elif survey_type == "csat":
            summary.csat, summary.csat_responses = round(score_sum / n, 2), n

    audits = (
        AuditResult.objects.filter(
            obligation__account__in=visible,
            audited_on__gt=today - datetime.timedelta(days=AUDIT_DAYS),
            audited_on__lte=today,
        )
        .values_list("obligation__account__segment_id")
        .annotate(n=Count("id"), passed=Count("id", filter=Q(outcome=AuditOutcome.PASSED)))
        .order_by()
    )
    for seg_id, n, passed in audits:
        summaries[seg_id].audits, summaries[seg_id].audits_passed = n, passed

    kpis = list(KpiDefinition.objects.filter(segment_id__in=summaries).order_by("segment_id", "sort_order", "name"))
    latest, by_day = _kpi_figures(accounts, as_of=as_of, segment_id=segment_id) if as_of is not None else ({}, {})
    for kpi in kpis:
        row = KpiRow(
            kpi_id=kpi.pk,
            code=kpi.code,
            name=kpi.name,
            unit=kpi.unit,
            target_text=kpi.target_text,
            direction=kpi.direction,
        )
        if kpi.pk in latest:
            row.accounts, row.actual, row.on_target = latest[kpi.pk]
            row.actual = round(row.actual, 2)
            target = KpiTarget(
                code=kpi.code,
                name=kpi.name,
                comparator=kpi.comparator,
                direction=kpi.direction,
                low=None if kpi.target_low is None else float(kpi.target_low),
                high=None if kpi.target_high is None else float(kpi.target_high),
                target_text=kpi.target_text,
            )
            row.met = kpi_met(target, row.actual)
        row.trend = _kpi_trend(by_day.get(kpi.pk, []), as_of=as_of) if as_of else []
        summaries[kpi.segment_id].kpis.append(row)
    return list(summaries.values())


def summary_to_figures(summary: SegmentSummary) -> dict[str, Any]:
    """A SegmentSummary as JSON-safe figures for SegmentSnapshot (money as text: no float rounding)."""
    figures = dataclasses.asdict(summary)
    for key in ("arr", "churned_arr"):
        figures[key] = str(figures[key])
    return figures


def summary_from_figures(figures: dict[str, Any]) -> SegmentSummary:
    values = dict(figures)
    values["kpis"] = [KpiRow(**kpi) for kpi in values.get("kpis", [])]
    for key in ("arr", "churned_arr"):
        values[key] = Decimal(values[key])
    return SegmentSummary(**values)


def portfolio_summaries(
    accounts: QuerySet[Account],
    membership: Membership,
    *,
    as_of: datetime.date | None,
    today: datetime.date,
    segment_id: int | None = None,
) -> list[SegmentSummary]:
    """Segment summaries for a page. Readers who see the whole tenant get the nightly SegmentSnapshots
    of `as_of` (one query: 10,000 accounts are not re-aggregated on every request); a restricted book,
    or a day the nightly run did not snapshot, is aggregated live by segment_summaries (seven queries).
    Both are the same computation: the nightly run calls segment_summaries over every account."""

    if as_of is not None and sees_whole_tenant(membership):
        snapshots = SegmentSnapshot.objects.filter(snapshot_date=as_of).select_related("segment")
        if segment_id is not None:
            snapshots = snapshots.filter(segment_id=segment_id)
        stored = sorted(snapshots, key=lambda snap: (snap.segment.sort_order, snap.segment.name))
        if stored:
            return [summary_from_figures(snap.figures) for snap in stored]
    return segment_summaries(accounts, as_of=as_of, today=today, segment_id=segment_id)


def band_trend(
    accounts: QuerySet[Account],
    *,
    as_of: datetime.date | None,
    segment_id: int | None = None,
    whole_tenant: bool = False,
) -> dict[str, list]:
    """Accounts per health band on weekly dates over the last 90 days up to `as_of`, as plain lists
    for the stacked chart and its table: {"dates": [...], "red": [...], "yellow": [...], ...}.
    Weekly, not daily: 13 dates show the same shape for a seventh of the reading. Whole-tenant readers
    get one query over the nightly SegmentSnapshots, plus one grouped count of health snapshots for
    dates that have none; restricted books get that grouped count over all 13 dates."""
    trend: dict[str, list] = {"dates": [], **{band: [] for band in BANDS}}
    if as_of is None:
        return trend
    dates = [as_of - datetime.timedelta(days=d) for d in range(0, TREND_DAYS + 1, TREND_STEP_DAYS)][::-1]
    stored: dict[datetime.date, dict[str, int]] = {}
    if whole_tenant:
        stored = _band_counts_from_snapshots(dates, segment_id=segment_id)
        if len(stored) == len(dates):
            return _fill_trend(trend, dates, stored)
    if segment_id is not None:
        accounts = accounts.filter(segment_id=segment_id)
    # Dates without a segment snapshot (before the nightly run wrote them, or a restricted book) are
    # counted from the health snapshots themselves.
    missing = [day for day in dates if day not in stored]
    for day, band, n in (
        HealthSnapshot.objects.filter(account__in=accounts, snapshot_date__in=missing)
        .values_list("snapshot_date", "band")
        .annotate(n=Count("id"))
        .order_by()
    ):
        stored.setdefault(day, dict.fromkeys(BANDS, 0))[band] += n
    return _fill_trend(trend, dates, stored)


def _fill_trend(trend: dict[str, list], dates: list[datetime.date], counts: dict) -> dict[str, list]:
    for day in dates:
        if day not in counts:
            continue  # before the first nightly run: no point rather than a false zero
        trend["dates"].append(day.isoformat())
        for band in BANDS:
            trend[band].append(counts[day][band])
    return trend


def _band_counts_from_snapshots(dates: list[datetime.date], *, segment_id: int | None) -> dict:
    """Accounts per band on each of `dates` that has nightly SegmentSnapshots, tenant-wide (one query
    over a few dozen rows instead of counting 130,000 health snapshots): {day: {band: n}}."""

    snapshots = SegmentSnapshot.objects.filter(snapshot_date__in=dates)
    if segment_id is not None:
        snapshots = snapshots.filter(segment_id=segment_id)
    counts: dict[datetime.date, dict[str, int]] = {}
    for day, figures in snapshots.values_list("snapshot_date", "figures"):
        per_band = counts.setdefault(day, dict.fromkeys(BANDS, 0))
        for band in BANDS:
            per_band[band] += figures["bands"].get(band, 0)
    return counts


def band_movers(
    accounts: QuerySet[Account], *, as_of: datetime.date | None, segment_id: int | None = None, limit: int = 25
) -> dict[str, Any]:
    """Accounts whose health band differs from 7 days earlier, those that got worse first, then by
    name: every mover's bands and totals (one query joining the two days' snapshots on the
    (tenant, day) index; movers are a small share of a book) and the first `limit` accounts with
    segment and owner (one query)."""
    if as_of is None:
        return {"items": [], "total": 0, "since": None}
    since = as_of - datetime.timedelta(days=7)
    if segment_id is not None:
        accounts = accounts.filter(segment_id=segment_id)
    try:
        visible, params = accounts.order_by().values("pk").query.sql_with_params()
    except EmptyResultSet:
        return {"items": [], "total": 0, "since": since}  # an empty book compiles to no SQL: nobody moved
    tenant_id = context.require_tenant_id()
    sql = f"""
        SELECT a.id, a.name, n.band, n.total, b.band, b.total
        FROM metrics_healthsnapshot n
        JOIN metrics_healthsnapshot b
          ON b.tenant_id = n.tenant_id AND b.account_id = n.account_id AND b.snapshot_date = %s
        JOIN accounts_account a ON a.tenant_id = n.tenant_id AND a.id = n.account_id
        WHERE n.tenant_id = %s AND n.snapshot_date = %s AND n.band <> b.band AND n.account_id IN ({visible})
    """  # noqa: S608 - `visible` is ORM-compiled SQL with its own params
    with connection.cursor() as cursor:
        cursor.execute(sql, (since, tenant_id, as_of, *params))
        moved = cursor.fetchall()
    rank = {band: i for i, band in enumerate(BANDS)}
    moved.sort(key=lambda row: (rank[row[2]], row[1]))
    shown = {row[0]: row for row in moved[:limit]}
    items = list(Account.objects.filter(pk__in=shown).select_related("segment", "owner_csm")) if shown else []
    for account in items:
        _, _, account.band_now, account.total_now, account.band_before, account.total_before = shown[account.pk]
        account.direction = "worse" if rank[account.band_now] < rank[account.band_before] else "better"
    items.sort(key=lambda a: (rank[a.band_now], a.name))
    return {"items": items, "total": len(moved), "since": since}


def sees_whole_tenant(membership: Membership) -> bool:
    return member_can(membership, Capability.SEE_WHOLE_TENANT)


def segment_of(segment_id: int) -> Segment | None:
    """A segment of the current tenant (one query); another tenant's id finds nothing."""
    return Segment.objects.filter(pk=segment_id).first()


HEALTH_BANDS = [(b.value, b.label) for b in HealthBand]


# --- The REST API's account resource (dashboards.api) ----------------------------------------------------
def account_list_keys(accounts: QuerySet[Account], *, as_of: datetime.date | None) -> QuerySet[Account]:
    """The visible `accounts` as the API list pages them: no join, so `ORDER BY name, id LIMIT n` runs
    on the (tenant, name) index and reads n rows. Joined and sorted first, the same page cost
    PostgreSQL every account of a 10,000-account tenant: Row-Level Security hides the row count from
    the planner, which then estimates ~1% of it and sorts after the joins.
    `h` (the health snapshot of `as_of`, metrics.selectors.on_day) joins only when a filter uses it;
    `renewal_key` is renewal_date with "no date" sorting last, so cursor pagination can order by it
    (a NULL position cannot be compared)."""
    return accounts.annotate(
        h=on_day("health_snapshots", as_of), renewal_key=Coalesce("renewal_date", Value(datetime.date.max))
    )


def account_list_rows(accounts: QuerySet[Account], *, as_of: datetime.date | None) -> QuerySet[Account]:
    """The `accounts` with segment code and owner CSM e-mail joined and the health of the tenant's latest nightly
    run (`as_of`: metrics.selectors.health_as_of) as ONE LEFT JOIN on the (tenant, account, day)
    unique index: annotations health_score, health_band, health_as_of (None when the account was not
    scored that night). One query. The list reads a page's rows with it by id, after paging on
    account_list_keys; a single account (retrieve, write answers) reads through it directly."""
    # Columns rather than select_related: a page builds 100 Account objects, not 300 model instances.
    return account_list_keys(accounts, as_of=as_of).annotate(
        segment_code=F("segment__code"),
        owner_csm_email=F("owner_csm__email"),
        health_score=F("h__total"),
        health_band=F("h__band"),
        health_as_of=F("h__snapshot_date"),
    )
