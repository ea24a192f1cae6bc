"""A new API token in a real browser: shown in the answer to the form, gone from the next page, and
neither a reload of that answer (the browser sends the POST again) nor a second submission creates a
second token."""

from __future__ import annotations

import pytest

from api.models import ApiToken
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from tests import factories
from tests.browser.conftest import log_in
from tests.committed import purge_tenant

pytestmark = pytest.mark.browser


@pytest.fixture
def committed_admin(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        tenant = factories.TenantFactory(slug="browser-secrets", name="Browser Secrets Tenant")
        user = factories.UserFactory(username="admin@secrets.test")
        factories.MembershipFactory(tenant=tenant, user=user, role=Role.ADMIN)
    yield tenant, user
    with django_db_blocker.unblock():
        from django.db import connections

        connections.close_all()
        purge_tenant(tenant.pk, [user.pk])


def _tokens(django_db_blocker, tenant) -> list[str]:
    with django_db_blocker.unblock(), context.tenant_context(tenant):
        return list(ApiToken.objects.order_by("pk").values_list("name", flat=True))


def test_a_new_token_is_shown_once_and_a_reload_or_double_click_creates_no_second(
    live_url, page, committed_admin, django_db_blocker
):
    tenant, user = committed_admin
    log_in(page, live_url, user.username, factories.TEST_PASSWORD)
    page.goto(live_url + "/settings/api-tokens/")
    page.fill("#id_name", "Warehouse")
    page.check("input[value='metrics:read']")
    page.click("button:has-text('Create token')")
    page.wait_for_selector("#new-token-value")
    plaintext = page.input_value("#new-token-value")
    assert plaintext.startswith("csp_")
    assert page.url == live_url + "/settings/api-tokens/"  # the answer to the POST, not a redirect

    # Reloading the answer makes the browser send the POST again.
    page.reload()
    page.wait_for_load_state()
    assert "no second token was created" in page.inner_text("main")
    assert page.locator("#new-token-value").count() == 0 and plaintext not in page.content()
    assert _tokens(django_db_blocker, tenant) == ["Warehouse"]

    page.goto(live_url + "/settings/api-tokens/")
    assert plaintext not in page.content()

    # A second submission while the first is on its way is held back (static/js/submit_once.js): the
    # server would refuse it, and the browser would then show that refusal instead of the secret.
    held_back = page.evaluate(
        """() => {
            const form = document.querySelector("form[data-submit-once]");
            const first = new Event("submit", {bubbles: true, cancelable: true});
            const second = new Event("submit", {bubbles: true, cancelable: true});
            form.dispatchEvent(first);
            form.dispatchEvent(second);
            return [first.defaultPrevented, second.defaultPrevented];
        }"""
    )
    assert held_back == [False, True]

    # A double click creates one token, and it is shown.
    page.goto(live_url + "/settings/api-tokens/")
    page.fill("#id_name", "Double")
    page.check("input[value='health:read']")
    page.dblclick("button:has-text('Create token')")
    page.wait_for_selector("#new-token-value")
    assert page.input_value("#new-token-value").startswith("csp_")
    assert _tokens(django_db_blocker, tenant) == ["Warehouse", "Double"]
