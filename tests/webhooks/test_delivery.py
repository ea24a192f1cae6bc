"""Deliveries to a real HTTP receiver that verifies signatures with its own code: success, retries
with backoff, giving up, no redirects, connection errors, rotation, and the delivery-time SSRF check."""

from __future__ import annotations

import datetime
import json
import socket
from unittest import mock

import pytest
from django.utils import timezone

from cs_platform.outbox import NOT_CLAIMED, DeliveryStatus
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from tests.webhooks.conftest import attempts_of, deliver_now, delivery_of, make_endpoint
from tests.webhooks.receiver import Receiver
from webhooks import delivery as webhook_delivery
from webhooks import services, tasks, transport
from webhooks.models import WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db


def _ping(world, endpoint):
    return services.webhook_ping(tenant=world.tenant, endpoint=endpoint, actor=world.user(Role.ADMIN))


def test_a_delivery_is_signed_and_the_receiver_verifies_it(tenant_a, insecure):
    with Receiver([204]) as receiver:
        endpoint, secret = make_endpoint(tenant_a, receiver.url)
        receiver.secret = secret
        delivery = _ping(tenant_a, endpoint)
        assert deliver_now(tenant_a.tenant, delivery.pk) == []

    [request] = receiver.received
    assert request.verified and request.answered == 204 and request.path == "/hook"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == transport.USER_AGENT
    assert request.headers["Webhook-Id"] == str(delivery.event_id)
    # The body is the stored envelope, compact with sorted keys: what the signature covers.
    body = json.loads(request.body)
    assert body == delivery.payload and body["type"] == "ping" and body["id"] == str(delivery.event_id)
    assert request.body == json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    assert body["tenant"] == tenant_a.tenant.slug

    done = delivery_of(tenant_a.tenant, delivery.pk)
    assert (done.status, done.attempts, done.last_status_code, done.last_error) == (
        DeliveryStatus.SENT,
        1,
        204,
        "",
    )
    assert done.delivered_at is not None and done.next_attempt_at is None
    [attempt] = attempts_of(tenant_a.tenant, delivery.pk)
    assert (attempt.number, attempt.status_code, attempt.succeeded, attempt.error) == (1, 204, True, "")
    assert attempt.url == receiver.url and attempt.response_excerpt == ""


def test_a_receiver_with_the_wrong_secret_refuses_and_rotation_shows_the_new_one_once(tenant_a, insecure):
    with Receiver([200]) as receiver:
        endpoint, secret = make_endpoint(tenant_a, receiver.url)
        receiver.secret = secret
        endpoint, rotated = services.webhook_endpoint_rotate_secret(
            tenant=tenant_a.tenant, endpoint=endpoint, actor=tenant_a.user(Role.ADMIN)
        )
        assert rotated != secret and rotated.startswith("whsec_")
        delivery = _ping(tenant_a, endpoint)
        outcome = webhook_delivery.delivery_attempt(tenant=tenant_a.tenant, delivery_id=delivery.pk, attempt=1)
        assert outcome.status == DeliveryStatus.RETRYING  # the receiver still holds the old secret: 401
        receiver.secret = rotated
        outcome = webhook_delivery.delivery_attempt(tenant=tenant_a.tenant, delivery_id=delivery.pk, attempt=2)
        assert outcome.status == DeliveryStatus.SENT
    assert [(r.verified, r.answered) for r in receiver.received] == [(False, 401), (True, 200)]
    # The same event id on both attempts, so a receiver can drop duplicates.
    assert {r.headers["Webhook-Id"] for r in receiver.received} == {str(delivery.event_id)}
    assert [a.status_code for a in attempts_of(tenant_a.tenant, delivery.pk)] == [401, 200]


def test_a_failing_receiver_is_retried_with_backoff_and_every_attempt_is_logged(tenant_a, insecure):
    with Receiver([500, 500, 200]) as receiver:
        endpoint, receiver.secret = make_endpoint(tenant_a, receiver.url)
        delivery = _ping(tenant_a, endpoint)
        delays = deliver_now(tenant_a.tenant, delivery.pk)

    assert [r.answered for r in receiver.received] == [500, 500, 200] and all(r.verified for r in receiver.received)
    # base * 2**(attempt-1), plus at most 10% jitter.
    assert 0.2 <= delays[0] <= 0.22 and 0.4 <= delays[1] <= 0.44
    attempts = attempts_of(tenant_a.tenant, delivery.pk)
    assert [(a.number, a.status_code, a.succeeded) for a in attempts] == [
        (1, 500, False),
        (2, 500, False),
        (3, 200, True),
    ]
    assert attempts[0].error == "The receiver answered HTTP 500." and attempts[0].response_excerpt == "receiver says no"
    assert attempts[0].next_attempt_at is not None and attempts[2].next_attempt_at is None
    done = delivery_of(tenant_a.tenant, delivery.pk)
    assert (done.status, done.attempts, done.last_status_code) == (DeliveryStatus.SENT, 3, 200)


