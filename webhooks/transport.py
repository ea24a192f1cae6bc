"""How a webhook leaves the platform: the signing scheme, where deliveries may go (the SSRF checks), and
one POST over a connection pinned to the addresses that were checked.

Signature scheme (documented for receivers on the admin page):
    body      = the request body, compact JSON with sorted keys (UTF-8)
    timestamp = the Webhook-Timestamp header, Unix seconds
    signature = hex(HMAC-SHA256(key=secret as UTF-8, message=f"{timestamp}.{body}"))
    header      Webhook-Signature: v1=<signature>
A receiver recomputes the HMAC, compares in constant time, and refuses timestamps more than a few
minutes from its clock (replays). Webhook-Id is the event's id: the same for every retry and
redelivery, so a receiver can drop duplicates.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import hmac
import ipaddress
import json
import secrets
import socket
import ssl
import sys
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util.timeout import Timeout

SECRET_MARK = "whsec"  # noqa: S105 - marks our secrets for scanners; not a secret
USER_AGENT = "cs-platform-webhooks/1"
EXCERPT_CHARS = 1000
MAX_URL_LENGTH = 500


# --- Signing ---------------------------------------------------------------------------------------
def new_secret() -> str:
    return f"{SECRET_MARK}_{secrets.token_urlsafe(32)}"


def encode_body(envelope: dict[str, Any]) -> str:
    """The exact body sent and signed: compact, sorted keys, non-ASCII kept as UTF-8."""
    return json.dumps(envelope, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def sign(secret: str, timestamp: int, body: str) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"v1={digest}"


# --- Where we may send (SSRF) ------------------------------------------------------------------------
class BlockedAddress(Exception):  # noqa: N818 - reads as what happened
    """The endpoint's host is (or now resolves to) an address inside a network we must not reach."""


def _is_blocked_ip(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    # is_global is False for private, loopback, link-local, shared (CGNAT), reserved and unspecified.
    return not ip.is_global or ip.is_multicast


def _http_allowed() -> bool:
    return bool(settings.WEBHOOK_ALLOW_HTTP)


def _private_hosts_allowed() -> bool:
    return bool(settings.WEBHOOK_ALLOW_PRIVATE_HOSTS)


def check_url_shape(url: str) -> tuple[str, int]:
    """(host, port) of a well-formed endpoint URL, or ValidationError naming the url field."""
    if not url:
        raise ValidationError({"url": "A URL is required."})
    if len(url) > MAX_URL_LENGTH:
        raise ValidationError({"url": f"Use at most {MAX_URL_LENGTH} characters."})
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValidationError({"url": "This is not a valid URL."}) from None
    allowed = ("https", "http") if _http_allowed() else ("https",)
    if parts.scheme not in allowed:
        raise ValidationError({"url": "The URL must start with https://."})
    if not parts.hostname:
        raise ValidationError({"url": "The URL must name a host."})
    if parts.username is not None or parts.password is not None:
        raise ValidationError({"url": "Credentials in the URL are not allowed: verify the signature instead."})
    if parts.fragment:
        raise ValidationError({"url": "The URL must not have a #fragment."})
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def _resolve(host: str, port: int) -> list[tuple]:
    """Every (family, type, proto, canonname, sockaddr) the host resolves to: the one DNS lookup that both
    the address check and the connection use."""
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


def _blocked_addresses(infos: list[tuple]) -> list[str]:
    return list(dict.fromkeys(info[4][0] for info in infos if _is_blocked_ip(info[4][0])))


def validate_endpoint_url(url: str) -> str:
    """The URL, stripped, if deliveries may go there: https, and every address its host resolves to
    is public (not private, loopback, link-local...). WEBHOOK_ALLOW_HTTP also accepts http://;
    WEBHOOK_ALLOW_PRIVATE_HOSTS skips the address check, and with it the DNS lookup, whose only purpose
    here is that check. Each delivery resolves and checks again (DNS can change after registration)
    and connects only to the addresses it checked: see _destination."""
    url = (url or "").strip()
    host, port = check_url_shape(url)
    if _private_hosts_allowed():
        return url
    try:
        infos = _resolve(host, port)
    except (socket.gaierror, UnicodeError):
        raise ValidationError({"url": f"The host {host} does not resolve."}) from None
    if _blocked_addresses(infos):
        raise ValidationError(
            {"url": f"The host {host} resolves to a private, loopback or link-local address; use a public one."}
        )
    return url


class UnresolvedHost(Exception):  # noqa: N818 - reads as what happened
    """The endpoint's host name does not resolve now; a later attempt may find it again."""


@dataclasses.dataclass(frozen=True)
class _Destination:
    """Where one delivery may connect: the URL's host and port, and the addresses its single DNS lookup
    answered, every one of them checked. Connections go to these addresses and nowhere else; the host
    name stays what the Host header, the TLS server name (SNI) and certificate verification use."""

    host: str
    port: int
    addresses: tuple[tuple, ...]  # (family, type, proto, sockaddr)

    def serves(self, host: str, port: int | None) -> bool:
        return _host_key(host) == _host_key(self.host) and port == self.port


def _host_key(host: str) -> str:
    # urllib3 and urlsplit spell the same host differently: brackets around IPv6, a trailing dot, case.
    return host.strip("[]").rstrip(".").lower()


def _destination(url: str) -> _Destination:
    """Resolve the URL's host once and check every answer: BlockedAddress, before any connection is
    opened, if one of them is private, loopback or link-local (unless WEBHOOK_ALLOW_PRIVATE_HOSTS); a
    mix of public and private answers is refused whole, since any of them could be the one used."""
    host, port = check_url_shape(url)
    try:
        infos = _resolve(host, port)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvedHost(f"The host {host} does not resolve ({exc}).") from None
    if not infos:
        raise UnresolvedHost(f"The host {host} does not resolve (no address).")
    if not _private_hosts_allowed():
        blocked = _blocked_addresses(infos)
        if blocked:
            named = "" if blocked == [host.strip("[]")] else f" ({host} resolves to it)"
            raise BlockedAddress(
                f"Refused to connect to {', '.join(blocked)}{named}: a private, loopback or link-local address."
            )
    addresses = tuple(dict.fromkeys((family, kind, proto, sockaddr) for family, kind, proto, _, sockaddr in infos))
    return _Destination(host=host, port=port, addresses=addresses)


class _PinnedConnectionMixin:
    """A urllib3 connection that opens its socket to the destination's checked addresses instead of
    resolving its host again (urllib3's own _new_conn would ask DNS a second time, and that answer was
    never checked). Everything else, the Host header and TLS with its server name and hostname check,
    still works from self.host, the name in the URL."""

    def __init__(self, *args, destination: _Destination, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.destination = destination

    def _new_conn(self) -> socket.socket:
        if not self.destination.serves(self.host, self.port):
            # Only the checked host is reachable through this connection class, whatever asks for another.
            raise BlockedAddress(f"Refused to connect to {self.host}: not the destination that was checked.")
        error: OSError | None = None
        for family, kind, proto, sockaddr in self.destination.addresses:
            sock = socket.socket(family, kind, proto)
            try:
                for option in self.socket_options or ():
                    sock.setsockopt(*option)
                sock.settimeout(Timeout.resolve_default_timeout(self.timeout))
                if self.source_address:
                    sock.bind(self.source_address)
                sock.connect(sockaddr)
            except OSError as exc:
                error = exc
                sock.close()
                continue
            sys.audit("http.client.connect", self, self.host, self.port)
            return sock
        # As urllib3 reports them, so requests raises its usual ConnectTimeout / ConnectionError.
        if isinstance(error, TimeoutError):
            raise ConnectTimeoutError(self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})")
        raise NewConnectionError(self, f"Failed to establish a new connection: {error}")


class _PinnedHTTPConnection(_PinnedConnectionMixin, HTTPConnection):
    pass


class _PinnedHTTPSConnection(_PinnedConnectionMixin, HTTPSConnection):
    pass


class _PinnedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _PinnedHTTPConnection


class _PinnedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _PinnedHTTPSConnection


class _PinnedAdapter(requests.adapters.HTTPAdapter):
    """Every pool of this adapter hands its connections the destination (the pools pass unknown keyword
    arguments on to the connection class)."""

    def __init__(self, destination: _Destination, **kwargs) -> None:
        self.destination = destination  # init_poolmanager, called by HTTPAdapter.__init__, reads it
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": functools.partial(_PinnedHTTPPool, destination=self.destination),
            "https": functools.partial(_PinnedHTTPSPool, destination=self.destination),
        }


