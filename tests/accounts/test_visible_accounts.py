"""Role rules of visible_accounts (DESIGN.md, Roles and who sees what)."""

from __future__ import annotations

import pytest

from accounts.selectors import visible_accounts
from accounts.services import account_assign_csm, account_create
from cs_platform.identity.services import membership_create
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from cs_platform.tenancy.policy import Capability
from tests import factories


@pytest.fixture
def book(tenant_a, tenant_b):
    """Tenant A: the CSM (reporting to the manager) owns 2 accounts, a CSM outside the team owns 1,
    1 is unassigned; tenant B has an account owned by its own CSM."""
    tenant = tenant_a.tenant
    admin = tenant_a.user(Role.ADMIN)
    outsider = factories.UserFactory(username="outsider@alpha.test")
    membership_create(tenant=tenant, user=outsider, role=Role.CSM, actor=admin)
    segment = factories.segment_of(tenant)

    def make(name, owner):
        return account_create(tenant=tenant, actor=admin, name=name, segment=segment, owner_csm=owner)

    accounts = {
        "csm_1": make("Harbor Point Bank", tenant_a.user(Role.CSM)),
        "csm_2": make("Lakeshore Credit Union", tenant_a.user(Role.CSM)),
        "outsider": make("Summit Ridge Insurance", outsider),
        "unassigned": make("Copper Creek Savings", None),
    }
    factories.AccountFactory(tenant=tenant_b.tenant, name="Bravo Only Bank")
    return accounts, outsider


def _names(user, tenant):
    with context.tenant_context(tenant):
        return sorted(visible_accounts(user).values_list("name", flat=True))


ALL_A = ["Copper Creek Savings", "Harbor Point Bank", "Lakeshore Credit Union", "Summit Ridge Insurance"]


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.ADMIN, Role.EXECUTIVE, Role.COMPLIANCE, Role.VIEWER])
def test_tenant_wide_roles_see_every_account_of_their_tenant_only(tenant_a, book, role):
    assert _names(tenant_a.user(role), tenant_a.tenant) == ALL_A


@pytest.mark.django_db
def test_a_csm_sees_the_accounts_they_hold_the_object_permission_on(tenant_a, book):
    accounts, outsider = book
    assert _names(tenant_a.user(Role.CSM), tenant_a.tenant) == ["Harbor Point Bank", "Lakeshore Credit Union"]
    assert _names(outsider, tenant_a.tenant) == ["Summit Ridge Insurance"]
    # An extra assignment (a second CSM on the account) widens the book through guardian.
    account_assign_csm(tenant=tenant_a.tenant, account=accounts["unassigned"], user=outsider)
    assert _names(outsider, tenant_a.tenant) == ["Copper Creek Savings", "Summit Ridge Insurance"]


@pytest.mark.django_db
def test_guardian_reports_the_same_permission(tenant_a, book):
    accounts, _ = book
    csm = tenant_a.user(Role.CSM)
    with context.tenant_context(tenant_a.tenant):
        assert csm.has_perm("accounts.view_account", accounts["csm_1"])
        assert not csm.has_perm("accounts.view_account", accounts["outsider"])


@pytest.mark.django_db
def test_a_manager_sees_their_teams_accounts(tenant_a, book):
    assert _names(tenant_a.user(Role.MANAGER), tenant_a.tenant) == ["Harbor Point Bank", "Lakeshore Credit Union"]


@pytest.mark.django_db
def test_a_manager_sees_reports_of_reports(tenant_a, book):
    _, outsider = book
    with context.tenant_context(tenant_a.tenant):
        from cs_platform.tenancy.models import Membership

        team_lead = Membership.objects.get(user=outsider)
        team_lead.manager = tenant_a.memberships[Role.CSM]  # outsider now reports to the CSM
        team_lead.save()
    assert _names(tenant_a.user(Role.MANAGER), tenant_a.tenant) == [
        "Harbor Point Bank",
        "Lakeshore Credit Union",
        "Summit Ridge Insurance",
    ]


@pytest.mark.django_db
def test_no_membership_in_the_current_tenant_means_nothing(tenant_a, tenant_b, book):
    assert _names(tenant_b.user(Role.ADMIN), tenant_a.tenant) == []
    with context.tenant_context(tenant_b.tenant):
        assert list(visible_accounts(tenant_a.user(Role.ADMIN)).values_list("name", flat=True)) == []


