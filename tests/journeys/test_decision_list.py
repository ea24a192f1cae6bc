"""The decisions page: every decision and blocker of the user's book, in views (open, overdue, escalated,
closed in the last 7 days, closed, all), filtered, sorted and paged, in a query count that does not grow
with the number of decisions. Another tenant's or another CSM's decisions never show."""

from __future__ import annotations

import datetime
import zoneinfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from journeys.models import Decision
from tests import factories
from tests.helpers import log_in_as, other_csm_account, owned_account, page_text

pytestmark = pytest.mark.django_db


def _url() -> str:
    return reverse("decision_list")


def _decision(account, owner, title: str, *, due_in: int = 5, **fields) -> Decision:
    with context.tenant_context(account.tenant):
        return Decision.objects.create(
            tenant=account.tenant,
            account=account,
            owner=owner,
            title=title,
            due_date=timezone.localdate() + datetime.timedelta(days=due_in),
            fallback=f"Fallback of {title}",
            **fields,
        )


def _titles(response) -> list[str]:
    return [d.title for d in response.context["page"].object_list]


@pytest.fixture
def book(tenant_a):
    """One account in the CSM's book with a decision in every state, one in another CSM's book."""
    mine = owned_account(tenant_a, "Harbor Point Bank")
    csm, manager = tenant_a.user(Role.CSM), tenant_a.user(Role.MANAGER)
    now = timezone.now()
    _decision(mine, csm, "Open on time", due_in=5, customer_impact="Late statements")
    _decision(mine, manager, "Open overdue", due_in=-3, kind="blocker")
    _decision(mine, csm, "Escalated", due_in=-5, status="escalated", escalated_at=now, escalated_to=manager)
    _decision(
        mine,
        csm,
        "Closed yesterday",
        due_in=-1,
        status="resolved",
        resolved_at=now - datetime.timedelta(days=1),
        resolution="Went with ISO 20022",
    )
    _decision(
        mine,
        csm,
        "Closed last month",
        due_in=-30,
        status="fallback",
        resolved_at=now - datetime.timedelta(days=30),
        resolution="Fallback applied",
    )
    theirs = other_csm_account(tenant_a, "Keystone Savings")
    _decision(theirs, theirs.owner_csm, "Someone else's")
    return mine


def test_views_hold_the_right_decisions_and_their_counts(client, tenant_a, book):
    log_in_as(client, tenant_a, Role.CSM)
    expected = {
        None: ["Escalated", "Open overdue", "Open on time"],  # the default: open, soonest due first
        "open": ["Escalated", "Open overdue", "Open on time"],
        "overdue": ["Escalated", "Open overdue"],
        "escalated": ["Escalated"],
        "closed_week": ["Closed yesterday"],
        "closed": ["Closed last month", "Closed yesterday"],
        "all": ["Closed last month", "Escalated", "Open overdue", "Closed yesterday", "Open on time"],
    }
    for status, titles in expected.items():
        response = client.get(_url(), {"status": status} if status else {})
        assert response.status_code == 200
        assert _titles(response) == titles, status
    counts = {key: n for key, _, n in response.context["views"]}
    assert counts == {"open": 3, "overdue": 2, "escalated": 1, "closed_week": 1, "closed": 2, "all": 5}
    body = page_text(client.get(_url(), {"status": "closed_week"}))
    assert "Went with ISO 20022" in body and "Someone else's" not in body


def test_a_csm_sees_their_book_a_manager_their_team_and_an_executive_everything(client, tenant_a, tenant_b, book):
    factories.DecisionFactory(tenant=tenant_b.tenant, owner=tenant_b.user(Role.CSM), title="Bravo's decision")
    seen = {}
    for role in (Role.CSM, Role.MANAGER, Role.EXECUTIVE, Role.VIEWER, Role.COMPLIANCE):
        log_in_as(client, tenant_a, role)
        seen[role] = set(_titles(client.get(_url(), {"status": "all"})))
    mine = {"Open on time", "Open overdue", "Escalated", "Closed yesterday", "Closed last month"}
    assert seen[Role.CSM] == mine
    assert seen[Role.MANAGER] == mine  # the other CSM is not in the manager's team
    assert seen[Role.EXECUTIVE] == seen[Role.VIEWER] == seen[Role.COMPLIANCE] == mine | {"Someone else's"}
    log_in_as(client, tenant_b, Role.EXECUTIVE)
    assert _titles(client.get(_url(), {"status": "all"})) == ["Bravo's decision"]


