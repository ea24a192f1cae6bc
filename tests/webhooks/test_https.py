"""Delivery over real TLS to a local HTTPS receiver whose certificate comes from a throwaway CA (made in
tmp_path at test time), and the two separate relaxations: WEBHOOK_ALLOW_PRIVATE_HOSTS lets a loopback
receiver in without letting http:// in, and WEBHOOK_ALLOW_HTTP the reverse. WEBHOOK_CA_BUNDLE says which
CAs the sender trusts; without it, the throwaway CA is unknown and the handshake must fail."""

from __future__ import annotations

import socket
import time
from unittest import mock

import pytest
from django.core.exceptions import ValidationError

from cs_platform.outbox import DeliveryStatus
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from tests.test_settings import _manage
from tests.webhooks.conftest import attempts_of, delivery_of, make_endpoint
from tests.webhooks.receiver import Receiver, throwaway_tls
from webhooks import delivery as webhook_delivery
from webhooks import services, tasks, transport
from webhooks.models import WebhookEndpoint


@pytest.fixture
def tls(tmp_path):
    return throwaway_tls(tmp_path)


@pytest.fixture
def private_hosts_only(settings):
    """A loopback receiver is allowed, plain http is not, and no extra CA is trusted."""
    settings.WEBHOOK_ALLOW_HTTP = False
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    settings.WEBHOOK_CA_BUNDLE = None
    settings.WEBHOOK_RETRY_BASE_SECONDS = 0.2
    return settings


def _ping(world, endpoint):
    return services.webhook_ping(tenant=world.tenant, endpoint=endpoint, actor=world.user(Role.ADMIN))


def _wait_for(condition, seconds: float = 5.0) -> None:
    # The receiver's thread notes a failed handshake a moment after the client has given up.
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.mark.django_db
def test_an_https_delivery_trusting_the_receivers_ca_is_signed_and_verified(tenant_a, private_hosts_only, tls):
    private_hosts_only.WEBHOOK_CA_BUNDLE = str(tls.ca)
    with Receiver([200], tls=tls) as receiver:
        assert receiver.url.startswith("https://127.0.0.1:")
        endpoint, receiver.secret = make_endpoint(tenant_a, receiver.url)
        delivery = _ping(tenant_a, endpoint)
        # The Celery task's body, as a worker runs it (the first attempt succeeds: nothing is queued).
        assert tasks.webhook_deliver.run(tenant_a.tenant.pk, delivery.pk, 1) == DeliveryStatus.SENT

    assert receiver.tls_failures == []
    [request] = receiver.received
    assert request.verified and request.answered == 200 and request.path == "/hook"
    assert request.body == transport.encode_body(delivery.payload).encode()
    assert request.headers["Webhook-Id"] == str(delivery.event_id)
    done = delivery_of(tenant_a.tenant, delivery.pk)
    assert (done.status, done.attempts, done.last_status_code, done.last_error) == (
        DeliveryStatus.SENT,
        1,
        200,
        "",
    )
    [attempt] = attempts_of(tenant_a.tenant, delivery.pk)
    assert attempt.url == receiver.url and attempt.succeeded


@pytest.mark.django_db
def test_an_untrusted_certificate_is_logged_clearly_and_retried_until_its_ca_is_trusted(
    tenant_a, private_hosts_only, tls
):
    with Receiver([200], tls=tls) as receiver:
        endpoint, receiver.secret = make_endpoint(tenant_a, receiver.url)
        delivery = _ping(tenant_a, endpoint)
        # Default trust store (certifi): the throwaway CA is not in it.
        outcome = webhook_delivery.delivery_attempt(tenant=tenant_a.tenant, delivery_id=delivery.pk, attempt=1)
        assert outcome.status == DeliveryStatus.RETRYING and outcome.retry_in is not None
        _wait_for(lambda: receiver.tls_failures)
        assert receiver.received == [] and receiver.tls_failures  # nothing was sent in the clear
        [attempt] = attempts_of(tenant_a.tenant, delivery.pk)
        assert attempt.status_code is None and not attempt.succeeded and attempt.next_attempt_at is not None
        assert attempt.error == (
            "TLS certificate verification failed: unable to get local issuer certificate. The receiver must "
            "present a certificate for its host name from a CA the platform trusts."
        )
        waiting = delivery_of(tenant_a.tenant, delivery.pk)
        assert waiting.status == DeliveryStatus.RETRYING and waiting.last_error == attempt.error

        # The operator adds the tenant's CA: the retry goes through, with the same event.
        private_hosts_only.WEBHOOK_CA_BUNDLE = str(tls.ca)
        outcome = webhook_delivery.delivery_attempt(tenant=tenant_a.tenant, delivery_id=delivery.pk, attempt=2)
    assert outcome.status == DeliveryStatus.SENT
    [request] = receiver.received
    assert request.verified and request.headers["Webhook-Id"] == str(delivery.event_id)
    assert [(a.number, a.succeeded) for a in attempts_of(tenant_a.tenant, delivery.pk)] == [(1, False), (2, True)]


