from __future__ import annotations

import pytest

from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from webhooks import delivery as webhook_delivery
from webhooks import services
from webhooks.models import WebhookAttempt, WebhookDelivery


@pytest.fixture
def insecure(settings):
    """The test receiver listens on plain http on 127.0.0.1, which production refuses twice over."""
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    settings.WEBHOOK_RETRY_BASE_SECONDS = 0.2
    return settings


def make_endpoint(world, url: str, events=("health.band_changed",), **kwargs):
    return services.webhook_endpoint_create(
        tenant=world.tenant, url=url, events=list(events), actor=world.user(Role.ADMIN), **kwargs
    )


def deliver_now(tenant, delivery_id: int) -> list[float]:
    """Run the delivery's attempts synchronously, as the worker would but without the waits; returns
    the backoff delays that would have been used between them."""
    delays, attempt = [], 1
    while True:
        outcome = webhook_delivery.delivery_attempt(tenant=tenant, delivery_id=delivery_id, attempt=attempt)
        if outcome.retry_in is None:
            return delays
        delays.append(outcome.retry_in)
        attempt += 1


def delivery_of(tenant, delivery_id: int) -> WebhookDelivery:
    with context.tenant_context(tenant):
        return WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)


def attempts_of(tenant, delivery_id: int) -> list[WebhookAttempt]:
    with context.tenant_context(tenant):
        return list(WebhookAttempt.objects.filter(delivery_id=delivery_id).order_by("number"))
