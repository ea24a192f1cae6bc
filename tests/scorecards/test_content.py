"""The weekly scorecard's content: its figures are the dashboards' for the same day and user, it
covers only what the user's role sees (never another tenant), honours the subscribed segments, and
costs a fixed number of queries whatever the number of accounts."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.selectors import visible_accounts
from compliance import selectors as compliance_selectors
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from dashboards import selectors as dash
from scorecards.content import weekly_scorecard
from scorecards.email import render_scorecard
from scorecards.weeks import IsoWeek
from tests import factories
from tests.scorecards import TODAY, WEEK, WEEK_AGO, build_book, dashboard_figures

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("send_day_is_today")]


def _scorecard(world, role, **kwargs):
    return weekly_scorecard(user=world.user(role), membership=world.memberships[role], week=WEEK, **kwargs)


def test_figures_equal_the_dashboards_selectors_for_the_same_day_and_user(client, tenant_a):
    accounts = build_book(tenant_a, 9, prefix="Harbor")
    insurer = factories.segment_of(tenant_a.tenant, "insurer")
    factories.AccountFactory(tenant=tenant_a.tenant, name="Lakeside Mutual", segment=insurer)
    user = tenant_a.user(Role.EXECUTIVE)
    card = _scorecard(tenant_a, Role.EXECUTIVE)

    assert card.as_of == TODAY and card.before == WEEK_AGO and not card.stale and card.whole_tenant
    expected = dashboard_figures(tenant_a, Role.EXECUTIVE)
    now, before, movers, renewals = expected.summaries, expected.earlier, expected.movers, expected.renewals
    failed, failed_total = expected.failed, expected.failed_total
    expiring, expiring_total = expected.expiring, expected.expiring_total
    # Segment sections: the very SegmentSummary objects the portfolio page shows, in its order.
    assert [section.summary for section in card.segments] == now
    assert [s.code for s in now] == ["bank", "insurer", "wealth", "fintech"]
    bank = card.segments[0]
    # By hand: 9 accounts, today 3 red / 3 yellow / 3 green, last week all 9 green.
    assert bank.summary.bands == {"red": 3, "yellow": 3, "grey": 0, "green": 3, "none": 0}
    assert (
        bank.bands_before
        == next(s.bands for s in before if s.code == "bank")
        == {
            "red": 0,
            "yellow": 0,
            "grey": 0,
            "green": 9,
            "none": 0,
        }
    )
    assert [(b, n, was, d) for b, n, was, d in bank.band_rows][:4] == [
        ("red", 3, 0, 3),
        ("yellow", 3, 0, 3),
        ("grey", 0, 0, 0),
        ("green", 3, 9, -6),
    ]
    insurer_section = card.segments[1]
    assert insurer_section.bands_before is None  # nothing scored there last week: unknown, not zero
    kpi = bank.summary.kpis[0]
    assert kpi.accounts == 9 and kpi.actual == round(sum(60 + i for i in range(9)) / 9, 2)
    assert (bank.summary.nps, bank.summary.csat, bank.summary.audits, bank.summary.audits_passed) == (100.0, 4.0, 9, 6)
    assert bank.link == settings.SITE_URL + reverse("segment_page", args=[bank.segment_id]) + "?tenant=alpha"
    # The portfolio page itself, for the same user on the same day, shows the same figures.
    client.force_login(user)
    page = client.get(reverse("portfolio"))
    assert page.context["summaries"] == [section.summary for section in card.segments]
    assert page.context["movers"]["total"] == card.movers.total

    # Movers: the dashboard's, worse first.
    assert card.movers.total == movers["total"] == 6
    assert [m.account_id for m in card.movers.items] == [a.pk for a in movers["items"]]
    assert {m.direction for m in card.movers.items} == {"worse"}
    assert card.movers.items[0].band_now == "red" and card.movers.items[0].band_before == "green"
    # Renewals at risk: red or yellow, renewing within 90 days (10 + 7i days: all 9 are), soonest first.
    expected = [a for i, a in enumerate(accounts) if i % 3 != 2]
    assert [r.account_id for r in card.renewals_at_risk.items] == [a.pk for a in renewals] == [a.pk for a in expected]
    assert card.renewals_at_risk.total == 6
    assert card.renewals_at_risk_arr == sum(a.arr for a in expected)
    assert card.renewals_at_risk.items[0].days_left == 10
    # Compliance exceptions: the compliance dashboard's selectors, plus overdue obligations by status.
    assert card.failed_audits.total == failed_total == 3  # i = 0, 4, 8
    assert [e.account_id for e in card.failed_audits.items] == [r.obligation.account_id for r in failed]
    assert card.expiring_evidence.total == expiring_total == 3  # i = 1, 4, 7
    assert [e.day for e in card.expiring_evidence.items] == [o.evidence_valid_until for o in expiring]
    assert card.overdue_obligations.total == 3  # i = 0, 3, 6
    assert {e.account for e in card.overdue_obligations.items} == {"Harbor 0000", "Harbor 0003", "Harbor 0006"}
    # Open decisions only (the resolved ones are left out), soonest due first, with owner and impact.
    assert card.decisions.total == 9
    first = card.decisions.items[0]
    assert (first.title, first.due_date, first.overdue) == ("Decide Harbor 0000", TODAY - datetime.timedelta(2), True)
    assert first.customer_impact == "Settlement delays at Harbor 0000" and first.impact_stated
    assert first.owner == tenant_a.user(Role.CSM).get_full_name()
    second = card.decisions.items[1]  # no impact written: the account's ARR and band stand in
    assert not second.impact_stated and second.customer_impact == "Not stated: account ARR 100,001, health yellow"
    assert first.fallback == "Keep as is"
    assert set(card.links) == {"portfolio", "movers", "renewals", "decisions", "decisions_closed", "compliance"}
    assert all(url.startswith(settings.SITE_URL) for url in card.links.values())
    # Every link names the tenant, so a member of several tenants lands in this one (TenantMiddleware).
    assert card.links["decisions"] == settings.SITE_URL + reverse("decision_list") + "?tenant=alpha"
    assert card.links["decisions_closed"] == settings.SITE_URL + reverse("decision_list") + (
        "?status=closed_week&tenant=alpha"
    )
    items = card.decisions.items + card.movers.items + card.renewals_at_risk.items + card.compliance_exceptions
    assert all(item.link.endswith("?tenant=alpha") for item in items)
    assert all(section.link.endswith("?tenant=alpha") for section in card.segments)


def test_each_sections_link_opens_the_dashboard_with_the_same_items(client, tenant_a):
    build_book(tenant_a, 12, prefix="Harbor")
    card = _scorecard(tenant_a, Role.EXECUTIVE)
    client.force_login(tenant_a.user(Role.EXECUTIVE))

    def page(name: str):
        response = client.get(card.links[name].removeprefix(settings.SITE_URL))
        assert response.status_code == 200, name
        return response.context["page"]

    renewals = page("renewals")  # the red and yellow accounts renewing within 90 days, soonest first
    assert renewals.paginator.count == card.renewals_at_risk.total == 8
    assert [a.name for a in renewals.object_list][: len(card.renewals_at_risk.items)] == [
        r.name for r in card.renewals_at_risk.items
    ]
    assert page("decisions").paginator.count == card.decisions.total
    assert page("decisions_closed").paginator.count == card.decisions_closed.total == 6


def test_decisions_are_those_open_on_the_figures_day_and_the_weeks_closed_ones_are_listed(tenant_a):
    build_book(tenant_a, 9, prefix="Harbor")
    card = _scorecard(tenant_a, Role.EXECUTIVE)
    # Closed 2 days ago (even i: 0, 2, 4, 6, 8, resolved) are this week's; 10 days ago (odd i) are not.
    assert card.decisions_closed.total == 5
    assert [c.account for c in card.decisions_closed.items] == [f"Harbor {i:04d}" for i in (8, 6, 4, 2, 0)]
    assert {(c.outcome, c.closed_on) for c in card.decisions_closed.items} == {
        ("resolved", TODAY - datetime.timedelta(days=2))
    }
    assert card.decisions_closed.items[0].resolution == "Agreed 8"
    text = render_scorecard(card, unsubscribe_url=None).text
    assert "== Closed in the last 7 days: 5 decisions and blockers ==" in text
    assert "Fallback: Keep as is" in text

    # Last week's email lists what was open then: the decisions closed since (open for 30 days, closed
    # 2 days ago), not the ones opened today; and what closed in its own seven days (10 days ago).
    last_week = weekly_scorecard(
        user=tenant_a.user(Role.EXECUTIVE), membership=tenant_a.memberships[Role.EXECUTIVE], week=IsoWeek.of(WEEK_AGO)
    )
    assert last_week.decisions.total == 5
    assert {d.title for d in last_week.decisions.items} == {f"Closed Harbor {i:04d}" for i in (0, 2, 4, 6, 8)}
    assert last_week.decisions_closed.total == 4
    assert {c.outcome for c in last_week.decisions_closed.items} == {"fallback"}


def test_a_manager_sees_their_team_only_and_no_tenant_ever_sees_another(tenant_a, tenant_b):
    outside = factories.AccountFactory(tenant=tenant_a.tenant, name="Outside Harbor Bank", renewal_date=TODAY)
    factories.HealthSnapshotFactory(tenant=tenant_a.tenant, account=outside, band="red", snapshot_date=TODAY)
    factories.DecisionFactory(
        tenant=tenant_a.tenant, account=outside, title="Outside decision", owner=tenant_a.user(Role.ADMIN)
    )
    build_book(tenant_a, 6, prefix="Team")  # owned by the CSM, who reports to the manager; then the nightly
    build_book(tenant_b, 6, prefix="Bravo Secret")
    factories.DecisionFactory(
        tenant=tenant_b.tenant,
        account=factories.AccountFactory(tenant=tenant_b.tenant, name="Bravo Hidden Bank"),
        title="Bravo Confidential Blocker",
        owner=tenant_b.user(Role.ADMIN),
    )

    manager = _scorecard(tenant_a, Role.MANAGER)
    executive = _scorecard(tenant_a, Role.EXECUTIVE)
    assert not manager.whole_tenant
    bank_manager, bank_exec = manager.segments[0].summary, executive.segments[0].summary
    assert bank_manager.accounts == 6 and bank_exec.accounts == 7
    assert bank_manager.bands["red"] == 2 and bank_exec.bands["red"] == 3
    assert manager.decisions.total == 6 and executive.decisions.total == 7
    assert "Outside Harbor Bank" not in {r.name for r in manager.renewals_at_risk.items}
    assert "Outside Harbor Bank" in {r.name for r in executive.renewals_at_risk.items}
    # The manager's figures are what the dashboards aggregate over the manager's own book.
    with context.tenant_context(tenant_a.tenant):
        membership = tenant_a.memberships[Role.MANAGER]
        visible = visible_accounts(tenant_a.user(Role.MANAGER), membership)
        live = dash.portfolio_summaries(visible, membership, as_of=TODAY, today=TODAY)
    assert [s.summary for s in manager.segments] == live

    for card in (manager, executive):
        rendered = render_scorecard(card, unsubscribe_url=None)
        for body in (rendered.text, rendered.html):
            assert "Bravo" not in body and "Bravo Confidential Blocker" not in body
        assert "Outside" not in rendered.text if card is manager else "Outside Harbor Bank" in rendered.text
    # Tenant B's executive sees their own data and nothing of A's.
    bravo = render_scorecard(_scorecard(tenant_b, Role.EXECUTIVE), unsubscribe_url=None)
    assert "Bravo Confidential Blocker" in bravo.text and "Bravo Secret 0000" in bravo.text
    assert "Harbor" not in bravo.text and "Team 0" not in bravo.text and "Alpha" not in bravo.text


def test_a_csm_sees_their_book_and_an_inactive_or_foreign_membership_nothing(tenant_a, tenant_b):
    build_book(tenant_a, 3, prefix="Mine")
    factories.AccountFactory(tenant=tenant_a.tenant, name="Not Mine Bank")
    card = _scorecard(tenant_a, Role.CSM)
    assert card.segments[0].summary.accounts == 3 and card.renewals_at_risk.total == 2
    membership = tenant_a.memberships[Role.EXECUTIVE]
    with pytest.raises(PermissionDenied):  # someone else's membership
        weekly_scorecard(user=tenant_b.user(Role.EXECUTIVE), membership=membership, week=WEEK)
    with context.tenant_context(tenant_a.tenant):
        membership.is_active = False
        membership.save()
    with pytest.raises(PermissionDenied):
        _scorecard(tenant_a, Role.EXECUTIVE)


def test_segment_ids_narrow_every_section(tenant_a):
    build_book(tenant_a, 3, prefix="Harbor")
    build_book(tenant_a, 3, prefix="Mutual", segment="insurer")
    insurer = factories.segment_of(tenant_a.tenant, "insurer")
    card = _scorecard(tenant_a, Role.EXECUTIVE, segment_ids=[insurer.pk])
    assert [s.summary.code for s in card.segments] == ["insurer"]
    names = (
        [m.name for m in card.movers.items]
        + [r.name for r in card.renewals_at_risk.items]
        + [d.account for d in card.decisions.items]
        + [e.account for e in card.compliance_exceptions]
    )
    assert names and all(name.startswith("Mutual") for name in names)
    assert card.decisions.total == 3 and card.movers.total == 2
    # Empty means every segment; an unknown (or another tenant's) id matches nothing.
    assert len(_scorecard(tenant_a, Role.EXECUTIVE, segment_ids=[]).segments) == 4
    assert _scorecard(tenant_a, Role.EXECUTIVE, segment_ids=[999999]).segments == ()


def test_the_week_picks_its_last_nightly_run_and_says_when_there_was_none(tenant_a):
    build_book(tenant_a, 3, prefix="Harbor")
    previous = IsoWeek.of(WEEK_AGO)
    card = weekly_scorecard(
        user=tenant_a.user(Role.EXECUTIVE), membership=tenant_a.memberships[Role.EXECUTIVE], week=previous
    )
    assert card.as_of == WEEK_AGO and card.segments[0].summary.bands["green"] == 3
    later = IsoWeek.of(TODAY + datetime.timedelta(days=14))
    stale = weekly_scorecard(
        user=tenant_a.user(Role.EXECUTIVE), membership=tenant_a.memberships[Role.EXECUTIVE], week=later
    )
    assert stale.as_of == TODAY and stale.stale
    assert "No nightly run happened during this week" in render_scorecard(stale, unsubscribe_url=None).text


# --- Query count: the same for 3 and 30 accounts ------------------------------------------------------------
# weekly_scorecard's queries, per role (whole-tenant readers after the nightly run):
SCORECARD_QUERIES = {
    # 1 the tenant, 2 the as-of date, 3 the segment snapshots of as_of, 4 those of seven days earlier,
    # 5 every mover's bands, 6 the first movers' accounts, 7 the first renewals at risk, 8 their count
    # and ARR, 9 the first open decisions (with the account's band), 10 their count, 11 the first
    # decisions closed in the week, 12 their count, 13 the first failed audits and their total, 14 those
    # audits' rows, 15 the first expiring obligations and their total, 16 those obligations' rows, 17 the
    # first overdue obligations and their total, 18 their rows
    Role.EXECUTIVE: 18,
    # 1 the tenant, 2-3 the team tree (two levels), 4 the team's account ids, 5 the as-of date, 6-12 the
    # live segment aggregate of as_of (segments, accounts by segment and band, surveys, audits, KPI
    # definitions, KPI latest values, KPI daily sums), 13-19 the same seven for seven days earlier,
    # 20-33 as the executive's 5-18
    Role.MANAGER: 33,
}


def _count(world, role, week=WEEK) -> int:
    from cs_platform.tenancy.models import Membership

    user = world.user(role)
    with context.tenant_context(world.tenant):  # as a worker loads it: the tenant not yet read
        membership = Membership.objects.get(pk=world.memberships[role].pk)
    with CaptureQueriesContext(connection) as captured:
        card = weekly_scorecard(user=user, membership=membership, week=week)
    render_scorecard(card, unsubscribe_url=None)  # rendering reads plain data: no query (asserted below)
    with CaptureQueriesContext(connection) as rendering:
        render_scorecard(card, unsubscribe_url=None)
    assert len(rendering) == 0
    return len(captured)


def test_a_past_weeks_query_count_does_not_grow_with_accounts(tenant_a, tenant_b):
    # 1 the tenant, 2 the as-of date (a week ago), 3 its segment snapshots, 4 those of seven days earlier
    # (none in build_book), 5-11 so the live aggregate for that day, 12 every mover's bands (none: no
    # snapshots that day, so no 13th for their accounts), 13 the first renewals at risk, 14 their count and
    # ARR, 15-16 open decisions, 17-18 decisions closed in the week, 19 failed audits (none up to a week
    # ago), 20 the first obligations expiring on that day (worked out in SQL) with their total, 21 their
    # rows, 22 the first overdue ones with their total (none).
    build_book(tenant_a, 3, prefix="Small")
    build_book(tenant_b, 30, prefix="Large")
    counts = [_count(world, Role.EXECUTIVE, week=WEEK.previous()) for world in (tenant_a, tenant_b)]
    assert counts == [22, 22]


@pytest.mark.parametrize("role", list(SCORECARD_QUERIES))
def test_query_count_does_not_grow_with_accounts(tenant_a, tenant_b, role):
    build_book(tenant_a, 3, prefix="Small")
    small = _count(tenant_a, role)
    build_book(tenant_b, 30, prefix="Large")
    large = _count(tenant_b, role)
    assert small == large, f"{role}: {small} queries with 3 accounts, {large} with 30"
    assert small == SCORECARD_QUERIES[role], (
        f"{role}: {small} queries, the comment above names {SCORECARD_QUERIES[role]}"
    )


def test_money_and_scores_are_decimal_safe(tenant_a):
    build_book(tenant_a, 3, prefix="Harbor")
    card = _scorecard(tenant_a, Role.EXECUTIVE)
    assert isinstance(card.renewals_at_risk_arr, Decimal)
    assert card.segments[0].summary.arr == Decimal(100000 * 3 + 3)


def test_a_tenant_without_any_nightly_run_still_gets_a_readable_scorecard(tenant_a):
    factories.AccountFactory(tenant=tenant_a.tenant, name="Brand New Bank")
    card = _scorecard(tenant_a, Role.EXECUTIVE)
    assert card.as_of is None and card.before is None and not card.stale
    assert card.segments[0].summary.accounts == 1 and card.segments[0].summary.bands["none"] == 1
    assert card.movers.total == 0 and card.renewals_at_risk.total == 0
    rendered = render_scorecard(card, unsubscribe_url=None)
    assert "No nightly health run has happened yet" in rendered.text
    assert "No nightly health run has happened yet" in rendered.html


def test_a_past_weeks_email_shows_the_obligations_as_they_stood_that_week(tenant_a):
    # build_book: obligations i = 0, 3, 6 fall due 5 days ago (stored status today: overdue); i = 1, 4, 7
    # hold evidence valid until 12 + i days from today (expiring); audits 3 days ago failed for i = 0, 4, 8.
    build_book(tenant_a, 9, prefix="Harbor")
    current = _scorecard(tenant_a, Role.EXECUTIVE)
    assert current.overdue_obligations.total == 3 and current.expiring_evidence.total == 3
    past_week = weekly_scorecard(
        user=tenant_a.user(Role.EXECUTIVE), membership=tenant_a.memberships[Role.EXECUTIVE], week=WEEK.previous()
    )
    assert past_week.figures_day == WEEK_AGO
    # A week ago none was due yet and the audits had not happened; the evidence was already within 30
    # days of expiry (19 + i days): expiring, the rest not started.
    assert past_week.overdue_obligations.total == 0
    assert past_week.expiring_evidence.total == 3
    expiring = {e.account: e.day for e in past_week.expiring_evidence.items}
    assert expiring == {f"Harbor 000{i}": TODAY + datetime.timedelta(days=12 + i) for i in (1, 4, 7)}
    assert [e.day for e in past_week.expiring_evidence.items] == sorted(expiring.values())  # soonest first
    # Each as compliance.selectors.obligations_on judges that day (held to the nightly rule elsewhere).
    with context.tenant_context(tenant_a.tenant):
        on_day = compliance_selectors.obligations_on(visible_accounts(tenant_a.user(Role.EXECUTIVE)), day=WEEK_AGO)
        assert on_day.filter(status_on="expiring").count() == 3 and not on_day.filter(status_on="overdue")
    text = render_scorecard(past_week, unsubscribe_url=None).text
    assert "0 overdue obligations, 3 with evidence expiring within 30 days" in text
