"""The project's URL space, enumerated from the resolver, with a factory per URL keyword argument.

Shared by the tests that must cover every page without being edited when one is added: the
cross-tenant isolation matrix, the hostile-data test and the no-500 property test. A URL whose keyword
argument has no factory here fails those tests until one is added."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, get_resolver

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
            tenant=world.tenant,
            url="https://hooks.example.test/matrix",
            events=["health.band_changed"],
            actor=world.user(Role.ADMIN),
        )
    return endpoint.pk


def _delivery_of(world) -> int:
    import uuid

    from cs_platform.outbox import DeliveryStatus
    from cs_platform.tenancy import context
    from webhooks.models import WebhookDelivery, WebhookEndpoint

    endpoint_id = _webhook_of(world)
    with context.tenant_context(world.tenant):
        endpoint = WebhookEndpoint.objects.get(pk=endpoint_id)
        # A finished delivery, so the owning tenant's POST to "redeliver" is a real redelivery.
        delivery = WebhookDelivery.objects.create(
            tenant=world.tenant,
            endpoint=endpoint,
            event_type="ping",
            event_id=uuid.uuid4(),
            payload={},
            status=DeliveryStatus.FAILED,
            attempts=1,
        )
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
PUBLIC = {
    "login",
    "logout",
    "healthz",
    "api_schema",
    "api_docs",
    "api_redoc",
    "weekly_email_unsubscribe",
    "weekly_email_unsubscribe_before_17",
    # Identity (tests/identity): the code step, password reset, and the admin's login (a redirect to ours).
    "login_verify",
    "password_reset",
    "password_reset_sent",
    "password_reset_done",
    "password_reset_confirm",
    "admin_login",
}
# URLs whose keyword argument is a signed token (the credential itself), not an object id: a token names
# its tenant and cannot be forged for another one; tests/scorecards/test_subscriptions.py covers them,
# and tests/identity/test_password_reset.py the password reset link.
TOKEN_URLS = {"weekly_email_unsubscribe", "weekly_email_unsubscribe_before_17", "password_reset_confirm"}
# Namespaces tested on their own (the Django admin is for platform superusers only, see below; the
# operations endpoints /readyz and /metrics in tests/observability: readiness is 503 in a test database
# without a beat tick, and /metrics is for Prometheus, not people).
SEPARATELY_TESTED_NAMESPACES = {"admin", "operations"}


def _walk(resolver=None, namespace=None):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            child_ns = entry.namespace or namespace
            if child_ns in SEPARATELY_TESTED_NAMESPACES:
                continue
            yield from _walk(entry, child_ns)
        elif isinstance(entry, URLPattern):
            if getattr(entry.callback, "moved_to", None):
                continue  # a renamed page's old address: a 308 to the new one (tests/test_moved_urls.py)
            name = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name
            yield name, entry


def all_patterns(*, with_token_urls: bool = False):
    """Every (name, pattern) of the project but the separately tested namespaces; the TOKEN_URLS too when
    asked (the hostile-data test renders them with a real token)."""
    patterns = [(name, pattern) for name, pattern in _walk() if with_token_urls or name not in TOKEN_URLS]
    assert patterns, "the URL resolver yielded nothing"
    return patterns


def kwargs_of(pattern: URLPattern) -> list[str]:
    return list(pattern.pattern.regex.groupindex)
