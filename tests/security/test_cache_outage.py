"""With Redis (the cache) down, pages keep working and the forms that need the cache refuse with a clear
message instead of a 500 (issue #16): the password reset (its request budget lives in the cache) and the
one-time-secret forms (their single-use keys do). A real redis-server of the test's own is killed."""

from __future__ import annotations

import pytest
from django.urls import reverse

from api.models import ApiToken
from cs_platform.audit.models import AuditEvent
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from tests.helpers import form_key, page_text


def _tokens(world) -> list[ApiToken]:
    with context.tenant_context(world.tenant):
        return list(ApiToken.objects.all())


@pytest.mark.django_db
def test_pages_work_and_token_creation_refuses_clearly_while_redis_is_down(client, tenant_a, redis_cache):
    client.force_login(tenant_a.user(Role.ADMIN))
    url = reverse("api_tokens")
    key = form_key(client, url)  # issued while Redis is up (issuing needs no cache)
    redis_cache.stop()

    assert client.get(reverse("account_list")).status_code == 200  # sessions are in PostgreSQL
    response = client.post(url, {"name": "Warehouse", "scopes": ["health:read"], "expires_on": "", "form_key": key})
    assert response.status_code == 400
    body = page_text(response)
    assert "Nothing was created: this form cannot be checked right now" in body
    assert 'value="Warehouse"' in body  # the input is kept
    assert _tokens(tenant_a) == []

    redis_cache.start()  # back (empty): the same key is spent now, once
    response = client.post(url, {"name": "Warehouse", "scopes": ["health:read"], "expires_on": "", "form_key": key})
    assert response.status_code == 200
    assert [t.name for t in _tokens(tenant_a)] == ["Warehouse"]


@pytest.mark.django_db
def test_a_password_reset_refuses_with_503_and_sends_nothing_while_redis_is_down(client, tenant_a, redis_cache):
    user = tenant_a.user(Role.CSM)
    redis_cache.stop()
    response = client.post(reverse("password_reset"), {"email": user.email}, REMOTE_ADDR="10.9.0.1")
    assert response.status_code == 503
    assert "Password resets are unavailable for a few minutes. Nothing was sent" in page_text(response)
    with context.tenant_context(tenant_a.tenant):
        assert not AuditEvent.objects.filter(action="auth.password_reset_requested").exists()

    redis_cache.start()
    response = client.post(reverse("password_reset"), {"email": user.email}, REMOTE_ADDR="10.9.0.1")
    assert response.status_code == 302 and response["Location"] == reverse("password_reset_sent")
