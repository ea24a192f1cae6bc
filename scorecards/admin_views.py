"""The tenant admins' page of the weekly scorecard's deliveries: for one ISO week, how many emails are
pending, sending, retrying, sent, failed or skipped, each failed or retrying row with its error, a
"retry now" button for failed rows and one "retry all failed" for the week (after an SMTP outage that
outlasted the backoff). Capability.MANAGE_WEEKLY_EMAIL only (other members get 403, as for the other settings
pages); rows are read in the current tenant, so another tenant's delivery id reads as missing."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse

from cs_platform.outbox import DeliveryStatus
from cs_platform.tenancy import context
from cs_platform.tenancy.clock import tenant_today
from cs_platform.tenancy.policy import Capability, requires
from scorecards import selectors as scorecard_selectors
from scorecards.services import scorecard_deliveries_retry_failed, scorecard_delivery_retry
from scorecards.weeks import IsoWeek

# Rows listed one by one: the ones an admin may have to act on or explain.
PROBLEM_STATUSES = (DeliveryStatus.FAILED, DeliveryStatus.RETRYING, DeliveryStatus.SENDING, DeliveryStatus.SKIPPED)
MAX_ROWS = 500
RECENT_WEEKS = 8


def _week_of(request) -> IsoWeek:

    raw = request.GET.get("week") or request.POST.get("week")
    if raw:
        try:
            return IsoWeek.parse(raw)
        except ValueError:
            pass  # a mistyped week shows the current one rather than an error page
    return IsoWeek.of(tenant_today(request.tenant))


@requires(Capability.MANAGE_WEEKLY_EMAIL)
def weekly_email_deliveries(request):
    week = _week_of(request)
    if request.method == "POST" and request.POST.get("action") == "retry_failed":
        queued = scorecard_deliveries_retry_failed(tenant=request.tenant, week=week, actor=request.user)
        if queued:
            messages.success(
                request, f"{queued} failed email{'s' if queued != 1 else ''} of {week} queued to be sent again."
            )
        else:
            messages.error(
                request, f"No failed email of {week} to retry (stopped mid-send ones are retried one by one)."
            )
        return redirect(f"{reverse('weekly_email_deliveries')}?week={week}")
    if request.method == "POST":
        try:
            delivery_id = int(request.POST.get("delivery", ""))
        except ValueError:
            messages.error(request, "Choose a delivery to retry.")
        else:
            try:
                delivery = scorecard_delivery_retry(tenant=request.tenant, delivery_id=delivery_id, actor=request.user)
            except ValidationError as exc:
                messages.error(request, " ".join(" ".join(m) for m in exc.message_dict.values()))
            else:
                messages.success(request, f"The email to {delivery.email} is queued to be sent again.")
        return redirect(f"{reverse('weekly_email_deliveries')}?week={week}")
    with context.tenant_context(request.tenant):
        counts, problems, weeks = scorecard_selectors.deliveries_overview(
            week, problem_statuses=PROBLEM_STATUSES, max_rows=MAX_ROWS, recent_weeks=RECENT_WEEKS
        )
    context_data = {
        "week": str(week),
        "previous_week": str(week.previous()),
        "next_week": str(IsoWeek.of(week.sunday + datetime.timedelta(days=1))),
        "counts": [(status, label, counts.get(status, 0)) for status, label in DeliveryStatus.choices],
        "total": sum(counts.values()),
        "problems": problems,
        "weeks": weeks,
        "max_attempts": settings.SCORECARD_MAX_ATTEMPTS,
        "max_rows": MAX_ROWS,
    }
    return render(request, "scorecards/deliveries.html", context_data)
