from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render

from cs_platform.tenancy.models import Role
from metrics import selectors


@login_required
def nightly_runs(request):
    """Tenant admins see each night's recompute: when, how long, what changed, and why it failed."""
    if request.membership is None or request.membership.role != Role.ADMIN:
        raise Http404("No such page.")
    return render(request, "metrics/nightly_runs.html", {"runs": selectors.nightly_runs()})
