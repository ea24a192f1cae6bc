"""The tenant admins' pages for creating and revoking API tokens (the `me` endpoint, which counts the
caller's book, is accounts.api.MeView)."""

from __future__ import annotations

import datetime

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import add_never_cache_headers

from api import selectors
from api.forms import ApiTokenForm, scope_groups
from api.services import api_token_create, api_token_revoke
from cs_platform.identity.reauth import require_recent_auth
from cs_platform.single_use import REFUSED_MESSAGES, FormKey, form_key_issue, form_key_spend
from cs_platform.tenancy.policy import Capability, requires

_CREATE_FORM = "api_token.create"  # the purpose its single-use form keys are bound to


@requires(Capability.MANAGE_API_TOKENS)
def api_tokens(request):
    """The token list and the creation form. A new token's plaintext is shown in the answer to the POST
    that created it, not after a redirect, so it is never stored (the session table kept it before);
    the form's single-use key makes a reload of that answer create nothing."""
    form = ApiTokenForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        require_recent_auth(request)  # a new token is a new credential: "sudo mode" first
    if request.method == "POST" and form.is_valid():
        spent = form_key_spend(request, _CREATE_FORM)
        if spent is FormKey.SPENT:
            messages.warning(
                request,
                "This form had already been sent, so no second token was created. The token it created is "
                "listed below; its value was shown once and cannot be shown again (revoke it and create "
                "another if it was not copied).",
            )
            return redirect("api_tokens")
        if spent in REFUSED_MESSAGES:
            form.add_error(None, REFUSED_MESSAGES[spent])
        else:
            expires_on = form.cleaned_data["expires_on"]
            expires_at = None
            if expires_on is not None:
                # The token stays valid through the whole expiry day, in the tenant's time zone.
                expires_at = timezone.make_aware(datetime.datetime.combine(expires_on, datetime.time.max))
            try:
                token, plaintext = api_token_create(
                    tenant=request.tenant,
                    name=form.cleaned_data["name"],
                    scopes=form.cleaned_data["scopes"],
                    expires_at=expires_at,
                    actor=request.user,
                )
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error("expires_on" if field == "expires_at" else field, errors)
            else:
                messages.success(request, f"Token “{token.name}” created. Copy it now: it will not be shown again.")
                return _tokens_page(request, ApiTokenForm(), created={"id": token.pk, "plaintext": plaintext})
    return _tokens_page(request, form, status=400 if form.errors else 200)


@requires(Capability.MANAGE_API_TOKENS, exists=lambda request, token_id: selectors.api_token_for_admin(token_id))
def api_token_revoke_view(request, token_id: int):
    token = selectors.api_token_for_admin(token_id)
    if token is None:
        raise Http404("No such token.")
    error = None
    if request.method == "POST":
        try:
            api_token_revoke(tenant=request.tenant, token=token, actor=request.user)
        except ValidationError as exc:
            error = " ".join(" ".join(m) for m in exc.message_dict.values())
        else:
            messages.success(request, f"Token “{token.name}” revoked. Requests using it are now refused.")
            return redirect("api_tokens")
    return render(request, "api/token_revoke.html", {"token": token, "error": error}, status=400 if error else 200)


def _tokens_page(request, form: ApiTokenForm, *, created: dict | None = None, status: int = 200):
    context = {
        "tokens": selectors.api_tokens_for_admin(),
        "form": form,
        "groups": scope_groups(form),
        "created": created,
        "form_key": form_key_issue(request, _CREATE_FORM),
    }
    response = render(request, "api/tokens.html", context, status=status)
    if created is not None:
        add_never_cache_headers(response)  # no browser or proxy cache keeps the one copy of the plaintext
    return response
