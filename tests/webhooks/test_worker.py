"""Retries on a real Celery worker (prefork, Redis broker, the app database role): the receiver answers
500 twice and then 200; the worker's own countdowns bring the delivery to success with three attempts
logged. The worker needs committed rows (tests/committed.py), purged once it has stopped."""

from __future__ import annotations

import time

import pytest
from django.conf import settings
from django.db import connection, connections

from cs_platform.outbox import DeliveryStatus
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from tests import factories
from tests.committed import purge_tenant
from tests.metrics.test_celery_worker import worker_pool
from tests.webhooks.receiver import Receiver
from webhooks import services
from webhooks.models import WebhookAttempt, WebhookDelivery
from webhooks.tasks import webhook_deliver

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the worker test runs on PostgreSQL"),
    pytest.mark.skipif(not settings.CELERY_BROKER_URL, reason="no Celery broker configured"),
]

RETRY_BASE = 0.2
EVENT_ID = "8d0f0c1e-6a53-4b8e-9d3b-2b4a1c0e7f11"


@pytest.fixture
def committed_world(django_db_setup, django_db_blocker):
    """A committed tenant with an admin; purged (users too) after the workers have stopped."""
    with django_db_blocker.unblock():
        tenant = factories.TenantFactory(slug="webhook-worker", name="Webhook worker", reference_data=False)
        admin = factories.UserFactory(username="admin@webhook-worker.test")
        factories.MembershipFactory(tenant=tenant, user=admin, role=Role.ADMIN)
    yield tenant, admin
    with django_db_blocker.unblock():
        connections["default"].close()
        purge_tenant(tenant.pk, [admin.pk])


@pytest.fixture
def worker(committed_world, tmp_path, monkeypatch):
    # The worker reads its settings from the environment it inherits.
    monkeypatch.setenv("WEBHOOK_ALLOW_HTTP", "true")
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE_HOSTS", "true")
    monkeypatch.setenv("WEBHOOK_RETRY_BASE_SECONDS", str(RETRY_BASE))
    monkeypatch.setenv("WEBHOOK_MAX_ATTEMPTS", "5")
    with worker_pool(tmp_path) as pool:
        pool.start()
        yield pool


def test_a_real_worker_retries_with_backoff_until_the_receiver_accepts(
    committed_world, worker, django_db_blocker, settings
):
    tenant, admin = committed_world
    # This process validates the URL at registration.
    settings.WEBHOOK_ALLOW_HTTP = settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    with Receiver([500, 500, 200]) as receiver:
        with django_db_blocker.unblock():
            endpoint, receiver.secret = services.webhook_endpoint_create(
                tenant=tenant, url=receiver.url, events=["health.band_changed"], actor=admin
            )
            # The ping's on_commit queues on the default queue; this test sends to the worker's own.
            with context.tenant_context(tenant):
                delivery = WebhookDelivery.objects.create(
                    tenant=tenant,
                    endpoint=endpoint,
                    event_type="ping",
                    event_id=EVENT_ID,
                    payload={"id": EVENT_ID, "type": "ping", "data": {}},
                )
        assert (
            webhook_deliver.apply_async((tenant.pk, delivery.pk, 1), queue=worker.queue).get(timeout=30) == "retrying"
        )

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(receiver.received) < 3:
            time.sleep(0.05)
        assert len(receiver.received) == 3, worker.logs()
        with django_db_blocker.unblock():
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with context.tenant_context(tenant):
                    done = WebhookDelivery.objects.get(pk=delivery.pk)
                    attempts = list(WebhookAttempt.objects.filter(delivery=done).order_by("number"))
                if done.status == DeliveryStatus.SENT:
                    break
                time.sleep(0.05)

    assert [(r.verified, r.answered) for r in receiver.received] == [(True, 500), (True, 500), (True, 200)]
    assert (done.status, done.attempts, done.last_status_code) == (DeliveryStatus.SENT, 3, 200), worker.logs()
    assert [(a.number, a.status_code, a.succeeded) for a in attempts] == [
        (1, 500, False),
        (2, 500, False),
        (3, 200, True),
    ]
    # The worker waited its backoff between attempts: ~0.2 s, then ~0.4 s (countdowns, not sleeps).
    gaps = [b.at - a.at for a, b in zip(receiver.received, receiver.received[1:], strict=False)]
    assert gaps[0] >= RETRY_BASE * 0.9 and gaps[1] >= 2 * RETRY_BASE * 0.9, gaps
    assert attempts[0].next_attempt_at is not None
