"""MFA in a real browser: a person sets up an authenticator app from the QR code page, gets recovery
codes, and from then on logs in with password and code; the platform superuser reaches the admin only
after both steps. The pages run no inline script (they will be served under a strict CSP)."""

from __future__ import annotations

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from cs_platform.identity import services
from cs_platform.tenancy.models import Role
from tests import factories
from tests.browser.conftest import log_in
from tests.committed import purge_tenant
from tests.identity.conftest import code_for

pytestmark = pytest.mark.browser


@pytest.fixture
def people(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        tenant = factories.TenantFactory(slug="browser-mfa", name="Browser MFA Tenant")
        csm = factories.UserFactory(username="csm@browser-mfa.test", first_name="Casey", last_name="Morgan")
        factories.MembershipFactory(tenant=tenant, user=csm, role=Role.CSM)
        root = factories.UserFactory(username="root@browser-mfa.test", is_staff=True, is_superuser=True)
        device = services.mfa_enrollment_start(user=root)
        services.mfa_enrollment_confirm(user=root, device=device, code=code_for(device), ip=None)
    yield {"tenant": tenant, "csm": csm, "root": root, "root_device": device}
    with django_db_blocker.unblock():
        from django.db import connections
        from django_otp.plugins.otp_static.models import StaticDevice

        TOTPDevice.objects.filter(user__in=[csm, root]).delete()
        StaticDevice.objects.filter(user__in=[csm, root]).delete()
        connections.close_all()
        purge_tenant(tenant.pk, [csm.pk, root.pk])


def _no_inline_script(page) -> None:
    assert page.locator("script:not([src])").count() == 0
    handlers = page.evaluate(
        "[...document.querySelectorAll('*')].flatMap(e => [...e.attributes].map(a => a.name))"
        ".filter(n => n.startsWith('on'))"
    )
    assert handlers == []


def test_a_person_sets_up_mfa_and_then_logs_in_with_a_code(live_url, page, people):
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(page, live_url, people["csm"].username, factories.TEST_PASSWORD)
    page.click("text=Account security")
    page.click("text=Set up an authenticator app")
    assert page.locator(".qr svg.qr-code").is_visible()
    _no_inline_script(page)
    device = TOTPDevice.objects.get(user=people["csm"], confirmed=False)
    secret = page.inner_text("code.secret").replace(" ", "")
    assert secret and len(secret) == 32
    page.fill("#id_code", code_for(device))
    page.click("form[action='/account/security/mfa/'] button[type=submit]")
    page.wait_for_selector("ul.recovery-codes")
    assert page.locator("ul.recovery-codes li").count() == 10
    page.click("text=Log out")
    page.wait_for_url(live_url + "/login/")

    device.refresh_from_db()
    page.fill("#id_username", people["csm"].username)
    page.fill("#id_password", factories.TEST_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_url + "/login/verify/")
    _no_inline_script(page)
    page.fill("#id_code", code_for(device, 1))
    page.click("form[action='/login/verify/'] button[type=submit]")
    page.wait_for_url(live_url + "/")
    assert "Casey Morgan" in page.inner_text("header")
    assert errors == []


def test_the_platform_superuser_reaches_the_admin_after_password_and_code(live_url, page, people):
    page.goto(live_url + "/admin/")
    assert page.url.startswith(live_url + "/login/?next=/admin/") or page.url.startswith(
        live_url + "/login/?next=%2Fadmin%2F"
    )
    log_in(
        page,
        live_url,
        people["root"].username,
        factories.TEST_PASSWORD,
        totp_device=people["root_device"],
        next_path="/admin/",
    )
    assert page.url == live_url + "/admin/"
    assert "platform administration" in page.inner_text("body")
