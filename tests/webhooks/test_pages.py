"""The admin pages: create (secret shown once), edit, disable/enable, rotate, ping, the paged delivery
log, delivery detail with attempts and redeliver; 403 for other roles, 404 for other tenants."""

from __future__ import annotations

import datetime
import uuid
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from cs_platform.audit.models import AuditEvent
from cs_platform.outbox import DeliveryStatus
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from cs_platform.tenancy.policy import Capability
from tests.helpers import form_key, page_text, stored_anywhere
from tests.webhooks.conftest import make_endpoint
from webhooks import tasks
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db


def _endpoints(world) -> list[WebhookEndpoint]:
    with context.tenant_context(world.tenant):
        return list(WebhookEndpoint.objects.all())


def _actions(world) -> list[str]:
    with context.tenant_context(world.tenant):
        return list(
            AuditEvent.objects.filter(action__startswith="webhook").order_by("seq").values_list("action", flat=True)
        )


def test_admin_creates_a_webhook_and_sees_its_secret_once_in_the_answer_to_the_post(client, tenant_a, insecure):
    client.force_login(tenant_a.user(Role.ADMIN))
    home = page_text(client.get(reverse("home"), follow=True))
    assert reverse("webhooks") in home  # the nav link
    data = {
        "url": "http://127.0.0.1:9/hook",
        "description": "Ops",
        "events": ["health.band_changed"],
        "form_key": form_key(client, reverse("webhooks")),
    }
    response = client.post(reverse("webhooks"), data)
    # Answered directly, not redirected: the secret exists only in this answer, which no cache keeps.
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    [endpoint] = _endpoints(tenant_a)
    first = page_text(response)
    assert first.count(endpoint.secret) == 1 and "will not be shown again" in first
    assert "Webhook-Signature" in first and "HMAC-SHA256" in first  # the scheme is documented
    assert stored_anywhere(endpoint.secret, response) == []  # not in django_session, not in a cookie
    second = page_text(client.get(reverse("webhooks")))
    assert endpoint.secret not in second and "http://127.0.0.1:9/hook" in second
    detail = page_text(client.get(reverse("webhook_detail", kwargs={"webhook_id": endpoint.pk})))
    assert endpoint.secret not in detail and endpoint.secret_hint in detail

    # A reload of the answer sends the same POST again: no second webhook, and the secret is not shown.
    again = client.post(reverse("webhooks"), data, follow=True)
    assert again.redirect_chain == [(reverse("webhooks"), 302)]
    body = page_text(again)
    assert "no second webhook was created" in body and endpoint.secret not in body
    assert _endpoints(tenant_a) == [endpoint]
    assert _actions(tenant_a) == ["webhook_endpoint.create"]
    assert stored_anywhere(endpoint.secret, response, again) == []


def test_a_webhook_post_without_the_pages_key_creates_nothing(client, tenant_a, insecure):
    client.force_login(tenant_a.user(Role.ADMIN))
    data = {"url": "http://127.0.0.1:9/hook", "events": ["health.band_changed"]}
    for extra in ({}, {"form_key": "forged"}, {"form_key": form_key(client, reverse("api_tokens"))}):
        response = client.post(reverse("webhooks"), {**data, **extra})
        assert response.status_code == 400
        assert "This form had expired or did not come from this page" in page_text(response)
    assert _endpoints(tenant_a) == []


def test_a_refused_url_is_shown_next_to_the_field_and_nothing_is_stored(client, tenant_a, settings):
    settings.WEBHOOK_ALLOW_HTTP = False
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = False
    client.force_login(tenant_a.user(Role.ADMIN))
    key = form_key(client, reverse("webhooks"))
    response = client.post(reverse("webhooks"), {"url": "https://10.0.0.8/hook", "events": [], "form_key": key})
    assert response.status_code == 400
    body = page_text(response)
    assert 'id="id_url_error">' in body and "private, loopback or link-local" in body
    assert 'id="id_events_error">Choose at least one event.' in body
    assert 'value="https://10.0.0.8/hook"' in body  # the input is kept
    assert _endpoints(tenant_a) == []


