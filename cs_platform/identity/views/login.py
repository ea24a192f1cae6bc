"""Login (the password step, then the code for a person with MFA), logout, the admin's login, and
re-authentication. Thin: the checks and writes are in services and django-axes."""

from __future__ import annotations

from urllib.parse import urlencode

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.signals import user_login_failed
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django_otp import login as otp_login

from cs_platform.identity import selectors, services, sessions
from cs_platform.identity.client_address import client_address
from cs_platform.identity.forms import CodeForm, LoginForm, ReauthForm
from cs_platform.identity.lockout import USERNAME_ATTR
from cs_platform.identity.navigation import next_of, safe_next

WRONG_CODE = "That code is not right. Enter the 6 digits your app shows now, or an unused recovery code."


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
    next_url = next_of(request)
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
                    "user": user.pk,
                    "backend": user.backend,
                    "at": sessions.now(),
                    "next": next_url,
                }
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
        user, pending, next_url = request.user, None, next_of(request)
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
    next_url = next_of(request)
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
