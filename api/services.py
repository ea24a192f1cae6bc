"""Writes of API tokens: create (the plaintext leaves this module once), revoke, and the last-used mark."""

from __future__ import annotations

import datetime
import hashlib
import secrets

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from api.models import ALL_SCOPES, ApiToken
from cs_platform import bounds
from cs_platform.audit.services import audit_record
from cs_platform.tenancy import context

# Marks our tokens in logs and secret scanners; not a secret.
TOKEN_MARK = "csp"  # noqa: S105
# last_used_at is a hint for admins ("is this integration still alive?"), not an audit fact: a
# minute's precision is enough and spares a write on every API request.
TOUCH_INTERVAL = datetime.timedelta(minutes=1)


def hash_token(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def _new_plaintext() -> tuple[str, str]:
    """(prefix, token): the prefix is shown in lists so admins can tell tokens apart without the secret."""
    prefix = secrets.token_hex(4)
    return prefix, f"{TOKEN_MARK}_{prefix}_{secrets.token_urlsafe(24)}"


def _audit_view(token: ApiToken) -> dict:
    # Never the secret nor its hash: the audit trail is exported to clients and regulators.
    return {
        "name": token.name,
        "prefix": token.prefix,
        "scopes": token.scopes,
        "expires_at": token.expires_at,
        "revoked_at": token.revoked_at,
    }


@transaction.atomic
def api_token_create(
    *, tenant, name: str, scopes: list[str], expires_at: datetime.datetime | None = None, actor
) -> tuple[ApiToken, str]:
    """Create a token for `tenant` acting as `actor`; returns the row and the plaintext, which is not
    stored anywhere and cannot be recovered later."""
    errors: dict[str, str] = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = "A name is required."
    elif len(name) > 100:
        errors["name"] = "Use at most 100 characters."
    scopes = list(dict.fromkeys(scopes or []))
    unknown = [s for s in scopes if s not in ALL_SCOPES]
    if not scopes:
        errors["scopes"] = "Choose at least one scope."
    elif unknown:
        errors["scopes"] = f"Unknown scope(s): {', '.join(unknown)}."
    if expires_at is not None and expires_at <= timezone.now():
        errors["expires_at"] = "The expiry must be in the future."
    elif expires_at is not None and (message := bounds.moment_error(expires_at)):
        errors["expires_at"] = message
    if errors:
        raise ValidationError(errors)
    with context.tenant_context(tenant):
        prefix, plaintext = _new_plaintext()
        token = ApiToken(
            tenant=tenant,
            name=name,
            prefix=prefix,
            key_hash=hash_token(plaintext),
            scopes=[s for s in ALL_SCOPES if s in scopes],
            expires_at=expires_at,
            created_by=actor,
        )
        token.save()
        audit_record(tenant=tenant, actor=actor, action="api_token.create", obj=token, after=_audit_view(token))
    return token, plaintext


@transaction.atomic
def api_token_revoke(*, tenant, token: ApiToken, actor) -> ApiToken:
    """Revoke `token` now; requests carrying it fail from the next one on."""
    with context.tenant_context(tenant):
        # The caller's copy may be stale (another admin revoked or edited the token since it was read):
        # lock the row and read it again, so a concurrent revoke is refused rather than recorded twice and
        # "before" is the row this revoke really replaces.
        token.refresh_from_db(from_queryset=ApiToken.objects.select_for_update())
        if token.revoked_at is not None:
            raise ValidationError({"token": "This token is already revoked."})
        before = _audit_view(token)
        token.revoked_at = timezone.now()
        token.revoked_by = actor
        token.save(update_fields=["revoked_at", "revoked_by"])
        audit_record(
            tenant=tenant, actor=actor, action="api_token.revoke", obj=token, before=before, after=_audit_view(token)
        )
    return token


def api_token_touch(*, token: ApiToken, now: datetime.datetime | None = None) -> bool:
    """Mark the token used, at most once per TOUCH_INTERVAL. Not audited: it records no decision by
    anyone, and an event per request would bury the trail a regulator reads. Returns whether it wrote."""
    now = now or timezone.now()
    if token.last_used_at is not None and now - token.last_used_at < TOUCH_INTERVAL:
        return False
    with context.tenant_context(token.tenant_id):
        # The filter repeats the interval check so concurrent requests write once between them.
        stale = ApiToken.objects.filter(pk=token.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - TOUCH_INTERVAL)
        )
        written = stale.update(last_used_at=now)
    if written:
        token.last_used_at = now
    return bool(written)
