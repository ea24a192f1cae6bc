"""The account page (Account 360) and the everyday account forms: log a touchpoint, record a survey
response, reassign the account. Reads go through accounts.selectors, writes through the services."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from accounts import selectors
from accounts.forms import ReassignForm, TouchpointForm, person_label
from accounts.models import Account
from accounts.services import account_reassign, touchpoint_log
from cs_platform.tenancy.policy import Capability, requires


def account_in_book(request, account_id: int) -> Account | None:
    """The account if it is in the member's book; another tenant's, or one outside the book, is None."""
    return selectors.account_detail(request.user, account_id, request.membership) if request.membership else None


def visible_account_or_404(request, account_id: int) -> Account:
    # Another tenant's account, or one outside the user's book: the same 404, no hint.
    account = account_in_book(request, account_id)
    if account is None:
        raise Http404("No such account.")
    return account


def posted_data(request):
    return request.POST if request.method == "POST" else None


def submit_form(request, form, *, save, success_url: str, template: str, context: dict):
    """The account forms' one POST/redirect/GET cycle. A valid POST is handed to `save(form)`, which
    calls the service and returns the success message; a ValidationError from the service lands on
    the form's fields. Otherwise the page renders with the form (400 when a POST was refused, so
    nothing looks stored)."""
    if request.method == "POST" and form.is_valid():
        try:
            message = save(form)
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, message)
            return redirect(success_url)
    status = 400 if request.method == "POST" else 200
    return render(request, template, {**context, "form": form}, status=status)


def account_url(account: Account, anchor: str = "") -> str:
    return reverse("account_detail", args=[account.pk]) + (f"#{anchor}" if anchor else "")


@requires(Capability.LOG_TOUCHPOINTS, exists=account_in_book)
def touchpoint_log_view(request, account_id: int):
    account = visible_account_or_404(request, account_id)
    contacts = selectors.account_contacts(account)
    now = timezone.localtime()
    form = TouchpointForm(posted_data(request), contacts=contacts, now=now)

    def save(form) -> str:
        touchpoint = touchpoint_log(tenant=request.tenant, account=account, actor=request.user, **form.service_fields())
        return f"Touchpoint logged: {touchpoint.subject}."

    return submit_form(
        request,
        form,
        save=save,
        success_url=account_url(account, "timeline"),
        template="accounts/touchpoint_form.html",
        context={"account": account},
    )


@requires(Capability.REASSIGN_ACCOUNTS, exists=account_in_book)
def account_reassign_view(request, account_id: int):
    account = visible_account_or_404(request, account_id)
    form = ReassignForm(posted_data(request), candidates=selectors.reassign_candidates(membership=request.membership))

    def save(form) -> str:
        new_owner = form.users[form.cleaned_data["owner_csm"]]
        account_reassign(tenant=request.tenant, account=account, owner_csm=new_owner, actor=request.user)
        return f"{account.name} is now assigned to {person_label(new_owner)}."

    return submit_form(
        request,
        form,
        save=save,
        success_url=account_url(account),
        template="accounts/reassign_form.html",
        context={"account": account},
    )