@pytest.mark.parametrize("role", sorted(set(Role.values) - Capability.MANAGE_WEBHOOKS.roles))
def test_other_roles_get_403_and_change_nothing(client, tenant_a, role, insecure):
    endpoint, _ = make_endpoint(tenant_a, "http://127.0.0.1:9/hook")
    delivery = _delivery(tenant_a, endpoint, status=DeliveryStatus.FAILED)
    client.force_login(tenant_a.user(role))
    assert client.get(reverse("webhooks")).status_code == 403
    assert client.post(reverse("webhooks"), {"url": "http://127.0.0.1:9/x", "events": ["ping"]}).status_code == 403
    kwargs = {"webhook_id": endpoint.pk}
    assert client.get(reverse("webhook_detail", kwargs=kwargs)).status_code == 403
    for name in ("webhook_disable", "webhook_rotate_secret", "webhook_ping"):
        assert client.post(reverse(name, kwargs=kwargs)).status_code == 403, name
    assert client.get(reverse("webhook_delivery", kwargs={"delivery_id": delivery.pk})).status_code == 403
    assert client.post(reverse("webhook_delivery_redeliver", kwargs={"delivery_id": delivery.pk})).status_code == 403
    [unchanged] = _endpoints(tenant_a)
    assert unchanged.is_active and unchanged.secret == endpoint.secret
    assert _actions(tenant_a) == ["webhook_endpoint.create"]
    assert reverse("webhooks") not in page_text(client.get(reverse("account_list")))  # no nav link


def test_another_tenants_webhook_and_delivery_are_404_even_for_an_admin(client, tenant_a, tenant_b, insecure):
    endpoint_b, _ = make_endpoint(tenant_b, "http://127.0.0.1:9/b")
    delivery_b = _delivery(tenant_b, endpoint_b, status=DeliveryStatus.FAILED)
    client.force_login(tenant_a.user(Role.ADMIN))
    assert client.get(reverse("webhook_detail", kwargs={"webhook_id": endpoint_b.pk})).status_code == 404
    assert client.post(reverse("webhook_rotate_secret", kwargs={"webhook_id": endpoint_b.pk})).status_code == 404
    assert client.get(reverse("webhook_delivery", kwargs={"delivery_id": delivery_b.pk})).status_code == 404
    assert client.post(reverse("webhook_delivery_redeliver", kwargs={"delivery_id": delivery_b.pk})).status_code == 404
    assert "127.0.0.1:9/b" not in page_text(client.get(reverse("webhooks")))
    [unchanged] = _endpoints(tenant_b)
    assert unchanged.secret == endpoint_b.secret


