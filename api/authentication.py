"""`Authorization: Bearer <token>` for the REST API. A token names its tenant, so a successful
authentication also selects that tenant for the rest of the request."""

from __future__ import annotations

import hmac
import re
import zoneinfo

from django.utils import timezone
from rest_framework import authentication, exceptions

from api import selectors
from api.services import api_token_touch, hash_token
from api.throttling import failed_auth_record
from cs_platform.tenancy import context
from cs_platform.tenancy.policy import Capability

_FORMAT = re.compile(r"^csp_[0-9a-f]{8}_[A-Za-z0-9_-]{32}$")


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None  # not ours: session authentication may still apply
        token, membership = self._lookup(request, header)
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed("Token revoked.")
        now = timezone.now()
        if token.is_expired(now):
            raise exceptions.AuthenticationFailed("Token expired.")
        if membership is None or not token.created_by.is_active:
            raise exceptions.AuthenticationFailed("Token owner is no longer a member.")
        # Only members holding MANAGE_API_TOKENS (admins) create tokens, and a token's requests are judged by
        # its scopes, not a role (api.permissions.HasCapability): it acts with its creator's admin rights, so
        # it may act only while the creator holds that capability. The role is on the membership row already
        # read (no extra query).
        # Suspended, not revoked: re-promoting the creator (say, after a mistaken demotion) brings the
        # token back, as re-activating a deactivated member does. Revoking is an admin's explicit, audited
        # decision, and a request's authentication is no place for a write on someone else's behalf.
        if membership.role not in Capability.MANAGE_API_TOKENS.roles:
            raise exceptions.AuthenticationFailed("Token owner is no longer an admin of this tenant.")
        # DRF authenticates inside the view, after TenantMiddleware selected the session's tenant (or
        # none). The middleware resets the context variable to the value it saved when the request
        # ends, which also discards this setting, so no reset is needed here.
        context.set_request_tenant(token.tenant_id)
        # The token's tenant decides the day too, even when a browser session of another tenant rode
        # along (TenantMiddleware's override restores the zone when the request ends).
        timezone.activate(zoneinfo.ZoneInfo(token.tenant.time_zone))
        django_request = request._request
        django_request.tenant = token.tenant
        django_request.membership = membership
        django_request.memberships = [membership]
        api_token_touch(token=token, now=now)
        return token.created_by, token

    def _lookup(self, request, header: list[bytes]):
        """The token the header names and its creator's membership. An unknown or malformed token is
        counted against the client address (api.throttling) and refused: 401, or 429 with Retry-After once
        the address has used up its budget of failures. A known token is never refused for its address's
        failures, so a misconfigured client cannot lock out a working integration behind the same proxy."""
        plaintext = None
        if len(header) == 2:
            try:
                plaintext = header[1].decode()
            except UnicodeDecodeError:
                pass
        token = membership = None
        if plaintext is not None and _FORMAT.match(plaintext):
            key_hash = hash_token(plaintext)
            token, membership = selectors.api_token_by_hash(key_hash)
            # The lookup is by hash already; the constant-time compare keeps it so if the lookup changes.
            if token is not None and not hmac.compare_digest(token.key_hash, key_hash):
                token = None
        if token is None:
            wait = failed_auth_record(request)
            if wait is not None:
                raise exceptions.Throttled(wait, detail="Too many invalid tokens from this address.")
            raise exceptions.AuthenticationFailed("Invalid token.")
        return token, membership

    def authenticate_header(self, request):
        return self.keyword
