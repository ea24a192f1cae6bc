"""Writes of webhooks: endpoints (create, update, rotate the secret), test pings, redeliveries, the
nightly emission of events, and one delivery attempt (what the Celery task runs).

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
import datetime
import functools
import hashlib
import hmac
import ipaddress
import json
import logging
import random
import secrets
import socket
import ssl
import sys
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import requests
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util.timeout import Timeout

from cs_platform.audit.services import audit_record
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Tenant
from metrics.models import NightlyRun
from webhooks import selectors
from webhooks.models import (
    PING,
    SUBSCRIBABLE_EVENTS,
    DeliveryStatus,
    EventType,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)

logger = logging.getLogger(__name__)

SECRET_MARK = "whsec"  # noqa: S105 - marks our secrets for scanners; not a secret
USER_AGENT = "cs-platform-webhooks/1"
EXCERPT_CHARS = 1000
MAX_URL_LENGTH = 500
# Event ids of nightly events are derived from what happened (tenant, type, object, day), so a
# repeated run for the same date finds the same ids and emits nothing twice.
_EVENT_NAMESPACE = uuid.UUID("6f1c7a52-3d0e-4f43-9d55-0c1f1b9e2a71")


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


def _check_url_shape(url: str) -> tuple[str, int]:
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
    host, port = _check_url_shape(url)
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
    host, port = _check_url_shape(url)
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


# --- Endpoints ---------------------------------------------------------------------------------------
def _audit_view(endpoint: WebhookEndpoint) -> dict[str, Any]:
    # Never the secret: the audit trail is exported to clients and regulators.
    return {
        "url": endpoint.url,
        "description": endpoint.description,
        "events": endpoint.events,
        "is_active": endpoint.is_active,
        "disabled_reason": endpoint.disabled_reason,
    }


def _clean_events(events: list[str] | None) -> list[str]:
    chosen = list(dict.fromkeys(events or []))
    unknown = [e for e in chosen if e not in SUBSCRIBABLE_EVENTS]
    if not chosen:
        raise ValidationError({"events": "Choose at least one event."})
    if unknown:
        raise ValidationError({"events": f"Unknown event type(s): {', '.join(unknown)}."})
    return [e for e in SUBSCRIBABLE_EVENTS if e in chosen]


def _clean_fields(*, url: str | None, description: str, events: list[str] | None) -> tuple[str, str, list[str]]:
    """Validated fields; url None means "unchanged, not checked again"."""
    errors: dict[str, list[str]] = {}
    if url is not None:
        try:
            url = validate_endpoint_url(url)
        except ValidationError as exc:
            errors.update(exc.message_dict)
    description = (description or "").strip()
    if len(description) > 200:
        errors["description"] = ["Use at most 200 characters."]
    try:
        events = _clean_events(events)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    return url, description, events


@transaction.atomic
def webhook_endpoint_create(
    *, tenant, url: str, events: list[str], description: str = "", actor
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; returns it and its signing secret, which the caller shows once."""
    url, description, events = _clean_fields(url=url, description=description, events=events)
    with context.tenant_context(tenant):
        secret = new_secret()
        endpoint = WebhookEndpoint(
            tenant=tenant, url=url, description=description, events=events, secret=secret, created_by=actor
        )
        endpoint.save()
        audit_record(
            tenant=tenant, actor=actor, action="webhook_endpoint.create", obj=endpoint, after=_audit_view(endpoint)
        )
    return endpoint, secret


@transaction.atomic
def webhook_endpoint_update(
    *,
    tenant,
    endpoint: WebhookEndpoint,
    actor,
    url: str | None = None,
    description: str | None = None,
    events: list[str] | None = None,
    is_active: bool | None = None,
    disabled_reason: str = "",
) -> WebhookEndpoint:
    """Change the URL, description or events, or disable (with a reason) / enable the endpoint.
    Deliveries already queued for a disabled endpoint fail at their next attempt instead of sending."""
    before = _audit_view(endpoint)
    reason = (disabled_reason or "").strip()
    if len(reason) > 200:
        raise ValidationError({"disabled_reason": "Use at most 200 characters."})
    changed_url = url is not None and url.strip() != endpoint.url
    # An unchanged URL is not resolved again: disabling an endpoint whose host is gone must work.
    url, description, events = _clean_fields(
        url=url if changed_url else None,
        description=endpoint.description if description is None else description,
        events=endpoint.events if events is None else events,
    )
    endpoint.url = url if changed_url else endpoint.url
    endpoint.description, endpoint.events = description, events
    if is_active is not None and is_active != endpoint.is_active:
        endpoint.is_active = is_active
        if is_active:
            endpoint.disabled_reason, endpoint.disabled_at = "", None
        else:
            endpoint.disabled_reason = reason or f"Disabled by {actor.get_username()}"
            endpoint.disabled_at = timezone.now()
    after = _audit_view(endpoint)
    if after == before:
        return endpoint
    with context.tenant_context(tenant):
        endpoint.save()
        audit_record(
            tenant=tenant, actor=actor, action="webhook_endpoint.update", obj=endpoint, before=before, after=after
        )
    return endpoint


