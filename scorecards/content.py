"""The content of one user's weekly scorecard email, read through the same selectors as the dashboards.

Everything starts from `visible_accounts(user, membership)`, so an executive's email covers the tenant
and a manager's their team, exactly as the portfolio page does for them; figures are those of the
week's last nightly run (`as_of`), compared with seven days earlier. The result is plain frozen data
(no lazy relations), so rendering it runs no query and can happen outside the tenant context."""

from __future__ import annotations

import dataclasses
import datetime
import zoneinfo
from decimal import Decimal
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db.models import Count, DecimalField, F, Max, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from accounts.selectors import visible_accounts
from compliance import selectors as compliance
from compliance.models import Obligation, ObligationStatus
from cs_platform.listing import first_with_total
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Membership, Tenant
from dashboards import selectors as dash
from dashboards.selectors import AT_RISK_BANDS, BANDS, SegmentSummary
from journeys.models import Decision
from journeys.selectors import OPEN_STATUSES
from metrics.models import HealthSnapshot
from scorecards.schedule import scorecard_send_day
from scorecards.weeks import IsoWeek

MOVERS_SHOWN = 10
RENEWALS_SHOWN = 10
DECISIONS_SHOWN = 15
EXCEPTIONS_SHOWN = 10  # per kind: failed audits, overdue obligations, expiring evidence
BAND_KEYS = (*BANDS, "none")  # "none": not scored on that day


@dataclasses.dataclass(frozen=True)
class SiteLinks:
    """Absolute links into the app for one tenant's email: SITE_URL + the route (+ ?query, #fragment),
    always with ?tenant=<slug>. The session, not the URL, picks a page's tenant, so a member of several
    tenants would otherwise land in whichever one they used last; TenantMiddleware switches to the
    named tenant when the member belongs to it."""

    tenant_slug: str

    def __call__(self, name: str, *args, query: str = "", fragment: str = "") -> str:
        params = urlencode({"tenant": self.tenant_slug})
        url = f"{settings.SITE_URL}{reverse(name, args=args)}?{query + '&' if query else ''}{params}"
        return url + ("#" + fragment if fragment else "")


@dataclasses.dataclass(frozen=True)
class SegmentSection:
    """One segment's scorecard: the dashboard's SegmentSummary of `as_of`, the band counts of seven
    days earlier (None when no nightly ran then) and the segment page's link."""

    summary: SegmentSummary
    bands_before: dict[str, int] | None
    link: str

    @property
    def segment_id(self) -> int:
        return self.summary.segment_id

    @property
    def name(self) -> str:
        return self.summary.name

    @property
    def band_rows(self) -> list[tuple[str, int, int | None, int | None]]:
        """(band, this week, last week, change) in risk order, "none" last."""
        rows = []
        for band in BAND_KEYS:
            now = self.summary.bands.get(band, 0)
            before = None if self.bands_before is None else self.bands_before.get(band, 0)
            rows.append((band, now, before, None if before is None else now - before))
        return rows


@dataclasses.dataclass(frozen=True)
class Mover:
    account_id: int
    name: str
    segment: str
    owner: str
    band_before: str
    band_now: str
    total_before: Decimal | None
    total_now: Decimal | None
    direction: str  # "worse" or "better"
    link: str


@dataclasses.dataclass(frozen=True)
class Renewal:
    account_id: int
    name: str
    segment: str
    owner: str
    renewal_date: datetime.date
    days_left: int
    arr: Decimal
    band: str
    health_total: Decimal | None
    link: str


@dataclasses.dataclass(frozen=True)
class DecisionItem:
    decision_id: int
    kind: str  # "decision" or "blocker"
    title: str
    account_id: int
    account: str
    owner: str
    due_date: datetime.date
    overdue: bool
    escalated: bool
    escalated_to: str
    customer_impact: str  # as written, or the account's ARR and band when nobody wrote it
    impact_stated: bool
    fallback: str  # what happens if nobody decides by the due date (seed 002: every blocker has one)
    link: str


@dataclasses.dataclass(frozen=True)
class ClosedDecision:
    """A decision or blocker closed during the week (seed 002's summary: "closed decisions")."""

    decision_id: int
    kind: str
    title: str
    account_id: int
    account: str
    owner: str
    closed_on: datetime.date  # in the tenant's time zone
    outcome: str  # "resolved" or "fallback" (the fallback was applied)
    resolution: str
    link: str


@dataclasses.dataclass(frozen=True)
class ComplianceException:
    kind: str  # "failed_audit", "overdue", "expiring"
    account_id: int
    account: str
    framework: str
    requirement: str
    day: datetime.date | None  # audited on / due on / evidence valid until
    detail: str
    link: str


