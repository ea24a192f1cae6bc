"""The access policy (cs_platform.tenancy.policy): README's table is the policy, every capability is used, and
the one rule for refusals holds on pages and in the API: outside your tenant or book 404, a page or action your
role may not use 403, in the site's layout with the reason and a way back."""

from __future__ import annotations

import pathlib
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from cs_platform.tenancy.models import Role
from cs_platform.tenancy.policy import HOME_PAGE, POLICY, Capability
from tests import factories
from tests.api.helpers import api_post
from tests.helpers import log_in_as, other_csm_account, owned_account, page_text

ROOT = pathlib.Path(__file__).resolve().parents[2]
# The README's column order.
README_ROLES = (Role.ADMIN, Role.EXECUTIVE, Role.MANAGER, Role.CSM, Role.COMPLIANCE, Role.VIEWER)
# The settings pages, each behind one capability, with the main navigation's link to it.
SETTINGS_PAGES = {
    "nightly_runs": Capability.VIEW_NIGHTLY_RUNS,
    "api_tokens": Capability.MANAGE_API_TOKENS,
    "webhooks": Capability.MANAGE_WEBHOOKS,
    "health_model": Capability.EDIT_HEALTH_MODEL,
    "weekly_email_deliveries": Capability.MANAGE_WEEKLY_EMAIL,
    "security_settings": Capability.MANAGE_SECURITY_SETTINGS,
}


