from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render

from cs_platform.tenancy.models import Role
from metrics import selectors
from metrics.models import NightlyRun


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