@transaction.atomic
def webhook_endpoint_rotate_secret(*, tenant, endpoint: WebhookEndpoint, actor) -> tuple[WebhookEndpoint, str]:
    """A new signing secret, effective for the next attempt of every delivery; returns it once."""
    with context.tenant_context(tenant):
        secret = new_secret()
        endpoint.secret = secret
        endpoint.secret_rotated_at = timezone.now()
        endpoint.save(update_fields=["secret", "secret_rotated_at"])
        audit_record(
            tenant=tenant,
            actor=actor,
            action="webhook_endpoint.rotate_secret",
            obj=endpoint,
            after={"url": endpoint.url, "secret_rotated_at": endpoint.secret_rotated_at},
        )
    return endpoint, secret


# --- Deliveries --------------------------------------------------------------------------------------
def event_id_for(tenant_id: int, event_type: str, key: str) -> uuid.UUID:
    return uuid.uuid5(_EVENT_NAMESPACE, f"{tenant_id}:{event_type}:{key}")


def envelope(*, tenant, event_type: str, event_id: uuid.UUID, data: dict[str, Any], now=None) -> dict[str, Any]:
    return {
        "id": str(event_id),
        "type": event_type,
        "created_at": (now or timezone.now()).isoformat(),
        "tenant": tenant.slug,
        "data": data,
    }


def _queue_deliveries(tenant_id: int, delivery_ids: list[int]) -> None:
    """One Celery task per delivery, sent once the rows are committed (the worker must see them)."""
    if not delivery_ids:
        return
    from webhooks.tasks import webhook_deliver

    def send() -> None:
        for delivery_id in delivery_ids:
            try:
                webhook_deliver.apply_async((tenant_id, delivery_id, 1))
            except Exception:  # a broker outage must not fail the nightly run that emitted the events
                logger.exception("could not queue webhook delivery %s; it stays pending", delivery_id)

    transaction.on_commit(send)


@transaction.atomic
def webhook_ping(*, tenant, endpoint: WebhookEndpoint, actor) -> WebhookDelivery:
    """Send a "ping" event to the endpoint now, so the admin sees whether the receiver verifies it."""
    if not endpoint.is_active:
        raise ValidationError({"endpoint": "Enable the endpoint before sending a test event."})
    with context.tenant_context(tenant):
        event_id = uuid.uuid4()
        data = {"message": "Test event sent from the webhook settings page.", "endpoint_id": endpoint.pk}
        delivery = WebhookDelivery(
            tenant=tenant,
            endpoint=endpoint,
            event_type=PING,
            event_id=event_id,
            requested_by=actor,
            payload=envelope(tenant=tenant, event_type=PING, event_id=event_id, data=data),
        )
        delivery.save()
        audit_record(
            tenant=tenant,
            actor=actor,
            action="webhook_endpoint.ping",
            obj=endpoint,
            after={"delivery_id": delivery.pk, "event_id": str(event_id)},
        )
    _queue_deliveries(tenant.pk, [delivery.pk])
    return delivery


@transaction.atomic
def webhook_delivery_redeliver(*, tenant, delivery: WebhookDelivery, actor) -> WebhookDelivery:
    """Send a finished delivery's event again, as a new delivery with its own attempts (the original's
    log is kept as it was). Same event id and body, so the receiver can tell it is the same event."""
    if delivery.status not in (DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED):
        raise ValidationError({"delivery": "This delivery is still being attempted."})
    if not delivery.endpoint.is_active:
        raise ValidationError({"delivery": "Enable the endpoint before redelivering."})
    with context.tenant_context(tenant):
        again = WebhookDelivery(
            tenant=tenant,
            endpoint_id=delivery.endpoint_id,
            event_type=delivery.event_type,
            event_id=delivery.event_id,
            payload=delivery.payload,
            redelivery_of=delivery,
            requested_by=actor,
        )
        again.save()
        audit_record(
            tenant=tenant,
            actor=actor,
            action="webhook_delivery.redeliver",
            obj=delivery,
            after={"redelivery_id": again.pk, "event_id": str(delivery.event_id), "event_type": delivery.event_type},
        )
    _queue_deliveries(tenant.pk, [again.pk])
    return again