def test_a_receiver_that_always_fails_ends_failed_after_the_last_attempt(tenant_a, insecure):
    insecure.WEBHOOK_MAX_ATTEMPTS = 4
    with Receiver([503]) as receiver:
        endpoint, receiver.secret = make_endpoint(tenant_a, receiver.url)
        delivery = _ping(tenant_a, endpoint)
        delays = deliver_now(tenant_a.tenant, delivery.pk)
        # A duplicate message for an attempt already made (or past the end) sends nothing.
        assert (
            webhook_delivery.delivery_attempt(tenant=tenant_a.tenant, delivery_id=delivery.pk, attempt=4).status
            == NOT_CLAIMED
        )
        assert (
            webhook_delivery.delivery_attempt(tenant=tenant_a.tenant, delivery_id=delivery.pk, attempt=5).status
            == NOT_CLAIMED
        )

    assert len(receiver.received) == 4 and len(delays) == 3
    assert delays == sorted(delays)  # growing
    done = delivery_of(tenant_a.tenant, delivery.pk)
    assert (done.status, done.attempts, done.last_status_code) == (DeliveryStatus.FAILED, 4, 503)
    assert done.next_attempt_at is None
    assert [a.number for a in attempts_of(tenant_a.tenant, delivery.pk)] == [1, 2, 3, 4]


def test_the_task_queues_the_next_attempt_for_the_rows_due_time(tenant_a, insecure):
    with Receiver([500]) as receiver:
        endpoint, receiver.secret = make_endpoint(tenant_a, receiver.url)
        delivery = _ping(tenant_a, endpoint)
        with mock.patch.object(tasks.webhook_deliver, "apply_async") as apply_async:
            before = timezone.now()
            assert tasks.webhook_deliver.run(tenant_a.tenant.pk, delivery.pk, 1) == DeliveryStatus.RETRYING
            after = timezone.now()
    [call] = apply_async.call_args_list
    assert call.args == ((tenant_a.tenant.pk, delivery.pk, 2),)
    # eta is the very next_attempt_at of the row (and of the attempt log), the backoff after the attempt.
    due = delivery_of(tenant_a.tenant, delivery.pk).next_attempt_at
    assert call.kwargs == {"eta": due}
    assert before + datetime.timedelta(seconds=0.2) <= due <= after + datetime.timedelta(seconds=0.22)


def test_redirects_are_not_followed(tenant_a, insecure):
    with Receiver([302], location="http://127.0.0.1:9/elsewhere") as receiver:
        endpoint, receiver.secret = make_endpoint(tenant_a, receiver.url)
        delivery = _ping(tenant_a, endpoint)
        webhook_delivery.delivery_attempt(tenant=tenant_a.tenant, delivery_id=delivery.pk, attempt=1)
    assert len(receiver.received) == 1
    [attempt] = attempts_of(tenant_a.tenant, delivery.pk)
    assert attempt.status_code == 302 and not attempt.succeeded and "Redirects are not followed" in attempt.error
    assert delivery_of(tenant_a.tenant, delivery.pk).status == DeliveryStatus.RETRYING


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_connection_error_is_recorded_and_retried(tenant_a, insecure):
    endpoint, _ = make_endpoint(tenant_a, f"http://127.0.0.1:{_closed_port()}/hook")
    delivery = _ping(tenant_a, endpoint)
    outcome = webhook_delivery.delivery_attempt(tenant=tenant_a.tenant, delivery_id=delivery.pk, attempt=1)
    assert outcome.status == DeliveryStatus.RETRYING and outcome.retry_in is not None
    [attempt] = attempts_of(tenant_a.tenant, delivery.pk)
    assert attempt.status_code is None and attempt.error.startswith("Connection failed: ConnectionError")


def test_a_disabled_endpoint_gets_nothing_from_queued_deliveries(tenant_a, insecure):
    with Receiver([200]) as receiver:
        endpoint, receiver.secret = make_endpoint(tenant_a, receiver.url)
        delivery = _ping(tenant_a, endpoint)
        services.webhook_endpoint_update(
            tenant=tenant_a.tenant,
            endpoint=endpoint,
            actor=tenant_a.user(Role.ADMIN),
            is_active=False,
            disabled_reason="Receiver being replaced",
        )
        assert deliver_now(tenant_a.tenant, delivery.pk) == []
    assert receiver.received == []
    done = delivery_of(tenant_a.tenant, delivery.pk)
    assert done.status == DeliveryStatus.FAILED and "Receiver being replaced" in done.last_error


