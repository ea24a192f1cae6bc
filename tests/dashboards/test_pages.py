"""Home by role, the account list, the portfolio and the segment scorecard: who sees what, figures
computed by hand, and query counts that do not grow with the number of accounts."""

from __future__ import annotations

import datetime
import zoneinfo
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account, Touchpoint
from accounts.services import account_assign_csm
from compliance.models import AuditResult, ComplianceStatusSnapshot, Obligation
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from journeys.models import Decision
from metrics.models import HealthSnapshot, KpiMeasurement, SurveyResponse
from segments.models import KpiDefinition, Segment
from tests import factories
from tests.helpers import owned_accounts_bulk

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()
WEEK_AGO = TODAY - datetime.timedelta(days=7)


def _snapshot(tenant, account, band: str, total: str, day=TODAY, change_30d=None):
    return factories.HealthSnapshotFactory(
        tenant=tenant, account=account, band=band, total=Decimal(total), snapshot_date=day, change_30d=change_30d
    )


def _book(world, n: int, *, owner_role: str = Role.CSM, segment: str = "bank", prefix: str = "Book") -> list[Account]:
    """`n` accounts owned by the world's CSM (permission rows included), each with today's and last
    week's snapshot, a KPI value, two survey answers, an audit, a touchpoint and an overdue decision:
    bulk-created so the 500-account query-count test stays fast."""
    tenant, owner = world.tenant, world.user(owner_role)
    with context.tenant_context(tenant):
        seg = Segment.objects.get(code=segment)
        kpi = KpiDefinition.objects.filter(segment=seg).order_by("sort_order").first()
        accounts = owned_accounts_bulk(
            world,
            owner,
            [
                Account(
                    tenant=tenant,
                    name=f"{prefix} {i:04d}",
                    segment=seg,
                    owner_csm=owner,
                    arr=Decimal(1000 + i),
                    renewal_date=TODAY + datetime.timedelta(days=10 + i % 200),
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
                    total=Decimal(40 + i % 50),
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
            KpiMeasurement(tenant=tenant, account=a, kpi=kpi, measured_on=TODAY, value=Decimal(i % 100))
            for i, a in enumerate(accounts)
        )
        SurveyResponse.objects.bulk_create(
            SurveyResponse(tenant=tenant, account=a, survey_type=kind, score=score, responded_on=TODAY)
            for a in accounts
            for kind, score in (("nps", 9), ("csat", 4))
        )
        requirement = factories.requirement_of(tenant)
        obligations = Obligation.objects.bulk_create(
            Obligation(tenant=tenant, account=a, requirement=requirement, due_date=TODAY, status="compliant")
            for a in accounts
        )
        AuditResult.objects.bulk_create(
            AuditResult(tenant=tenant, obligation=o, audited_on=TODAY, outcome="passed" if i % 4 else "failed")
            for i, o in enumerate(obligations)
        )
        ComplianceStatusSnapshot.objects.bulk_create(
            ComplianceStatusSnapshot(tenant=tenant, account=a, snapshot_date=TODAY, status="compliant")
            for a in accounts
        )
        Touchpoint.objects.bulk_create(
            Touchpoint(tenant=tenant, account=a, kind="call", occurred_at=timezone.now(), subject=f"Call {a.name}")
            for a in accounts
        )
        Decision.objects.bulk_create(
            Decision(
                tenant=tenant,
                account=a,
                title=f"Decide {a.name}",
                owner=owner,
                due_date=TODAY - datetime.timedelta(days=3),
                fallback="Keep as is",
            )
            for a in accounts
        )
    return accounts


def _nightly_segments(world, *days) -> None:
    """The nightly run's last step for `days`: what executives' pages read."""
    from dashboards.services import segment_snapshots_compute

    for day in days or (WEEK_AGO, TODAY):
        segment_snapshots_compute(tenant=world.tenant, day=day)


def _get(client, user, name, **kwargs):
    client.force_login(user)
    client.get(reverse("account_list"))  # settle the session's tenant before counting anything
    return client.get(reverse(name, kwargs=kwargs or None))


# --- Home by role ------------------------------------------------------------------------------------------
def test_csm_home_is_their_book_sorted_by_risk(client, tenant_a):
    mine_red = factories.AccountFactory(tenant=tenant_a.tenant, name="Harbor Red Bank")
    mine_green = factories.AccountFactory(tenant=tenant_a.tenant, name="Summit Green Bank")
    theirs = factories.AccountFactory(tenant=tenant_a.tenant, name="Not Mine Credit Union")
    for account in (mine_red, mine_green):
        account_assign_csm(tenant=tenant_a.tenant, account=account, user=tenant_a.user(Role.CSM))
    _snapshot(tenant_a.tenant, mine_red, "red", "31.00", change_30d=Decimal("-12"))
    _snapshot(tenant_a.tenant, mine_green, "green", "88.00")
    _snapshot(tenant_a.tenant, theirs, "red", "10.00")

    response = _get(client, tenant_a.user(Role.CSM), "home")
    body = response.content.decode()
    assert response.templates[0].name == "dashboards/home_book.html"
    assert "Harbor Red Bank" in body and "Summit Green Bank" in body
    assert "Not Mine Credit Union" not in body
    assert body.index("Harbor Red Bank") < body.index("Summit Green Bank")
    assert [a.name for a in response.context["at_risk"]] == ["Harbor Red Bank", "Summit Green Bank"]
    assert response.context["bands"]["red"] == 1 and response.context["bands"]["green"] == 1


def test_risk_order_is_band_then_largest_30_day_drop(client, tenant_a):
    csm = tenant_a.user(Role.CSM)
    rows = [
        ("Yellow Falling", "yellow", "60", "-20"),
        ("Red Steady", "red", "45", "0"),
        ("Red Falling", "red", "40", "-15"),
        ("Yellow Steady", "yellow", "65", "1"),
    ]
    for name, band, total, change in rows:
        account = factories.AccountFactory(tenant=tenant_a.tenant, name=name)
        account_assign_csm(tenant=tenant_a.tenant, account=account, user=csm)
        _snapshot(tenant_a.tenant, account, band, total, change_30d=Decimal(change))
    response = _get(client, csm, "home")
    assert [a.name for a in response.context["at_risk"]] == [
        "Red Falling",
        "Red Steady",
        "Yellow Falling",
        "Yellow Steady",
    ]


def test_csm_home_lists_overdue_work_and_recent_touchpoints_of_their_book_only(client, tenant_a):
    csm = tenant_a.user(Role.CSM)
    mine = factories.AccountFactory(tenant=tenant_a.tenant, name="Mine Bank")
    other = factories.AccountFactory(tenant=tenant_a.tenant, name="Other Bank")
    account_assign_csm(tenant=tenant_a.tenant, account=mine, user=csm)
    for account, tag in ((mine, "MINE"), (other, "OTHER")):
        factories.DecisionFactory(
            tenant=tenant_a.tenant,
            account=account,
            owner=csm,
            title=f"Pick vendor {tag}",
            due_date=TODAY - datetime.timedelta(days=5),
        )
        factories.TouchpointFactory(tenant=tenant_a.tenant, account=account, subject=f"QBR prep {tag}")
        factories.journey_of(account, started_on=TODAY - datetime.timedelta(days=200))
    body = _get(client, csm, "home").content.decode()
    assert "Pick vendor MINE" in body and "Pick vendor OTHER" not in body
    assert "QBR prep MINE" in body and "QBR prep OTHER" not in body
    # The reference journey's first phases end at day 45 and 120: started 200 days ago, they are late.
    assert "Overdue journey activities" in body
    assert body.count("Mine Bank") >= 2 and "Other Bank" not in body


def test_manager_home_shows_team_book_and_each_members_load(client, tenant_a):
    _book(tenant_a, 6)
    outside = factories.AccountFactory(tenant=tenant_a.tenant, name="Outside The Team Bank")
    response = _get(client, tenant_a.user(Role.MANAGER), "home")
    body = response.content.decode()
    assert "Team load" in body and "Outside The Team Bank" not in body
    assert outside.pk not in {a.pk for a in response.context["at_risk"]}
    loads = {load.user_id: load for load in response.context["team"]}
    csm_load = loads[tenant_a.user(Role.CSM).pk]
    assert (csm_load.accounts, csm_load.bands["red"], csm_load.bands["yellow"], csm_load.bands["green"]) == (6, 2, 2, 2)
    assert csm_load.arr == sum(Decimal(1000 + i) for i in range(6))
    assert csm_load.open_decisions == 6 and csm_load.overdue_decisions == 6
    assert loads[tenant_a.user(Role.MANAGER).pk].accounts == 0


@pytest.mark.parametrize("role", [Role.ADMIN, Role.EXECUTIVE, Role.VIEWER])
def test_executives_admins_and_viewers_land_on_the_portfolio(client, tenant_a, role):
    response = _get(client, tenant_a.user(role), "home")
    assert response.status_code == 200
    assert response.templates[0].name == "dashboards/portfolio.html"


def test_compliance_officers_land_on_the_compliance_dashboard(client, tenant_a):
    response = _get(client, tenant_a.user(Role.COMPLIANCE), "home")
    assert response.status_code == 302 and response["Location"] == reverse("compliance_dashboard")


# --- Portfolio and segment scorecard -------------------------------------------------------------------------
def test_segment_scorecard_figures_match_a_hand_computation(client, tenant_a):
    tenant = tenant_a.tenant
    with context.tenant_context(tenant):
        insurer = Segment.objects.get(code="insurer")
        renewal_kpi = KpiDefinition.objects.get(segment=insurer, code="policy_renewal")  # ">= 95 %"
    accounts = [factories.AccountFactory(tenant=tenant, segment=insurer, name=f"Mutual {i}") for i in range(4)]
    with context.tenant_context(tenant):
        accounts[3].lifecycle_stage = "churned"
        accounts[3].save()
    # Latest value per account counts: account 0's older 80 is superseded by 97.
    values = [(0, 80, 40), (0, 97, 2), (1, 96, 5), (2, 90, 35)]
    for index, value, days_ago in values:
        factories.KpiMeasurementFactory(
            tenant=tenant,
            account=accounts[index],
            kpi=renewal_kpi,
            value=Decimal(value),
            measured_on=TODAY - datetime.timedelta(days=days_ago),
        )
    for index, band, total, before in [
        (0, "green", "80", "green"),
        (1, "red", "40", "yellow"),
        (2, "yellow", "60", "red"),
    ]:
        _snapshot(tenant, accounts[index], band, total)
        _snapshot(tenant, accounts[index], before, "55", day=WEEK_AGO)
    for score in (10, 9, 7, 3):  # NPS: 2 promoters, 1 detractor of 4 -> +25
        factories.SurveyResponseFactory(tenant=tenant, account=accounts[0], survey_type="nps", score=score)
    for score in (5, 4, 3):  # CSAT mean 4.00
        factories.SurveyResponseFactory(tenant=tenant, account=accounts[1], survey_type="csat", score=score)
    obligation = factories.ObligationFactory(
        tenant=tenant, account=accounts[0], requirement=factories.requirement_of(tenant)
    )
    for outcome in ("passed", "passed", "failed"):
        factories.AuditResultFactory(tenant=tenant, obligation=obligation, outcome=outcome)

    response = _get(client, tenant_a.user(Role.EXECUTIVE), "segment_page", segment_id=insurer.pk)
    summary = response.context["summary"]
    kpi = next(k for k in summary.kpis if k.code == "policy_renewal")
    assert (kpi.accounts, kpi.on_target, kpi.off_target) == (3, 2, 1)
    assert kpi.actual == round((97 + 96 + 90) / 3, 2)  # 94.33: below 95, so the mean misses
    assert kpi.met is False and kpi.attainment == pytest.approx(66.7)
    assert kpi.trend == [None, round((80 + 90) / 2, 2), round((97 + 96) / 2, 2)]
    assert (summary.accounts, summary.churned, summary.retention, summary.churn) == (4, 1, 75.0, 25.0)
    assert summary.nps == 25.0 and summary.nps_responses == 4
    assert summary.csat == 4.0 and summary.csat_responses == 3
    assert (summary.audits, summary.audits_passed, summary.audit_pass_rate) == (3, 2, 66.7)
    assert (summary.bands["green"], summary.bands["red"], summary.bands["yellow"], summary.bands["none"]) == (
        1,
        1,
        1,
        1,
    )
    movers = response.context["movers"]
    assert movers["total"] == 2
    assert [(m.name, m.direction) for m in movers["items"]] == [("Mutual 1", "worse"), ("Mutual 2", "better")]
    body = response.content.decode()
    assert renewal_kpi.name in body and kpi.target_text in body
    assert 'id="kpi-attainment"' in body and 'id="band-trend"' in body


def test_a_csms_scorecard_aggregates_only_their_book(client, tenant_a):
    _book(tenant_a, 3, prefix="Mine")
    with context.tenant_context(tenant_a.tenant):
        bank = Segment.objects.get(code="bank")
    others = factories.AccountFactory(tenant=tenant_a.tenant, name="Someone Else's Bank")
    _snapshot(tenant_a.tenant, others, "red", "12")
    csm = _get(client, tenant_a.user(Role.CSM), "segment_page", segment_id=bank.pk).context["summary"]
    executive = _get(client, tenant_a.user(Role.EXECUTIVE), "segment_page", segment_id=bank.pk).context["summary"]
    assert csm.accounts == 3 and executive.accounts == 4
    assert csm.bands["red"] == 1 and executive.bands["red"] == 2


def test_a_csm_with_no_account_yet_sees_an_empty_portfolio_after_a_nightly_run(client, tenant_a):
    # An empty book compiles to no SQL at all; the KPI figures' hand-written queries once embedded it
    # and answered 500 (the scorecard preview too) as soon as the tenant had a nightly run.
    others = factories.AccountFactory(tenant=tenant_a.tenant, name="Someone Else's Bank")
    _snapshot(tenant_a.tenant, others, "red", "12")
    with context.tenant_context(tenant_a.tenant):
        bank = Segment.objects.get(code="bank")
    for name, kwargs in (("portfolio", {}), ("segment_page", {"segment_id": bank.pk})):
        response = _get(client, tenant_a.user(Role.CSM), name, **kwargs)
        assert response.status_code == 200, name
    assert response.context["summary"].accounts == 0


def test_portfolio_lists_every_segment_with_band_trend_points(client, tenant_a):
    _book(tenant_a, 4)
    response = _get(client, tenant_a.user(Role.EXECUTIVE), "portfolio")
    assert [s.code for s in response.context["summaries"]] == ["bank", "insurer", "wealth", "fintech"]
    trend = response.context["trend"]
    assert trend["dates"] == [WEEK_AGO.isoformat(), TODAY.isoformat()]
    assert trend["green"] == [4, 1] and trend["red"] == [0, 2]
    assert response.context["trend_rows"][0] == (WEEK_AGO.isoformat(), 0, 0, 0, 4)


def test_another_tenants_segment_is_404(client, tenant_a, tenant_b):
    segment_b = factories.segment_of(tenant_b.tenant, "bank")
    assert _get(client, tenant_a.user(Role.EXECUTIVE), "segment_page", segment_id=segment_b.pk).status_code == 404


# --- Account list ---------------------------------------------------------------------------------------------
def test_account_list_filters_search_sort_and_paginate(client, tenant_a):
    _book(tenant_a, 60)
    insurer = factories.segment_of(tenant_a.tenant, "insurer")
    factories.AccountFactory(tenant=tenant_a.tenant, name="Lakeside Mutual Insurance", segment=insurer)
    client.force_login(tenant_a.user(Role.EXECUTIVE))
    url = reverse("account_list")

    page = client.get(url).context["page"]
    assert page.paginator.count == 61 and len(page.object_list) == 50
    assert client.get(url, {"segment": "insurer"}).context["page"].paginator.count == 1
    assert client.get(url, {"q": "lakeside"}).context["page"].paginator.count == 1
    assert client.get(url, {"band": "red"}).context["page"].paginator.count == 20
    assert client.get(url, {"band": "none"}).context["page"].paginator.count == 1
    # "At risk" is red or yellow (the weekly email's renewals at risk link here): 20 + 20 of the 60.
    at_risk = client.get(url, {"band": "at_risk", "size": "100"}).context["page"]
    assert at_risk.paginator.count == 40 and {a.health_band for a in at_risk.object_list} == {"red", "yellow"}
    assert client.get(url, {"compliance": "compliant"}).context["page"].paginator.count == 60
    assert client.get(url, {"owner": str(tenant_a.user(Role.CSM).pk)}).context["page"].paginator.count == 60
    assert client.get(url, {"owner": "none"}).context["page"].paginator.count == 1
    # Renewals are spread 10..69 days out: 21 fall within the next 30 days (10..30).
    assert client.get(url, {"renewal": "30"}).context["page"].paginator.count == 21
    names = [a.name for a in client.get(url, {"sort": "-arr", "segment": "bank"}).context["page"].object_list]
    assert names[:2] == ["Book 0059", "Book 0058"]
    # Page 2 keeps the filter and sort; stale or unknown values are ignored, not errors.
    response = client.get(url, {"segment": "bank", "sort": "name", "page": "2", "size": "25"})
    assert [a.name for a in response.context["page"].object_list][0] == "Book 0025"
    assert "segment=bank&amp;sort=name&amp;size=25&amp;page=3" in response.content.decode()
    assert client.get(url, {"band": "purple", "sort": "password"}).context["page"].paginator.count == 61


def test_account_list_of_a_csm_holds_only_their_book(client, tenant_a):
    _book(tenant_a, 3)
    factories.AccountFactory(tenant=tenant_a.tenant, name="Unassigned Bank")
    client.force_login(tenant_a.user(Role.CSM))
    response = client.get(reverse("account_list"), {"q": "bank"})
    assert response.context["page"].paginator.count == 0
    assert client.get(reverse("account_list")).context["page"].paginator.count == 3


# --- Query counts: the same for 10 and 500 accounts -----------------------------------------------------------
# Every page: 1 session, 2 user, 3 memberships (middleware). Then, per page:
PAGE_QUERIES = {
    # 4 the CSM's account ids (visible_accounts), 5 as-of date, 6 band counts, 7 top 25 by risk,
    # 8 renewals, 9 overdue activities, 10 their count, 11 overdue decisions, 12 their count,
    # 13 recent touchpoints
    (Role.CSM, "home"): 13,
    # 4-5 the team tree (two levels), 6 the team's account ids, 7-15 as the CSM's 5-13,
    # 16 members, 17 accounts by owner and band, 18 overdue activities by owner, 19 decisions by owner
    (Role.MANAGER, "home"): 19,
    # (after the nightly run) 4 as-of date, 5 the segment snapshots of that day, 6 the segment snapshots
    # of the 13 weekly dates (band trend), 7 every mover's bands, 8 the first movers' accounts
    (Role.EXECUTIVE, "home"): 8,
    # An admin's home is the executive's 4-8 and 9 the latest nightly run (is it failed or stuck?)
    (Role.ADMIN, "home"): 9,
    # 4 segment, 5 as-of date, 6 its snapshot, 7 its snapshots of the weekly dates, 8 every mover's
    # bands, 9 the first movers' accounts, 10 the 25 most at-risk accounts
    (Role.EXECUTIVE, "segment_page"): 10,
    # A CSM's portfolio is aggregated live over their book: 4 their account ids, 5 as-of date,
    # 6 segments, 7 accounts by segment and band, 8 surveys, 9 audits, 10 KPI definitions, 11 KPI latest
    # values, 12 KPI daily sums, 13 band trend, 14 every mover's bands, 15 the first movers' accounts
    (Role.CSM, "portfolio"): 15,
    # 4 segments, 5 owners (filter choices), 6 as-of date, 7 count, 8 page of accounts
    (Role.EXECUTIVE, "account_list"): 8,
}


def _count_queries(client, user, name, **kwargs) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(user)
    client.get(reverse("account_list"))
    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse(name, kwargs=kwargs or None))
    assert response.status_code == 200, (name, response.status_code)
    return len(captured)


@pytest.mark.parametrize(("role", "name"), list(PAGE_QUERIES))
def test_page_query_count_does_not_grow_with_accounts(client, tenant_a, tenant_b, role, name):
    kwargs = {}
    if name == "segment_page":
        kwargs = {"segment_id": factories.segment_of(tenant_a.tenant, "bank").pk}
        kwargs_b = {"segment_id": factories.segment_of(tenant_b.tenant, "bank").pk}
    # The steady state: a nightly run on each of the 13 weekly dates the band trend reads.
    weekly = [TODAY - datetime.timedelta(days=7 * week) for week in range(13)]
    _book(tenant_a, 10)
    _nightly_segments(tenant_a, *weekly)
    small = _count_queries(client, tenant_a.user(role), name, **kwargs)
    _book(tenant_b, 500)
    _nightly_segments(tenant_b, *weekly)
    large = _count_queries(client, tenant_b.user(role), name, **(kwargs_b if kwargs else {}))
    assert small == large, f"{role} {name}: {small} queries with 10 accounts, {large} with 500"
    expected = PAGE_QUERIES[(role, name)]
    assert small == expected, f"{role} {name}: {small} queries, the comment above names {expected}"


def test_executives_read_the_nightly_segment_snapshots_which_equal_the_live_aggregate(client, tenant_a):
    """The two paths of portfolio_summaries give the same figures: executives read what the nightly
    run stored, a CSM (whole book = the whole tenant here) aggregates live."""
    _book(tenant_a, 12)
    insurer = factories.segment_of(tenant_a.tenant, "insurer")
    factories.AccountFactory(tenant=tenant_a.tenant, name="Harbor Mutual", segment=insurer)
    _nightly_segments(tenant_a, TODAY)
    executive = _get(client, tenant_a.user(Role.EXECUTIVE), "portfolio").context["summaries"]
    with context.tenant_context(tenant_a.tenant):
        from dashboards.selectors import segment_summaries

        live = segment_summaries(Account.objects.all(), as_of=TODAY, today=TODAY)
    assert executive == live
    bank = next(s for s in executive if s.code == "bank")
    assert bank.accounts == 12 and bank.kpis_reporting == 1 and bank.arr == sum(Decimal(1000 + i) for i in range(12))
    # A figure changed after the nightly run shows tomorrow, not today: the page says "as of".
    factories.AccountFactory(tenant=tenant_a.tenant, name="Added Today Bank")
    again = _get(client, tenant_a.user(Role.EXECUTIVE), "portfolio").context["summaries"]
    assert next(s for s in again if s.code == "bank").accounts == 12


def test_band_trend_counts_health_snapshots_for_dates_without_segment_snapshots(client, tenant_a):
    _book(tenant_a, 6)
    _nightly_segments(tenant_a, TODAY)  # last week predates the segment snapshots
    trend = _get(client, tenant_a.user(Role.EXECUTIVE), "portfolio").context["trend"]
    assert trend["dates"] == [WEEK_AGO.isoformat(), TODAY.isoformat()]
    assert trend["green"] == [6, 2] and trend["red"] == [0, 2] and trend["yellow"] == [0, 2]


def test_a_user_without_a_membership_finds_no_dashboard(client, tenant_a):
    stranger = factories.UserFactory(username="stranger@nowhere.test")
    client.force_login(stranger)
    assert client.get(reverse("home")).status_code == 403  # the "ask an admin for access" page
    segment = factories.segment_of(tenant_a.tenant)
    for url in (reverse("account_list"), reverse("portfolio"), reverse("segment_page", args=[segment.pk])):
        assert client.get(url).status_code == 404, url


def test_pages_use_the_tenants_own_date(client, tenant_a):
    """The middleware runs each request in the tenant's time zone, so "past its renewal date" is
    counted from the tenant's today. The zone is picked so that its date differs from UTC's now."""
    from cs_platform.tenancy.models import Tenant

    now = timezone.now()
    zone = "Pacific/Kiritimati" if now.hour >= 10 else "Pacific/Pago_Pago"  # UTC+14 / UTC-11
    local_today = now.astimezone(zoneinfo.ZoneInfo(zone)).date()
    assert local_today != now.date()
    Tenant.objects.filter(pk=tenant_a.tenant.pk).update(time_zone=zone)
    factories.AccountFactory(
        tenant=tenant_a.tenant, name="Lapsed Bank", renewal_date=local_today - datetime.timedelta(1)
    )
    factories.AccountFactory(tenant=tenant_a.tenant, name="Due Today Bank", renewal_date=local_today)
    client.force_login(tenant_a.user(Role.EXECUTIVE))
    response = client.get(reverse("account_list"), {"renewal": "overdue"})
    assert [a.name for a in response.context["page"].object_list] == ["Lapsed Bank"]
