"""A CSM's day on the account page, in a real browser: their book only, the red account explained,
a touchpoint logged with the inline form and shown at the top of the timeline."""

import datetime
from pathlib import Path

import pytest
from django.conf import settings

from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from metrics.models import SurveyResponse
from tests import factories
from tests.browser.conftest import log_in
from tests.committed import purge_tenant

pytestmark = pytest.mark.browser

TODAY = datetime.date.today()
SCREENSHOT = Path(settings.BASE_DIR) / "test-artifacts" / "screenshots" / "account-360.png"


@pytest.fixture
def book(django_db_setup, django_db_blocker):
    """Committed: a CSM owning a red account (detractor NPS, poor CSAT, renewal in 10 days, a late
    journey, a failed obligation) and a healthy one; another CSM's account in the same tenant."""
    with django_db_blocker.unblock():
        from accounts.services import account_create
        from journeys.models import JourneyTemplate
        from journeys.services import account_journey_start
        from nightly.pipeline import run_tenant

        tenant = factories.TenantFactory(slug="browser-360", name="Browser 360 Tenant")
        csm = factories.UserFactory(username="csm@b360.test", first_name="Riley", last_name="Chen")
        other = factories.UserFactory(username="other@b360.test", first_name="Sam", last_name="Ortiz")
        factories.MembershipFactory(tenant=tenant, user=csm, role=Role.CSM)
        factories.MembershipFactory(tenant=tenant, user=other, role=Role.CSM)
        segment = factories.segment_of(tenant)

        def make(name, owner, renewal_days):
            return account_create(
                tenant=tenant,
                name=name,
                segment=segment,
                owner_csm=owner,
                renewal_date=TODAY + datetime.timedelta(days=renewal_days),
            )

        red = make("Cedar Point Mutual", csm, 10)
        make("Birch Lane Credit Union", csm, 300)
        not_mine = make("Summit Ridge Savings", other, 200)
        with context.tenant_context(tenant):
            for survey_type, score in (("nps", 2), ("nps", 3), ("csat", 1)):
                SurveyResponse.objects.create(
                    tenant=tenant,
                    account=red,
                    survey_type=survey_type,
                    score=score,
                    responded_on=TODAY - datetime.timedelta(days=3),
                )
            template = JourneyTemplate.objects.filter(is_reference=True).order_by("pk").first()
        account_journey_start(
            tenant=tenant, account=red, template=template, started_on=TODAY - datetime.timedelta(days=60)
        )
        factories.ObligationFactory(
            tenant=tenant, account=red, due_date=TODAY - datetime.timedelta(days=5), status="failed"
        )
        for back in (14, 7, 0):
            run_tenant(tenant=tenant, day=TODAY - datetime.timedelta(days=back))
    yield red, not_mine, csm
    with django_db_blocker.unblock():
        from django.db import connections

        connections.close_all()
        purge_tenant(tenant.pk, [csm.pk, other.pk])


def test_csm_reads_why_the_account_is_red_and_logs_a_touchpoint(live_url, page, book):
    red, not_mine, csm = book
    log_in(page, live_url, csm.username, factories.TEST_PASSWORD)

    # Home lists the CSM's own accounts only; another CSM's account does not open at all.
    home = page.inner_text("main")
    assert "Cedar Point Mutual" in home and "Birch Lane Credit Union" in home
    assert "Summit Ridge Savings" not in home
    assert page.goto(f"{live_url}/accounts/{not_mine.pk}/").status == 404

    page.goto(f"{live_url}/accounts/{red.pk}/")
    assert page.inner_text("h1").startswith("Cedar Point Mutual")
    assert page.inner_text(".health-total .badge") == "Red"
    # "Why it is red": the breakdown names the measures that pull it down.
    breakdown = page.locator("table.components")
    red_rows = breakdown.locator("tbody tr", has=page.locator("span.badge.red"))
    assert red_rows.count() >= 2
    assert "NPS -100 (2 responses)" in breakdown.inner_text()

    # The inline form: open it with the keyboard-reachable summary, fill, submit.
    page.click("text=Log a touchpoint")
    page.select_option("#tp_kind", "meeting")
    page.fill("#tp_subject", "Recovery plan with the COO")
    page.fill("#tp_notes", "Agreed a 30-day plan for the failed SOC 2 obligation.")
    assert page.input_value("#tp_occurred_at")  # defaults to now
    page.click("#touchpoint-form button[type=submit]")
    page.wait_for_url(f"{live_url}/accounts/{red.pk}/#timeline")

    assert "Touchpoint logged: Recovery plan with the COO." in page.inner_text(".messages")
    first = page.locator("table.timeline tbody tr").first
    assert "Recovery plan with the COO" in first.inner_text() and "Meeting" in first.inner_text()
    assert "Riley Chen" in first.inner_text()
    # ...and the audit trail recorded who logged it.
    assert "touchpoint.log" in page.locator("table.audit-trail tbody tr").first.inner_text()

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert SCREENSHOT.stat().st_size > 10_000

    # On a tablet the page does not scroll sideways: wide tables scroll inside their own box.
    page.set_viewport_size({"width": 768, "height": 1024})
    page.reload()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
