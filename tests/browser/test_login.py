import pytest

from cs_platform.tenancy.models import Role
from tests import factories
from tests.browser.conftest import log_in
from tests.committed import purge_tenant

pytestmark = pytest.mark.browser


@pytest.fixture
def committed_world(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        tenant = factories.TenantFactory(slug="browser", name="Browser Test Tenant")
        user = factories.UserFactory(username="csm@browser.test", first_name="Casey", last_name="Morgan")
        factories.MembershipFactory(tenant=tenant, user=user, role=Role.CSM)
        from accounts.services import account_create

        account_create(
            tenant=tenant, name="Juniper Ridge Credit Union", segment=factories.segment_of(tenant), owner_csm=user
        )
        factories.AccountFactory(tenant=tenant, name="Not Yours Bank")
    yield tenant, user
    with django_db_blocker.unblock():
        from django.db import connections

        connections.close_all()
        purge_tenant(tenant.pk, [user.pk])


def test_login_shows_the_csms_book_and_logout_ends_the_session(live_url, page, committed_world):
    tenant, user = committed_world
    page.goto(live_url + "/")
    assert page.url.startswith(live_url + "/login/")

    page.fill("#id_username", user.username)
    page.fill("#id_password", "not-the-password")
    page.click("button[type=submit]")
    assert "Please enter a correct username and password" in page.inner_text("[role=alert]")

    log_in(page, live_url, user.username, factories.TEST_PASSWORD)
    table = page.inner_text("table.data")
    assert "Juniper Ridge Credit Union" in table and "Banks and Credit Unions" in table
    assert "Not Yours Bank" not in table
    header = page.inner_text("header")
    assert tenant.name in header and "Casey Morgan" in header

    page.click("text=Log out")
    page.wait_for_url(live_url + "/login/")
    page.goto(live_url + "/")
    assert page.url.startswith(live_url + "/login/")
