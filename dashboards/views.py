"""Home by role, the account list, the portfolio and per-segment scorecards. Thin: selectors decide
what each user sees (visible_accounts), these views only pick the page and parse the query string."""

from __future__ import annotations

import datetime

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.forms import TouchpointForm
from accounts.selectors import visible_accounts
from compliance.models import ObligationStatus
from cs_platform import bounds
from cs_platform.listing import list_params, paginate
from cs_platform.tenancy.clock import tenant_today
from cs_platform.tenancy.policy import HOME_PAGE, Capability, can, member_can, requires
from dashboards import account360, selectors
from metrics.models import NightlyRun
from metrics.selectors import health_as_of, nightly_run_attention

BOOK_PREVIEW = 25


@login_required
def home(request):
    """Each role's landing page (policy.HOME_PAGE): CSMs land on their book, managers on their team's,
    compliance officers on the compliance dashboard, everyone else (admins, executives, viewers) on the
    portfolio. The one page that does not use `requires`: a login without a membership gets the page
    that says how to get access rather than a 404."""
    if request.membership is None:
        return render(request, "no_membership.html", status=403)
    page = HOME_PAGE[request.membership.role]
    if page == "portfolio":
        return _portfolio(request, landing=True)
    if page == "compliance":
        return redirect("compliance_dashboard")
    return _book(request)


def _book(request):
    membership, today = request.membership, tenant_today(request.tenant)
    visible = visible_accounts(request.user, membership)
    as_of = health_as_of()
    rows = selectors.account_rows(visible, as_of=as_of)
    context = {
        "as_of": as_of,
        "today": today,
        "bands": selectors.book_band_counts(rows),
        "at_risk": list(rows.order_by(*selectors.ACCOUNT_SORTS["risk"])[:BOOK_PREVIEW]),
        "renewals": selectors.renewals_due(rows, today=today),
        "activities": selectors.overdue_activities(visible, today=today),
        "decisions": selectors.overdue_decisions(visible, today=today),
        "touchpoints": selectors.recent_touchpoints(visible),
        "renewal_days": selectors.RENEWAL_DAYS,
    }
    if member_can(membership, Capability.SEE_TEAM_BOOK):
        context["team"] = selectors.team_load(membership, as_of=as_of, today=today)
    return render(request, "dashboards/home_book.html", context)


@requires()
def account_list(request):
    membership = request.membership
    today = tenant_today(request.tenant)
    visible = visible_accounts(request.user, membership)
    choices = selectors.list_filter_choices(visible)
    params = list_params(
        request.GET,
        filters={
            "segment": {code for code, _ in choices["segment"]},
            "band": {*selectors.BANDS, "none", "at_risk"},
            "owner": {pk for pk, _ in choices["owner"]} | {"none"},
            "renewal": set(selectors.RENEWAL_WINDOWS),
            "compliance": set(ObligationStatus.values),
            "q": None,
        },
        sorts=selectors.ACCOUNT_SORTS,
        default_sort="risk",
    )
    as_of = health_as_of()
    rows = selectors.filter_accounts(selectors.account_rows(visible, as_of=as_of), params.filters, today=today)
    page = paginate(rows.order_by(*params.order_by(selectors.ACCOUNT_SORTS)), params)
    return render(
        request,
        "dashboards/account_list.html",
        {
            "page": page,
            "params": params,
            "as_of": as_of,
            "choices": choices,
            "bands": selectors.HEALTH_BANDS,
            "renewal_windows": selectors.RENEWAL_WINDOWS,
            "compliance_statuses": ObligationStatus.choices,
        },
    )


@requires()
def portfolio(request):
    return _portfolio(request, landing=False)


