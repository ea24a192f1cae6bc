"""Re-authentication ("sudo mode"): creating an API token, creating a webhook or rotating its secret,
changing MFA or the tenant's security settings (tests/identity/test_mfa.py), and exporting the audit
trail from a browser session need a password (and code) entered within REAUTH_SECONDS. Pages go to
the re-authentication page and come back; the API answers 403 reauth_required; tokens are never asked."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse

from api.models import ApiToken
from cs_platform.identity import services, sessions
from cs_platform.identity.reauth import ReauthForWritesAdminMixin, ReauthRequired
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Membership, Role
from tests import factories
from tests.api.helpers import bearer
from tests.helpers import form_key
from tests.identity.conftest import auth_events, code_for
from tests.webhooks.conftest import make_endpoint
from webhooks.models import WebhookEndpoint

pytestmark = pytest.mark.django_db

EXPORT = "/api/v1/audit-events/export/?format=json"


def _signed_in_ago(client, user, seconds: float) -> None:
    client.force_login(user)
    session = client.session
    session[sessions.REAUTH_AT] = sessions.now() - seconds
    session.save()


def _reauth(client, password=factories.TEST_PASSWORD, code=None, next_url=None):
    body = {"password": password} | ({"code": code} if code else {}) | ({"next": next_url} if next_url else {})
    return client.post(reverse("reauth"), body)


def _tokens(world) -> list[ApiToken]:
    with context.tenant_context(world.tenant):
        return list(ApiToken.objects.all())


def test_creating_an_api_token_needs_a_recent_password(client, tenant_a):
    admin_user = tenant_a.user(Role.ADMIN)
    _signed_in_ago(client, admin_user, settings.REAUTH_SECONDS + 1)
    body = {"name": "Warehouse", "scopes": ["metrics:read"], "expires_on": ""}
    refused = client.post(reverse("api_tokens"), body, HTTP_REFERER="http://testserver/settings/api-tokens/")
    assert refused.status_code == 302
    assert refused["Location"] == reverse("reauth") + "?next=%2Fsettings%2Fapi-tokens%2F"
    assert _tokens(tenant_a) == []
    page = client.get(refused["Location"])
    assert page.status_code == 200 and "Confirm it is you" in page.content.decode()
    back = _reauth(client, next_url="/settings/api-tokens/")
    assert back.status_code == 302 and back["Location"] == "/settings/api-tokens/"
    key = form_key(client, reverse("api_tokens"))
    assert client.post(reverse("api_tokens"), body | {"form_key": key}).status_code == 200  # the token, shown once
    assert [t.name for t in _tokens(tenant_a)] == ["Warehouse"]
    [event] = auth_events(tenant_a, "auth.reauthenticated", admin_user)
    assert event.after == {"ip": "127.0.0.1", "method": "password"}


@pytest.mark.parametrize(("age", "allowed"), [(9 * 60, True), (11 * 60, False)])
def test_the_window_is_ten_minutes(client, tenant_a, age, allowed):
    _signed_in_ago(client, tenant_a.user(Role.ADMIN), age)
    key = form_key(client, reverse("api_tokens"))
    client.post(reverse("api_tokens"), {"name": "W", "scopes": ["metrics:read"], "expires_on": "", "form_key": key})
    assert bool(_tokens(tenant_a)) is allowed


def test_the_window_is_configurable(client, tenant_a, settings):
    settings.REAUTH_SECONDS = 60
    _signed_in_ago(client, tenant_a.user(Role.ADMIN), 61)
    assert client.post(reverse("api_tokens"), {"name": "W", "scopes": ["metrics:read"], "expires_on": ""})[
        "Location"
    ].startswith(reverse("reauth"))


def test_a_fresh_login_counts_as_a_recent_password(client, tenant_a):
    user = tenant_a.user(Role.ADMIN)
    client.post(reverse("login"), {"username": user.username, "password": factories.TEST_PASSWORD})
    key = form_key(client, reverse("api_tokens"))
    client.post(reverse("api_tokens"), {"name": "W", "scopes": ["metrics:read"], "expires_on": "", "form_key": key})
    assert len(_tokens(tenant_a)) == 1


def test_creating_a_webhook_and_rotating_its_secret_need_a_recent_password(client, tenant_a, settings):
    settings.WEBHOOK_ALLOW_HTTP = settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    endpoint, _ = make_endpoint(tenant_a, "http://127.0.0.1:9/hook")
    _signed_in_ago(client, tenant_a.user(Role.ADMIN), settings.REAUTH_SECONDS + 1)
    created = client.post(reverse("webhooks"), {"url": "http://127.0.0.1:9/new", "events": ["health.band_changed"]})
    assert created["Location"].startswith(reverse("reauth"))
    detail = reverse("webhook_detail", kwargs={"webhook_id": endpoint.pk})
    rotated = client.post(
        reverse("webhook_rotate_secret", kwargs={"webhook_id": endpoint.pk}), HTTP_REFERER=f"http://testserver{detail}"
    )
    # Back to the page the button was on, not to the POST-only URL.
    assert rotated["Location"] == reverse("reauth") + "?next=" + detail.replace("/", "%2F")
    with context.tenant_context(tenant_a.tenant):
        assert WebhookEndpoint.objects.count() == 1
        assert WebhookEndpoint.objects.get().secret == endpoint.secret
    _reauth(client)
    key = form_key(client, detail)
    rotate = reverse("webhook_rotate_secret", kwargs={"webhook_id": endpoint.pk})
    assert client.post(rotate, {"form_key": key}).status_code == 200  # the new secret, shown once
    with context.tenant_context(tenant_a.tenant):
        assert WebhookEndpoint.objects.get().secret != endpoint.secret


def test_without_a_recent_password_the_checks_before_it_still_answer_first(client, tenant_a, tenant_b, settings):
    settings.WEBHOOK_ALLOW_HTTP = settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    theirs, _ = make_endpoint(tenant_b, "http://127.0.0.1:9/b")
    _signed_in_ago(client, tenant_a.user(Role.ADMIN), settings.REAUTH_SECONDS + 1)
    assert client.post(reverse("webhook_rotate_secret", kwargs={"webhook_id": theirs.pk})).status_code == 404
    _signed_in_ago(client, tenant_a.user(Role.VIEWER), settings.REAUTH_SECONDS + 1)
    assert client.post(reverse("webhooks"), {"url": "http://127.0.0.1:9/x", "events": ["ping"]}).status_code == 403
    assert client.post(reverse("api_tokens"), {"name": "W", "scopes": ["metrics:read"]}).status_code == 403


def test_exporting_the_audit_trail_from_a_browser_needs_a_recent_password(client, tenant_a):
    _signed_in_ago(client, tenant_a.user(Role.COMPLIANCE), settings.REAUTH_SECONDS + 1)
    refused = client.get(EXPORT)
    assert refused.status_code == 403
    body = refused.json()
    assert body["code"] == "reauth_required" and body["status"] == 403 and body["errors"] == []
    assert "/reauth/" in body["message"]
    _reauth(client)
    assert client.get(EXPORT).status_code == 200


def test_a_token_exports_without_re_authentication(client, tenant_a):
    assert client.get(EXPORT, **bearer(tenant_a, "audit:read")).status_code == 200


def test_with_mfa_the_code_is_asked_too_and_failures_count_as_failed_logins(client, tenant_a, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    user = tenant_a.user(Role.ADMIN)
    device = services.mfa_enrollment_start(user=user)
    services.mfa_enrollment_confirm(user=user, device=device, code=code_for(device), ip=None)
    from tests.helpers import force_login_verified

    force_login_verified(client, user)
    session = client.session
    session[sessions.REAUTH_AT] = 0
    session.save()
    page = client.get(reverse("reauth")).content.decode()
    assert 'name="code"' in page
    assert _reauth(client).status_code == 400  # the password alone is not enough
    wrong_password = _reauth(client, password="not-it-at-all", code=code_for(device, 1))
    assert wrong_password.status_code == 400 and "password is not right" in wrong_password.content.decode()
    wrong_code = _reauth(client, code="000000")
    assert wrong_code.status_code == 400 and "That code is not right" in wrong_code.content.decode()
    assert AccessAttempt.objects.get(username=user.username).failures_since_start == 2
    reasons = [e.after["reason"] for e in auth_events(tenant_a, "auth.login_failed", user)]
    assert reasons == ["invalid_credentials", "invalid_code"]
    ok = _reauth(client, code=code_for(device, 1))
    assert ok.status_code == 302
    assert auth_events(tenant_a, "auth.reauthenticated", user)[-1].after["method"] == "password+totp"


def test_reauthentication_is_throttled_like_a_login(client, tenant_a):
    user = tenant_a.user(Role.ADMIN)
    client.force_login(user)
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _reauth(client, password="wrong-wrong-wrong").status_code == 400
    assert _reauth(client, password="wrong-wrong-wrong").status_code == 429
    assert _reauth(client).status_code == 429  # the right password too, while it lasts


def test_the_admin_mixin_asks_for_re_authentication_before_any_change(tenant_a):
    """For the Django admin's role changes (the integrator's MembershipAdmin uses the mixin)."""

    class Guarded(ReauthForWritesAdminMixin, admin.ModelAdmin):
        pass

    model_admin = Guarded(Membership, admin.site)
    request = RequestFactory().post("/admin/tenancy/membership/1/change/", {"role": "admin"})
    request.session = {sessions.REAUTH_AT: sessions.now() - settings.REAUTH_SECONDS - 1}
    request.user = factories.UserFactory(username="root@platform.test", is_superuser=True, is_staff=True)
    for view, args in (
        (model_admin.changeform_view, ("1",)),
        (model_admin.delete_view, ("1",)),
        (model_admin.changelist_view, ()),
    ):
        with pytest.raises(ReauthRequired):
            view(request, *args)
