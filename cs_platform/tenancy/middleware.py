"""Sets the current tenant for each request from the logged-in user's membership."""

from __future__ import annotations

import zoneinfo

from django.utils import timezone

from cs_platform.tenancy import context
from cs_platform.tenancy.selectors import memberships_for_user

SESSION_KEY = "tenant_id"
LINK_PARAM = "tenant"


def _named_in_link(request):
    """The membership a GET link names with ?tenant=<slug> (the weekly email's links do), when the
    user has one there. A link into tenant A opened while the session is on tenant B must show A's
    page, not B's 404. Only GET: a form post never changes tenant on the way. A slug the user has no
    membership in is ignored (no hint whether that tenant exists)."""
    slug = request.GET.get(LINK_PARAM) if request.method in ("GET", "HEAD") else None
    if not slug:
        return None
    return next((m for m in request.memberships if m.tenant.slug == slug), None)


class TenantMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.tenant = None
        request.membership = None
        request.memberships = []
        if request.user.is_authenticated:
            request.memberships = memberships_for_user(request.user)
            chosen = request.session.get(SESSION_KEY)
            membership = _named_in_link(request) or next(
                (m for m in request.memberships if m.tenant_id == chosen), None
            )
            if membership is None and request.memberships:
                membership = request.memberships[0]
            if membership is not None:
                request.membership = membership
                request.tenant = membership.tenant
                if chosen != membership.tenant_id:
                    request.session[SESSION_KEY] = membership.tenant_id
        token = context.set_request_tenant(request.tenant.pk if request.tenant else None)
        # Dates typed in, shown and meant by "today" are the tenant's: a London team's "today" is not
        # New York's, and "not in the future" must be checked in the tenant's own day. Always an
        # override, even with no tenant: an API token selects its tenant (and zone) later, inside the
        # view, and this block is what undoes that when the request ends.
        zone = zoneinfo.ZoneInfo(request.tenant.time_zone) if request.tenant else None
        try:
            with timezone.override(zone):
                return self.get_response(request)
        finally:
            context.reset(token)