@pytest.mark.django_db
def test_http_is_refused_at_registration_when_only_private_hosts_are_allowed(tenant_a, private_hosts_only):
    with pytest.raises(ValidationError) as raised:
        make_endpoint(tenant_a, "http://127.0.0.1:8080/hook")
    assert raised.value.message_dict == {"url": ["The URL must start with https://."]}
    # The same loopback receiver over https is accepted: the scheme alone was refused.
    endpoint, _ = make_endpoint(tenant_a, "https://127.0.0.1:8080/hook")
    assert endpoint.url == "https://127.0.0.1:8080/hook"


def _resolves_to_public():
    public = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 80))]
    return mock.patch("webhooks.transport.socket.getaddrinfo", return_value=public)


@pytest.mark.django_db
def test_a_private_destination_is_refused_when_only_http_is_allowed(tenant_a, settings):
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = False
    with _resolves_to_public():
        endpoint, _ = make_endpoint(tenant_a, "http://hooks.example.com/in")  # http itself is accepted
    assert endpoint.url == "http://hooks.example.com/in"
    with pytest.raises(ValidationError) as raised:
        make_endpoint(tenant_a, "http://127.0.0.1:8080/hook")
    assert "private, loopback or link-local" in raised.value.message_dict["url"][0]

    # At delivery too: the http allowance does not turn off the check on the address connected to.
    with Receiver([200]) as receiver:
        with context.tenant_context(tenant_a.tenant):
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url=receiver.url)  # as if DNS now said so
            endpoint.refresh_from_db()
        delivery = _ping(tenant_a, endpoint)
        outcome = webhook_delivery.delivery_attempt(tenant=tenant_a.tenant, delivery_id=delivery.pk, attempt=1)
    assert receiver.received == []
    assert outcome.status == DeliveryStatus.FAILED and outcome.retry_in is None
    assert "Refused to connect to 127.0.0.1" in delivery_of(tenant_a.tenant, delivery.pk).last_error


# --- the settings themselves ----------------------------------------------------------------------------------


def test_the_webhook_settings_default_to_refusing_http_and_private_hosts_and_trusting_certifi(monkeypatch):
    for name in ("WEBHOOK_ALLOW_HTTP", "WEBHOOK_ALLOW_PRIVATE_HOSTS", "WEBHOOK_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    code = (
        "from django.conf import settings as s; "
        "print(s.WEBHOOK_ALLOW_HTTP, s.WEBHOOK_ALLOW_PRIVATE_HOSTS, s.WEBHOOK_CA_BUNDLE)"
    )
    result = _manage("shell", "-c", code, DEBUG="true")
    assert result.returncode == 0, result.stderr
    # The last line: Django's shell first reports the objects it imported.
    assert result.stdout.splitlines()[-1].split() == ["False", "False", "None"]


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("WEBHOOK_ALLOW_PRIVATE_HOSTS", "maybe", "Setting WEBHOOK_ALLOW_PRIVATE_HOSTS='maybe' is not valid"),
        ("WEBHOOK_ALLOW_HTTP", "sometimes", "Setting WEBHOOK_ALLOW_HTTP='sometimes' is not valid"),
        ("WEBHOOK_CA_BUNDLE", "{tmp}/missing.pem", "is not valid: no such file or directory"),
        ("WEBHOOK_CA_BUNDLE", "{tmp}/empty.pem", "is not valid: the file holds no PEM certificate"),
        ("WEBHOOK_ALLOW_INSECURE", "true", "Setting WEBHOOK_ALLOW_INSECURE was split in two"),
    ],
)
def test_a_bad_webhook_setting_stops_start_up(tmp_path, variable, value, expected):
    (tmp_path / "empty.pem").write_text("not a certificate\n")
    result = _manage("check", DEBUG="true", **{variable: value.format(tmp=tmp_path)})
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("Configuration error: ") and expected in result.stderr
    assert "Traceback" not in result.stderr
