"""Password reset by email and password change."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import INTERNAL_RESET_SESSION_TOKEN, PasswordResetConfirmView
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters

from cs_platform.identity import services
from cs_platform.identity.client_address import client_address
from cs_platform.identity.forms import (
    BoundedSetPasswordForm,
    PasswordChangeForm,
    PasswordResetRequestForm,
    password_help,
)
from cs_platform.identity.ratelimit import BudgetUnavailable, within_budget

logger = logging.getLogger(__name__)

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
        try:
            by_address = within_budget("password-reset-ip", ip or "unknown", settings.PASSWORD_RESET_RATE)
            by_email = within_budget("password-reset-email", email.lower(), settings.PASSWORD_RESET_RATE)
        except BudgetUnavailable:
            logger.warning("password reset refused: its request budget cannot be checked (cache unavailable)")
            return render(
                request, "identity/password_reset_request.html", {"form": form, "unavailable": True}, status=503
            )
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
