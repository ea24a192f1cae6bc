import datetime

import pytest
from django.urls import reverse

from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from cs_platform.tenancy.policy import Capability
from metrics.models import NightlyRun, SurveyResponse
from nightly.pipeline import run_tenant
from tests import factories

DAY = datetime.date(2026, 11, 20)


@pytest.mark.django_db
def test_admins_see_nightly_runs_including_failures(client, tenant_a, tenant_b, django_assert_num_queries):
    with context.tenant_context(tenant_a.tenant):
        NightlyRun.objects.create(
            tenant=tenant_a.tenant,
            run_date=DAY,
            status="failed",
            attempts=2,
            error="OperationalError: server closed the connection",
        )
    with context.tenant_context(tenant_b.tenant):
        NightlyRun.objects.create(tenant=tenant_b.tenant, run_date=DAY - datetime.timedelta(days=1), status="done")
    client.force_login(tenant_a.user(Role.ADMIN))
    client.get(reverse("home"))  # stores the active tenant in the session
    # session, user, memberships, runs
    with django_assert_num_queries(4):
        body = client.get(reverse("nightly_runs")).content.decode()
    assert "server closed the connection" in body and "2026-11-20" in body
    assert "2026-11-19" not in body  # the other tenant's run


@pytest.mark.django_db
@pytest.mark.parametrize("role", sorted(set(Role.values) - Capability.VIEW_NIGHTLY_RUNS.roles))
def test_other_roles_do_not_get_the_runs_page(client, tenant_a, role):
    client.force_login(tenant_a.user(role))
    assert client.get(reverse("nightly_runs")).status_code == 403  # a page their role may not use


@pytest.mark.django_db
def test_account_page_explains_the_health_score(client, tenant_a):
    tenant = tenant_a.tenant
    account = factories.AccountFactory(tenant=tenant, name="Granite Bay Credit Union")
    with context.tenant_context(tenant):
        SurveyResponse.objects.create(tenant=tenant, account=account, survey_type="nps", score=2, responded_on=DAY)
    run_tenant(tenant=tenant, day=DAY)
    client.force_login(tenant_a.user(Role.EXECUTIVE))
    body = client.get(reverse("account_detail", args=[account.pk])).content.decode()
    assert "NPS -100 (1 responses)" in body
    assert "missing" in body  # measures without data are shown as missing, not zero
    assert "Compliance" in body and "Days to renewal" in body
    # The page title is the account's name alone, and the breakdown appears once, in the page body.
    assert "<title>Granite Bay Credit Union · " in body
    assert body.count('<table class="data components">') == 1


@pytest.mark.django_db
def test_account_page_has_the_90_day_trend_as_chart_data_and_table(client, tenant_a, django_assert_num_queries):
    tenant = tenant_a.tenant
    account = factories.AccountFactory(tenant=tenant, name="Harbor Light Bank")
    other = factories.AccountFactory(tenant=tenant)
    with context.tenant_context(tenant):
        SurveyResponse.objects.create(tenant=tenant, account=account, survey_type="nps", score=10, responded_on=DAY)
    days = [DAY - datetime.timedelta(days=n) for n in (120, 30, 7, 0)]  # the first is outside the 90 days
    for day in days:
        run_tenant(tenant=tenant, day=day)
    client.force_login(tenant_a.user(Role.ADMIN))
    client.get(reverse("home"))
    # session, user, memberships, account, contacts, KPI table, snapshot, trend, decisions, journeys,
    # phases, activities, obligations, evidence, timeline, audit trail (tests/accounts/test_account_360.py
    # holds the page's own count test)
    with django_assert_num_queries(16):
        response = client.get(reverse("account_detail", args=[account.pk]))
    trend = response.context["trend"]
    assert trend["dates"] == [d.isoformat() for d in days[1:]]
    assert len(trend["totals"]) == 3 and set(trend["bands"]) <= {"green", "yellow", "red", "grey"}
    body = response.content.decode()
    assert 'id="health-trend"' in body and "vendor/plotly.min.js" in body and "js/health_trend.js" in body
    assert body.count("<tr><td>2026-") == 3  # the table equivalent, one row per point
    # Another account's history is not mixed in.
    assert response.context["health"]["snapshot"].account_id == account.pk != other.pk


def test_plotly_is_served_from_our_static_files():
    from django.contrib.staticfiles import finders

    found = finders.find("vendor/plotly.min.js")
    assert found and found.endswith("plotly.min.js")
    with open(found, encoding="utf-8") as handle:
        assert "plotly" in handle.read(2000).lower()