# --- The nightly emission -----------------------------------------------------------------------------
def _band_change_events(tenant, day: datetime.date) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (EventType.HEALTH_BAND_CHANGED, f"{row['account']['id']}:{day.isoformat()}", row)
        for row in selectors.band_changes(day)
    ]


def _compliance_change_events(tenant, day: datetime.date) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (EventType.COMPLIANCE_STATUS_CHANGED, f"{row['account']['id']}:{day.isoformat()}", row)
        for row in selectors.compliance_changes(day)
    ]


def _escalation_events(tenant, day: datetime.date) -> list[tuple[str, str, dict[str, Any]]]:
    # A decision escalates once, so its id alone keys the event.
    return [(EventType.DECISION_ESCALATED, str(row["decision_id"]), row) for row in selectors.escalations(tenant, day)]


_DEDUPE_SLICE = 5000
_DETECTORS = {
    EventType.HEALTH_BAND_CHANGED: _band_change_events,
    EventType.COMPLIANCE_STATUS_CHANGED: _compliance_change_events,
    EventType.DECISION_ESCALATED: _escalation_events,
}


def webhook_events_emit(*, tenant, day: datetime.date) -> dict[str, int]:
    """After the nightly run of `day`: find the day's events, set-based, and queue a delivery of each
    to every active endpoint subscribed to its type. Detection runs only for event types some active
    endpoint subscribes to, so a tenant without webhooks pays one query. Idempotent: event ids derive
    from the event, and deliveries already made for an (endpoint, event) are not made again."""
    with transaction.atomic(), context.tenant_context(tenant):
        endpoints = list(WebhookEndpoint.objects.filter(is_active=True).values_list("pk", "events"))
        subscribers: dict[str, list[int]] = {}
        for pk, events in endpoints:
            for event_type in events:
                subscribers.setdefault(event_type, []).append(pk)
        summary = {"events": 0, "deliveries": 0}
        if not subscribers:
            return summary
        now = timezone.now()
        found: list[tuple[str, uuid.UUID, dict[str, Any]]] = []
        for event_type, detect in _DETECTORS.items():
            if event_type in subscribers:
                for kind, key, data in detect(tenant, day):
                    found.append((kind, event_id_for(tenant.pk, kind, key), data))
        if not found:
            return summary
        # Deliveries a previous run of this date already made: looked up on the partial unique index
        # (tenant, endpoint, event_id), in slices so a night with many events stays a few queries.
        endpoint_ids = sorted({pk for pks in subscribers.values() for pk in pks})
        event_ids = [event_id for _, event_id, _ in found]
        already: set[tuple[int, uuid.UUID]] = set()
        for start in range(0, len(event_ids), _DEDUPE_SLICE):
            already.update(
                WebhookDelivery.objects.filter(
                    endpoint_id__in=endpoint_ids,
                    event_id__in=event_ids[start : start + _DEDUPE_SLICE],
                    redelivery_of__isnull=True,
                ).values_list("endpoint_id", "event_id")
            )
        rows = [
            WebhookDelivery(
                tenant=tenant,
                endpoint_id=endpoint_id,
                event_type=kind,
                event_id=event_id,
                created_at=now,
                payload=envelope(tenant=tenant, event_type=kind, event_id=event_id, data=data, now=now),
            )
            for kind, event_id, data in found
            for endpoint_id in subscribers[kind]
            if (endpoint_id, event_id) not in already
        ]
        created = WebhookDelivery.objects.bulk_create(rows, batch_size=1000)
        _queue_deliveries(tenant.pk, [row.pk for row in created])
        summary.update(events=len(found), deliveries=len(created))
    return summary


