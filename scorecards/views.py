"""Pages of the weekly scorecard email: a member's own preferences, the browser preview of this week's
email, and the unsubscribe page the email links to (no login needed: the signed token is the credential)."""

from __future__ import annotations

import base64
import re

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role, Tenant
from cs_platform.tenancy.policy import requires
from scorecards import recipients, schedule, services
from scorecards.content import weekly_scorecard
from scorecards.email import RenderedScorecard, render_scorecard
from scorecards.forms import ScorecardPreferencesForm
from scorecards.tokens import InvalidUnsubscribeToken, read_unsubscribe_token, unsubscribe_url
from scorecards.weeks import IsoWeek


# --- Preferences -------------------------------------------------------------------------------------
@requires()
def weekly_email_preferences(request):
    """The logged-in member's own choice. Every read and write names request.user: there is no URL or
    field through which one member could reach another member's subscription."""
    membership = request.membership
    segments = recipients.tenant_segments()
    enabled, segment_ids, explicit = recipients.scorecard_subscription_state(
        tenant=request.tenant, user=request.user, role=membership.role
    )
    if request.method == "POST":
        form = ScorecardPreferencesForm(request.POST, segments=segments)
        if form.is_valid():
            try:
                services.scorecard_subscription_update(
                    tenant=request.tenant,
                    user=request.user,
                    enabled=form.cleaned_data["enabled"],
                    segment_ids=form.cleaned_data["segment_ids"],
                    actor=request.user,
                )
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                messages.success(
                    request,
                    "Saved: you will receive the weekly scorecard email."
                    if form.cleaned_data["enabled"]
                    else "Saved: you will not receive the weekly scorecard email.",
                )
                return redirect("weekly_email_preferences")
    else:
        form = ScorecardPreferencesForm(
            initial={"enabled": enabled, "segment_ids": [str(pk) for pk in segment_ids]}, segments=segments
        )
    chosen = set(form.data.getlist("segment_ids")) if form.is_bound else {str(pk) for pk in segment_ids}
    context_data = {
        "form": form,
        "enabled": form.data.get("enabled") in ("on", "true", "1") if form.is_bound else enabled,
        "explicit": explicit,
        "is_default_recipient": recipients.subscription_default(membership.role),
        "executive_label": Role.EXECUTIVE.label,
        "segments": [{"id": s.pk, "name": s.name, "checked": str(s.pk) in chosen} for s in segments],
        "next_send": schedule.next_scorecard_send(request.tenant),
        "tenant": request.tenant,
    }
    return render(request, "scorecards/preferences.html", context_data, status=400 if form.errors else 200)


# --- Preview -----------------------------------------------------------------------------------------
def inline_images(html: str, images: dict[str, bytes]) -> str:
    """The email's HTML with every cid: reference replaced by a data: URI of the same PNG, so the
    browser shows what a mail client shows without a second request per image."""
    for content_id, png in images.items():
        bare = content_id.strip("<>")
        data_uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        html = html.replace(f"cid:{bare}", data_uri)
    return html


def _links_open_outside(html: str) -> str:
    """A mail client opens the email's links in a browser; in the sandboxed preview they would otherwise
    try to load the dashboard inside the frame (which the site refuses to be framed in)."""
    base = '<base target="_blank">'
    head = re.search(r"<head[^>]*>", html, re.IGNORECASE)
    return html[: head.end()] + base + html[head.end() :] if head else base + html


def _preview_week(request) -> IsoWeek:
    """?week=2026-W47 previews another week; by default the tenant's current ISO week."""
    raw = request.GET.get("week", "").strip()
    if raw:
        return IsoWeek.parse(raw)
    return IsoWeek.of(timezone.localdate())  # the middleware put us in the tenant's time zone


def _member_email(request, membership, week: IsoWeek) -> tuple[RenderedScorecard, bool, bool]:
    """The week's email for the logged-in member, exactly as the weekly job would build it for them:
    their role's book (weekly_scorecard builds on visible_accounts) and their segment choice; with whether
    they receive it and whether that was their own choice."""
    enabled, segment_ids, explicit = recipients.scorecard_subscription_state(
        tenant=request.tenant, user=request.user, role=membership.role
    )
    scorecard = weekly_scorecard(user=request.user, membership=membership, week=week, segment_ids=segment_ids or None)
    rendered = render_scorecard(scorecard, unsubscribe_url=unsubscribe_url(request.tenant, request.user))
    return rendered, enabled, explicit