def test_filters_sort_and_bad_values(client, tenant_a, book):
    log_in_as(client, tenant_a, Role.CSM)
    manager = tenant_a.user(Role.MANAGER)
    assert _titles(client.get(_url(), {"kind": "blocker"})) == ["Open overdue"]
    assert _titles(client.get(_url(), {"owner": str(manager.pk)})) == ["Open overdue"]
    assert _titles(client.get(_url(), {"q": "overdue"})) == ["Open overdue"]
    assert _titles(client.get(_url(), {"q": "harbor point", "status": "escalated"})) == ["Escalated"]
    assert _titles(client.get(_url(), {"segment": "insurer"})) == []
    assert _titles(client.get(_url(), {"segment": "bank"})) == ["Escalated", "Open overdue", "Open on time"]
    assert _titles(client.get(_url(), {"sort": "-due"})) == ["Open on time", "Open overdue", "Escalated"]
    assert _titles(client.get(_url(), {"status": "closed", "sort": "-closed"})) == [
        "Closed yesterday",
        "Closed last month",
    ]
    # A stale bookmark: unknown view, owner of another book and sort key are dropped, not errors.
    stranger = factories.UserFactory()
    response = client.get(_url(), {"status": "nope", "owner": str(stranger.pk), "sort": "password"})
    assert response.status_code == 200
    assert _titles(response) == ["Escalated", "Open overdue", "Open on time"]
    # The owner choices are the owners of the book's decisions only.
    names = {name for _, name in response.context["choices"]["owner"]}
    assert names == {
        manager.get_full_name() or manager.username,
        tenant_a.user(Role.CSM).get_full_name() or tenant_a.user(Role.CSM).username,
    }


def test_closed_in_the_last_7_days_counts_in_the_tenants_time_zone(client, tenant_a):
    tenant = tenant_a.tenant
    tenant.time_zone = "Pacific/Auckland"  # far from UTC, so a UTC day boundary would pick other rows
    tenant.save(update_fields=["time_zone"])
    zone = zoneinfo.ZoneInfo("Pacific/Auckland")
    account = owned_account(tenant_a)
    csm = tenant_a.user(Role.CSM)
    today = timezone.now().astimezone(zone).date()
    start = datetime.datetime.combine(today - datetime.timedelta(days=6), datetime.time(), tzinfo=zone)
    _decision(account, csm, "Just inside", status="resolved", resolved_at=start + datetime.timedelta(minutes=1))
    _decision(account, csm, "Just outside", status="resolved", resolved_at=start - datetime.timedelta(minutes=1))
    log_in_as(client, tenant_a, Role.CSM)
    assert _titles(client.get(_url(), {"status": "closed_week"})) == ["Just inside"]


def test_resolve_links_only_for_roles_that_may_resolve_and_only_on_open_rows(client, tenant_a, book):
    with context.tenant_context(tenant_a.tenant):
        open_one = Decision.objects.get(title="Open on time")
        closed = Decision.objects.get(title="Closed yesterday")
    log_in_as(client, tenant_a, Role.CSM)
    body = page_text(client.get(_url(), {"status": "all"}))
    assert reverse("decision_resolve", args=[open_one.pk]) in body
    assert reverse("decision_resolve", args=[closed.pk]) not in body
    log_in_as(client, tenant_a, Role.VIEWER)
    body = page_text(client.get(_url(), {"status": "all"}))
    assert "Open on time" in body and reverse("decision_resolve", args=[open_one.pk]) not in body


def test_pages_and_a_member_without_membership(client, tenant_a):
    account = owned_account(tenant_a)
    with context.tenant_context(tenant_a.tenant):
        Decision.objects.bulk_create(
            Decision(
                tenant=tenant_a.tenant,
                account=account,
                owner=tenant_a.user(Role.CSM),
                title=f"D{i:03d}",
                due_date=timezone.localdate() + datetime.timedelta(days=i),
                fallback="-",
            )
            for i in range(60)
        )
    log_in_as(client, tenant_a, Role.CSM)
    first = client.get(_url())
    assert first.context["page"].paginator.count == 60 and len(_titles(first)) == 50
    assert _titles(client.get(_url(), {"page": 2})) == [f"D{i:03d}" for i in range(50, 60)]
    client.logout()
    client.force_login(factories.UserFactory())
    assert client.get(_url()).status_code == 404  # no membership anywhere: no such page


# --- Query count ------------------------------------------------------------------------------------------
def _book_of(world, n: int) -> None:
    account = owned_account(world, f"{world.tenant.slug} bank")
    other = other_csm_account(world, f"{world.tenant.slug} other")
    with context.tenant_context(world.tenant):
        Decision.objects.bulk_create(
            Decision(
                tenant=world.tenant,
                account=account if i % 2 else other,
                owner=world.user(Role.CSM),
                title=f"D{i}",
                due_date=timezone.localdate() + datetime.timedelta(days=i % 20 - 10),
                fallback="-",
                status=("open", "escalated", "resolved", "fallback")[i % 4],
                resolved_at=timezone.now() if i % 4 >= 2 else None,
            )
            for i in range(n)
        )


def _queries(client, world, role) -> int:
    log_in_as(client, world, role)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(_url(), {"status": "all"})
    assert response.status_code == 200 and response.context["page"].object_list
    return len(captured)


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        # 1 session, 2 user, 3 membership with tenant; 4 decision owners (filter choices), 5 segments,
        # 6 the page's count, 7 counts of every view, 8 the page of decisions with account, owner and
        # escalation target
        (Role.EXECUTIVE, 8),
        # as the executive, plus 4 the CSM's permitted account ids (visible_accounts reads them once)
        (Role.CSM, 9),
    ],
)
def test_query_count_does_not_grow_with_decisions(client, tenant_a, tenant_b, role, expected):
    _book_of(tenant_a, 8)
    small = _queries(client, tenant_a, role)
    _book_of(tenant_b, 400)
    large = _queries(client, tenant_b, role)
    assert small == large == expected, (small, large)
