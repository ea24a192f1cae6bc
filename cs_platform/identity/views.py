"""The identity pages: login (password, then the code when the person has MFA), logout, the code step,
re-authentication, password reset and change, MFA enrolment and recovery codes, and the tenant's
security settings. Thin: the checks and writes are in services and django-axes."""

from __future__ import annotations

import base64
from urllib.parse import urlencode

import segno
from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, get_user_model, update_session_auth_hash
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.signals import user_login_failed
from django.contrib.auth.views import INTERNAL_RESET_SESSION_TOKEN, PasswordResetConfirmView
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.decorators import method_decorator
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django_otp import login as otp_login

from cs_platform.identity import selectors, services, sessions
from cs_platform.identity.client_address import client_address
from cs_platform.identity.forms import (
    BoundedSetPasswordForm,
    CodeForm,
    LoginForm,
    MfaPolicyForm,
    PasswordChangeForm,
    PasswordResetRequestForm,
    ReauthForm,
    password_help,
)
from cs_platform.identity.lockout import USERNAME_ATTR
from cs_platform.identity.navigation import safe_next
from cs_platform.identity.ratelimit import within_budget
from cs_platform.identity.reauth import require_recent_auth
from cs_platform.tenancy.access import SECURITY_SETTINGS_ROLES, mfa_required, require_roles
from cs_platform.tenancy.models import Role
from cs_platform.tenancy.services import tenant_mfa_policy_set

WRONG_CODE = "That code is not right. Enter the 6 digits your app shows now, or an unused recovery code."


def _next_of(request) -> str:
    return safe_next(request, request.POST.get("next") or request.GET.get("next"))


def _code_failed(request, user, check: services.CodeCheck, form, reason: str = "invalid_code") -> None:
    """A wrong code counts as a failed login (django-axes: the same lockouts as a wrong password)."""
    user_login_failed.send(sender=__name__, credentials={"username": user.get_username()}, request=request)
    services.auth_login_failure_record(username=user.get_username(), ip=client_address(request), reason=reason)
    if check.retry_at is not None:
        form.add_error("code", "Too many wrong codes in a row: wait a few seconds, then try again.")
    else:
        form.add_error("code", WRONG_CODE)


# --- Login, the code step, logout ---------------------------------------------------------------------------


@sensitive_post_parameters("password")
@csrf_protect
@never_cache
def login_view(request):
    next_url = _next_of(request)
    form = LoginForm(request, data=request.POST if request.method == "POST" else None)
    if request.method == "POST":
        typed = (request.POST.get("username") or "")[:255]
        # Asked before the attempt, so the audit trail can tell a refused attempt from the one that locked.
        # (A name with a NUL byte never reaches the database: the form refuses it before authenticate().)
        askable = bool(typed) and "\x00" not in typed
        was_locked = askable and not AxesProxyHandler.is_allowed(request, {"username": typed})
        if form.is_valid():
            user = form.get_user()
            if selectors.has_mfa(user):
                # The password was right; the session is not logged in until the code is.
                request.session.cycle_key()
                request.session[sessions.PENDING] = {
                    "user": user.pk, "backend": user.backend, "at": sessions.now(), "next": next_url,
                }  # fmt: skip
                return redirect("login_verify")
            auth_login(request, user)
            services.auth_login_record(user=user, ip=client_address(request), method="password")
            return HttpResponseRedirect(next_url)
        if form.cleaned_data.get("username") and form.cleaned_data.get("password") is not None:
            # authenticate() ran (both fields were valid) and refused: a failed login.
            services.auth_login_failure_record(
                username=typed, ip=client_address(request), reason="locked_out" if was_locked else "invalid_credentials"
            )
    context = {"form": form, "next": next_url}
    return render(request, "registration/login.html", context)


def _pending_login(request):
    """The user whose password was right a moment ago and whose code is due; None if none or too old."""
    pending = request.session.get(sessions.PENDING)
    if not isinstance(pending, dict):
        return None, None
    if sessions.now() - float(pending.get("at", 0)) > settings.MFA_LOGIN_STEP_SECONDS:
        del request.session[sessions.PENDING]
        messages.info(request, "The code step timed out. Log in again.")
        return None, None
    user = get_user_model()._default_manager.filter(pk=pending.get("user"), is_active=True).first()
    return user, pending


@sensitive_post_parameters("code")
@csrf_protect
@never_cache
def login_verify(request):
    """The second login step, and the MFA step owed by a session that is logged in but not verified."""
    if request.user.is_authenticated:
        user, pending, next_url = request.user, None, _next_of(request)
        if user.is_verified():
            return HttpResponseRedirect(next_url)
        if not selectors.has_mfa(user):
            messages.info(request, "Your account must use multi-factor authentication: set it up now.")
            return HttpResponseRedirect(reverse("mfa_enroll") + "?" + urlencode({"next": next_url}))
    else:
        user, pending = _pending_login(request)
        if user is None:
            return redirect("login")
        next_url = safe_next(request, pending.get("next"))
    form = CodeForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        setattr(request, USERNAME_ATTR, user.get_username())
        check, reason = services.CodeCheck(device=None), "locked_out"  # a locked account's code is not checked
        if AxesProxyHandler.is_allowed(request, {"username": user.get_username()}):
            check = services.mfa_code_check(user=user, code=form.cleaned_data["code"], ip=client_address(request))
            reason = "invalid_code"
        if check.device is not None:
            if pending is not None:
                auth_login(request, user, backend=pending.get("backend"))
            otp_login(request, check.device)
            request.session[sessions.HAS_MFA] = True
            method = ("password+" if pending is not None else "session+") + check.method
            services.auth_login_record(user=user, ip=client_address(request), method=method)
            return HttpResponseRedirect(next_url)
        _code_failed(request, user, check, form, reason)
        if getattr(request, "axes_locked_out", False):
            request.session.pop(sessions.PENDING, None)
    status = 400 if form.errors else 200
    return render(request, "identity/login_verify.html", {"form": form, "next": next_url}, status=status)


