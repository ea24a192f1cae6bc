"""API tokens: hash at rest, Bearer authentication, scopes, expiry, revocation, tenant selection, and
the tenant admins' pages that create and revoke them."""

from __future__ import annotations

import datetime
import hashlib

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from api.models import ApiToken
from api.services import api_token_create, api_token_revoke, api_token_touch
from cs_platform.audit.models import AuditEvent
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from cs_platform.tenancy.policy import Capability
from tests import factories
from tests.api.helpers import authorization
from tests.helpers import form_key, page_text, stored_anywhere
from tests.tenants import in_every_tenant

ME = "/api/v1/me/"


def _token(world, scopes=("accounts:read",), **kwargs):
    return api_token_create(
        tenant=world.tenant,
        name=kwargs.pop("name", "CRM sync"),
        scopes=list(scopes),
        actor=world.user(Role.ADMIN),
        **kwargs,
    )


def _refused(message: str) -> dict:
    """The API's error body for a 401 (api/errors.py)."""
    return {"status": 401, "code": "authentication_failed", "message": message, "errors": []}


def _row(token_id: int) -> ApiToken:
    return next(t for t in in_every_tenant(lambda: ApiToken.objects.filter(pk=token_id).first()) if t)


# --- hash at rest -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_database_holds_only_the_hash_of_the_token(tenant_a):
    token, plaintext = _token(tenant_a)
    assert plaintext.startswith(f"csp_{token.prefix}_") and len(plaintext) == 4 + 8 + 1 + 32
    with connection.cursor() as cursor, context.tenant_context(tenant_a.tenant):
        cursor.execute("SELECT * FROM api_apitoken WHERE id = %s", [token.pk])
        stored = [str(value) for value in cursor.fetchone()]
    secret = plaintext[len(f"csp_{token.prefix}_") :]  # the secret itself may contain "_"
    assert not any(secret in value for value in stored)
    assert hashlib.sha256(plaintext.encode()).hexdigest() in stored
    with context.tenant_context(tenant_a.tenant):
        event = AuditEvent.objects.get(action="api_token.create", object_id=str(token.pk))
    assert secret not in str(event.after) and token.key_hash not in str(event.after)
    assert event.after["prefix"] == token.prefix


# --- bearer authentication ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_bearer_token_authenticates_as_its_creator_in_its_tenant(client, tenant_a):
    token, plaintext = _token(tenant_a, scopes=["accounts:read", "metrics:write"])
    response = client.get(ME, **authorization(plaintext))
    assert response.status_code == 200, response.content
    assert response.json() == {
        "tenant": tenant_a.tenant.slug,
        "user": tenant_a.user(Role.ADMIN).email,
        "role": "admin",
        "auth": "token",
        "scopes": ["accounts:read", "metrics:write"],
        "accounts": 0,
        "time_zone": "UTC",
    }


@pytest.mark.django_db
def test_session_users_reach_the_api_too(client, tenant_a):
    client.force_login(tenant_a.user(Role.VIEWER))
    body = client.get(ME).json()
    assert (body["auth"], body["role"], body["tenant"]) == ("session", "viewer", tenant_a.tenant.slug)


