from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render

from accounts.selectors import account_contacts
from accounts.views import account_url, posted_data, submit_form, visible_account_or_404
from cs_platform.tenancy.access import require_form
from cs_platform.tenancy.clock import tenant_today
from cs_platform.tenancy.models import Role
from metrics import selectors
from metrics.forms import SurveyResponseForm
from metrics.models import NightlyRun
from metrics.services import survey_response_record


@login_required
def nightly_runs(request):
    """Tenant admins see each night's recompute: when, how long, what changed, and why it failed."""
    if request.membership is None or request.membership.role != Role.ADMIN:
        raise Http404("No such page.")
    runs = selectors.nightly_runs()
    return render(
        request,
        "metrics/nightly_runs.html",
        {"runs": runs, "nightly_alert": selectors.nightly_run_attention(runs), "max_attempts": NightlyRun.MAX_ATTEMPTS},
    )


@login_required
def survey_record(request, account_id: int):
    account = visible_account_or_404(request, account_id)
    require_form(request, "survey")
    contacts = account_contacts(account)
    form = SurveyResponseForm(posted_data(request), contacts=contacts, today=tenant_today(request.tenant))

    def save(form) -> str:
        response = survey_response_record(
            tenant=request.tenant, account=account, actor=request.user, **form.service_fields()
        )
        return f"{response.get_survey_type_display().split(' ')[0]} response recorded: {response.score}."

    return submit_form(
        request,
        form,
        save=save,
        success_url=account_url(account, "timeline"),
        template="accounts/survey_form.html",
        context={"account": account},
    )
