"""MFA: account security, enrolment with a server-drawn QR code, recovery codes, removal, and the
tenant admins' security settings (which roles must use MFA)."""

from __future__ import annotations

import base64

import segno
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django_otp import login as otp_login

from cs_platform.identity import selectors, services, sessions
from cs_platform.identity.client_address import client_address
from cs_platform.identity.forms import CodeForm, MfaPolicyForm
from cs_platform.identity.navigation import next_of
from cs_platform.identity.reauth import require_recent_auth
from cs_platform.identity.services import tenant_mfa_policy_set
from cs_platform.tenancy.models import Role
from cs_platform.tenancy.policy import Capability, mfa_required, requires

# --- MFA ------------------------------------------------------------------------------------------------------


@login_required
@never_cache
def account_security(request):
    user = request.user
    context = {
        "has_mfa": selectors.has_mfa(user),
        "codes_left": selectors.recovery_codes_left(user),
        "mfa_required": mfa_required(user, request.memberships),
    }
    return render(request, "identity/account_security.html", context)


def _qr_svg(device) -> str:
    # segno draws the otpauth:// URL as an inline SVG, on the server: the secret never leaves for a
    # third-party QR service, and the page needs no script.
    svg = segno.make(device.config_url, error="m").svg_inline(scale=4, svgclass="qr-code", title="QR code")
    return mark_safe(svg)  # noqa: S308 - segno's own markup; the URL inside it is encoded, not interpolated


def _grouped_secret(device) -> str:
    secret = base64.b32encode(device.bin_key).decode("ascii").rstrip("=")
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


@login_required
@sensitive_post_parameters("code")
@csrf_protect
@never_cache
def mfa_enroll(request):
    """Set up an authenticator app (or replace the current one: that is an MFA change, so it needs a
    recent re-authentication). The recovery codes are shown once, in this POST's answer."""
    user = request.user
    replacing = selectors.has_mfa(user)
    if replacing and not user.is_verified():
        # This page is open to sessions that still owe the MFA step (to enrol); replacing an app is not.
        return redirect("login_verify")
    if replacing and request.method == "POST":
        require_recent_auth(request)
    device = services.mfa_enrollment_start(user=user)
    form = CodeForm(request.POST if request.method == "POST" else None)
    next_url = next_of(request)
    if request.method == "POST" and form.is_valid():
        try:
            codes = services.mfa_enrollment_confirm(
                user=user, device=device, code=form.cleaned_data["code"], ip=client_address(request)
            )
        except ValidationError as exc:
            for error in exc.messages:
                form.add_error("code", error)
        else:
            otp_login(request, device)
            request.session[sessions.HAS_MFA] = True
            return render(request, "identity/recovery_codes.html", {"codes": codes, "next": next_url, "enrolled": True})
    context = {
        "form": form,
        "qr": _qr_svg(device),
        "secret": _grouped_secret(device),
        "replacing": replacing,
        "required": mfa_required(user, request.memberships),
        "next": next_url,
    }
    return render(request, "identity/mfa_enroll.html", context, status=400 if form.errors else 200)


@login_required
@require_POST
@never_cache
def mfa_recovery_codes(request):
    require_recent_auth(request)
    try:
        codes = services.recovery_codes_regenerate(user=request.user, ip=client_address(request))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("account_security")
    return render(request, "identity/recovery_codes.html", {"codes": codes, "next": reverse("account_security")})


@login_required
@require_POST
def mfa_remove(request):
    require_recent_auth(request)
    try:
        services.mfa_remove(user=request.user, ip=client_address(request))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        request.session[sessions.HAS_MFA] = False
        messages.success(request, "Multi-factor authentication was removed from your account.")
    return redirect("account_security")


# --- The tenant's security settings ------------------------------------------------------------------------


@requires(Capability.MANAGE_SECURITY_SETTINGS)
@never_cache
def security_settings(request):
    tenant = request.tenant
    form = MfaPolicyForm(
        request.POST if request.method == "POST" else None, initial={"roles": tenant.mfa_required_roles}
    )
    if request.method == "POST":
        require_recent_auth(request)
        if form.is_valid():
            try:
                tenant_mfa_policy_set(tenant=tenant, roles=form.cleaned_data["roles"], actor=request.user)
            except ValidationError as exc:
                form.add_error("roles", exc.messages)
            else:
                messages.success(request, "Security settings saved. They apply from each member's next page.")
                return redirect("security_settings")
    coverage = selectors.mfa_coverage_by_role()
    rows = [
        {"role": value, "label": label, **coverage.get(value, {"members": 0, "with_mfa": 0})}
        for value, label in Role.choices
    ]
    context = {"form": form, "rows": rows, "required": set(tenant.mfa_required_roles or [])}
    return render(request, "identity/security_settings.html", context, status=400 if form.errors else 200)
