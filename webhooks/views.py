"""The tenant admins' webhook pages: endpoints (list, create, edit, disable/enable, rotate the secret,
send a test ping) and the delivery log with each attempt and a redeliver button.

Members without Capability.MANAGE_WEBHOOKS get 403 (the settings menu does not show them the link); another
tenant's ids read as missing (404) for everyone, because objects are looked up before any refusal."""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_POST

from cs_platform.identity.reauth import require_recent_auth
from cs_platform.outbox import DeliveryStatus
from cs_platform.single_use import REFUSED_MESSAGES, FormKey, form_key_issue, form_key_spend
from cs_platform.tenancy.policy import Capability, requires
from webhooks import selectors
from webhooks.forms import WebhookDisableForm, WebhookEndpointForm, event_choices
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.services import (
    webhook_delivery_redeliver,
    webhook_endpoint_create,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_update,
    webhook_ping,
)

# A new or rotated signing secret is shown in the answer to the POST that made it and stored nowhere
# else (it used to wait in the session, i.e. in django_session); single-use form keys, bound to these
# purposes, make a reload of that answer create or rotate nothing.
_CREATE_FORM = "webhook.create"
_ROTATE_FORM = "webhook.rotate:{}"  # per endpoint
DELIVERIES_PER_PAGE = 25


def _endpoint(request, webhook_id: int) -> WebhookEndpoint:
    endpoint = selectors.endpoint_for_admin(webhook_id)
    if endpoint is None:
        raise Http404("No such webhook.")
    return endpoint


def _delivery(request, delivery_id: int) -> WebhookDelivery:
    delivery = selectors.delivery_for_admin(delivery_id)
    if delivery is None:
        raise Http404("No such delivery.")
    return delivery


def _form_errors(form, exc: ValidationError) -> None:
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


def _error_text(exc: ValidationError) -> str:
    return " ".join(" ".join(m) for m in exc.message_dict.values())


def _help() -> dict:
    return {"timeout": settings.WEBHOOK_TIMEOUT_SECONDS, "max_attempts": settings.WEBHOOK_MAX_ATTEMPTS}


@requires(Capability.MANAGE_WEBHOOKS)
def webhook_list(request):
    if request.method == "POST":
        require_recent_auth(request)  # a new endpoint comes with a new signing secret
    form = WebhookEndpointForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        spent = form_key_spend(request, _CREATE_FORM)
        if spent is FormKey.SPENT:
            messages.warning(
                request,
                "This form had already been sent, so no second webhook was created. Its signing secret was "
                "shown once and cannot be shown again: rotate it from the webhook's page if it was not copied.",
            )
            return redirect("webhooks")
        if spent in REFUSED_MESSAGES:
            form.add_error(None, REFUSED_MESSAGES[spent])
        else:
            try:
                endpoint, secret = webhook_endpoint_create(
                    tenant=request.tenant,
                    url=form.cleaned_data["url"],
                    description=form.cleaned_data["description"],
                    events=form.cleaned_data["events"],
                    actor=request.user,
                )
            except ValidationError as exc:
                _form_errors(form, exc)
            else:
                messages.success(request, "Webhook created. Copy its signing secret now: it will not be shown again.")
                created = {"id": endpoint.pk, "secret": secret, "url": endpoint.url}
                return _list_page(request, WebhookEndpointForm(), created=created)
    return _list_page(request, form, status=400 if form.errors else 200)