def test_delivery_time_check_refuses_a_private_address_even_if_the_url_was_accepted(tenant_a, settings):
    """DNS can change after registration: each delivery resolves and checks again, and a private
    address ends the delivery at once, before any connection (tests/webhooks/test_pinning.py)."""
    settings.WEBHOOK_ALLOW_HTTP = False
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = False
    with Receiver([200]) as receiver:
        public = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 443))]
        with mock.patch("webhooks.transport.socket.getaddrinfo", return_value=public):
            endpoint, receiver.secret = make_endpoint(tenant_a, "https://hooks.example.com/in")
        # The name now points at the loopback (here: the URL names it, as a rebinding resolver would).
        port = receiver.server.server_address[1]
        with context.tenant_context(tenant_a.tenant):
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url=f"https://127.0.0.1:{port}/hook")
            endpoint.refresh_from_db()
        delivery = _ping(tenant_a, endpoint)
        assert deliver_now(tenant_a.tenant, delivery.pk) == []  # no retry
    assert receiver.received == []
    done = delivery_of(tenant_a.tenant, delivery.pk)
    assert done.status == DeliveryStatus.FAILED and done.attempts == 1
    assert "Refused to connect to 127.0.0.1" in done.last_error


def test_redeliver_sends_the_same_event_again_as_a_new_delivery(tenant_a, insecure):
    with Receiver([500, 200]) as receiver:
        insecure.WEBHOOK_MAX_ATTEMPTS = 1
        endpoint, receiver.secret = make_endpoint(tenant_a, receiver.url)
        delivery = _ping(tenant_a, endpoint)
        deliver_now(tenant_a.tenant, delivery.pk)
        assert delivery_of(tenant_a.tenant, delivery.pk).status == DeliveryStatus.FAILED
        again = services.webhook_delivery_redeliver(
            tenant=tenant_a.tenant, delivery=delivery_of(tenant_a.tenant, delivery.pk), actor=tenant_a.user(Role.ADMIN)
        )
        deliver_now(tenant_a.tenant, again.pk)
    first, second = receiver.received
    assert first.body == second.body and first.headers["Webhook-Id"] == second.headers["Webhook-Id"]
    assert delivery_of(tenant_a.tenant, again.pk).status == DeliveryStatus.SENT
    original = delivery_of(tenant_a.tenant, delivery.pk)
    assert original.status == DeliveryStatus.FAILED and original.attempts == 1  # its log is unchanged
    with context.tenant_context(tenant_a.tenant):
        assert WebhookDelivery.objects.get(pk=again.pk).redelivery_of_id == delivery.pk
    with pytest.raises(Exception, match="still being attempted"):
        pending = _ping(tenant_a, endpoint)
        services.webhook_delivery_redeliver(tenant=tenant_a.tenant, delivery=pending, actor=tenant_a.user(Role.ADMIN))


def test_stale_deliveries_are_queued_again_and_a_late_duplicate_sends_once(tenant_a, tenant_b, insecure):
    """A lost message (broker down at commit, worker killed after claiming) leaves a delivery pending or
    retrying with its next attempt long past: the periodic sweep queues it again, in every tenant."""
    import datetime

    from django.utils import timezone

    old = timezone.now() - datetime.timedelta(hours=1)
    with Receiver([200]) as receiver:
        endpoint, receiver.secret = make_endpoint(tenant_a, receiver.url)
        endpoint_b, _ = make_endpoint(tenant_b, receiver.url)
        lost = _ping(tenant_a, endpoint)
        fresh = _ping(tenant_a, endpoint)
        claimed = _ping(tenant_b, endpoint_b)
        with context.tenant_context(tenant_a.tenant):
            WebhookDelivery.objects.filter(pk=lost.pk).update(created_at=old)
        with context.tenant_context(tenant_b.tenant):
            # Attempt 2 was claimed, then its worker died: no attempt row, the retry time long gone.
            WebhookDelivery.objects.filter(pk=claimed.pk).update(
                status=DeliveryStatus.RETRYING, attempts=2, next_attempt_at=old
            )
        with mock.patch.object(tasks.webhook_deliver, "apply_async") as apply_async:
            assert tasks.webhook_requeue_stale.run() == 2
        assert sorted(c.args[0] for c in apply_async.call_args_list) == sorted(
            [(tenant_a.tenant.pk, lost.pk, 1), (tenant_b.tenant.pk, claimed.pk, 3)]
        )
        # The original message turning up late as well: only one of the two sends.
        for _ in range(2):
            webhook_delivery.delivery_attempt(tenant=tenant_a.tenant, delivery_id=lost.pk, attempt=1)
    assert len(receiver.received) == 1
    assert delivery_of(tenant_a.tenant, lost.pk).status == DeliveryStatus.SENT
    assert delivery_of(tenant_a.tenant, fresh.pk).status == DeliveryStatus.PENDING