@dataclasses.dataclass(frozen=True)
class Counted:
    """The first items of a list and how many there are in all."""

    items: tuple
    total: int


@dataclasses.dataclass(frozen=True)
class WeeklyScorecard:
    tenant: Tenant
    user: object
    role: str
    week: IsoWeek
    as_of: datetime.date | None  # the nightly date the figures are of
    before: datetime.date | None  # seven days earlier: what "change over the week" compares with
    stale: bool  # no nightly run within the week: as_of is older than its Monday
    whole_tenant: bool
    segments: tuple[SegmentSection, ...]
    movers: Counted
    renewals_at_risk: Counted
    renewals_at_risk_arr: Decimal
    decisions: Counted
    decisions_closed: Counted  # closed in the seven days up to the figures' day
    failed_audits: Counted
    overdue_obligations: Counted
    expiring_evidence: Counted
    links: dict[str, str]
    # The day windows count from (as_of, or the week's Sunday without a run); obligations' statuses are
    # those of that day too (or of today, while the figures' day is still ahead).
    figures_day: datetime.date

    @property
    def compliance_exceptions(self) -> tuple[ComplianceException, ...]:
        return self.failed_audits.items + self.overdue_obligations.items + self.expiring_evidence.items

    @property
    def bands_total(self) -> dict[str, int]:
        totals = dict.fromkeys(BAND_KEYS, 0)
        for section in self.segments:
            for band in BAND_KEYS:
                totals[band] += section.summary.bands.get(band, 0)
        return totals


def _person(user) -> str:
    if user is None:
        return ""
    return user.get_full_name() or user.get_username()


def scorecard_as_of(week: IsoWeek) -> datetime.date | None:
    """The newest nightly date on or before the week's send day (one query): that morning's run, or an
    older one when it did not happen (the email then says so). Capped at the send day, so a retry or a
    re-send later in the week carries the same figures as the first email of that week."""
    day = scorecard_send_day(week)
    return HealthSnapshot.objects.filter(snapshot_date__lte=day).aggregate(day=Max("snapshot_date"))["day"]


def weekly_scorecard(
    *, user, membership: Membership, week: IsoWeek, segment_ids: list[int] | None = None
) -> WeeklyScorecard:
    """The scorecard of `week` for `user` (see the module docstring). `segment_ids` (a subscription's
    choice) narrows every section to those segments; empty or None means every segment.

    Runs in the membership's tenant. Queries (a fixed number whatever the number of accounts; see
    tests/scorecards/test_content.py for the count): the tenant, the user's book (managers and CSMs),
    the as-of date, the segment figures of as_of and of seven days earlier (one snapshot query each for
    whole-tenant readers, the seven-query live aggregate otherwise), movers (2), renewals at risk (2),
    open decisions (2), decisions closed in the week (2; 1 if none), failed audits (2), overdue
    obligations (2) and expiring evidence (2)."""
    if membership.user_id != user.pk or not membership.is_active:
        # The dashboards only ever serve an active member their own book; an email must not do more.
        raise PermissionDenied("The scorecard is built for an active member of the tenant, as that member.")
    with context.tenant_context(membership.tenant_id):
        return _weekly_scorecard(user=user, membership=membership, week=week, segment_ids=segment_ids)


