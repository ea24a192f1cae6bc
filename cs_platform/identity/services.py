"""Writes for identity. Every authentication event becomes an audit event in the chain of each tenant
the person is an active member of (memberships_for_user); one with no tenant (a platform superuser, or
a login name that matches nobody) cannot be chained and goes to the `cs_platform.identity` log instead.

Events name the person by id (object auth.user:<id>) and carry the client address; they never carry a
password, an OTP code, a recovery code or a reset token."""

from __future__ import annotations

import dataclasses
import datetime
import logging
from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from axes.models import AccessAttempt, AccessAttemptExpiration
from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Value
from django.db.models.functions import Greatest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django_otp import verify_token
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from cs_platform.audit.services import audit_record, model_snapshot
from cs_platform.identity import lockout, selectors
from cs_platform.identity.models import LoginLockout
from cs_platform.identity.tasks import password_reset_email
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Membership, Role, Tenant
from cs_platform.tenancy.policy import mfa_required
from cs_platform.tenancy.selectors import memberships_for_user

logger = logging.getLogger("cs_platform.identity")

USER_OBJECT = "auth.user"


def auth_event_record(*, user, action: str, actor, ip: str | None, details: dict[str, Any] | None = None) -> int:
    """Record `action` about `user` in each of their tenants' chains; returns how many events."""
    after = {"ip": ip, **(details or {})}
    memberships = memberships_for_user(user)
    logger.info("%s user=%s ip=%s %s tenants=%s", action, user.pk, ip, details or {}, len(memberships))
    for membership in memberships:
        audit_record(
            tenant=membership.tenant,
            actor=actor,
            action=action,
            object_type=USER_OBJECT,
            object_id=user.pk,
            after=after,
        )
    return len(memberships)


# --- Logins, failures, lockouts, logouts, re-authentication ---------------------------------------------


def auth_login_record(*, user, ip: str | None, method: str) -> int:
    """A completed login; `method` says which factors: password, password+totp, password+recovery_code."""
    return auth_event_record(user=user, action="auth.login", actor=user, ip=ip, details={"method": method})


def auth_login_failure_record(*, username: str, ip: str | None, reason: str) -> int:
    """A refused login attempt. The actor is unknown (whoever typed), so the event is the system's; a name
    that matches nobody has no tenant and is only logged."""
    user = selectors.user_by_login_name(username)
    if user is None:
        logger.warning("auth.login_failed unknown username=%r ip=%s reason=%s", username[:150], ip, reason)
        return 0
    return auth_event_record(user=user, action="auth.login_failed", actor=None, ip=ip, details={"reason": reason})


@transaction.atomic
def login_lockout_record(*, request, username: str, ip: str | None) -> LoginLockout | None:
    """Called when django-axes locks out a username or address (its user_locked_out signal).

    axes announces a lockout again on every attempt made while it lasts; only the first announcement is
    a new lockout. A new one is one step longer than the last within LOGIN_LOCKOUT_MEMORY_SECONDS. Returns
    the new row, or None for an attempt during a running lockout (whose end axes has just pushed back)."""
    now = timezone.now()
    username = (username or "")[:255]
    running = selectors.active_lockout(username=username, ip=ip, now=now)
    if running is not None:
        condition = selectors.lockout_filter(username=username, ip=ip)
        LoginLockout.objects.filter(condition, until__gt=now).update(until=now + lockout.cool_off(request))
        return None
    level = selectors.recent_lockout_count(username=username, ip=ip, now=now) + 1
    wait = lockout.step_for(level)
    row = LoginLockout.objects.create(username=username, ip_address=ip, level=level, started_at=now, until=now + wait)
    lockout.remember_cool_off(request, wait)
    # axes gave the attempt rows an expiry from the cool-off known before this lockout; stretch them, or
    # axes would clean the rows away (and lift the lockout) after the shorter, previous step.
    attempts = AccessAttempt.objects.filter(selectors.lockout_filter(username=username, ip=ip))
    AccessAttemptExpiration.objects.filter(access_attempt__in=attempts).update(
        expires_at=Greatest("expires_at", Value(now + wait))
    )
    user = selectors.user_by_login_name(username)
    details = {"level": level, "seconds": int(wait.total_seconds()), "failure_limit": settings.AXES_FAILURE_LIMIT}
    if user is None:
        logger.warning("auth.lockout username=%r ip=%s %s (no such user)", username[:150], ip, details)
    else:
        auth_event_record(user=user, action="auth.lockout", actor=None, ip=ip, details=details)
    return row