@pytest.mark.django_db
def test_anonymous_api_calls_get_401_with_the_bearer_challenge(client):
    response = client.get(ME)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer a b",
        "Bearer not-a-token",
        "Bearer csp_00000000_" + "A" * 32,  # well formed, unknown
    ],
)
def test_malformed_and_unknown_tokens_are_refused(client, tenant_a, header):
    _token(tenant_a)
    response = client.get(ME, HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json() == _refused("Invalid token.")


@pytest.mark.django_db
def test_revoked_token_is_refused(client, tenant_a):
    token, plaintext = _token(tenant_a)
    assert client.get(ME, **authorization(plaintext)).status_code == 200
    api_token_revoke(tenant=tenant_a.tenant, token=token, actor=tenant_a.user(Role.ADMIN))
    response = client.get(ME, **authorization(plaintext))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json() == _refused("Token revoked.")


@pytest.mark.django_db
def test_expired_token_is_refused(client, tenant_a):
    token, plaintext = _token(tenant_a, expires_at=timezone.now() + datetime.timedelta(hours=1))
    assert client.get(ME, **authorization(plaintext)).status_code == 200
    with context.tenant_context(tenant_a.tenant):
        # Time passes: the only way to an expired token without waiting.
        ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    response = client.get(ME, **authorization(plaintext))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json() == _refused("Token expired.")


@pytest.mark.django_db
def test_token_of_a_former_member_is_refused(client, tenant_a):
    _, plaintext = _token(tenant_a)
    with context.tenant_context(tenant_a.tenant):
        membership = tenant_a.memberships[Role.ADMIN]
        membership.is_active = False
        membership.save()
    response = client.get(ME, **authorization(plaintext))
    assert response.status_code == 401
    assert response.json() == _refused("Token owner is no longer a member.")


@pytest.mark.django_db
def test_token_selects_its_own_tenant_and_sees_only_its_accounts(client, tenant_a, tenant_b):
    factories.AccountFactory.create_batch(3, tenant=tenant_a.tenant)
    factories.AccountFactory.create_batch(2, tenant=tenant_b.tenant)
    _, plaintext_b = _token(tenant_b)
    # Logged in to tenant A in the same browser session: the token, not the session, decides.
    client.force_login(tenant_a.user(Role.ADMIN))
    body = client.get(ME, **authorization(plaintext_b)).json()
    assert (body["tenant"], body["auth"], body["accounts"]) == (tenant_b.tenant.slug, "token", 2)
    assert client.get(ME).json()["accounts"] == 3
    assert context.current_tenant_id() is None  # the request's tenant did not outlive it


@pytest.mark.django_db
def test_token_requests_run_in_the_token_tenants_time_zone(client, tenant_a, tenant_b):
    from cs_platform.tenancy.models import Tenant

    Tenant.objects.filter(pk=tenant_b.tenant.pk).update(time_zone="Pacific/Auckland")
    Tenant.objects.filter(pk=tenant_a.tenant.pk).update(time_zone="America/Chicago")
    _, plaintext_b = _token(tenant_b)
    client.force_login(tenant_a.user(Role.ADMIN))  # a session of A rides along
    assert client.get(ME, **authorization(plaintext_b)).json()["time_zone"] == "Pacific/Auckland"
    assert client.get(ME).json()["time_zone"] == "America/Chicago"
    assert timezone.get_current_timezone_name() == "UTC"  # nothing leaked past the requests


@pytest.mark.django_db
def test_last_used_is_marked_at_most_once_a_minute(client, tenant_a):
    token, plaintext = _token(tenant_a)
    assert _row(token.pk).last_used_at is None
    client.get(ME, **authorization(plaintext))
    first = _row(token.pk).last_used_at
    assert first is not None
    client.get(ME, **authorization(plaintext))
    assert _row(token.pk).last_used_at == first
    later = first + datetime.timedelta(seconds=61)
    assert api_token_touch(token=_row(token.pk), now=later) is True
    assert _row(token.pk).last_used_at == later
    assert api_token_touch(token=_row(token.pk), now=later + datetime.timedelta(seconds=30)) is False


# --- scopes -------------------------------------------------------------------------------------------


class _AccountsView(APIView):
    """A view of the accounts family, defined here only to exercise the default permission classes, HasScope
    and HasCapability (no project URL)."""

    scope_family = "accounts"
    capabilities = {"post": Capability.EDIT_ACCOUNTS}

    def get(self, request):
        return Response({"ok": True})

    def post(self, request):
        return Response({"ok": True})


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("scopes", "method", "allowed"),
    [
        (["accounts:read"], "get", True),
        (["accounts:read"], "post", False),
        (["accounts:write"], "post", True),
        (["accounts:write"], "get", False),
        (["metrics:read", "metrics:write"], "get", False),
        (["metrics:read", "metrics:write"], "post", False),
    ],
)
def test_tokens_are_held_to_their_scopes(client, tenant_a, scopes, method, allowed):
    _, plaintext = _token(tenant_a, scopes=scopes)
    request = getattr(APIRequestFactory(), method)("/anything/", **authorization(plaintext))
    # Through the real authenticator. No middleware runs for a factory request: the saved context
    # token below stands in for TenantMiddleware's reset at the end of the request.
    request.membership = None
    request.tenant = None
    token = context.set_request_tenant(None)
    try:
        response = _AccountsView.as_view()(request)
    finally:
        context.reset(token)
    assert response.status_code == (200 if allowed else 403)


