"""Response headers that neither Django's SecurityMiddleware nor django-csp set.

Permissions-Policy turns off the powerful browser features the product never uses, so a script that
slipped in still cannot reach a camera, a payment sheet or a USB device.

Cache-Control: no-store on every response a view produced. The authenticated pages and the API carry
clients' data and must not rest in a shared proxy, the browser's disk cache or its back/forward cache
after logout. The few public answers are no-store too, on purpose: the login form carries a CSRF
token, the unsubscribe page a personal token, the docs page's script the caller's CSRF token, a 404
must not outlive the object created a minute later, and a cached /healthz would hide an outage.
Static files are served by WhiteNoise before this middleware runs and keep their long lifetime.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase


class SecurityHeadersMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", settings.PERMISSIONS_POLICY)
        # A view that already forbids storing (Django's never_cache, a download's "private, no-store")
        # keeps its wording; anything else, including a view's max-age, is replaced.
        if "no-store" not in response.get("Cache-Control", ""):
            response["Cache-Control"] = "no-store"
        return response