def auth_logout_record(*, user, ip: str | None, reason: str) -> int:
    """reason: logout (the person asked), idle_timeout or max_age (the session lifetime ended it)."""
    actor = user if reason == "logout" else None
    return auth_event_record(user=user, action="auth.logout", actor=actor, ip=ip, details={"reason": reason})


def auth_reauth_record(*, user, ip: str | None, method: str) -> int:
    return auth_event_record(user=user, action="auth.reauthenticated", actor=user, ip=ip, details={"method": method})


# --- Passwords -------------------------------------------------------------------------------------------


def _set_password(user, password: str) -> None:
    # The validators are the rule, whichever form or command sets the password.
    password_validation.validate_password(password, user)
    user.set_password(password)
    user.save(update_fields=["password"])


@transaction.atomic
def password_change(*, user, password: str, ip: str | None) -> None:
    """A logged-in person's new password (the old one was checked by the caller through authenticate(),
    so guessing it is throttled like a login). Their other sessions end: Django ties each session to the
    password hash."""
    _set_password(user, password)
    auth_event_record(user=user, action="auth.password_changed", actor=user, ip=ip)


def password_reset_request(*, email: str, ip: str | None) -> int:
    """Send a reset link to each active account with this email. The caller answers the same whatever
    this finds (no account enumeration); the email goes out from a Celery task after commit, so the
    answer takes as long whether or not an account exists. Returns the number of accounts (for tests)."""
    users = selectors.users_for_password_reset(email)
    if not users:
        logger.info("auth.password_reset_requested for an unknown email ip=%s", ip)
        return 0
    with transaction.atomic():
        for user in users:
            auth_event_record(user=user, action="auth.password_reset_requested", actor=None, ip=ip)
        user_ids = [user.pk for user in users]

        def queue() -> None:
            for user_id in user_ids:
                try:
                    password_reset_email.delay(user_id)
                except Exception:  # a broker outage: the person can ask again; the page must not fail
                    logger.exception("could not queue the password reset email for user %s", user_id)

        transaction.on_commit(queue)
    return len(users)


def password_reset_link(user) -> str:
    """An absolute link holding Django's reset token: valid PASSWORD_RESET_TIMEOUT seconds, and only
    until the password (or the last login) changes, so using it once spends it."""
    path = reverse(
        "password_reset_confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )
    return f"{settings.SITE_URL}{path}"


def password_reset_email_send(*, user_id: int) -> bool:
    """The reset email itself (the Celery task's body): made when sent, so the link's clock starts then."""
    user = get_user_model()._default_manager.filter(pk=user_id, is_active=True).first()
    if user is None or not user.has_usable_password():
        return False
    context = {
        "user": user,
        "link": password_reset_link(user),
        "hours": settings.PASSWORD_RESET_TIMEOUT / 3600,
        "minutes": settings.PASSWORD_RESET_TIMEOUT // 60,
        "site_url": settings.SITE_URL,
    }
    subject = render_to_string("identity/email/password_reset_subject.txt", context).strip()
    body = render_to_string("identity/email/password_reset.txt", context)
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [getattr(user, user.get_email_field_name())])
    return True


@transaction.atomic
def password_reset_complete(*, user, password: str, ip: str | None) -> None:
    """The new password from a reset link. Proving the mailbox is proof enough to lift a lockout of the
    username (an address lockout stays); MFA is not bypassed: the next login still asks for the code."""
    _set_password(user, password)
    AxesProxyHandler.reset_attempts(username=user.get_username())
    auth_event_record(user=user, action="auth.password_reset_completed", actor=user, ip=ip)