def _weekly_scorecard(*, user, membership: Membership, week: IsoWeek, segment_ids: list[int] | None) -> WeeklyScorecard:
    tenant = membership.tenant  # query: the tenant (its name heads the email)
    link = SiteLinks(tenant.slug)
    visible = visible_accounts(user, membership)  # queries: managers' team tree and account ids; CSMs' ids
    wanted = {int(pk) for pk in segment_ids} if segment_ids else None
    book = visible.filter(segment_id__in=wanted) if wanted else visible
    as_of = scorecard_as_of(week)  # query: the as-of date
    today = as_of or week.sunday  # windows (renewals, surveys, audits) count from the figures' day
    before = as_of - datetime.timedelta(days=7) if as_of else None
    whole = dash.sees_whole_tenant(membership)

    # Segment figures exactly as the portfolio page gives them to this user, for both days.
    now = dash.portfolio_summaries(visible, membership, as_of=as_of, today=today)
    earlier = dash.portfolio_summaries(visible, membership, as_of=before, today=before) if before else []
    bands_before = {s.segment_id: dict(s.bands) for s in earlier if _scored(s)}
    sections = tuple(
        SegmentSection(
            summary=s,
            bands_before=bands_before.get(s.segment_id),
            link=link("segment_page", s.segment_id),
        )
        for s in now
        if wanted is None or s.segment_id in wanted
    )

    movers = dash.band_movers(book, as_of=as_of, limit=MOVERS_SHOWN)  # queries: movers' bands, their accounts
    mover_items = tuple(
        Mover(
            account_id=a.pk,
            name=a.name,
            segment=a.segment.name,
            owner=_person(a.owner_csm),
            band_before=a.band_before,
            band_now=a.band_now,
            total_before=a.total_before,
            total_now=a.total_now,
            direction=a.direction,
            link=link("account_detail", a.pk),
        )
        for a in movers["items"]
    )

    rows = dash.account_rows(book, as_of=as_of).filter(h__band__in=AT_RISK_BANDS)
    renewing = dash.renewals_due(rows, today=today, limit=RENEWALS_SHOWN)  # query: the first renewals at risk
    horizon = Q(renewal_date__gte=today, renewal_date__lte=today + datetime.timedelta(days=dash.RENEWAL_DAYS))
    renewal_totals = rows.filter(horizon).aggregate(  # query: how many, and their ARR
        n=Count("id"), arr=Coalesce(Sum("arr"), Value(Decimal(0)), output_field=DecimalField())
    )
    renewal_items = tuple(
        Renewal(
            account_id=a.pk,
            name=a.name,
            segment=a.segment.name,
            owner=_person(a.owner_csm),
            renewal_date=a.renewal_date,
            days_left=(a.renewal_date - today).days,
            arr=a.arr,
            band=a.health_band,
            health_total=a.health_total,
            link=link("account_detail", a.pk),
        )
        for a in renewing
    )

    zone = zoneinfo.ZoneInfo(tenant.time_zone)
    # queries: the first open ones, their count; the first closed this week, their count
    decisions = _open_decisions(book, as_of=as_of, today=today, zone=zone, link=link)
    closed = _closed_decisions(book, today=today, zone=zone, link=link)
    failed, failed_total = compliance.failed_audits(book, day=today, limit=EXCEPTIONS_SHOWN)  # 2 queries (1 if none)
    local_today = timezone.now().astimezone(zone).date()
    related = ("account", "requirement__framework")  # what an exception line names
    if as_of == local_today:
        # Today's nightly run stored the statuses: the compliance dashboard's, read from there.
        expiring, expiring_total = compliance.expiring_obligations(book, day=today, limit=EXCEPTIONS_SHOWN)  # 2
        # queries: the first overdue obligations with their total, their rows (the dashboard's "overdue"
        # count of its headline and matrix; it has no list selector of its own)
        overdue_rows, overdue_total = first_with_total(
            Obligation.objects.filter(account__in=book, status=ObligationStatus.OVERDUE).select_related(*related),
            ("due_date", "pk"),
            limit=EXCEPTIONS_SHOWN,
        )
    else:
        # An obligation keeps the latest run's status only: an earlier week's (or a run not yet made today)
        # is worked out for its day from the audits and evidence on record. Two queries each, as above.
        on_day = compliance.obligations_on(book, day=min(today, local_today)).select_related(*related)
        expiring, expiring_total = first_with_total(
            on_day.filter(status_on="expiring").annotate(evidence_valid_until=F("valid_until_on")),
            ("evidence_valid_until", "pk"),
            limit=EXCEPTIONS_SHOWN,
        )
        overdue_rows, overdue_total = first_with_total(
            on_day.filter(status_on="overdue"), ("due_date", "pk"), limit=EXCEPTIONS_SHOWN
        )
    overdue = Counted(
        tuple(_obligation_exception(o, "overdue", o.due_date, "past its due date", link) for o in overdue_rows),
        overdue_total,
    )

    compliance_link = link("compliance_dashboard")
    return WeeklyScorecard(
        tenant=tenant,
        user=user,
        role=membership.role,
        week=week,
        as_of=as_of,
        before=before,
        stale=as_of is not None and as_of < week.monday,
        whole_tenant=whole,
        segments=sections,
        movers=Counted(mover_items, movers["total"]),
        renewals_at_risk=Counted(renewal_items, renewal_totals["n"]),
        renewals_at_risk_arr=renewal_totals["arr"],
        decisions=decisions,
        decisions_closed=closed,
        failed_audits=Counted(
            tuple(
                ComplianceException(
                    kind="failed_audit",
                    account_id=r.obligation.account_id,
                    account=r.obligation.account.name,
                    framework=r.obligation.requirement.framework.name,
                    requirement=r.obligation.requirement.title,
                    day=r.audited_on,
                    detail=f"{r.open_findings} open findings" if r.open_findings else "no open findings",
                    link=link("account_detail", r.obligation.account_id),
                )
                for r in failed
            ),
            failed_total,
        ),
        overdue_obligations=overdue,
        expiring_evidence=Counted(
            tuple(
                _obligation_exception(o, "expiring", o.evidence_valid_until, "evidence about to expire", link)
                for o in expiring
            ),
            expiring_total,
        ),
        links={
            "portfolio": link("portfolio"),
            "movers": link("portfolio", fragment="movers-h"),
            # The same accounts as the section: red or yellow, renewing within the window, soonest first.
            "renewals": link("account_list", query=f"renewal={dash.RENEWAL_DAYS}&band=at_risk&sort=renewal"),
            "decisions": link("decision_list"),
            "decisions_closed": link("decision_list", query="status=closed_week"),
            "compliance": compliance_link,
        },
        figures_day=today,
    )


