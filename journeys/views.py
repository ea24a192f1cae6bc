"""The decisions page (every decision and blocker of the user's book, seed 002's weekly view of open
blockers, owners and expected customer impact) and the forms used from the account page: add a decision
or blocker, resolve it, complete a journey activity. Reads through journeys.selectors, writes through
journeys.services."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import render
from django.utils import timezone

from accounts.selectors import visible_accounts
from accounts.views import account_in_book, account_url, posted_data, submit_form, visible_account_or_404
from cs_platform.listing import list_params, paginate
from cs_platform.tenancy.clock import tenant_today
from cs_platform.tenancy.policy import Capability, requires
from journeys import selectors
from journeys.forms import ActivityCompleteForm, DecisionForm, DecisionResolveForm
from journeys.models import DecisionKind
from journeys.services import decision_create, decision_resolve, journey_activity_complete


@requires()
def decision_list(request):
    membership = request.membership
    today = tenant_today(request.tenant)
    zone = timezone.get_current_timezone()  # the tenant's, set by the middleware
    visible = visible_accounts(request.user, membership)
    choices = selectors.decision_filter_choices(visible)
    params = list_params(
        request.GET,
        filters={
            "status": set(selectors.DECISION_VIEWS),
            "kind": set(DecisionKind.values),
            "owner": {pk for pk, _ in choices["owner"]},
            "segment": {code for code, _ in choices["segment"]},
            "q": None,
        },
        sorts=selectors.DECISION_SORTS,
        default_sort="due",
    )
    view = params.filters.get("status", "open")
    rows = selectors.decision_rows(visible, filters=params.filters, today=today, zone=zone)
    page = paginate(rows.order_by(*params.order_by(selectors.DECISION_SORTS)), params)
    counts = selectors.decision_counts(visible, today=today, zone=zone)
    return render(
        request,
        "journeys/decision_list.html",
        {
            "page": page,
            "params": params,
            "choices": choices,
            "view": view,
            "views": [(key, label, counts[key]) for key, label in selectors.DECISION_VIEWS.items()],
            "kinds": DecisionKind.choices,
            "filtered": any(key != "status" for key in params.filters),
        },
    )


@requires(Capability.MANAGE_DECISIONS, exists=account_in_book)
def decision_create_view(request, account_id: int):
    account = visible_account_or_404(request, account_id)
    form = DecisionForm(
        posted_data(request),
        owners=selectors.decision_owner_choices(),
        journeys=selectors.account_journey_choices(account),
    )

    def save(form) -> str:
        decision = decision_create(tenant=request.tenant, account=account, actor=request.user, **form.service_fields())
        return f"{decision.get_kind_display()} added: {decision.title}."

    return submit_form(
        request,
        form,
        save=save,
        success_url=account_url(account, "decisions"),
        template="journeys/decision_form.html",
        context={"account": account},
    )


def _decision_in_book(request, decision_id: int):
    return selectors.decision_for_user(request.user, decision_id, request.membership)


def _activity_in_book(request, activity_id: int):
    return selectors.activity_for_user(request.user, activity_id, request.membership)


@requires(Capability.MANAGE_DECISIONS, exists=_decision_in_book)
def decision_resolve_view(request, decision_id: int):
    decision = _decision_in_book(request, decision_id)
    if decision is None:
        raise Http404("No such decision.")
    form = DecisionResolveForm(posted_data(request))

    def save(form) -> str:
        decision_resolve(
            tenant=request.tenant,
            decision=decision,
            actor=request.user,
            resolution=form.cleaned_data["resolution"],
            apply_fallback=form.cleaned_data["apply_fallback"],
        )
        return f"{decision.get_kind_display()} closed: {decision.title}."

    return submit_form(
        request,
        form,
        save=save,
        success_url=account_url(decision.account, "decisions"),
        template="journeys/decision_resolve.html",
        context={"account": decision.account, "decision": decision},
    )


@requires(Capability.RUN_JOURNEYS, exists=_activity_in_book)
def activity_complete_view(request, activity_id: int):
    activity = _activity_in_book(request, activity_id)
    if activity is None:
        raise Http404("No such activity.")
    form = ActivityCompleteForm(
        posted_data(request), today=tenant_today(request.tenant), started_on=activity.journey.started_on
    )

    def save(form) -> str:
        journey_activity_complete(
            tenant=request.tenant,
            activity=activity,
            completed_on=form.cleaned_data["completed_on"],
            actor=request.user,
        )
        return f"Activity completed: {activity.activity.text}."

    return submit_form(
        request,
        form,
        save=save,
        success_url=account_url(activity.journey.account, "journeys"),
        template="journeys/activity_complete.html",
        context={"account": activity.journey.account, "activity": activity},
    )
