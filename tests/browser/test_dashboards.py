"""The dashboards in a real browser on a realistic tenant (the demo generator, 60 accounts, three
nightly runs a week apart): what an executive, a manager and a CSM see, and a screenshot of each
main page saved under test-artifacts/screenshots/."""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import pytest
from django.utils import timezone

from cs_platform.tenancy.models import Role
from tests.browser.conftest import log_in
from tests.committed import purge_tenant

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PASSWORD = "demo-pass-2026"


@pytest.fixture(scope="module")
def demo_tenant(django_db_setup, django_db_blocker):
    from cs_platform.tenancy import context
    from nightly.pipeline import run_tenant
    from provisioning.demo import seeder as demo

    spec = demo.DemoTenant(
        name="Browser Dashboards Tenant",
        slug="browser-dash",
        time_zone="UTC",
        users=(
            demo.DemoUser("admin@dash.test", "Dana", "Whitaker", Role.ADMIN),
            demo.DemoUser("exec@dash.test", "Marcus", "Bellamy", Role.EXECUTIVE),
            demo.DemoUser("manager@dash.test", "Elena", "Petrova", Role.MANAGER),
            demo.DemoUser("csm1@dash.test", "Jordan", "Reyes", Role.CSM, "manager@dash.test"),
            demo.DemoUser("csm2@dash.test", "Aisha", "Thompson", Role.CSM, "manager@dash.test"),
            demo.DemoUser("compliance@dash.test", "Grace", "Nakamura", Role.COMPLIANCE),
            demo.DemoUser("viewer@dash.test", "Samir", "Patel", Role.VIEWER),
        ),
        regions=(("US", 80), ("EU", 20)),
    )
    today = timezone.localdate()
    with django_db_blocker.unblock():
        admin, _ = demo.user_get_or_create("platform@dash.test", "Alex", "Morgan", superuser=True)
        report = demo.seed_tenant(spec, today=today, seed=7, accounts=60, platform_admin=admin)
        assert report.created
        from cs_platform.tenancy.models import Tenant

        tenant = Tenant.objects.get(slug=spec.slug)
        for back in (14, 7, 0):
            run_tenant(tenant=tenant, day=today - datetime.timedelta(days=back))
        with context.tenant_context(tenant):
            from accounts.selectors import visible_accounts
            from cs_platform.tenancy.models import Membership

            users = {m.user.username: m for m in Membership.objects.select_related("user")}
            csm1 = users["csm1@dash.test"]
            book = set(visible_accounts(csm1.user, csm1).values_list("name", flat=True))
            others = (
                set(
                    visible_accounts(users["csm2@dash.test"].user, users["csm2@dash.test"]).values_list(
                        "name", flat=True
                    )
                )
                - book
            )
        # The suite checks passwords with the fast MD5 hasher only (tests/conftest.py).
        from django.contrib.auth import get_user_model
        from django.contrib.auth.hashers import MD5PasswordHasher

        hasher = MD5PasswordHasher()
        get_user_model().objects.filter(pk__in=[m.user_id for m in users.values()]).update(
            password=hasher.encode(PASSWORD, hasher.salt())
        )
    yield {"tenant": tenant, "csm1_book": book, "others": others}
    with django_db_blocker.unblock():
        from django.db import connections

        connections.close_all()
        purge_tenant(tenant.pk, [m.user_id for m in users.values()] + [admin.pk])


