"""Cross-tenant isolation matrix over every URL pattern of the project.

The patterns are enumerated from the resolver, so a new URL is covered without editing this file:
an object-bearing URL whose keyword argument is not mapped below fails the suite until it is."""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from cs_platform.tenancy.models import Role
from tests import factories


# URL keyword argument -> how to make another tenant's object for it.
def _scorecard_of(world) -> int:
    from cs_platform.tenancy import context
    from segments.models import Scorecard
    from segments.services import scorecard_defaults_ensure

    scorecard_defaults_ensure(tenant=world.tenant)
    with context.tenant_context(world.tenant):
        return Scorecard.objects.order_by("pk").values_list("pk", flat=True)[0]


def _activity_of(world) -> int:
    journey = factories.journey_of(factories.AccountFactory(tenant=world.tenant))
    from cs_platform.tenancy import context

    with context.tenant_context(world.tenant):
        return journey.activity_progress.order_by("pk").values_list("pk", flat=True)[0]


def _token_of(world) -> int:
    from api.services import api_token_create

    token, _ = api_token_create(
        tenant=world.tenant, name="Matrix token", scopes=["accounts:read"], actor=world.user(Role.ADMIN)
    )
    return token.pk


def _kpi_of(world) -> int:
    from cs_platform.tenancy import context
    from segments.models import KpiDefinition

    segment = factories.segment_of(world.tenant, "insurer")
    with context.tenant_context(world.tenant):
        return KpiDefinition.objects.filter(segment=segment).order_by("pk").values_list("pk", flat=True)[0]


def _journey_of(world) -> int:
    return factories.journey_of(factories.AccountFactory(tenant=world.tenant)).pk


def _event_of(world) -> int:
    from cs_platform.audit.services import audit_record

    return audit_record(tenant=world.tenant, actor=None, action="matrix.check", object_type="matrix", object_id=1).pk


def _webhook_of(world) -> int:
    from django.test import override_settings

    from webhooks.services import webhook_endpoint_create

    with override_settings(WEBHOOK_ALLOW_PRIVATE_HOSTS=True):  # no DNS lookup for the matrix's URL
        endpoint, _ = webhook_endpoint_create(
            tenant=world.tenant, url="https://hooks.example.test/matrix", events=["health.band_changed"],
            actor=world.user(Role.ADMIN),
        )  # fmt: skip
    return endpoint.pk


def _delivery_of(world) -> int:
    import uuid

    from cs_platform.tenancy import context
    from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint

    endpoint_id = _webhook_of(world)
    with context.tenant_context(world.tenant):
        endpoint = WebhookEndpoint.objects.get(pk=endpoint_id)
        # A finished delivery, so the owning tenant's POST to "redeliver" is a real redelivery.
        delivery = WebhookDelivery.objects.create(
            tenant=world.tenant, endpoint=endpoint, event_type="ping", event_id=uuid.uuid4(), payload={},
            status=DeliveryStatus.FAILED, attempts=1,
        )  # fmt: skip
    return delivery.pk


OBJECT_KWARGS = {
    "account_id": lambda world: factories.AccountFactory(tenant=world.tenant).pk,
    "scorecard_id": _scorecard_of,
    "segment_id": lambda world: factories.segment_of(world.tenant, "insurer").pk,
    "decision_id": lambda world: factories.DecisionFactory(tenant=world.tenant, owner=world.user(Role.CSM)).pk,
    "activity_id": _activity_of,
    "obligation_id": lambda world: factories.ObligationFactory(tenant=world.tenant).pk,
    "evidence_id": lambda world: factories.EvidenceFactory(tenant=world.tenant).pk,
    "audit_result_id": lambda world: factories.AuditResultFactory(tenant=world.tenant).pk,
    "status_id": lambda world: factories.ComplianceStatusSnapshotFactory(tenant=world.tenant).pk,
    "token_id": _token_of,
    "contact_id": lambda world: factories.ContactFactory(tenant=world.tenant).pk,
    "touchpoint_id": lambda world: factories.TouchpointFactory(tenant=world.tenant).pk,
    "kpi_id": _kpi_of,
    "measurement_id": lambda world: factories.KpiMeasurementFactory(tenant=world.tenant).pk,
    "survey_id": lambda world: factories.SurveyResponseFactory(tenant=world.tenant).pk,
    "incident_id": lambda world: factories.IncidentFactory(tenant=world.tenant).pk,
    "journey_id": _journey_of,
    "event_id": _event_of,
    "webhook_id": _webhook_of,
    "delivery_id": _delivery_of,
}
# Reachable without logging in.
PUBLIC = {"login", "logout", "healthz", "api_schema", "api_docs", "api_redoc", "scorecard_unsubscribe"}
# URLs whose keyword argument is a signed token (the credential itself), not an object id: a token names
# its tenant and cannot be forged for another one; tests/scorecards/test_subscriptions.py covers them.
TOKEN_URLS = {"scorecard_unsubscribe"}
# Namespaces tested on their own (the Django admin is for platform superusers only, see below).
SEPARATELY_TESTED_NAMESPACES = {"admin"}


def _patterns(resolver=None, namespace=None):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            child_ns = entry.namespace or namespace
            if child_ns in SEPARATELY_TESTED_NAMESPACES:
                continue
            yield from _patterns(entry, child_ns)
        elif isinstance(entry, URLPattern):
            name = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name
            yield name, entry


def _all_patterns():
    patterns = [(name, pattern) for name, pattern in _patterns() if name not in TOKEN_URLS]
    assert patterns, "the URL resolver yielded nothing"
    return patterns


def _kwargs_of(pattern: URLPattern) -> list[str]:
    return list(pattern.pattern.regex.groupindex)


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
def test_platform_superuser_reaches_the_admin_across_tenants(client, tenant_b):
    account_b = factories.AccountFactory(tenant=tenant_b.tenant)
    superuser = factories.UserFactory(username="root@platform.test", is_staff=True, is_superuser=True)
    client.force_login(superuser)
    assert client.get("/admin/").status_code == 200
    response = client.get(f"/admin/accounts/account/{account_b.pk}/change/")
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