@pytest.mark.django_db
def test_an_inactive_membership_sees_nothing(tenant_a, book):
    with context.tenant_context(tenant_a.tenant):
        membership = tenant_a.memberships[Role.EXECUTIVE]
        membership.is_active = False
        membership.save()
    assert _names(tenant_a.user(Role.EXECUTIVE), tenant_a.tenant) == []


# --- book_segments: the same books, for many members at once -------------------------------------------
@pytest.mark.django_db
def test_book_segments_equals_visible_accounts_for_every_restricted_member_in_three_queries(tenant_a, tenant_b):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from accounts.models import Account
    from accounts.selectors import book_segments
    from cs_platform.tenancy.models import Membership

    tenant, admin = tenant_a.tenant, tenant_a.user(Role.ADMIN)
    segments = {code: factories.segment_of(tenant, code) for code in ("bank", "insurer", "wealth", "fintech")}
    # A two-level team under the fixture's manager: the CSM reports to it, a lead and the lead's CSM too.
    manager = tenant_a.memberships[Role.MANAGER]
    lead_user = factories.UserFactory(username="lead@alpha.test")
    lead = membership_create(tenant=tenant, user=lead_user, role=Role.MANAGER, actor=admin)
    junior_user = factories.UserFactory(username="junior@alpha.test")
    junior = membership_create(tenant=tenant, user=junior_user, role=Role.CSM, actor=admin)
    gone_user = factories.UserFactory(username="gone@alpha.test")
    gone = membership_create(tenant=tenant, user=gone_user, role=Role.CSM, actor=admin)
    outsider_user = factories.UserFactory(username="outsider2@alpha.test")
    outsider = membership_create(tenant=tenant, user=outsider_user, role=Role.CSM, actor=admin)
    with context.tenant_context(tenant):
        Membership.objects.filter(pk=lead.pk).update(manager=manager)
        Membership.objects.filter(pk__in=[junior.pk, gone.pk]).update(manager=lead)

    def make(name, owner, segment):
        return account_create(tenant=tenant, actor=admin, name=name, segment=segments[segment], owner_csm=owner)

    make("A", tenant_a.user(Role.CSM), "bank")
    make("B", junior_user, "insurer")
    make("C", gone_user, "fintech")
    make("D", outsider_user, "wealth")
    shared = make("E", outsider_user, "fintech")
    account_assign_csm(tenant=tenant, account=shared, user=tenant_a.user(Role.CSM))  # a second CSM on it
    with context.tenant_context(tenant):
        # Owned without the permission (an import that set the owner only): managers see it, CSMs not.
        Account.objects.create(tenant=tenant, name="F", segment=segments["wealth"], owner_csm=junior_user)
    factories.AccountFactory(tenant=tenant_b.tenant, name="Bravo", segment=factories.segment_of(tenant_b.tenant))
    with context.tenant_context(tenant):
        Membership.objects.filter(pk=gone.pk).update(is_active=False)  # an inactive report is no team

    with context.tenant_context(tenant):
        members = list(Membership.objects.filter(tenant=tenant).order_by("pk"))
        with CaptureQueriesContext(connection) as queries:
            books = book_segments(members)
        assert len(queries) == 3  # the team structure, the permissions' segments, the owned accounts' segments
        for m in members:
            if m.role in Capability.SEE_WHOLE_TENANT.roles or not m.is_active:
                assert m.pk not in books
                continue
            expected = set(visible_accounts(m.user, m).values_list("segment_id", flat=True))
            assert books[m.pk] == expected, m
    by_code = {seg.pk: code for code, seg in segments.items()}
    assert {by_code[pk] for pk in books[manager.pk]} == {"bank", "insurer", "fintech", "wealth"}
    assert {by_code[pk] for pk in books[lead.pk]} == {"insurer", "wealth"}
    assert {by_code[pk] for pk in books[junior.pk]} == {"insurer"}
    assert {by_code[pk] for pk in books[tenant_a.memberships[Role.CSM].pk]} == {"bank", "fintech"}
    assert {by_code[pk] for pk in books[outsider.pk]} == {"wealth", "fintech"}
    assert gone.pk not in books
