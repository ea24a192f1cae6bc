"""Registering endpoints: https only, no private/loopback/link-local targets (SSRF), errors that name
the field, audited writes that never carry the secret."""

from __future__ import annotations

import socket
from unittest import mock

import pytest
from django.core.exceptions import ValidationError

from cs_platform.audit.models import AuditEvent
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from tests.webhooks.conftest import make_endpoint
from webhooks import services

pytestmark = pytest.mark.django_db


def _resolves_to(*addresses: str):
    def fake(host, port, *args, **kwargs):
        family = {4: socket.AF_INET, 6: socket.AF_INET6}
        return [
            (family[6 if ":" in a else 4], socket.SOCK_STREAM, 6, "", (a, port) if ":" not in a else (a, port, 0, 0))
            for a in addresses
        ]

    return mock.patch("webhooks.transport.socket.getaddrinfo", side_effect=fake)


@pytest.fixture
def secure(settings):
    settings.WEBHOOK_ALLOW_HTTP = False
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = False
    return settings


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "A URL is required."),
        ("http://hooks.example.com/in", "must start with https://"),
        ("ftp://hooks.example.com/in", "must start with https://"),
        ("https:///no-host", "must name a host"),
        ("https://user:pw@hooks.example.com/in", "Credentials in the URL are not allowed"),
        ("https://127.0.0.1/in", "private, loopback or link-local"),
        ("https://10.1.2.3/in", "private, loopback or link-local"),
        ("https://192.168.0.10/in", "private, loopback or link-local"),
        ("https://169.254.169.254/latest/meta-data", "private, loopback or link-local"),
        ("https://[::1]/in", "private, loopback or link-local"),
        ("https://[::ffff:10.0.0.1]/in", "private, loopback or link-local"),
        ("https://100.64.0.1/in", "private, loopback or link-local"),
        ("https://0.0.0.0/in", "private, loopback or link-local"),
        ("https://localhost/in", "private, loopback or link-local"),
    ],
)
def test_unsafe_urls_are_refused_with_an_error_on_the_url_field(tenant_a, secure, url, message):
    with pytest.raises(ValidationError) as raised:
        make_endpoint(tenant_a, url)
    assert list(raised.value.message_dict) == ["url"]
    assert message in raised.value.message_dict["url"][0]


def test_a_host_name_is_refused_if_any_of_its_addresses_is_private(tenant_a, secure):
    with _resolves_to("93.184.216.34", "192.168.1.5"), pytest.raises(ValidationError) as raised:
        make_endpoint(tenant_a, "https://internal.example.com/in")
    assert "internal.example.com resolves to a private" in raised.value.message_dict["url"][0]
    with _resolves_to("fe80::1"), pytest.raises(ValidationError):
        make_endpoint(tenant_a, "https://link-local.example.com/in")


def test_a_host_that_does_not_resolve_is_refused(tenant_a, secure):
    with mock.patch("webhooks.transport.socket.getaddrinfo", side_effect=socket.gaierror("nope")):
        with pytest.raises(ValidationError) as raised:
            make_endpoint(tenant_a, "https://nowhere.invalid/in")
    assert raised.value.message_dict == {"url": ["The host nowhere.invalid does not resolve."]}


def test_events_must_be_known_and_errors_of_several_fields_come_together(tenant_a, secure):
    with pytest.raises(ValidationError) as raised:
        make_endpoint(tenant_a, "http://x.example.com", events=[])
    assert set(raised.value.message_dict) == {"url", "events"}
    with _resolves_to("93.184.216.34"), pytest.raises(ValidationError) as raised:
        make_endpoint(tenant_a, "https://hooks.example.com/in", events=["health.band_changed", "account.deleted"])
    assert raised.value.message_dict == {"events": ["Unknown event type(s): account.deleted."]}


def test_insecure_setting_allows_plain_http_to_the_loopback(tenant_a, insecure):
    endpoint, _ = make_endpoint(tenant_a, "http://127.0.0.1:8080/hook")
    assert endpoint.url == "http://127.0.0.1:8080/hook"


def test_create_update_and_rotate_are_audited_without_the_secret(tenant_a, secure):
    admin = tenant_a.user(Role.ADMIN)
    with _resolves_to("93.184.216.34"):
        endpoint, secret = make_endpoint(
            tenant_a,
            " https://hooks.example.com/in ",
            events=["decision.escalated", "health.band_changed"],
            description="Ops bridge",
        )
        # Stored in the canonical order, URL stripped.
        assert endpoint.events == ["health.band_changed", "decision.escalated"]
        assert endpoint.url == "https://hooks.example.com/in" and endpoint.secret == secret
        services.webhook_endpoint_update(
            tenant=tenant_a.tenant, endpoint=endpoint, actor=admin, url="https://hooks.example.com/v2"
        )
    # Disabling does not resolve the (unchanged) URL again: the host may be gone.
    with mock.patch("webhooks.transport.socket.getaddrinfo", side_effect=socket.gaierror("gone")):
        services.webhook_endpoint_update(
            tenant=tenant_a.tenant, endpoint=endpoint, actor=admin, is_active=False, disabled_reason="Decommissioned"
        )
    _, rotated = services.webhook_endpoint_rotate_secret(tenant=tenant_a.tenant, endpoint=endpoint, actor=admin)
    with context.tenant_context(tenant_a.tenant):
        events = list(AuditEvent.objects.filter(object_type__startswith="webhooks").order_by("seq"))
    assert [e.action for e in events] == [
        "webhook_endpoint.create",
        "webhook_endpoint.update",
        "webhook_endpoint.update",
        "webhook_endpoint.rotate_secret",
    ]
    assert events[1].before["url"] == "https://hooks.example.com/in" and events[1].after["url"].endswith("/v2")
    assert events[2].after["is_active"] is False and events[2].after["disabled_reason"] == "Decommissioned"
    assert all(e.actor_id == admin.pk for e in events)
    for event in events:
        text = str(event.before) + str(event.after)
        assert secret not in text and rotated not in text and "whsec_" not in text


def test_an_update_audits_the_endpoint_as_it_stands_not_as_the_caller_read_it(tenant_a, insecure):
    admin = tenant_a.user(Role.ADMIN)
    endpoint, _ = make_endpoint(tenant_a, "http://127.0.0.1:9/in", description="First")
    with context.tenant_context(tenant_a.tenant):
        stale = type(endpoint).objects.get(pk=endpoint.pk)  # a page loaded before another admin saved
    services.webhook_endpoint_update(tenant=tenant_a.tenant, endpoint=endpoint, actor=admin, description="Second")
    services.webhook_endpoint_update(tenant=tenant_a.tenant, endpoint=stale, actor=admin, events=["decision.escalated"])
    with context.tenant_context(tenant_a.tenant):
        first, second = AuditEvent.objects.filter(action="webhook_endpoint.update").order_by("seq")
        saved = type(endpoint).objects.get(pk=endpoint.pk)
    # The second event starts from what the first wrote, and the second save keeps the first's change.
    assert second.before == first.after and second.before["description"] == "Second"
    assert (saved.description, saved.events) == ("Second", ["decision.escalated"])