def webhook_event_emit(*, tenant, event_type: str, key: str, data: dict[str, Any]) -> int:
    """One event, outside the nightly emission (a failed nightly run): a delivery to every active
    endpoint subscribed to `event_type`, queued after the commit. Idempotent: the event id derives from
    (tenant, type, key), and an endpoint that already has a delivery of it gets none. Returns the
    number of deliveries made. Two queries when no endpoint subscribes."""
    with transaction.atomic(), context.tenant_context(tenant):
        endpoint_ids = [
            pk
            for pk, events in WebhookEndpoint.objects.filter(is_active=True).values_list("pk", "events")
            if event_type in events
        ]
        if not endpoint_ids:
            return 0
        event_id = event_id_for(tenant.pk, event_type, key)
        already = set(
            WebhookDelivery.objects.filter(
                endpoint_id__in=endpoint_ids, event_id=event_id, redelivery_of__isnull=True
            ).values_list("endpoint_id", flat=True)
        )
        now = timezone.now()
        payload = envelope(tenant=tenant, event_type=event_type, event_id=event_id, data=data, now=now)
        created = WebhookDelivery.objects.bulk_create(
            WebhookDelivery(
                tenant=tenant,
                endpoint_id=endpoint_id,
                event_type=event_type,
                event_id=event_id,
                created_at=now,
                payload=payload,
            )
            for endpoint_id in endpoint_ids
            if endpoint_id not in already
        )
        _queue_deliveries(tenant.pk, [row.pk for row in created])
    return len(created)


def nightly_run_failed_data(run) -> dict[str, Any]:
    """The `nightly_run.failed` event's data: which run, which attempt, why, and whether it is retried."""
    return {
        "run_date": run.run_date.isoformat(),
        "attempt": run.attempts,
        "max_attempts": NightlyRun.MAX_ATTEMPTS,
        "will_retry": run.attempts < NightlyRun.MAX_ATTEMPTS,
        "started_at": run.started_at.isoformat(),
        "failed_at": run.finished_at.isoformat() if run.finished_at else None,
        "last_heartbeat_at": run.heartbeat_at.isoformat() if run.heartbeat_at else None,
        "error": run.error[:1000],
    }


# --- One attempt (the Celery task's body) -----------------------------------------------------------
@dataclasses.dataclass
class AttemptOutcome:
    status: str  # the delivery's status afterwards, or "skipped" (another run already made this attempt)
    retry_in: float | None = None  # seconds until the next attempt, when one is due
    # The value written to the row's next_attempt_at: the task queues the next attempt with this eta.
    next_attempt_at: datetime.datetime | None = None


def retry_delay(attempt: int) -> float:
    """Exponential backoff after attempt `attempt` (1-based), with up to 10% jitter so receivers that
    came back up are not hit by every queued retry in the same second."""
    base = settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** (attempt - 1)
    return base * (1 + random.uniform(0, 0.1))  # noqa: S311 - jitter, not cryptography


def _excerpt(text: str) -> str:
    # PostgreSQL text cannot hold NUL, and a receiver may answer anything.
    return text[:EXCERPT_CHARS].replace("\x00", "\ufffd")


def _post(url: str, *, body: str, headers: dict[str, str]) -> tuple[int, str]:
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


def _tls_error(exc: BaseException) -> str:
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
            return _excerpt(
                f"TLS certificate verification failed: {reason}. The receiver must present a certificate "
                "for its host name from a CA the platform trusts."
            )[:500]
        stack.extend([current.__cause__, current.__context__, getattr(current, "reason", None), *current.args])
    return _excerpt(f"TLS handshake failed: {exc}")[:500]


