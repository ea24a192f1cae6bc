"""Delivery resolves the endpoint's host once, checks every address of that answer, and connects to a
checked address itself, with the Host header, the TLS server name (SNI) and certificate verification
still on the name in the URL. DNS is the outside world, so a stub resolver stands in for it; every
connection it leads to is real, to listening sockets on the loopback, which tell whether anything
connected to them (a refused address must never see even a connection the sender closes at once)."""

from __future__ import annotations

import socket

import pytest

from cs_platform.outbox import DeliveryStatus
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from tests.webhooks.conftest import attempts_of, deliver_now, delivery_of, make_endpoint
from tests.webhooks.receiver import Listener, Receiver, throwaway_tls
from webhooks import delivery as webhook_delivery
from webhooks import services, transport
from webhooks.models import WebhookEndpoint

pytestmark = pytest.mark.django_db

PUBLIC = "93.184.216.34"
_real_getaddrinfo = socket.getaddrinfo


class StubDNS:
    """Answers for the names it was given and passes every other name, and every IP literal, to the real
    resolver. Counts the lookups per name. `then` plays a rebinding resolver: after a name's next
    answer, it answers `then[name]` from then on."""

    def __init__(self, **answers: list[str]):
        self.answers = {name.replace("_", "."): addresses for name, addresses in answers.items()}
        self.then: dict[str, list[str]] = {}
        self.lookups: dict[str, int] = {}

    def __call__(self, host, port, family=0, type=0, proto=0, flags=0):  # noqa: A002 - socket's signature
        if host not in self.answers:
            return _real_getaddrinfo(host, port, family, type, proto, flags)
        self.lookups[host] = self.lookups.get(host, 0) + 1
        answer = self.answers[host]
        if host in self.then:
            self.answers[host] = self.then.pop(host)
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port, 0, 0))
            if ":" in address
            else (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))
            for address in answer
        ]


@pytest.fixture
def dns(monkeypatch):
    def install(**answers: list[str]) -> StubDNS:
        stub = StubDNS(**answers)
        monkeypatch.setattr(socket, "getaddrinfo", stub)
        return stub

    return install


@pytest.fixture
def secure(settings):
    settings.WEBHOOK_ALLOW_HTTP = False
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = False
    settings.WEBHOOK_TIMEOUT_SECONDS = 2  # a wrong implementation must fail fast, not hang
    return settings


def _ping(world, endpoint):
    return services.webhook_ping(tenant=world.tenant, endpoint=endpoint, actor=world.user(Role.ADMIN))


@pytest.mark.parametrize(
    ("answer", "refused"),
    [
        (["127.0.0.1"], "127.0.0.1"),
        # A mix is refused whole: the listener (first) would be the one used, but the public one is not
        # tried instead either. If the check came after connecting, the listener would see a connection.
        (["127.0.0.1", PUBLIC], "127.0.0.1"),
        (["127.0.0.1", "10.20.30.40", PUBLIC], "127.0.0.1, 10.20.30.40"),
    ],
    ids=["private", "public-and-private", "two-private-one-public"],
)
def test_a_name_that_now_resolves_to_a_private_address_is_refused_before_any_connection(
    tenant_a, secure, dns, answer, refused
):
    with Listener() as listener:
        url = f"https://hooks.example.com:{listener.port}/in"
        resolver = dns(hooks_example_com=[PUBLIC])
        endpoint, _ = make_endpoint(tenant_a, url)  # public at registration: accepted
        assert endpoint.url == url
        resolver.answers["hooks.example.com"] = answer  # the answer changed since
        delivery = _ping(tenant_a, endpoint)
        assert deliver_now(tenant_a.tenant, delivery.pk) == []  # no retry: refused for good
        assert listener.connections() == 0
    assert resolver.lookups == {"hooks.example.com": 2}  # registration, then once for the delivery
    done = delivery_of(tenant_a.tenant, delivery.pk)
    assert (done.status, done.attempts, done.last_status_code) == (DeliveryStatus.FAILED, 1, None)
    assert done.last_error == (
        f"Refused to connect to {refused} (hooks.example.com resolves to it): a private, loopback or "
        "link-local address."
    )


def test_a_private_ip_in_the_url_is_refused_without_a_connection(tenant_a, secure):
    with Listener() as listener:
        with context.tenant_context(tenant_a.tenant):
            # As a row written before the registration check existed, or by hand: delivery checks anyway.
            endpoint = WebhookEndpoint.objects.create(
                tenant=tenant_a.tenant,
                url=f"https://127.0.0.1:{listener.port}/in",
                events=["ping"],
                secret=transport.new_secret(),
                created_by=tenant_a.user(Role.ADMIN),
            )
        delivery = _ping(tenant_a, endpoint)
        deliver_now(tenant_a.tenant, delivery.pk)
        assert listener.connections() == 0
    assert delivery_of(tenant_a.tenant, delivery.pk).last_error == (
        "Refused to connect to 127.0.0.1: a private, loopback or link-local address."
    )


