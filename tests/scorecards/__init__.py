"""Shared data for the scorecard tests: a book of accounts with every kind of figure the weekly email
reports, bulk-created so a 30-account book costs the same few statements as a 3-account one."""

from __future__ import annotations

import datetime
from decimal import Decimal
from types import SimpleNamespace

from django.utils import timezone

from scorecards.weeks import IsoWeek

TODAY = timezone.localdate()
WEEK_AGO = TODAY - datetime.timedelta(days=7)
WEEK = IsoWeek.of(TODAY)  # its last nightly run is TODAY's (nothing runs after today)


def send_today(settings) -> None:
    """Make TODAY the week's send day. A week's figures are those of its send day (SCORECARD_WEEKDAY,
    Monday by default), so with the default only a suite run on a Monday would find TODAY's nightly in
    WEEK; the tests that pin the send day themselves override this afterwards."""
    settings.SCORECARD_WEEKDAY = TODAY.isoweekday()


def _noon(day: datetime.date) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(12), tzinfo=datetime.UTC)  # the test tenants are UTC


def build_book(world, n: int, *, prefix: str, owner_role: str = "csm", segment: str = "bank", nightly: bool = True):
    """`n` accounts named "<prefix> NNNN" owned by the world's `owner_role` user (permission rows too).
    Per account i: health today cycles red / yellow / green (last week all green, so a third stays and
    two thirds move), renewal in 10 + 7*i days, a value of the segment's first KPI, an NPS 9 and a
    CSAT 4 answer, one obligation (i % 3: 0 overdue, 1 expiring with evidence, 2 compliant) with an
    audit (failed when i % 4 == 0), and one open decision (customer impact written on even i) plus
    one closed decision (open for 30 days, then closed 2 days ago on even i, resolved; 10 days ago on odd i,
    fallback applied). With `nightly`, the segment snapshots of both days are computed, as the
    nightly run does."""
    from accounts.models import Account
    from compliance.models import AuditResult, Evidence, Obligation
    from cs_platform.tenancy import context
    from journeys.models import Decision
    from metrics.models import HealthSnapshot, KpiMeasurement, SurveyResponse
    from segments.models import KpiDefinition, Segment
    from tests import factories
    from tests.helpers import owned_accounts_bulk

    tenant, owner = world.tenant, world.user(owner_role)
    with context.tenant_context(tenant):
        seg = Segment.objects.get(code=segment)
        kpi = KpiDefinition.objects.filter(segment=seg).order_by("sort_order", "pk").first()
        accounts = owned_accounts_bulk(
            world,
            owner,
            [
                Account(
                    tenant=tenant,
                    name=f"{prefix} {i:04d}",
                    segment=seg,
                    owner_csm=owner,
                    arr=Decimal(100000 + i),
                    renewal_date=TODAY + datetime.timedelta(days=10 + 7 * i),
                )
                for i in range(n)
            ],
        )
        bands = ["red", "yellow", "green"]
        HealthSnapshot.objects.bulk_create(
            [
                HealthSnapshot(
                    tenant=tenant,
                    account=a,
                    snapshot_date=TODAY,
                    band=bands[i % 3],
                    total=Decimal(35 + 20 * (i % 3)),
                    change_30d=Decimal(-(i % 7)),
                )
                for i, a in enumerate(accounts)
            ]
            + [
                HealthSnapshot(tenant=tenant, account=a, snapshot_date=WEEK_AGO, band="green", total=Decimal(80))
                for a in accounts
            ]
        )
        KpiMeasurement.objects.bulk_create(
            KpiMeasurement(tenant=tenant, account=a, kpi=kpi, measured_on=TODAY, value=Decimal(60 + i % 40))
            for i, a in enumerate(accounts)
        )
        SurveyResponse.objects.bulk_create(
            SurveyResponse(tenant=tenant, account=a, survey_type=kind, score=score, responded_on=TODAY)
            for a in accounts
            for kind, score in (("nps", 9), ("csat", 4))
        )
        requirement = factories.requirement_of(tenant)
        statuses = ["overdue", "expiring", "compliant"]
        obligations = Obligation.objects.bulk_create(
            Obligation(
                tenant=tenant,
                account=a,
                requirement=requirement,
                status=statuses[i % 3],
                due_date=TODAY + datetime.timedelta(days=-5 if i % 3 == 0 else 40),
            )
            for i, a in enumerate(accounts)
        )
        Evidence.objects.bulk_create(
            Evidence(
                tenant=tenant,
                obligation=o,
                filename="soc2.pdf",
                checksum_sha256="0" * 64,
                valid_from=TODAY - datetime.timedelta(days=300),
                valid_until=TODAY + datetime.timedelta(days=12 + i),
            )
            for i, o in enumerate(obligations)
            if i % 3 == 1
        )
        AuditResult.objects.bulk_create(
            AuditResult(
                tenant=tenant,
                obligation=o,
                audited_on=TODAY - datetime.timedelta(days=3),
                outcome="failed" if i % 4 == 0 else "passed",
                open_findings=2 if i % 4 == 0 else 0,
            )
            for i, o in enumerate(obligations)
        )
        Decision.objects.bulk_create(
            [
                Decision(
                    tenant=tenant,
                    account=a,
                    kind="blocker" if i % 2 else "decision",
                    title=f"Decide {a.name}",
                    owner=owner,
                    due_date=TODAY + datetime.timedelta(days=i - 2),
                    fallback="Keep as is",
                    customer_impact=f"Settlement delays at {a.name}" if i % 2 == 0 else "",
                )
                for i, a in enumerate(accounts)
            ]
            + [
                Decision(
                    tenant=tenant,
                    account=a,
                    title=f"Closed {a.name}",
                    owner=owner,
                    due_date=TODAY,
                    fallback="-",
                    status="resolved" if i % 2 == 0 else "fallback",
                    resolution=f"Agreed {i}",
                    created_at=_noon(TODAY - datetime.timedelta(days=30)),
                    resolved_at=_noon(TODAY - datetime.timedelta(days=2 if i % 2 == 0 else 10)),
                )
                for i, a in enumerate(accounts)
            ]
        )
    if nightly:
        from dashboards.services import segment_snapshots_compute

        for day in (WEEK_AGO, TODAY):
            segment_snapshots_compute(tenant=tenant, day=day)
    return accounts


def dashboard_figures(world, role) -> SimpleNamespace:
    """What the dashboards' own selectors give `role`'s member of `world` for TODAY (and a week earlier),
    written out independently of the scorecard under test: the figures its email must repeat."""
    from accounts.selectors import visible_accounts
    from compliance import selectors as compliance
    from cs_platform.tenancy import context
    from dashboards import selectors as dash

    user, membership = world.user(role), world.memberships[role]
    with context.tenant_context(world.tenant):
        visible = visible_accounts(user, membership)
        at_risk = dash.account_rows(visible, as_of=TODAY).filter(h__band__in=["red", "yellow"])
        failed, failed_total = compliance.failed_audits(visible, day=TODAY)
        expiring, expiring_total = compliance.expiring_obligations(visible, day=TODAY)
        return SimpleNamespace(
            summaries=dash.portfolio_summaries(visible, membership, as_of=TODAY, today=TODAY),
            earlier=dash.portfolio_summaries(visible, membership, as_of=WEEK_AGO, today=WEEK_AGO),
            movers=dash.band_movers(visible, as_of=TODAY, limit=100),
            renewals=dash.renewals_due(at_risk, today=TODAY, limit=100),
            failed=failed,
            failed_total=failed_total,
            expiring=expiring,
            expiring_total=expiring_total,
        )