@requires(Capability.MANAGE_WEBHOOKS, exists=_endpoint)
def webhook_detail(request, webhook_id: int):
    endpoint = _endpoint(request, webhook_id)
    form = _edit_form(endpoint, request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            webhook_endpoint_update(
                tenant=request.tenant,
                endpoint=endpoint,
                actor=request.user,
                url=form.cleaned_data["url"],
                description=form.cleaned_data["description"],
                events=form.cleaned_data["events"],
            )
        except ValidationError as exc:
            _form_errors(form, exc)
            endpoint.refresh_from_db()  # the page shows the stored endpoint, not the refused values
        else:
            messages.success(request, "Webhook saved.")
            return redirect("webhook_detail", webhook_id=endpoint.pk)
    return _detail_page(request, endpoint, form, status=400 if form.errors else 200)


@requires(Capability.MANAGE_WEBHOOKS, exists=_endpoint)
@require_POST
def webhook_disable(request, webhook_id: int):
    endpoint = _endpoint(request, webhook_id)
    form = WebhookDisableForm(request.POST)
    form.is_valid()
    try:
        webhook_endpoint_update(
            tenant=request.tenant,
            endpoint=endpoint,
            actor=request.user,
            is_active=False,
            disabled_reason=form.cleaned_data.get("reason", ""),
        )
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
    else:
        messages.success(request, "Webhook disabled: nothing more is sent to it until it is enabled.")
    return redirect("webhook_detail", webhook_id=endpoint.pk)


@requires(Capability.MANAGE_WEBHOOKS, exists=_endpoint)
@require_POST
def webhook_enable(request, webhook_id: int):
    endpoint = _endpoint(request, webhook_id)
    try:
        webhook_endpoint_update(tenant=request.tenant, endpoint=endpoint, actor=request.user, is_active=True)
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
    else:
        messages.success(request, "Webhook enabled.")
    return redirect("webhook_detail", webhook_id=endpoint.pk)


@requires(Capability.MANAGE_WEBHOOKS, exists=_endpoint)
@require_POST
def webhook_rotate_secret(request, webhook_id: int):
    endpoint = _endpoint(request, webhook_id)
    require_recent_auth(request)  # the new secret is a new credential: "sudo mode" first
    spent = form_key_spend(request, _ROTATE_FORM.format(endpoint.pk))
    if spent is FormKey.SPENT:
        messages.warning(
            request,
            "This rotation had already been made, so the secret was not rotated again. The new secret was "
            "shown once and cannot be shown again: rotate again if it was not copied.",
        )
        return redirect("webhook_detail", webhook_id=endpoint.pk)
    if spent is FormKey.UNAVAILABLE:
        messages.error(request, "The signing secret was not rotated: a service is down. Try again in a minute.")
        return redirect("webhook_detail", webhook_id=endpoint.pk)
    if spent is FormKey.INVALID:
        messages.error(request, "The signing secret was not rotated: the form had expired. Rotate it again here.")
        return redirect("webhook_detail", webhook_id=endpoint.pk)
    endpoint, secret = webhook_endpoint_rotate_secret(tenant=request.tenant, endpoint=endpoint, actor=request.user)
    messages.success(request, "New signing secret created. Update your receiver now: the old one no longer signs.")
    return _detail_page(request, endpoint, _edit_form(endpoint), rotated={"id": endpoint.pk, "secret": secret})


@requires(Capability.MANAGE_WEBHOOKS, exists=_endpoint)
@require_POST
def webhook_ping_view(request, webhook_id: int):
    endpoint = _endpoint(request, webhook_id)
    try:
        delivery = webhook_ping(tenant=request.tenant, endpoint=endpoint, actor=request.user)
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
        return redirect("webhook_detail", webhook_id=endpoint.pk)
    messages.success(request, "Test event queued. Its attempts appear below as they happen.")
    return redirect("webhook_delivery", delivery_id=delivery.pk)


@requires(Capability.MANAGE_WEBHOOKS, exists=_delivery)
def delivery_detail(request, delivery_id: int):
    delivery = _delivery(request, delivery_id)
    context = {
        "delivery": delivery,
        "endpoint": delivery.endpoint,
        "attempts": selectors.attempts_of(delivery),
        "redeliveries": selectors.redeliveries_of(delivery),
        "payload_json": json.dumps(delivery.payload, indent=2, sort_keys=True, ensure_ascii=False),
        "can_redeliver": delivery.status in (DeliveryStatus.SENT, DeliveryStatus.FAILED)
        and delivery.endpoint.is_active,
    }
    return render(request, "webhooks/delivery.html", context)


@requires(Capability.MANAGE_WEBHOOKS, exists=_delivery)
@require_POST
def delivery_redeliver(request, delivery_id: int):
    delivery = _delivery(request, delivery_id)
    try:
        again = webhook_delivery_redeliver(tenant=request.tenant, delivery=delivery, actor=request.user)
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
        return redirect("webhook_delivery", delivery_id=delivery.pk)
    messages.success(request, "Redelivery queued.")
    return redirect("webhook_delivery", delivery_id=again.pk)


def _edit_form(endpoint: WebhookEndpoint, data=None) -> WebhookEndpointForm:
    return WebhookEndpointForm(data, initial={"url": endpoint.url, "description": endpoint.description})


def _no_store(response, secret_shown: bool):
    if secret_shown:
        add_never_cache_headers(response)  # no browser or proxy cache keeps the one copy of the secret
    return response


def _list_page(request, form: WebhookEndpointForm, *, created: dict | None = None, status: int = 200):
    context = {
        "endpoints": selectors.endpoints_for_admin(),
        "form": form,
        "events": event_choices(form),
        "created": created,
        "form_key": form_key_issue(request, _CREATE_FORM),
        **_help(),
    }
    return _no_store(render(request, "webhooks/list.html", context, status=status), created is not None)


def _detail_page(
    request, endpoint: WebhookEndpoint, form: WebhookEndpointForm, *, rotated: dict | None = None, status: int = 200
):
    """The endpoint's page, also the answer to a rotation (at the rotate URL: the template's links and
    forms name their URLs rather than relying on the current one)."""
    page = Paginator(selectors.deliveries_of(endpoint), DELIVERIES_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "endpoint": endpoint,
        "form": form,
        "events": event_choices(form, endpoint.events),
        "rotated": rotated,
        "rotate_key": form_key_issue(request, _ROTATE_FORM.format(endpoint.pk)),
        "page": page,
        **_help(),
    }
    return _no_store(render(request, "webhooks/detail.html", context, status=status), rotated is not None)