def _readme_table() -> dict[str, tuple[str, frozenset[str]]]:
    """{capability: (what it lets a person do, roles ticked)} from README's Roles section."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Roles\n", 1)[1].split("\n## ", 1)[0]
    table = {}
    for line in section.splitlines():
        row = re.match(r"^\| `(\w+)`: (.+?) \|(.*)\|$", line)
        if row:
            cells = [cell.strip() for cell in row.group(3).split("|")]
            ticked = frozenset(role for role, cell in zip(README_ROLES, cells, strict=True) if cell == "✓")
            table[row.group(1)] = (row.group(2), ticked)
    return table


def test_the_readme_table_is_the_policy():
    """The README documents who may do what; this holds it and the code to each other, so neither changes
    alone (a role set restated in a test would only hold one test to it)."""
    assert _readme_table() == {c.value: (c.does, c.roles) for c in Capability}


def test_every_role_is_a_role_and_has_a_home_page():
    assert set(HOME_PAGE) == set(Role.values)
    assert set(POLICY) == set(Capability)
    for capability in Capability:
        assert capability.roles and capability.roles <= set(Role.values), capability


def test_viewers_only_see():
    """Viewers read every account and post nothing: seeing the tenant is the one capability they hold."""
    assert {c for c in Capability if Role.VIEWER in c.roles} == {Capability.SEE_WHOLE_TENANT}


def test_every_capability_decides_something():
    """A capability nothing reads is a promise the code does not keep: each one is named by a view, a
    viewset, a selector or service (`Capability.X`) or a template (`can.x`)."""
    sources = [
        path
        for path in ROOT.rglob("*")
        if path.suffix in (".py", ".html")
        and not {".venv", "tests", "node_modules", ".git"} & set(path.relative_to(ROOT).parts)
        and path.name != "policy.py"
    ]
    text = "\n".join(path.read_text(encoding="utf-8") for path in sources)
    unused = [c for c in Capability if f"Capability.{c.name}" not in text and f"can.{c.value}" not in text]
    assert not unused, unused


# --- pages ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("role", Role.values)
def test_settings_pages_and_their_links_follow_the_policy(client, tenant_a, role):
    """Each settings page answers 200 to the roles holding its capability and 403 to the others, and the
    main navigation links to it exactly for the former (the template helper `can`)."""
    log_in_as(client, tenant_a, role)
    nav = client.get(reverse("account_list")).content.decode().split('<nav class="mainnav"', 1)[1].split("</nav>")[0]
    for name, capability in SETTINGS_PAGES.items():
        allowed = role in capability.roles
        assert client.get(reverse(name)).status_code == (200 if allowed else 403), (role, name)
        assert (f'href="{reverse(name)}"' in nav) is allowed, (role, name)


@pytest.mark.django_db
def test_a_refusal_is_the_sites_403_page_with_the_reason_and_a_way_back(client, tenant_a):
    account = owned_account(tenant_a)
    refused = sorted(set(Role.values) - Capability.LOG_TOUCHPOINTS.roles)[0]
    log_in_as(client, tenant_a, refused)
    response = client.get(reverse("touchpoint_log", args=[account.pk]))
    assert response.status_code == 403
    body = page_text(response)
    assert f"Your role ({Role(refused).label}) cannot log touchpoints." in body
    assert '<nav class="mainnav"' in body and f'href="{reverse("home")}"' in body  # the layout, a way back


@pytest.mark.django_db
def test_outside_the_book_is_404_before_any_refusal(client, tenant_a, tenant_b):
    """A CSM may not reassign. On an account of their book that is a 403; on one outside their book, or of
    another tenant, the account does not exist for them: 404, so the refusal confirms no id."""
    assert Role.CSM not in Capability.REASSIGN_ACCOUNTS.roles
    mine, not_mine, theirs = owned_account(tenant_a), other_csm_account(tenant_a), owned_account(tenant_b)
    log_in_as(client, tenant_a, Role.CSM)
    assert client.get(reverse("account_reassign", args=[mine.pk])).status_code == 403
    assert client.get(reverse("account_reassign", args=[not_mine.pk])).status_code == 404
    assert client.get(reverse("account_reassign", args=[theirs.pk])).status_code == 404
    assert client.get(reverse("account_reassign", args=[987_654_321])).status_code == 404


@pytest.mark.django_db
def test_a_login_without_membership_finds_no_page(client, tenant_a):
    client.force_login(factories.UserFactory(username="nobody@example.test"))
    assert client.get(reverse("home")).status_code == 403  # the page that says how to get access
    for name in ("account_list", "portfolio", "decision_list", "api_tokens", "webhooks"):
        assert client.get(reverse(name)).status_code == 404, name


# --- API -----------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("role", Role.values)
def test_api_writes_follow_the_same_capability_as_the_page(client, tenant_a, role):
    """The touchpoint form and POST /api/v1/touchpoints/ read one capability: both let exactly its roles in."""
    account = owned_account(tenant_a)
    log_in_as(client, tenant_a, role)
    body = {"account": account.pk, "kind": "call", "subject": "Renewal call", "occurred_at": timezone.now().isoformat()}
    response = api_post(client, "/api/v1/touchpoints/", body)
    page = client.get(reverse("touchpoint_log", args=[account.pk]))
    if role in Capability.LOG_TOUCHPOINTS.roles:
        assert response.status_code == 201, response.content
        assert page.status_code == 200
    else:
        assert response.status_code == 403 and response.json()["code"] == "permission_denied"
        assert page.status_code == 403


@pytest.mark.django_db
def test_api_refusal_on_one_object_waits_for_the_lookup(client, tenant_a, tenant_b):
    """A viewer may not resolve decisions: 403 on one of their tenant, 404 on another tenant's."""
    assert Role.VIEWER not in Capability.MANAGE_DECISIONS.roles
    mine = factories.DecisionFactory(tenant=tenant_a.tenant, owner=tenant_a.user(Role.CSM))
    theirs = factories.DecisionFactory(tenant=tenant_b.tenant, owner=tenant_b.user(Role.CSM))
    log_in_as(client, tenant_a, Role.VIEWER)
    assert api_post(client, f"/api/v1/decisions/{mine.pk}/resolve/", {}).status_code == 403
    assert api_post(client, f"/api/v1/decisions/{theirs.pk}/resolve/", {}).status_code == 404