# --- MFA: TOTP authenticator apps and recovery codes (django-otp) ----------------------------------------


@dataclasses.dataclass(frozen=True)
class CodeCheck:
    """The outcome of checking a code: the device that accepted it, or why none did."""

    device: Device | None
    method: str = ""  # totp or recovery_code
    retry_at: datetime.datetime | None = None  # set when the device is throttled after wrong codes


def normalise_code(code: str) -> str:
    """What people type: spaces and dashes are for reading, recovery codes are lower-case."""
    return "".join(code.split()).replace("-", "").lower()


def _is_totp_code(code: str) -> bool:
    return code.isdigit() and len(code) in (6, 8)


def mfa_code_check(*, user, code: str, ip: str | None) -> CodeCheck:
    """Check a code from the person's authenticator app or one of their recovery codes, against that one
    device (django-otp's verify_token locks the row, throttles after failures, and spends a recovery code
    or a TOTP time step). Six digits are an app code; anything else is tried as a recovery code, so a
    mistyped app code never spends the recovery device's failure budget."""
    code = normalise_code(code)
    device = selectors.confirmed_totp_device(user) if _is_totp_code(code) else selectors.recovery_device(user)
    method = "totp" if _is_totp_code(code) else "recovery_code"
    if device is None or not code:
        return CodeCheck(device=None, method=method)
    allowed, info = device.verify_is_allowed()
    if not allowed:
        return CodeCheck(device=None, method=method, retry_at=(info or {}).get("locked_until"))
    accepted = verify_token(user, device.persistent_id, code)
    if accepted is not None and method == "recovery_code":
        left = StaticToken.objects.filter(device=accepted).count()
        auth_event_record(user=user, action="auth.recovery_code_used", actor=user, ip=ip, details={"left": left})
    return CodeCheck(device=accepted, method=method)


@transaction.atomic
def mfa_enrollment_start(*, user) -> TOTPDevice:
    """The authenticator being set up: the same one until it is confirmed, so reloading the page keeps
    the QR code the person may already have scanned."""
    device = selectors.pending_totp_device(user)
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    return device