@pytest.mark.django_db
@pytest.mark.parametrize("role", Role.values)
def test_session_users_are_held_to_their_role(tenant_a, role):
    factory = APIRequestFactory()
    for method, allowed in (("get", True), ("post", role in Capability.EDIT_ACCOUNTS.roles)):
        request = getattr(factory, method)("/anything/")
        request.membership = tenant_a.memberships[role]
        force_authenticate(request, user=tenant_a.user(role))
        assert _AccountsView.as_view()(request).status_code == (200 if allowed else 403), (role, method)


@pytest.mark.django_db
def test_a_session_user_without_membership_is_refused(tenant_a):
    request = APIRequestFactory().get("/anything/")
    request.membership = None
    force_authenticate(request, user=factories.UserFactory())
    assert _AccountsView.as_view()(request).status_code == 403


# --- service validation -------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": " "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"scopes": []}, "scopes"),
        ({"scopes": ["accounts:read", "audit:write"]}, "scopes"),
        ({"scopes": ["everything"]}, "scopes"),
        ({"expires_at": timezone.now() - datetime.timedelta(minutes=1)}, "expires_at"),
    ],
)
def test_create_refuses_bad_input_and_stores_nothing(tenant_a, kwargs, field):
    arguments = {"name": "CRM sync", "scopes": ["accounts:read"], "expires_at": None, **kwargs}
    with pytest.raises(ValidationError) as excinfo:
        api_token_create(tenant=tenant_a.tenant, actor=tenant_a.user(Role.ADMIN), **arguments)
    assert field in excinfo.value.message_dict
    with context.tenant_context(tenant_a.tenant):
        assert not ApiToken.objects.exists()
        assert not AuditEvent.objects.filter(action="api_token.create").exists()


@pytest.mark.django_db
def test_revoking_twice_is_a_field_error(tenant_a):
    token, _ = _token(tenant_a)
    api_token_revoke(tenant=tenant_a.tenant, token=token, actor=tenant_a.user(Role.ADMIN))
    with pytest.raises(ValidationError) as excinfo:
        api_token_revoke(tenant=tenant_a.tenant, token=token, actor=tenant_a.user(Role.ADMIN))
    assert "token" in excinfo.value.message_dict


@pytest.mark.django_db
def test_a_revoke_from_a_stale_copy_audits_the_row_it_replaced(tenant_a):
    """The caller's copy was read before another change committed: "before" is the row as it is now."""
    token, _ = _token(tenant_a, scopes=("accounts:read",))
    with context.tenant_context(tenant_a.tenant):
        stale = ApiToken.objects.get(pk=token.pk)
        ApiToken.objects.filter(pk=token.pk).update(name="CRM sync (old)", scopes=["accounts:read", "audit:read"])
    api_token_revoke(tenant=tenant_a.tenant, token=stale, actor=tenant_a.user(Role.ADMIN))
    with context.tenant_context(tenant_a.tenant):
        event = AuditEvent.objects.filter(action="api_token.revoke").get()
    assert event.before["name"] == "CRM sync (old)"
    assert event.before["scopes"] == ["accounts:read", "audit:read"]
    assert event.after["revoked_at"] is not None


@pytest.mark.django_db
def test_a_revoke_from_a_stale_copy_of_a_revoked_token_is_refused(tenant_a):
    token, _ = _token(tenant_a)
    with context.tenant_context(tenant_a.tenant):
        stale = ApiToken.objects.get(pk=token.pk)
    api_token_revoke(tenant=tenant_a.tenant, token=token, actor=tenant_a.user(Role.ADMIN))
    with pytest.raises(ValidationError) as excinfo:
        api_token_revoke(tenant=tenant_a.tenant, token=stale, actor=tenant_a.user(Role.ADMIN))
    assert "token" in excinfo.value.message_dict
    with context.tenant_context(tenant_a.tenant):
        assert AuditEvent.objects.filter(action="api_token.revoke").count() == 1


# --- admin pages --------------------------------------------------------------------------------------


