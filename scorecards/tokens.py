"""The unsubscribe link's token: names a tenant and a user, signed with the project's SECRET_KEY.

The token is the credential of the no-login unsubscribe page: whoever holds it may turn that one
member's weekly email off in that one tenant, and nothing else. It carries no expiry, because an email
read months later must still unsubscribe (RFC 8058 expects the link to keep working); rotating
SECRET_KEY (with the old key in SECRET_KEY_FALLBACKS for a while) invalidates old links.
"""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.urls import reverse

# A salt of its own, so no other signed value of the project (sessions, password resets, other
# tokens) can ever be replayed as an unsubscribe token, nor this one elsewhere.
SALT = "cs_platform.scorecards.unsubscribe.v1"


class InvalidUnsubscribeToken(ValueError):  # noqa: N818 - reads as what the caller was given
    """The token was altered, truncated, or signed with another key or for another purpose."""


def unsubscribe_token(tenant, user) -> str:
    """A URL-safe token naming `tenant` and `user` (instances or ids)."""
    tenant_id = getattr(tenant, "pk", tenant)
    user_id = getattr(user, "pk", user)
    # Signer (not signing.dumps): no timestamp, since the link does not expire; a shorter URL.
    return signing.Signer(salt=SALT).sign_object({"t": int(tenant_id), "u": int(user_id)})


def read_unsubscribe_token(token: str) -> tuple[int, int]:
    """(tenant_id, user_id) from a token made by unsubscribe_token(); InvalidUnsubscribeToken otherwise."""
    try:
        payload = signing.Signer(salt=SALT).unsign_object(token)
    except signing.BadSignature:
        raise InvalidUnsubscribeToken("This unsubscribe link is not valid: it was altered or cut short.") from None
    # A valid signature over an unexpected shape can only come from our own key, but check anyway:
    # a malformed payload must read as an invalid link, never as a 500.
    if not isinstance(payload, dict):
        raise InvalidUnsubscribeToken("This unsubscribe link is not valid.")
    tenant_id, user_id = payload.get("t"), payload.get("u")
    if not all(isinstance(value, int) and not isinstance(value, bool) for value in (tenant_id, user_id)):
        raise InvalidUnsubscribeToken("This unsubscribe link is not valid.")
    return tenant_id, user_id


def unsubscribe_url(tenant, user) -> str:
    """The absolute link for emails (they are read outside the site, so SITE_URL gives the host)."""
    return settings.SITE_URL + reverse("weekly_email_unsubscribe", kwargs={"token": unsubscribe_token(tenant, user)})