def _shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_executive_opens_a_segment_scorecard_whose_charts_have_data(live_url, page, demo_tenant):
    log_in(page, live_url, "exec@dash.test", PASSWORD)
    assert page.locator("h1").inner_text().startswith("Portfolio")
    page.wait_for_selector("#band-trend-chart .main-svg")
    # Three nightly runs a week apart: three weekly points, the same as the table beside the chart.
    assert page.evaluate("document.getElementById('band-trend-chart').data[0].x.length") == 3
    page.click("text=Accounts per health band, weekly, as a table")
    assert page.locator("details.chart-table tbody tr").count() == 3
    _shot(page, "portfolio")

    page.click("table.segments >> text=Banks and Credit Unions")
    page.wait_for_selector("#kpi-attainment-chart .main-svg")
    kpis = page.evaluate("document.getElementById('kpi-attainment-chart').data[0].y")
    rows = page.locator("table.kpis tbody th").all_inner_texts()
    assert kpis and len(kpis) == len(rows)
    assert all(name in row for name, row in zip(kpis, rows, strict=True))
    assert page.evaluate("document.getElementById('band-trend-chart').data.length") == 4  # one trace per band
    _shot(page, "segment-scorecard")

    # The drill-down: the segment's accounts in the list, filtered.
    page.click("text=/All \\d+ Banks and Credit Unions accounts/")
    page.wait_for_url("**/accounts/?segment=bank&sort=risk")
    segments = set(page.locator("table.accounts tbody td:nth-child(2)").all_inner_texts())
    assert segments == {"Banks and Credit Unions"}
    _shot(page, "account-list")


def test_csm_home_shows_only_their_book_and_the_list_filters_by_keyboard(live_url, page, demo_tenant):
    log_in(page, live_url, "csm1@dash.test", PASSWORD)
    assert page.locator("h1").inner_text().startswith("Your book")
    shown = set(page.locator("table.accounts tbody td:first-child a").all_inner_texts())
    assert shown and shown <= demo_tenant["csm1_book"]
    assert not shown & demo_tenant["others"]
    _shot(page, "home-csm")

    # Keyboard only: the search box, type, Enter.
    page.goto(live_url + "/accounts/")
    name = sorted(demo_tenant["csm1_book"])[0]
    page.focus("input[name=q]")
    page.keyboard.type(name)
    page.keyboard.press("Enter")
    page.wait_for_url("**/accounts/?q=*")
    assert page.locator("table.accounts tbody td:first-child a").all_inner_texts() == [name]


def test_manager_home_shows_each_csms_load(live_url, page, demo_tenant):
    log_in(page, live_url, "manager@dash.test", PASSWORD)
    assert page.locator("h1").inner_text().startswith("Your team's book")
    load = page.inner_text("section[aria-labelledby=team-h] table")
    assert "Jordan Reyes" in load and "Aisha Thompson" in load
    _shot(page, "home-manager")


def test_csm_works_the_overdue_decisions_from_the_decisions_page(live_url, page, demo_tenant):
    def count(view: str) -> int:
        return int(page.inner_text(f"#view-{view} .badge"))

    log_in(page, live_url, "csm1@dash.test", PASSWORD)
    page.click("nav.mainnav >> text=Decisions")
    page.wait_for_url("**/decisions/")
    accounts = set(page.locator("#decisions tbody td:nth-child(3) a").all_inner_texts())
    assert accounts and accounts <= demo_tenant["csm1_book"]  # the demo gives every CSM open decisions
    page.click("#view-overdue")
    page.wait_for_url("**/decisions/?status=overdue")
    overdue, closed = count("overdue"), count("closed_week")
    assert overdue > 0 and page.locator("#decisions tbody tr").count() == min(overdue, 50)
    assert page.locator("#decisions tbody .badge.red", has_text="overdue").count() == min(overdue, 50)
    _shot(page, "decisions-overdue")

    # Resolve the most overdue one: the form, then back on the list it has moved to "closed this week".
    title = page.locator("#decisions tbody tr").first.locator("th").inner_text().split("\n")[0]
    page.locator("#decisions tbody tr").first.locator("text=Resolve").click()
    page.fill("textarea[name=resolution]", "Agreed on the call with the client's COO.")
    page.click("button[type=submit]:has-text('Resolve')")
    page.wait_for_url(re.compile(r"/accounts/\d+/#decisions$"))
    page.goto(live_url + "/decisions/?status=closed_week&q=" + title.replace(" ", "+"))
    assert count("overdue") == overdue - 1 and count("closed_week") == closed + 1
    assert "Agreed on the call with the client's COO." in page.inner_text("#decisions")