def _tokens(world) -> list[ApiToken]:
    with context.tenant_context(world.tenant):
        return list(ApiToken.objects.all())


@pytest.mark.django_db
def test_admin_creates_a_token_and_sees_it_once_in_the_answer_to_the_post(client, tenant_a):
    client.force_login(tenant_a.user(Role.ADMIN))
    data = {
        "name": "Data warehouse",
        "scopes": ["metrics:read", "audit:read"],
        "expires_on": "",
        "form_key": form_key(client, reverse("api_tokens")),
    }
    response = client.post(reverse("api_tokens"), data)
    # Answered directly, not redirected: the plaintext exists only in this answer, which no cache keeps.
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]
    [token] = _tokens(tenant_a)
    assert (token.name, token.scopes, token.expires_at) == ("Data warehouse", ["metrics:read", "audit:read"], None)
    first = response.content.decode()
    plaintext = first.split('id="new-token-value" readonly value="', 1)[1].split('"', 1)[0]
    assert plaintext.startswith(f"csp_{token.prefix}_")
    assert hashlib.sha256(plaintext.encode()).hexdigest() == token.key_hash
    assert first.count(plaintext) == 1 and "will not be shown again" in first
    assert stored_anywhere(plaintext, response) == []  # not in django_session, not in a cookie

    second = client.get(reverse("api_tokens")).content.decode()
    assert plaintext not in second and "new-token-value" not in second
    assert token.prefix in second

    # A reload of the answer sends the same POST again: no second token, and the first is not shown.
    again = client.post(reverse("api_tokens"), data, follow=True)
    assert again.redirect_chain == [(reverse("api_tokens"), 302)]
    body = page_text(again)
    assert "no second token was created" in body and plaintext not in body and "new-token-value" not in body
    assert _tokens(tenant_a) == [token]
    with context.tenant_context(tenant_a.tenant):
        assert AuditEvent.objects.filter(action="api_token.create").count() == 1
    assert stored_anywhere(plaintext, response, again) == []

    # The token shown works.
    client.logout()
    assert client.get(ME, **authorization(plaintext)).json()["scopes"] == ["metrics:read", "audit:read"]


@pytest.mark.django_db
def test_a_post_without_the_pages_key_creates_nothing(client, tenant_a, tenant_b):
    fields = {"name": "Scripted", "scopes": ["accounts:read"]}
    client.force_login(tenant_b.user(Role.ADMIN))
    another_users_key = form_key(client, reverse("api_tokens"))
    client.force_login(tenant_a.user(Role.ADMIN))
    another_forms_key = form_key(client, reverse("webhooks"))
    for key in (None, "", "not-a-key", another_users_key, another_forms_key):
        response = client.post(reverse("api_tokens"), fields if key is None else {**fields, "form_key": key})
        assert response.status_code == 400, key
        body = page_text(response)
        assert "This form had expired or did not come from this page" in body
        assert 'value="Scripted"' in body  # the input is kept, with a fresh key to send it again
    assert _tokens(tenant_a) == []


@pytest.mark.django_db
def test_expiry_date_is_kept_through_the_whole_day(client, tenant_a):
    client.force_login(tenant_a.user(Role.ADMIN))
    tomorrow = timezone.localdate() + datetime.timedelta(days=1)
    data = {"name": "Short-lived", "scopes": ["health:read"], "expires_on": tomorrow}
    client.post(reverse("api_tokens"), {**data, "form_key": form_key(client, reverse("api_tokens"))})
    with context.tenant_context(tenant_a.tenant):
        token = ApiToken.objects.get()
    assert timezone.localtime(token.expires_at).date() == tomorrow


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"name": "", "scopes": ["accounts:read"]}, "name", "A name is required."),
        ({"name": "No scopes"}, "scopes", "Choose at least one scope."),
        ({"name": "Odd", "scopes": ["accounts:read", "root:all"]}, "scopes", "Unknown scope(s): root:all."),
        ({"name": "Past", "scopes": ["accounts:read"], "expires_on": "2020-01-01"}, "expires", "in the future"),
    ],
)
def test_bad_form_input_is_shown_next_to_the_field_and_stores_nothing(client, tenant_a, data, field, message):
    client.force_login(tenant_a.user(Role.ADMIN))
    response = client.post(reverse("api_tokens"), {**data, "form_key": form_key(client, reverse("api_tokens"))})
    assert response.status_code == 400
    body = response.content.decode()
    assert f'id="{field}-error">' in body and message in body
    assert 'aria-invalid="true"' in body
    if data.get("name"):
        assert f'value="{data["name"]}"' in body  # the input is kept
    with context.tenant_context(tenant_a.tenant):
        assert not ApiToken.objects.exists()