def _portfolio(request, *, landing: bool):
    membership, today = request.membership, tenant_today(request.tenant)
    visible = visible_accounts(request.user, membership)
    as_of = health_as_of()
    whole = selectors.sees_whole_tenant(membership)
    summaries = selectors.portfolio_summaries(visible, membership, as_of=as_of, today=today)
    trend = selectors.band_trend(visible, as_of=as_of, whole_tenant=whole)
    return render(
        request,
        "dashboards/portfolio.html",
        {
            "landing": landing,
            "as_of": as_of,
            "summaries": summaries,
            "totals": _totals(summaries),
            "trend": trend,
            "trend_rows": _trend_rows(trend),
            "movers": selectors.band_movers(visible, as_of=as_of),
            "whole_tenant": whole,
            # Admins are told plainly when the latest nightly run failed or is stuck (one query), so the
            # figures above are not taken for tonight's.
            "nightly_alert": nightly_run_attention() if member_can(membership, Capability.VIEW_NIGHTLY_RUNS) else None,
            "max_attempts": NightlyRun.MAX_ATTEMPTS,
        },
    )


def _trend_rows(trend: dict) -> list[tuple]:
    """The band chart's text equivalent: one row per date, in the table's column order."""
    return list(zip(trend["dates"], *(trend[band] for band in selectors.BANDS), strict=True))


def _totals(summaries) -> dict:
    bands: dict[str, int] = {}
    for summary in summaries:
        for band, n in summary.bands.items():
            bands[band] = bands.get(band, 0) + n
    return {
        "accounts": sum(s.accounts for s in summaries),
        "arr": sum(s.arr for s in summaries),
        "renewing_90d": sum(s.renewing_90d for s in summaries),
        "bands": bands,
    }


@requires()
def segment_page(request, segment_id: int):
    membership = request.membership
    segment = selectors.segment_of(segment_id)
    if segment is None:
        raise Http404("No such segment.")
    today = tenant_today(request.tenant)
    visible = visible_accounts(request.user, membership)
    as_of = health_as_of()
    (summary,) = selectors.portfolio_summaries(visible, membership, as_of=as_of, today=today, segment_id=segment.pk)
    rows = selectors.account_rows(visible, as_of=as_of).filter(segment_id=segment.pk)
    trend = selectors.band_trend(
        visible, as_of=as_of, segment_id=segment.pk, whole_tenant=selectors.sees_whole_tenant(membership)
    )
    kpi_chart = {
        "names": [k.name for k in summary.kpis],
        "attainment": [k.attainment for k in summary.kpis],
        "met": [k.met for k in summary.kpis],
    }
    return render(
        request,
        "dashboards/segment.html",
        {
            "segment": segment,
            "summary": summary,
            "as_of": as_of,
            "trend": trend,
            "trend_rows": _trend_rows(trend),
            "movers": selectors.band_movers(visible, as_of=as_of, segment_id=segment.pk),
            "at_risk": list(rows.order_by(*selectors.ACCOUNT_SORTS["risk"])[:BOOK_PREVIEW]),
            "kpi_chart": kpi_chart,
        },
    )


# --- Account 360 ---------------------------------------------------------------------------------------
def _timeline_cursor(request) -> datetime.datetime | None:
    raw = request.GET.get("timeline_before") or ""
    try:
        moment = parse_datetime(raw)
    except ValueError:
        return None  # a mangled link opens the newest page rather than failing
    if moment is None or bounds.moment_error(moment):
        return None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


@requires()
def account_detail(request, account_id: int):
    today = tenant_today(request.tenant)
    page = account360.account_360(
        request.user,
        account_id,
        membership=request.membership,
        today=today,
        timeline_before=_timeline_cursor(request),
    )
    if page is None:
        raise Http404("No such account.")
    page.update(
        today=today,
        timeline_paged=bool(request.GET.get("timeline_before")),
        timeline_older=page["timeline"]["older"].isoformat() if page["timeline"]["older"] else "",
        touchpoint_form=(
            TouchpointForm(contacts=page["contacts"], now=timezone.localtime(), auto_id="tp_%s")
            if can(request, Capability.LOG_TOUCHPOINTS)
            else None
        ),
    )
    return render(request, "accounts/detail.html", page)
