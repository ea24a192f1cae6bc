"""What identity keeps in the session, in one place: when the login happened (absolute lifetime), when
the person was last seen (idle timeout), when they last proved their password ("sudo mode"), whether they
have an authenticator, and a login waiting for its code. Times are Unix seconds (JSON-serialisable)."""

from __future__ import annotations

import time

AUTH_AT = "identity.auth_at"
SEEN_AT = "identity.seen_at"
REAUTH_AT = "identity.reauth_at"
HAS_MFA = "identity.has_mfa"
# {"user": pk, "backend": dotted path, "at": seconds, "next": url}: the password was right, the code is due.
PENDING = "identity.pending"


def now() -> float:
    return time.time()


def stamp_login(session, *, has_mfa: bool) -> None:
    """A login (any path: the login form, the admin's, a test's force_login) starts every clock."""
    moment = now()
    session[AUTH_AT] = moment
    session[SEEN_AT] = moment
    session[REAUTH_AT] = moment
    session[HAS_MFA] = has_mfa
    session.pop(PENDING, None)


def stamp_reauth(session) -> None:
    session[REAUTH_AT] = now()


def recently_authenticated(session, window: int) -> bool:
    stamp = session.get(REAUTH_AT)
    return isinstance(stamp, int | float) and 0 <= now() - stamp <= window
