import datetime

import pytest

from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from metrics.models import SurveyResponse
from tests import factories
from tests.browser.conftest import log_in
from tests.committed import purge_tenant

pytestmark = pytest.mark.browser

DAY = datetime.date(2026, 11, 20)


@pytest.fixture
def scored_account(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        from accounts.services import account_create
        from nightly.pipeline import run_tenant

        tenant = factories.TenantFactory(slug="browser-chart", name="Browser Chart Tenant")
        user = factories.UserFactory(username="csm@chart.test", first_name="Riley", last_name="Chen")
        factories.MembershipFactory(tenant=tenant, user=user, role=Role.CSM)
        account = account_create(
            tenant=tenant, name="Cedar Point Mutual", segment=factories.segment_of(tenant), owner_csm=user
        )
        with context.tenant_context(tenant):
            SurveyResponse.objects.create(tenant=tenant, account=account, survey_type="nps", score=3, responded_on=DAY)
        for back in (20, 10, 0):
            run_tenant(tenant=tenant, day=DAY - datetime.timedelta(days=back))
    yield account, user
    with django_db_blocker.unblock():
        from django.db import connections

        connections.close_all()
        purge_tenant(tenant.pk, [user.pk])


def test_account_page_draws_the_health_trend_and_explains_the_score(live_url, page, scored_account):
    account, user = scored_account
    log_in(page, live_url, user.username, factories.TEST_PASSWORD)
    page.click("text=Cedar Point Mutual")
    page.wait_for_url(f"{live_url}/accounts/{account.pk}/")

    breakdown = page.inner_text("table.components")
    assert "NPS -100 (1 responses)" in breakdown and "missing" in breakdown
    # plotly.js, from our static files, drew the three nightly points.
    page.wait_for_selector("#health-trend-chart .main-svg")
    points = page.evaluate("document.getElementById('health-trend-chart').data[0].x.length")
    assert points == 3
    page.click("text=Health over the last 90 days as a table")
    assert page.locator("details.chart-table tbody tr").count() == 3
