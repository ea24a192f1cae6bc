"""Where to send someone back to after a login, a code or a re-authentication, checked once here."""

from __future__ import annotations

from django.conf import settings
from django.shortcuts import resolve_url
from django.utils.http import url_has_allowed_host_and_scheme

MAX_NEXT_LENGTH = 2000


def safe_next(request, candidate: str | None, default: str | None = None) -> str:
    """`candidate` if it is a path on this site (no other host, no scheme tricks, no control characters,
    bounded), else `default` (the home page)."""
    fallback = default or resolve_url(settings.LOGIN_REDIRECT_URL)
    if not candidate or len(candidate) > MAX_NEXT_LENGTH or any(ord(ch) < 32 or ord(ch) == 127 for ch in candidate):
        return fallback
    if not candidate.startswith("/") or candidate.startswith("//"):
        return fallback
    if not url_has_allowed_host_and_scheme(candidate, allowed_hosts={request.get_host()}, require_https=False):
        return fallback
    return candidate


def return_path(request) -> str:
    """Where a person interrupted by a check should land afterwards: the page itself for a read; for a
    form post (whose URL may answer GET with 405), the page the form was on when it is ours."""
    if request.method in ("GET", "HEAD"):
        return request.get_full_path()
    referer = request.META.get("HTTP_REFERER", "")
    origin = f"{request.scheme}://{request.get_host()}"
    if referer.startswith(origin + "/"):
        return safe_next(request, referer[len(origin) :], request.path)
    return request.path


def next_of(request) -> str:
    """The checked `next` a form posted, or the one in the query string."""
    return safe_next(request, request.POST.get("next") or request.GET.get("next"))