def test_disable_enable_rotate_and_ping_from_the_page(client, tenant_a, insecure, django_capture_on_commit_callbacks):
    endpoint, secret = make_endpoint(tenant_a, "http://127.0.0.1:9/hook")
    client.force_login(tenant_a.user(Role.ADMIN))
    kwargs = {"webhook_id": endpoint.pk}
    detail = reverse("webhook_detail", kwargs=kwargs)

    assert client.get(reverse("webhook_disable", kwargs=kwargs)).status_code == 405  # POST only
    assert client.post(reverse("webhook_disable", kwargs=kwargs), {"reason": "Maintenance"}).status_code == 302
    [row] = _endpoints(tenant_a)
    assert not row.is_active and row.disabled_reason == "Maintenance"
    assert "Maintenance" in page_text(client.get(detail))
    # A disabled endpoint cannot be pinged.
    client.post(reverse("webhook_ping", kwargs=kwargs))
    with context.tenant_context(tenant_a.tenant):
        assert not WebhookDelivery.objects.exists()
    assert client.post(reverse("webhook_enable", kwargs=kwargs)).status_code == 302

    rotate = reverse("webhook_rotate_secret", kwargs=kwargs)
    rotation = {"form_key": form_key(client, detail)}
    response = client.post(rotate, rotation)
    # The endpoint's page, answered at the rotate URL: the secret is in this answer only.
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    [row] = _endpoints(tenant_a)
    assert row.secret != secret
    page = page_text(response)
    assert page.count(row.secret) == 1 and "Your new signing secret" in page
    assert f'<form method="post" action="{detail}" class="card">' in page  # edits still go to the page
    assert stored_anywhere(row.secret, response) == []
    assert row.secret not in page_text(client.get(detail))  # once
    # A reload of the answer rotates nothing and shows nothing.
    again = client.post(rotate, rotation, follow=True)
    assert again.redirect_chain == [(detail, 302)]
    assert "not rotated again" in page_text(again) and row.secret not in page_text(again)
    # Nor does a rotation without the page's key, or with another endpoint's.
    other, _ = make_endpoint(tenant_a, "http://127.0.0.1:9/other")
    for data in ({}, {"form_key": form_key(client, reverse("webhook_detail", kwargs={"webhook_id": other.pk}))}):
        refused = client.post(rotate, data, follow=True)
        assert refused.redirect_chain == [(detail, 302)] and "was not rotated" in page_text(refused)
    assert [e.secret for e in _endpoints(tenant_a) if e.pk == endpoint.pk] == [row.secret]

    with mock.patch.object(tasks.webhook_deliver, "apply_async") as apply_async:
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(reverse("webhook_ping", kwargs=kwargs))
    with context.tenant_context(tenant_a.tenant):
        ping = WebhookDelivery.objects.get()
    assert ping.event_type == "ping" and ping.requested_by == tenant_a.user(Role.ADMIN)
    assert response["Location"] == reverse("webhook_delivery", kwargs={"delivery_id": ping.pk})
    apply_async.assert_called_once_with((tenant_a.tenant.pk, ping.pk, 1))
    assert _actions(tenant_a) == [
        "webhook_endpoint.create",
        "webhook_endpoint.update",
        "webhook_endpoint.update",
        "webhook_endpoint.rotate_secret",
        "webhook_endpoint.create",  # the other endpoint
        "webhook_endpoint.ping",
    ]


def test_editing_the_endpoint_validates_and_audits(client, tenant_a, insecure):
    endpoint, _ = make_endpoint(tenant_a, "http://127.0.0.1:9/hook")
    client.force_login(tenant_a.user(Role.ADMIN))
    url = reverse("webhook_detail", kwargs={"webhook_id": endpoint.pk})
    bad = client.post(url, {"url": "ftp://x.example.com", "events": ["decision.escalated"]})
    assert bad.status_code == 400 and "must start with https://" in page_text(bad)
    ok = client.post(url, {"url": "http://127.0.0.1:9/v2", "description": "New", "events": ["decision.escalated"]})
    assert ok.status_code == 302
    [row] = _endpoints(tenant_a)
    assert (row.url, row.description, row.events) == ("http://127.0.0.1:9/v2", "New", ["decision.escalated"])
    assert _actions(tenant_a) == ["webhook_endpoint.create", "webhook_endpoint.update"]


def _delivery(world, endpoint, *, status=DeliveryStatus.SENT, created_at=None, attempts=1) -> WebhookDelivery:
    with context.tenant_context(world.tenant):
        return WebhookDelivery.objects.create(
            tenant=world.tenant,
            endpoint=endpoint,
            event_type="health.band_changed",
            event_id=uuid.uuid4(),
            payload={"type": "health.band_changed", "data": {"account": {"id": 1, "name": "Bank"}}},
            status=status,
            attempts=attempts,
            last_status_code=200 if status == DeliveryStatus.SENT else 500,
            created_at=created_at or timezone.now(),
        )


def _log_page(client, endpoint, page: int = 1):
    url = reverse("webhook_detail", kwargs={"webhook_id": endpoint.pk})
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, {"page": page})
    assert response.status_code == 200
    return page_text(response), len(queries)


