"""Two admins saving one endpoint at once, on committed rows and real connections (no test transaction):
the row is read locked inside the service's transaction, so neither change nor its audit diff is lost."""

from __future__ import annotations

import threading

from django.db import connections

from cs_platform.audit.models import AuditEvent
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from tests import factories
from webhooks import services
from webhooks.models import WebhookEndpoint


def test_concurrent_updates_of_one_endpoint_each_audit_what_the_other_wrote(
    tenant_committed, django_db_blocker, insecure
):
    """Each admin saves from the page they loaded; one waits for the other's lock, then starts from
    what it wrote."""
    with django_db_blocker.unblock():
        admin = factories.UserFactory(username="admin@race.test")
        factories.MembershipFactory(tenant=tenant_committed, user=admin, role=Role.ADMIN)
        endpoint, _ = services.webhook_endpoint_create(
            tenant=tenant_committed, url="http://127.0.0.1:9/in", events=["health.band_changed"], actor=admin
        )
    changes = [{"description": "From page one"}, {"events": ["health.band_changed", "decision.escalated"]}]
    barrier = threading.Barrier(len(changes))
    errors: list[BaseException] = []

    def save(change: dict) -> None:
        try:
            with django_db_blocker.unblock():
                with context.tenant_context(tenant_committed):
                    loaded = WebhookEndpoint.objects.get(pk=endpoint.pk)
                barrier.wait()
                services.webhook_endpoint_update(tenant=tenant_committed, endpoint=loaded, actor=admin, **change)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=save, args=(change,)) for change in changes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    with django_db_blocker.unblock(), context.tenant_context(tenant_committed):
        first, second = AuditEvent.objects.filter(action="webhook_endpoint.update").order_by("seq")
        saved = WebhookEndpoint.objects.get(pk=endpoint.pk)
    assert second.before == first.after
    assert (saved.description, saved.events) == ("From page one", ["health.band_changed", "decision.escalated"])
