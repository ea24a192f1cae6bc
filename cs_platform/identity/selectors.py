"""Reads for identity: lockout history, users by login name or email, a person's MFA devices.

None of these are tenant-owned: users, axes rows and OTP devices belong to the platform."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Count, Q
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from cs_platform.identity.models import LoginLockout
from cs_platform.tenancy.models import Membership


def lockout_filter(*, username: str, ip: str | None) -> Q | None:
    """Rows about this username or this address; None when neither is known (matches nothing)."""
    condition = Q()
    if username:
        condition |= Q(username=username)
    if ip:
        condition |= Q(ip_address=ip)
    return condition or None


def recent_lockout_count(*, username: str, ip: str | None, now: datetime.datetime | None = None) -> int:
    """Lockouts of this username or address within LOGIN_LOCKOUT_MEMORY_SECONDS. One query."""
    condition = lockout_filter(username=username, ip=ip)
    if condition is None:
        return 0
    since = (now or timezone.now()) - datetime.timedelta(seconds=settings.LOGIN_LOCKOUT_MEMORY_SECONDS)
    return LoginLockout.objects.filter(condition, started_at__gte=since).count()


def active_lockout(*, username: str, ip: str | None, now: datetime.datetime) -> LoginLockout | None:
    condition = lockout_filter(username=username, ip=ip)
    if condition is None:
        return None
    return LoginLockout.objects.filter(condition, until__gt=now).order_by("-until").first()


def user_by_login_name(username: str):
    """The user a login form's username names, as Django's ModelBackend finds it; None if nobody."""
    if not username:
        return None
    model = get_user_model()
    return model._default_manager.filter(**{model.USERNAME_FIELD: username}).first()


def users_for_password_reset(email: str) -> list:
    """Active users with this email (case-insensitive) who have a password to reset."""
    model = get_user_model()
    email_field = model.get_email_field_name()
    users = model._default_manager.filter(**{f"{email_field}__iexact": email, "is_active": True})
    return [user for user in users if user.has_usable_password()]


def confirmed_totp_device(user) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("-pk").first()


def pending_totp_device(user) -> TOTPDevice | None:
    """The device being enrolled: created, its QR code shown, not yet confirmed with a code."""
    return TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()


def has_mfa(user) -> bool:
    """Whether the person has a confirmed authenticator app (recovery codes alone do not count)."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def recovery_device(user) -> StaticDevice | None:
    return StaticDevice.objects.filter(user=user, confirmed=True).order_by("-pk").first()


def recovery_codes_left(user) -> int:
    device = recovery_device(user)
    return device.token_set.count() if device is not None else 0


def mfa_coverage_by_role() -> dict[str, dict[str, int]]:
    """Per role of the current tenant: active members, and how many of them have an authenticator app.
    For the security settings page, so an admin sees who a new requirement will send to enrol. One query."""
    rows = (
        Membership.objects.filter(is_active=True)
        .values("role")
        .annotate(
            members=Count("user", distinct=True),
            with_mfa=Count("user", distinct=True, filter=Q(user__totpdevice__confirmed=True)),
        )
        .order_by()
    )
    return {row["role"]: {"members": row["members"], "with_mfa": row["with_mfa"]} for row in rows}