@pytest.mark.django_db
def test_admin_revokes_a_token_and_it_is_audited(client, tenant_a):
    token, plaintext = _token(tenant_a)
    client.force_login(tenant_a.user(Role.ADMIN))
    url = reverse("api_token_revoke", kwargs={"token_id": token.pk})
    confirm = client.get(url)
    assert confirm.status_code == 200 and "Revoke token" in confirm.content.decode()
    assert _row(token.pk).revoked_at is None  # a GET changes nothing
    response = client.post(url)
    assert response.status_code == 302
    row = _row(token.pk)
    assert row.revoked_at is not None and row.revoked_by == tenant_a.user(Role.ADMIN)
    with context.tenant_context(tenant_a.tenant):
        event = AuditEvent.objects.get(action="api_token.revoke", object_id=str(token.pk))
    assert event.actor_id == tenant_a.user(Role.ADMIN).pk
    assert event.before["revoked_at"] is None and event.after["revoked_at"] is not None
    assert token.key_hash not in str(event.before) + str(event.after)
    assert "Revoked" in client.get(reverse("api_tokens")).content.decode()
    again = client.post(url)
    assert again.status_code == 400 and "already revoked" in again.content.decode()
    client.logout()
    assert client.get(ME, **authorization(plaintext)).status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize("role", sorted(set(Role.values) - Capability.MANAGE_API_TOKENS.roles))
def test_other_roles_get_403_on_the_token_pages(client, tenant_a, role):
    token, _ = _token(tenant_a)
    client.force_login(tenant_a.user(role))
    assert client.get(reverse("api_tokens")).status_code == 403
    assert client.post(reverse("api_tokens"), {"name": "Mine", "scopes": ["accounts:read"]}).status_code == 403
    url = reverse("api_token_revoke", kwargs={"token_id": token.pk})
    assert client.get(url).status_code == 403
    assert client.post(url).status_code == 403
    assert _row(token.pk).revoked_at is None
    with context.tenant_context(tenant_a.tenant):
        assert ApiToken.objects.count() == 1


@pytest.mark.django_db
def test_admin_cannot_revoke_another_tenants_token(client, tenant_a, tenant_b):
    token_b, _ = _token(tenant_b)
    client.force_login(tenant_a.user(Role.ADMIN))
    assert client.post(reverse("api_token_revoke", kwargs={"token_id": token_b.pk})).status_code == 404
    assert _row(token_b.pk).revoked_at is None


def _bulk_tokens(world, count: int) -> None:
    admin = world.user(Role.ADMIN)
    with context.tenant_context(world.tenant):
        ApiToken.objects.bulk_create(
            ApiToken(
                tenant=world.tenant,
                name=f"Token {i}",
                prefix=f"{i:08x}",
                key_hash=f"{i:064x}",
                scopes=["accounts:read"],
                created_by=admin,
                revoked_at=timezone.now() if i % 3 == 0 else None,
                revoked_by=admin if i % 3 == 0 else None,
            )
            for i in range(count)
        )


@pytest.mark.django_db
@pytest.mark.parametrize("count", [10, 200])
def test_token_list_query_count_does_not_grow_with_tokens(client, tenant_a, django_assert_num_queries, count):
    _bulk_tokens(tenant_a, count)
    client.force_login(tenant_a.user(Role.ADMIN))
    client.get(reverse("api_tokens"))  # warm the session
    # 1 the session, 2 the user, 3 the user's memberships with tenants (middleware), 4 the tenant's
    # tokens with creator and revoker joined. Nothing per row, and no session write once the
    # one-time plaintext has been shown.
    with django_assert_num_queries(4):
        response = client.get(reverse("api_tokens"))
    assert response.content.decode().count("<code>") >= count