def test_the_delivery_connects_to_the_address_it_checked_not_to_a_later_answer(tenant_a, insecure, dns):
    """One lookup per delivery, and the connection goes to its answer: a resolver that would answer
    otherwise the next time (here 127.0.0.2, a decoy on the same port) is never asked again."""
    with Receiver([200]) as receiver:
        port = receiver.server.server_address[1]
        with Listener("127.0.0.2", port) as decoy:
            resolver = dns(hooks_example_test=["127.0.0.1"])
            endpoint, receiver.secret = make_endpoint(tenant_a, f"http://hooks.example.test:{port}/hook")
            assert resolver.lookups == {}  # private hosts allowed: registration does not resolve
            delivery = _ping(tenant_a, endpoint)
            resolver.then["hooks.example.test"] = ["127.0.0.2"]  # whoever asks again gets the decoy
            assert deliver_now(tenant_a.tenant, delivery.pk) == []
            assert decoy.connections() == 0
    assert resolver.lookups == {"hooks.example.test": 1}
    [request] = receiver.received
    assert request.verified and request.headers["Host"] == f"hooks.example.test:{port}"
    assert delivery_of(tenant_a.tenant, delivery.pk).status == DeliveryStatus.SENT


def test_a_name_that_does_not_resolve_at_delivery_is_retried(tenant_a, insecure, dns):
    dns(gone_example_test=[])
    endpoint, _ = make_endpoint(tenant_a, "http://gone.example.test/hook")
    delivery = _ping(tenant_a, endpoint)
    outcome = webhook_delivery.delivery_attempt(tenant=tenant_a.tenant, delivery_id=delivery.pk, attempt=1)
    assert outcome.status == DeliveryStatus.RETRYING and outcome.retry_in is not None
    [attempt] = attempts_of(tenant_a.tenant, delivery.pk)
    assert attempt.error == "Connection failed: The host gone.example.test does not resolve (no address)."


# --- over TLS: the name stays the name ---------------------------------------------------------------


@pytest.fixture
def private_hosts_only(settings):
    settings.WEBHOOK_ALLOW_HTTP = False
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    return settings


def test_an_https_receiver_gets_the_delivery_under_its_host_name_with_a_certificate_for_that_name(
    tenant_a, private_hosts_only, dns, tmp_path
):
    # The certificate names the host only, no IP: verifying it against the address would fail.
    tls = throwaway_tls(tmp_path, names=("receiver.example.test",), ips=())
    private_hosts_only.WEBHOOK_CA_BUNDLE = str(tls.ca)
    resolver = dns(receiver_example_test=["127.0.0.1"])
    with Receiver([200], tls=tls) as receiver:
        port = receiver.server.server_address[1]
        endpoint, receiver.secret = make_endpoint(tenant_a, f"https://receiver.example.test:{port}/hook")
        delivery = _ping(tenant_a, endpoint)
        assert deliver_now(tenant_a.tenant, delivery.pk) == []
    assert receiver.tls_failures == []
    assert receiver.server_names == ["receiver.example.test"]  # SNI
    [request] = receiver.received
    assert request.verified and request.path == "/hook"
    assert request.headers["Host"] == f"receiver.example.test:{port}"
    assert resolver.lookups == {"receiver.example.test": 1}
    done = delivery_of(tenant_a.tenant, delivery.pk)
    assert (done.status, done.last_status_code, done.last_error) == (DeliveryStatus.SENT, 200, "")


def test_a_certificate_for_another_name_is_refused_though_the_address_is_the_checked_one(
    tenant_a, private_hosts_only, dns, tmp_path
):
    tls = throwaway_tls(tmp_path, names=("other.example.test",), ips=("127.0.0.1",))
    private_hosts_only.WEBHOOK_CA_BUNDLE = str(tls.ca)
    dns(receiver_example_test=["127.0.0.1"])
    with Receiver([200], tls=tls) as receiver:
        port = receiver.server.server_address[1]
        endpoint, receiver.secret = make_endpoint(tenant_a, f"https://receiver.example.test:{port}/hook")
        delivery = _ping(tenant_a, endpoint)
        outcome = webhook_delivery.delivery_attempt(tenant=tenant_a.tenant, delivery_id=delivery.pk, attempt=1)
    assert outcome.status == DeliveryStatus.RETRYING
    assert receiver.received == [] and receiver.server_names == ["receiver.example.test"]
    [attempt] = attempts_of(tenant_a.tenant, delivery.pk)
    assert attempt.error.startswith("TLS certificate verification failed: Hostname mismatch")


def test_a_pinned_connection_serves_only_the_host_that_was_checked(insecure, dns):
    """The connection class itself refuses any other host, so no request can reach an unchecked address
    through it (a redirect, were one ever followed, or a second request on the same session)."""
    dns(checked_example_test=["127.0.0.1"])
    with Listener() as listener:
        destination = transport._destination(f"http://checked.example.test:{listener.port}/in")
        other = transport._PinnedHTTPConnection("other.example.test", listener.port, destination=destination)
        with pytest.raises(transport.BlockedAddress, match="not the destination that was checked"):
            other.connect()
        assert listener.connections() == 0
        same = transport._PinnedHTTPConnection("checked.example.test", listener.port, destination=destination)
        same.connect()
        same.close()
        assert listener.connections() == 1