def test_the_delivery_log_is_paged_newest_first_with_constant_queries(client, tenant_a, insecure):
    endpoint, _ = make_endpoint(tenant_a, "http://127.0.0.1:9/hook")
    start = timezone.now() - datetime.timedelta(days=1)
    rows = [_delivery(tenant_a, endpoint, created_at=start + datetime.timedelta(minutes=n)) for n in range(2)]
    client.force_login(tenant_a.user(Role.ADMIN))
    client.get(reverse("webhooks"))  # session and tenant settled
    body, few = _log_page(client, endpoint)
    assert "2 in all" in body
    rows += [_delivery(tenant_a, endpoint, created_at=start + datetime.timedelta(minutes=n)) for n in range(2, 30)]
    body, many = _log_page(client, endpoint)
    # Queries: session, user, membership (+ tenant context), the endpoint, the log's count, one page of
    # deliveries; the same for 2 and 30 deliveries.
    assert many == few
    assert "30 in all" in body and "Page 1 of 2" in body
    newest = reverse("webhook_delivery", kwargs={"delivery_id": rows[-1].pk})
    oldest = reverse("webhook_delivery", kwargs={"delivery_id": rows[0].pk})
    assert newest in body and oldest not in body
    body, _ = _log_page(client, endpoint, page=2)
    assert oldest in body and newest not in body


def test_delivery_detail_shows_each_attempt_and_redeliver_queues_a_new_delivery(
    client, tenant_a, insecure, django_capture_on_commit_callbacks
):
    endpoint, _ = make_endpoint(tenant_a, "http://127.0.0.1:9/hook")
    delivery = _delivery(tenant_a, endpoint, status=DeliveryStatus.FAILED, attempts=2)
    with context.tenant_context(tenant_a.tenant):
        for number, code in ((1, 500), (2, None)):
            WebhookAttempt.objects.create(
                tenant=tenant_a.tenant,
                delivery=delivery,
                number=number,
                url=endpoint.url,
                status_code=code,
                error="The receiver answered HTTP 500." if code else "No answer within 10 s.",
            )
    client.force_login(tenant_a.user(Role.ADMIN))
    url = reverse("webhook_delivery", kwargs={"delivery_id": delivery.pk})
    body = page_text(client.get(url))
    assert "HTTP 500" in body and "No answer within 10 s." in body and str(delivery.event_id) in body
    assert '"name": "Bank"' in body and "Redeliver" in body

    with mock.patch.object(tasks.webhook_deliver, "apply_async") as apply_async:
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(reverse("webhook_delivery_redeliver", kwargs={"delivery_id": delivery.pk}))
    with context.tenant_context(tenant_a.tenant):
        again = WebhookDelivery.objects.get(redelivery_of=delivery)
    assert response["Location"] == reverse("webhook_delivery", kwargs={"delivery_id": again.pk})
    assert (again.event_id, again.payload, again.status) == (delivery.event_id, delivery.payload, "pending")
    apply_async.assert_called_once_with((tenant_a.tenant.pk, again.pk, 1))
    assert _actions(tenant_a)[-1] == "webhook_delivery.redeliver"
    # A pending delivery cannot be redelivered: the message says why, nothing is added.
    response = client.post(reverse("webhook_delivery_redeliver", kwargs={"delivery_id": again.pk}), follow=True)
    assert "still being attempted" in page_text(response)
    with context.tenant_context(tenant_a.tenant):
        assert WebhookDelivery.objects.count() == 2


def test_the_endpoint_list_costs_the_same_queries_for_2_and_20_endpoints(client, tenant_a, insecure):
    def endpoints(n: int) -> None:
        for i in range(n):
            endpoint, _ = make_endpoint(tenant_a, f"http://127.0.0.1:9/hook{i}")
            _delivery(tenant_a, endpoint, status=DeliveryStatus.FAILED)

    def count() -> tuple[int, str]:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(reverse("webhooks"))
        return len(queries), page_text(response)

    client.force_login(tenant_a.user(Role.ADMIN))
    client.get(reverse("webhooks"))  # session and tenant settled
    endpoints(2)
    few, _ = count()
    endpoints(18)
    many, body = count()
    # Queries: session, user, membership (+ tenant context), then one for the endpoints with their
    # creators and latest delivery (subqueries); the same for 2 and 20 endpoints.
    assert many == few
    assert body.count("http://127.0.0.1:9/hook") == 20 and body.count(">Failed<") == 20
