"""The client's address, derived once for every per-address rule (login lockouts, reset throttling)
exactly as the API's per-address budget derives it (REST_FRAMEWORK NUM_PROXIES, set by API_NUM_PROXIES).

Behind N trusted reverse proxies the client's address is the N-th entry from the right of
X-Forwarded-For: the one the outermost trusted proxy appended. Entries further left were written by
the client and are never believed. With no proxies, X-Forwarded-For is ignored altogether."""

from __future__ import annotations

import ipaddress

from django.conf import settings


def _valid(address: str | None) -> str | None:
    if not address:
        return None
    try:
        return str(ipaddress.ip_address(address.strip()))
    except ValueError:
        return None


def client_address(request) -> str | None:
    remote = request.META.get("REMOTE_ADDR")
    proxies = settings.REST_FRAMEWORK.get("NUM_PROXIES") or 0
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    candidate = remote
    if proxies and forwarded:
        entries = forwarded.split(",")
        candidate = entries[-min(proxies, len(entries))]
    # A malformed entry (a misconfigured proxy) falls back to the connecting address, never to text the
    # client chose: the address is stored in inet columns and keys lockouts.
    return _valid(candidate) or _valid(remote)