@require_POST
def logout_view(request):
    if request.user.is_authenticated:
        user, ip = request.user, client_address(request)
        auth_logout(request)
        services.auth_logout_record(user=user, ip=ip, reason="logout")
    else:
        request.session.flush()  # a login waiting for its code is abandoned too
    return redirect(settings.LOGOUT_REDIRECT_URL)


def admin_login(request):
    """The Django admin logs in through the same two steps as everyone (never its own password-only form)."""
    target = safe_next(request, request.GET.get("next"), default=reverse("admin:index"))
    return HttpResponseRedirect(reverse("login") + "?" + urlencode({"next": target}))


# --- Re-authentication ------------------------------------------------------------------------------------


@login_required
@sensitive_post_parameters("password", "code")
@csrf_protect
@never_cache
def reauth_view(request):
    user = request.user
    needs_code = selectors.has_mfa(user)
    next_url = _next_of(request)
    form = ReauthForm(request.POST if request.method == "POST" else None, needs_code=needs_code)
    if request.method == "POST" and form.is_valid():
        ip = client_address(request)
        setattr(request, USERNAME_ATTR, user.get_username())
        checked = authenticate(request, username=user.get_username(), password=form.cleaned_data["password"])
        method = "password"
        if checked is None or checked.pk != user.pk:
            reason = "locked_out" if getattr(request, "axes_locked_out", False) else "invalid_credentials"
            services.auth_login_failure_record(username=user.get_username(), ip=ip, reason=reason)
            form.add_error("password", "Your password is not right.")
        elif needs_code:
            check = services.mfa_code_check(user=user, code=form.cleaned_data["code"], ip=ip)
            if check.device is None:
                _code_failed(request, user, check, form)
            method = f"password+{check.method}"
        if not form.errors:
            sessions.stamp_reauth(request.session)
            services.auth_reauth_record(user=user, ip=ip, method=method)
            return HttpResponseRedirect(next_url)
    context = {"form": form, "next": next_url, "needs_code": needs_code, "minutes": settings.REAUTH_SECONDS // 60}
    return render(request, "identity/reauth.html", context, status=400 if form.errors else 200)


# --- Passwords ------------------------------------------------------------------------------------------------


@csrf_protect
@never_cache
def password_reset_request_view(request):
    """The same answer whether or not the address has an account. Requests are budgeted per client address
    and per email address (PASSWORD_RESET_RATE), counted before looking anything up."""
    form = PasswordResetRequestForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        email = form.cleaned_data["email"]
        ip = client_address(request)
        by_address = within_budget("password-reset-ip", ip or "unknown", settings.PASSWORD_RESET_RATE)
        by_email = within_budget("password-reset-email", email.lower(), settings.PASSWORD_RESET_RATE)
        if not (by_address and by_email):
            return render(
                request, "identity/password_reset_request.html", {"form": form, "throttled": True}, status=429
            )
        services.password_reset_request(email=email, ip=ip)
        return redirect("password_reset_sent")
    status = 400 if form.errors else 200
    return render(request, "identity/password_reset_request.html", {"form": form}, status=status)


def password_reset_sent(request):
    minutes = settings.PASSWORD_RESET_TIMEOUT // 60
    return render(request, "identity/password_reset_sent.html", {"minutes": minutes})


def password_reset_done(request):
    return render(request, "identity/password_reset_done.html")


class PasswordResetConfirm(PasswordResetConfirmView):
    """Django's view checks the link (expiry, and that the password has not changed since: single use)
    and keeps the token out of the address bar; the new password is set by our service."""

    template_name = "identity/password_reset_confirm.html"
    form_class = BoundedSetPasswordForm
    success_url = reverse_lazy("password_reset_done")

    @method_decorator(csrf_protect)
    def dispatch(self, *args, **kwargs):
        return super().dispatch(*args, **kwargs)

    def form_valid(self, form):
        services.password_reset_complete(
            user=self.user, password=form.cleaned_data["new_password1"], ip=client_address(self.request)
        )
        del self.request.session[INTERNAL_RESET_SESSION_TOKEN]
        return HttpResponseRedirect(self.get_success_url())

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "password_help": password_help()}


@login_required
@sensitive_post_parameters("old_password", "new_password1", "new_password2")
@csrf_protect
@never_cache
def password_change_view(request):
    form = PasswordChangeForm(request.user, request.POST if request.method == "POST" else None, request=request)
    if request.method == "POST" and form.is_valid():
        services.password_change(
            user=request.user, password=form.cleaned_data["new_password1"], ip=client_address(request)
        )
        update_session_auth_hash(request, request.user)  # this session stays; the others end
        messages.success(request, "Your password was changed. Your other sessions have been logged out.")
        return redirect("account_security")
    context = {"form": form, "password_help": password_help()}
    return render(request, "identity/password_change.html", context, status=400 if form.errors else 200)


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
    next_url = _next_of(request)
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


@login_required
@never_cache
def security_settings(request):
    require_roles(request, SECURITY_SETTINGS_ROLES)
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