def delivery_attempt(*, tenant, delivery_id: int, attempt: int) -> AttemptOutcome:
    """Make attempt number `attempt` of a delivery: sign, POST, record the attempt, and say whether
    (and when) to try again. A duplicate task message for an attempt already made does nothing."""
    with context.tenant_context(tenant):
        # Claim the attempt: only one task run can move attempts from attempt-1 to attempt.
        claimed = WebhookDelivery.objects.filter(
            pk=delivery_id, attempts=attempt - 1, status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING]
        ).update(attempts=attempt)
        if not claimed:
            return AttemptOutcome(status="skipped")
        delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    endpoint = delivery.endpoint
    started_at = timezone.now()
    clock = time.monotonic()
    status_code: int | None = None
    excerpt = error = ""
    final = False  # no retry, whatever the attempt number
    if not endpoint.is_active:
        error, final = f"The endpoint is disabled ({endpoint.disabled_reason}).", True
    else:
        try:
            _check_url_shape(endpoint.url)
            body = encode_body(delivery.payload)
            timestamp = int(time.time())
            headers = {
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                "Webhook-Id": str(delivery.event_id),
                "Webhook-Timestamp": str(timestamp),
                "Webhook-Signature": sign(endpoint.secret, timestamp, body),
            }
            status_code, text = _post(endpoint.url, body=body, headers=headers)
            excerpt = _excerpt(text)
            if 300 <= status_code < 400:
                error = "Redirects are not followed: answer 2xx at the registered URL."
            elif not 200 <= status_code < 300:
                error = f"The receiver answered HTTP {status_code}."
        except ValidationError as exc:
            error, final = " ".join(" ".join(m) for m in exc.message_dict.values()), True
        except BlockedAddress as exc:
            error, final = str(exc), True
        except UnresolvedHost as exc:
            error = _excerpt(f"Connection failed: {exc}")[:500]  # retried: DNS may answer again
        except SoftTimeLimitExceeded:
            # A receiver dripping its answer byte by byte: the attempt is recorded, and retried.
            error = "The receiver took too long to answer."
        except requests.Timeout:
            error = f"No answer within {settings.WEBHOOK_TIMEOUT_SECONDS} s."
        except requests.exceptions.SSLError as exc:
            # Retried like any connection failure: the receiver can fix its certificate, or the
            # operator add its CA to WEBHOOK_CA_BUNDLE, and the next attempt then goes through.
            error = _tls_error(exc)
        except requests.RequestException as exc:
            error = _excerpt(f"Connection failed: {type(exc).__name__}: {exc}")[:500]
    succeeded = status_code is not None and 200 <= status_code < 300
    now = timezone.now()
    retry_in = None
    if succeeded:
        status = DeliveryStatus.SUCCEEDED
    elif final or attempt >= settings.WEBHOOK_MAX_ATTEMPTS:
        status = DeliveryStatus.FAILED
    else:
        status, retry_in = DeliveryStatus.RETRYING, retry_delay(attempt)
    next_attempt_at = now + datetime.timedelta(seconds=retry_in) if retry_in is not None else None
    with transaction.atomic(), context.tenant_context(tenant):
        WebhookAttempt.objects.create(
            tenant=tenant,
            delivery_id=delivery.pk,
            number=attempt,
            started_at=started_at,
            duration_ms=int((time.monotonic() - clock) * 1000),
            url=endpoint.url[:MAX_URL_LENGTH],
            status_code=status_code,
            succeeded=succeeded,
            error=error[:500],
            response_excerpt=excerpt,
            next_attempt_at=next_attempt_at,
        )
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=status,
            next_attempt_at=next_attempt_at,
            last_status_code=status_code,
            last_error=error[:500],
            response_excerpt=excerpt,
            delivered_at=now if succeeded else None,
        )
    if not succeeded:
        # WARNING with tenant and delivery id: an on-call engineer greps the JSON logs for them.
        logger.warning(
            "webhook delivery %s attempt %s failed (%s): %s",
            delivery.pk,
            attempt,
            status,
            error,
            extra={"tenant_id": tenant.pk, "delivery_id": delivery.pk, "attempt": attempt},
        )
    return AttemptOutcome(status=status, retry_in=retry_in, next_attempt_at=next_attempt_at)


STALE_GRACE = datetime.timedelta(minutes=15)
_STALE_BATCH = 5000


def deliveries_requeue_stale(*, now: datetime.datetime | None = None) -> int:
    """Queue again every delivery whose next attempt is overdue by STALE_GRACE: its message was lost
    (the broker was down when the rows were committed, or a worker died after claiming an attempt).
    It spans tenants, and the app role sees one tenant at a time under RLS: it reads each tenant's
    stale ids inside that tenant (one indexed query per tenant, at most _STALE_BATCH rows in all). A
    message that was merely late does no harm: the attempt number is claimed in the database, so only
    one of the two sends."""
    from django.db.models import Q

    from webhooks.tasks import webhook_deliver

    cutoff = (now or timezone.now()) - STALE_GRACE
    stale: list[tuple[int, int, int]] = []
    for tenant_id in Tenant.objects.order_by("pk").values_list("pk", flat=True):
        if len(stale) >= _STALE_BATCH:
            break
        with context.tenant_context(tenant_id):
            stale += (
                WebhookDelivery.objects.filter(
                    Q(status=DeliveryStatus.PENDING, created_at__lt=cutoff)
                    | Q(status=DeliveryStatus.RETRYING, next_attempt_at__lt=cutoff)
                )
                .order_by("pk")
                .values_list("tenant_id", "pk", "attempts")[: _STALE_BATCH - len(stale)]
            )
    for tenant_id, delivery_id, attempts in stale:
        webhook_deliver.apply_async((tenant_id, delivery_id, attempts + 1))
    if stale:
        logger.warning("re-queued %s stale webhook deliveries", len(stale))
    return len(stale)
