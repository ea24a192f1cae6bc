"""Receivers: every login starts the session clocks; every axes lockout is recorded (and grows)."""

from __future__ import annotations

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from cs_platform.identity import selectors, sessions
from cs_platform.identity.client_address import client_address
from cs_platform.identity.services import login_lockout_record


@receiver(user_logged_in, dispatch_uid="identity_stamp_login")
def _stamp_login(sender, request, user, **kwargs):
    # Whatever path logged the person in (our form, the admin's, a test's force_login), the lifetime and
    # re-authentication clocks start here, and the MFA gate learns whether they have an authenticator.
    session = getattr(request, "session", None)
    if session is not None:
        sessions.stamp_login(session, has_mfa=selectors.has_mfa(user))


@receiver(user_locked_out, dispatch_uid="identity_record_lockout")
def _record_lockout(sender, request, username, ip_address, **kwargs):
    login_lockout_record(request=request, username=username or "", ip=ip_address or client_address(request))