def _scored(summary: SegmentSummary) -> bool:
    """Whether a segment had any health snapshot that day (otherwise "last week" is unknown, not 0)."""
    return any(summary.bands.get(band, 0) for band in BANDS)


def _day_end(day: datetime.date, zone) -> datetime.datetime:
    """The first instant after `day` in the tenant's time zone."""
    return datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time(), tzinfo=zone)


def _open_decisions(book, *, as_of: datetime.date | None, today: datetime.date, zone, link: SiteLinks) -> Counted:
    """Decisions and blockers on the book that were open at the end of `today` (the figures' day):
    created by then and not closed by then, so a past week's email lists what was open that week, not
    what is open now. Soonest due first (overdue ones lead), with owner, escalation target (if it had
    escalated by then), fallback and account, and the account's band of `as_of` for the impact
    fallback (a correlated lookup on the (tenant, account, day) index): the first DECISIONS_SHOWN (one
    query) and how many (one query). The dashboards' overdue_decisions lists only the late ones; the
    weekly summary (seed 002) wants every open blocker with its owner and customer impact."""
    end = _day_end(today, zone)
    open_ = Decision.objects.filter(account__in=book, created_at__lt=end).filter(
        Q(status__in=OPEN_STATUSES) | Q(resolved_at__gte=end)
    )
    band = HealthSnapshot.objects.filter(
        tenant_id=context.require_tenant_id(),
        account_id=OuterRef("account_id"),
        snapshot_date=as_of or datetime.date.min,
    ).values("band")[:1]
    rows = list(
        open_.select_related("account", "owner", "escalated_to")
        .annotate(account_band=Subquery(band))
        .order_by("due_date", "pk")[:DECISIONS_SHOWN]
    )
    total = open_.count() if rows else 0
    items = []
    for d in rows:
        impact = d.customer_impact.strip()
        escalated = d.escalated_at is not None and d.escalated_at < end
        items.append(
            DecisionItem(
                decision_id=d.pk,
                kind=d.kind,
                title=d.title,
                account_id=d.account_id,
                account=d.account.name,
                owner=_person(d.owner),
                due_date=d.due_date,
                overdue=d.due_date < today,
                escalated=escalated,
                escalated_to=_person(d.escalated_to) if escalated else "",
                customer_impact=impact or _impact_fallback(d.account.arr, d.account_band),
                impact_stated=bool(impact),
                fallback=d.fallback.strip(),
                link=link("account_detail", d.account_id),
            )
        )
    return Counted(tuple(items), total)


def _closed_decisions(book, *, today: datetime.date, zone, link: SiteLinks) -> Counted:
    """Decisions and blockers on the book closed (resolved, or their fallback applied) during the seven
    days ending with `today`, newest first: the first DECISIONS_SHOWN (one query) and how many (one
    query, only when there are any)."""
    end = _day_end(today, zone)
    closed = Decision.objects.filter(
        account__in=book, resolved_at__gte=end - datetime.timedelta(days=7), resolved_at__lt=end
    ).exclude(status__in=OPEN_STATUSES)
    rows = list(closed.select_related("account", "owner").order_by("-resolved_at", "-pk")[:DECISIONS_SHOWN])
    total = closed.count() if rows else 0
    return Counted(
        tuple(
            ClosedDecision(
                decision_id=d.pk,
                kind=d.kind,
                title=d.title,
                account_id=d.account_id,
                account=d.account.name,
                owner=_person(d.owner),
                closed_on=d.resolved_at.astimezone(zone).date(),
                outcome=d.status,
                resolution=d.resolution.strip(),
                link=link("account_detail", d.account_id),
            )
            for d in rows
        ),
        total,
    )


def _impact_fallback(arr: Decimal, band: str | None) -> str:
    return f"Not stated: account ARR {arr:,.0f}, health {band or 'not scored'}"


def _obligation_exception(o, kind: str, day: datetime.date, detail: str, link: SiteLinks) -> ComplianceException:
    return ComplianceException(
        kind=kind,
        account_id=o.account_id,
        account=o.account.name,
        framework=o.requirement.framework.name,
        requirement=o.requirement.title,
        day=day,
        detail=detail,
        link=link("account_detail", o.account_id),
    )