def _session(destination: _Destination) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxies or .netrc from the environment: we connect ourselves
    adapter = _PinnedAdapter(destination, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


# --- One POST ----------------------------------------------------------------------------------------
def excerpt(text: str) -> str:
    """The start of a receiver's answer or of an error, fit to store."""
    # PostgreSQL text cannot hold NUL, and a receiver may answer anything.
    return text[:EXCERPT_CHARS].replace("\x00", "\ufffd")


def post(url: str, *, body: str, headers: dict[str, str]) -> tuple[int, str]:
    """POST `body` to `url` over a connection pinned to its checked addresses: (status code, the start of
    the answer). Raises BlockedAddress or UnresolvedHost before connecting, and requests' errors."""
    timeout = settings.WEBHOOK_TIMEOUT_SECONDS
    # Passed explicitly: the session ignores REQUESTS_CA_BUNDLE (trust_env is off), so this setting is
    # the one place that says which CAs we trust. None: requests' default, certifi's store.
    verify = settings.WEBHOOK_CA_BUNDLE or True
    destination = _destination(url)  # before any connection: BlockedAddress or UnresolvedHost end here
    with _session(destination) as session:
        response = session.post(
            url,
            data=body.encode(),
            headers=headers,
            timeout=(timeout, timeout),
            allow_redirects=False,
            stream=True,
            verify=verify,
        )
        try:
            # Only the start of the answer is kept: a receiver must not fill our database or memory.
            raw = response.raw.read(EXCERPT_CHARS * 4, decode_content=True) or b""
        except Exception:  # noqa: BLE001 - the status code is what matters; the body is a courtesy
            raw = b""
        finally:
            response.close()
    return response.status_code, raw.decode("utf-8", errors="replace")


def tls_error(exc: BaseException) -> str:
    """A one-line reason for a failed TLS handshake, for the delivery log an admin reads. requests wraps
    the ssl module's error three deep in a message about connection pools; dig out the error itself."""
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        current = stack.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            reason = current.verify_message or current.reason or "not trusted"
            return excerpt(
                f"TLS certificate verification failed: {reason}. The receiver must present a certificate "
                "for its host name from a CA the platform trusts."
            )[:500]
        stack.extend([current.__cause__, current.__context__, getattr(current, "reason", None), *current.args])
    return excerpt(f"TLS handshake failed: {exc}")[:500]
