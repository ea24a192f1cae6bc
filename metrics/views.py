from django.shortcuts import render

from accounts.selectors import account_contacts
from accounts.views import account_in_book, account_url, posted_data, submit_form, visible_account_or_404
from cs_platform.tenancy.clock import tenant_today
from cs_platform.tenancy.policy import Capability, requires
from metrics import selectors
from metrics.forms import SurveyResponseForm
from metrics.models import NightlyRun
from metrics.services import survey_response_record


@requires(Capability.VIEW_NIGHTLY_RUNS)
def nightly_runs(request):
    """Tenant admins see each night's recompute: when, how long, what changed, and why it failed."""
    runs = selectors.nightly_runs()
    return render(
        request,
        "metrics/nightly_runs.html",
        {"runs": runs, "nightly_alert": selectors.nightly_run_attention(runs), "max_attempts": NightlyRun.MAX_ATTEMPTS},
    )


@requires(Capability.RECORD_SURVEYS, exists=account_in_book)
def survey_record(request, account_id: int):
    account = visible_account_or_404(request, account_id)
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
