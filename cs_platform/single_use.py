"""Single-use form keys, for the forms whose answer shows a one-time secret (a new API token, a new or
rotated webhook signing secret).

Such a secret is shown in the response to the POST that created it and kept nowhere else: not in the
session (a row of django_session, readable by anyone with the database or a backup, for as long as
the session lives), not in the cache. The price of answering a POST directly is that a browser reload
sends the POST again; the key makes that resend harmless:

* each rendering of the form carries a fresh key, signed (Django's signing, SECRET_KEY) with the user
  and the form's purpose, and valid for KEY_MAX_AGE;
* the first POST that carries it spends it: an atomic add of its random part to the cache (Redis
  SET NX), which only one request can win;
* a resend finds it spent and the view creates nothing; a missing, forged, foreign or expired key is
  refused the same way, so a stale tab cannot create anything either.

Only the key's random part is stored, never a secret, and only until the key would have expired anyway.
"""

from __future__ import annotations

import datetime
import enum
import logging
import secrets

from django.core import signing
from django.core.cache import cache

from cs_platform.cache_errors import CACHE_ERRORS

logger = logging.getLogger(__name__)

FIELD = "form_key"
KEY_MAX_AGE = datetime.timedelta(hours=24)
_SALT = "cs_platform.single_use"
_MAX_LENGTH = 300  # a signed key is about 100 characters; anything much longer is not one of ours
# The spent mark outlives the key by a margin, so a key can never be spent twice while it is valid.
_SPENT_TIMEOUT = int(KEY_MAX_AGE.total_seconds()) + 3600


class FormKey(enum.Enum):
    FRESH = "fresh"  # spent now by this request: go ahead
    SPENT = "spent"  # already spent by an earlier request (a reload or a double click): create nothing
    INVALID = "invalid"  # missing, malformed, for another user or form, or expired: create nothing
    # The cache (Redis) is down, so nobody can tell a first send from a resend: create nothing, say so.
    UNAVAILABLE = "unavailable"


# What a form says when its key was not FRESH and nothing was created (SPENT redirects instead).
REFUSED_MESSAGES = {
    FormKey.INVALID: "This form had expired or did not come from this page: send it again.",
    FormKey.UNAVAILABLE: (
        "Nothing was created: this form cannot be checked right now (a service is down). Try again in a minute."
    ),
}


def form_key_issue(request, purpose: str) -> str:
    """A new key for one rendering of the form `purpose`, for the requesting user."""
    return signing.dumps([request.user.pk, purpose, secrets.token_urlsafe(16)], salt=_SALT)


def form_key_spend(request, purpose: str) -> FormKey:
    """Spend the key the POST carries; FRESH at most once per key, whatever runs concurrently."""
    raw = request.POST.get(FIELD, "")
    if not raw or len(raw) > _MAX_LENGTH:
        return FormKey.INVALID
    try:
        user_pk, key_purpose, nonce = signing.loads(raw, salt=_SALT, max_age=KEY_MAX_AGE)
    except (signing.BadSignature, ValueError, TypeError):
        return FormKey.INVALID
    if user_pk != request.user.pk or key_purpose != purpose:
        return FormKey.INVALID
    try:
        added = cache.add(f"{_SALT}:{nonce}", 1, timeout=_SPENT_TIMEOUT)
    except CACHE_ERRORS:
        logger.warning("single-use form key not checked: the cache is unavailable", exc_info=True)
        return FormKey.UNAVAILABLE
    if not added:
        return FormKey.SPENT
    return FormKey.FRESH