def _new_recovery_codes(user) -> list[str]:
    """Replace the person's recovery codes with MFA_RECOVERY_CODE_COUNT fresh ones (40 random bits each).
    The caller shows them once; they are not kept anywhere else."""
    device = selectors.recovery_device(user)
    if device is None:
        device = StaticDevice.objects.create(user=user, name="Recovery codes", confirmed=True)
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(settings.MFA_RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    device.throttle_reset()
    return codes


@transaction.atomic
def mfa_enrollment_confirm(*, user, device: TOTPDevice, code: str, ip: str | None) -> list[str]:
    """Confirm the pending authenticator with a code it shows; it replaces any earlier one. Returns the
    new recovery codes, to be shown once. A wrong code is a ValidationError on `code`."""
    if device.user_id != user.pk or device.confirmed:
        raise ValidationError({"code": "This set-up has expired: start again."})
    code = normalise_code(code)
    if not _is_totp_code(code) or verify_token(user, device.persistent_id, code) is None:
        raise ValidationError({"code": "That code is not right. Enter the 6 digits your app shows now."})
    replaced = TOTPDevice.objects.filter(user=user).exclude(pk=device.pk)
    had_one = replaced.filter(confirmed=True).exists()
    replaced.delete()
    TOTPDevice.objects.filter(pk=device.pk).update(confirmed=True)
    device.confirmed = True
    codes = _new_recovery_codes(user)
    auth_event_record(
        user=user,
        action="auth.mfa_enrolled",
        actor=user,
        ip=ip,
        details={"replaced": had_one, "recovery_codes": len(codes)},
    )
    return codes


@transaction.atomic
def recovery_codes_regenerate(*, user, ip: str | None) -> list[str]:
    if not selectors.has_mfa(user):
        raise ValidationError("Set up an authenticator app first: recovery codes back it up.")
    codes = _new_recovery_codes(user)
    auth_event_record(
        user=user, action="auth.recovery_codes_regenerated", actor=user, ip=ip, details={"recovery_codes": len(codes)}
    )
    return codes


@transaction.atomic
def mfa_remove(*, user, ip: str | None) -> None:
    """Remove the authenticator and the recovery codes. Refused while MFA is required of the person
    (a platform superuser, or a role their tenant requires it for): they can set up a new app instead."""
    if mfa_required(user, memberships_for_user(user)):
        raise ValidationError(
            "MFA is required for your account, so it cannot be removed. To move to a new phone, set up the "
            "new authenticator app: it replaces the old one."
        )
    removed = TOTPDevice.objects.filter(user=user).delete()[0] + StaticDevice.objects.filter(user=user).delete()[0]
    if removed:
        auth_event_record(user=user, action="auth.mfa_removed", actor=user, ip=ip)


@transaction.atomic
def mfa_fixed_credentials_install(*, user, totp_key_hex: str, recovery_codes: list[str]) -> None:
    """Give a user a confirmed authenticator with a known secret and known recovery codes. Only for the
    demo's platform superuser, whose credentials README publishes; idempotent, and restores used codes."""
    device = TOTPDevice.objects.filter(user=user, key=totp_key_hex, confirmed=True).first()
    if device is None:
        TOTPDevice.objects.filter(user=user).delete()
        TOTPDevice.objects.create(user=user, name="Demo authenticator", key=totp_key_hex, confirmed=True)
    static = selectors.recovery_device(user) or StaticDevice.objects.create(
        user=user, name="Recovery codes", confirmed=True
    )
    held = set(static.token_set.values_list("token", flat=True))
    StaticToken.objects.bulk_create(
        StaticToken(device=static, token=code) for code in recovery_codes if code not in held
    )


# --- Memberships and the tenant's login policy ----------------------------------------------------------
@transaction.atomic
def membership_create(*, tenant: Tenant, user, role: str, manager: Membership | None = None, actor=None) -> Membership:
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}; expected one of {', '.join(Role.values)}."})
    if manager is not None and manager.tenant_id != tenant.pk:
        raise ValidationError({"manager": "The manager must be a member of the same tenant."})
    with context.tenant_context(tenant):
        membership = Membership(tenant=tenant, user=user, role=role, manager=manager)
        membership.save()
        audit_record(
            tenant=tenant, actor=actor, action="membership.create", obj=membership, after=model_snapshot(membership)
        )
    return membership


@transaction.atomic
def membership_set_manager(
    *, tenant: Tenant, membership: Membership, manager: Membership | None, actor=None
) -> Membership:
    if manager is not None and (manager.tenant_id != tenant.pk or manager.pk == membership.pk):
        raise ValidationError({"manager": "The manager must be another member of the same tenant."})
    with context.tenant_context(tenant):
        before = model_snapshot(membership)
        membership.manager = manager
        membership.save(update_fields=["manager"])
        audit_record(
            tenant=tenant,
            actor=actor,
            action="membership.set_manager",
            obj=membership,
            before=before,
            after=model_snapshot(membership),
        )
    return membership


@transaction.atomic
def tenant_mfa_policy_set(*, tenant: Tenant, roles: list[str], actor) -> Tenant:
    """Choose the roles whose members must use MFA. Takes effect on each member's next request: a member
    without a device is sent to enrol, one with a device to the code step."""
    unknown = sorted({str(role) for role in roles} - set(Role.values))
    if unknown:
        raise ValidationError(
            {"roles": f"Unknown roles {', '.join(unknown)}; expected some of {', '.join(Role.values)}."}
        )
    chosen = [role for role in Role.values if role in set(roles)]  # the roles' own order, no duplicates
    before = {"mfa_required_roles": list(tenant.mfa_required_roles or [])}
    if before["mfa_required_roles"] == chosen:
        return tenant
    tenant.mfa_required_roles = chosen
    tenant.save(update_fields=["mfa_required_roles"])
    audit_record(
        tenant=tenant,
        actor=actor,
        action="tenant.mfa_policy_set",
        obj=tenant,
        before=before,
        after={"mfa_required_roles": chosen},
    )
    return tenant
