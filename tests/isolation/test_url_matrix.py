"""Cross-tenant isolation matrix over every URL pattern of the project.

The patterns are enumerated from the resolver, so a new URL is covered without editing this file:
an object-bearing URL whose keyword argument is not mapped below fails the suite until it is."""

from __future__ import annotations

import pytest
from django.urls import URLPattern, reverse

from cs_platform.tenancy.models import Role
from tests import factories
from tests.helpers import force_login_verified
from tests.urlwalk import OBJECT_KWARGS, PUBLIC
from tests.urlwalk import all_patterns as _all_patterns
from tests.urlwalk import kwargs_of as _kwargs_of


def test_every_pattern_is_named_and_its_kwargs_are_known():
    for name, pattern in _all_patterns():
        assert name, f"URL pattern {pattern.pattern} has no name; the isolation matrix needs one"
        unknown = [k for k in _kwargs_of(pattern) if k not in OBJECT_KWARGS]
        assert not unknown, f"{name}: add an object factory for URL kwargs {unknown} to OBJECT_KWARGS"


def _request(client, url):
    response = client.get(url)
    if response.status_code == 405:
        response = client.post(url)
    return response


@pytest.mark.django_db
def test_anonymous_users_are_redirected_to_login(client, tenant_b):
    checked = 0
    for name, pattern in _all_patterns():
        if name in PUBLIC:
            continue
        kwargs = {k: OBJECT_KWARGS[k](tenant_b) for k in _kwargs_of(pattern)}
        url = reverse(name, kwargs=kwargs)
        response = _request(client, url)
        if url.startswith("/api/"):
            # The REST API challenges instead of redirecting: an integration has no login page.
            assert response.status_code == 401, f"{name} answered {response.status_code} to an anonymous caller"
            assert response["WWW-Authenticate"] == "Bearer", name
            checked += 1
            continue
        assert response.status_code == 302, f"{name} answered {response.status_code} to an anonymous user"
        assert response["Location"].startswith(reverse("login")), f"{name} redirected to {response['Location']}"
        checked += 1
    assert checked >= 3


@pytest.mark.django_db
@pytest.mark.parametrize("role", Role.values)
def test_other_tenants_objects_answer_404_for_every_role(client, tenant_a, tenant_b, role):
    object_patterns = [(n, p) for n, p in _all_patterns() if _kwargs_of(p)]
    assert object_patterns, "no object-bearing URL found"
    client.force_login(tenant_a.user(role))
    for name, pattern in object_patterns:
        kwargs = {k: OBJECT_KWARGS[k](tenant_b) for k in _kwargs_of(pattern)}
        url = reverse(name, kwargs=kwargs)
        response = _request(client, url)
        assert response.status_code == 404, f"{role} of tenant A got {response.status_code} for B's {url}"


@pytest.mark.django_db
def test_the_same_urls_work_for_the_owning_tenant(client, tenant_b):
    """Control for the 404 test: B's admin reaches B's objects, so the 404s above mean isolation,
    not broken URLs."""
    client.force_login(tenant_b.user(Role.ADMIN))
    for name, pattern in _all_patterns():
        if not _kwargs_of(pattern):
            continue
        kwargs = {k: OBJECT_KWARGS[k](tenant_b) for k in _kwargs_of(pattern)}
        url = reverse(name, kwargs=kwargs)
        response = _request(client, url)
        # API actions are POST-only and their empty body may be refused (400) or conflict (409), but
        # only after the object was found: anything but 404 shows the URL reaches B's object.
        allowed = (200, 201, 400, 409) if url.startswith("/api/") else (200, 302)
        assert response.status_code in allowed, f"{name} answered {response.status_code} to its own tenant"


@pytest.mark.django_db
def test_a_token_with_every_scope_gets_404_for_other_tenants_objects_by_every_method(client, tenant_a, tenant_b):
    """The integrations' side of the matrix: a tenant A token holding every scope, on each object URL of
    the API filled with tenant B's ids, for every method the route serves (reads, writes, deletes and
    actions alike; a body naming nothing of B's). Only a 404 says nothing about B's objects."""
    from api.models import ALL_SCOPES
    from tests.api.helpers import bearer

    headers = bearer(tenant_a, *ALL_SCOPES)
    checked = 0
    for name, pattern in _all_patterns():
        kwargs = _kwargs_of(pattern)
        if not kwargs:
            continue
        url = reverse(name, kwargs={k: OBJECT_KWARGS[k](tenant_b) for k in kwargs})
        if not url.startswith("/api/"):
            continue
        methods = [m for m in ("get", "put", "patch", "delete", "post") if m in _methods_of(pattern)]
        assert methods, f"{name}: no method found"
        for method in methods:
            response = getattr(client, method)(url, {}, content_type="application/json", **headers)
            assert response.status_code == 404, f"tenant A's token: {method.upper()} {url} -> {response.status_code}"
            checked += 1
    assert checked >= 25, checked  # 27 (method, URL) pairs when written


def _methods_of(pattern: URLPattern) -> set[str]:
    """The HTTP methods a DRF route serves (its viewset's action map, or an APIView's handlers)."""
    callback = pattern.callback
    view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    served = set(
        getattr(callback, "actions", None)
        or [m for m in ("get", "put", "patch", "delete", "post") if hasattr(view_class, m)]
    )
    return served & set(view_class.http_method_names)


@pytest.mark.django_db
@pytest.mark.parametrize("role", Role.values)
def test_tenant_users_never_reach_the_django_admin(client, tenant_a, tenant_b, role):
    account_b = factories.AccountFactory(tenant=tenant_b.tenant)
    client.force_login(tenant_a.user(role))
    for url in ("/admin/", f"/admin/accounts/account/{account_b.pk}/change/", "/admin/tenancy/tenant/"):
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"], (role, url)


@pytest.mark.django_db
def test_platform_superuser_reaches_each_tenant_in_the_admin_once_chosen(client, tenant_a, tenant_b):
    account_b = factories.AccountFactory(tenant=tenant_b.tenant)
    superuser = factories.UserFactory(username="root@platform.test", is_staff=True, is_superuser=True)
    force_login_verified(client, superuser)  # the admin needs a session that passed MFA
    assert client.get("/admin/").status_code == 200
    url = f"/admin/accounts/account/{account_b.pk}/change/"
    client.post("/admin/tenant/", {"tenant": tenant_a.tenant.pk})
    assert client.get(url).status_code == 302  # B's account does not exist inside A
    client.post("/admin/tenant/", {"tenant": tenant_b.tenant.pk})
    response = client.get(url)
    assert response.status_code == 200
    assert account_b.name in response.content.decode()


@pytest.mark.django_db
def test_account_list_holds_only_the_current_tenants_accounts(client, tenant_a, tenant_b):
    mine = factories.AccountFactory(tenant=tenant_a.tenant, name="Granite Bay Credit Union")
    theirs = factories.AccountFactory(tenant=tenant_b.tenant, name="Meridian Mutual Insurance")
    client.force_login(tenant_a.user(Role.EXECUTIVE))
    body = client.get(reverse("account_list")).content.decode()
    assert mine.name in body
    assert theirs.name not in body