@requires()
def weekly_email_preview(request):
    """The preview page: subject, the plain-text version, and the HTML version in a sandboxed frame that
    loads scorecard_preview_email (the same member, the same ?week=)."""
    membership = request.membership
    try:
        week = _preview_week(request)
    except ValueError as exc:
        return render(request, "scorecards/preview.html", {"error": str(exc)}, status=400)
    rendered, enabled, explicit = _member_email(request, membership, week)
    context_data = {
        "week": week,
        "previous_week": week.previous(),
        "rendered": rendered,
        "enabled": enabled,
        "explicit": explicit,
        "next_send": schedule.next_scorecard_send(request.tenant),
    }
    return render(request, "scorecards/preview.html", context_data)


# The email's HTML as a document of its own. Its policy is the email's, not the site's: inline styles and
# data: images (the charts), nothing else loads, no script runs (sandbox without allow-scripts, and no
# script-src), no form posts, and only this site may frame it. A srcdoc frame would inherit the page's
# strict policy instead, which forbids the inline styles the email needs.
PREVIEW_EMAIL_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'self'; sandbox allow-popups allow-popups-to-escape-sandbox"
)


def _email_document(response: HttpResponse) -> HttpResponse:
    response["Content-Security-Policy"] = PREVIEW_EMAIL_CSP
    response["Cache-Control"] = "no-store"  # the member's figures
    response["Referrer-Policy"] = "no-referrer"  # the email's links open outside: they learn nothing of this URL
    return response


@xframe_options_sameorigin
@requires()
def weekly_email_preview_email(request):
    """The HTML version of the member's own email for ?week= (default this week), with its cid: images
    inlined, served as its own document for the preview page's frame. Only ever the logged-in member's
    email: no parameter names another member."""
    membership = request.membership
    try:
        week = _preview_week(request)
    except ValueError as exc:
        # Plain text: the message quotes what was typed in ?week=.
        return _email_document(HttpResponse(str(exc), status=400, content_type="text/plain; charset=utf-8"))
    rendered, _, _ = _member_email(request, membership, week)
    html = _links_open_outside(inline_images(rendered.html, rendered.images))
    return _email_document(HttpResponse(html, content_type="text/html; charset=utf-8"))


# --- Unsubscribe (no login) -------------------------------------------------------------------------
def mask_email(email: str) -> str:
    """j•••@bank.example: enough for the reader to recognise their address, not enough to harvest it
    from a forwarded link."""
    local, _, domain = (email or "").partition("@")
    if not local or not domain:
        return "your address"
    return f"{local[0]}•••@{domain}"


def _unsubscribe_page(request, context_data: dict, *, status: int = 200) -> HttpResponse:
    response = render(request, "scorecards/unsubscribe.html", context_data, status=status)
    # The URL holds the credential: keep it out of Referer headers (the page links to the site),
    # caches, and search engines.
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "no-store"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


_ONE_CLICK = re.compile(r"^\s*one-click\s*$", re.IGNORECASE)


# CSRF protection exists to stop another site from using the visitor's session cookie. This view
# never looks at the session or request.user: the only authority is the signed token in the URL,
# which a forging site cannot produce (it needs SECRET_KEY) and which anyone holding it could post
# directly anyway. Mail clients send RFC 8058 one-click POSTs without any CSRF token, so this view,
# and only this view, is exempt.
@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def weekly_email_unsubscribe(request, token: str):
    """GET shows whose email stops and a confirm button (GET never changes anything: mail scanners
    follow links); POST unsubscribes, from the button or from a mail client's one-click request
    (body List-Unsubscribe=One-Click). A second POST is fine and changes nothing."""
    try:
        tenant_id, user_id = read_unsubscribe_token(token)
    except InvalidUnsubscribeToken as exc:
        return _unsubscribe_page(request, {"error": str(exc)}, status=400)
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    user = get_user_model().objects.filter(pk=user_id).first()
    if tenant is None or user is None:
        # Signed by us but the member or tenant is gone: nothing left to unsubscribe.
        return _unsubscribe_page(
            request,
            {"error": "This unsubscribe link no longer matches a member: there is nothing to stop."},
            status=400,
        )
    page = {"tenant_name": tenant.name, "masked_email": mask_email(user.email), "token": token}
    if request.method == "POST":
        one_click = bool(_ONE_CLICK.match(request.POST.get("List-Unsubscribe", "")))
        services.scorecard_unsubscribe(tenant=tenant, user=user, actor=None, via="one-click" if one_click else "link")
        return _unsubscribe_page(request, page | {"done": True})
    with context.tenant_context(tenant):
        role = recipients.member_role(user)
    receives, _, _ = recipients.scorecard_subscription_state(tenant=tenant, user=user, role=role)
    return _unsubscribe_page(request, page | {"already": not receives})
