"""Role rules of visible_accounts (DESIGN.md, Roles and who sees what)."""

from __future__ import annotations

import pytest

from accounts.selectors import visible_accounts
from accounts.services import account_assign_csm, account_create
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from cs_platform.tenancy.services import membership_create
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
