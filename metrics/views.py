from django.shortcuts import render

from cs_platform.tenancy.policy import Capability, requires
from metrics import selectors
from metrics.nightly import MAX_ATTEMPTS


@requires(Capability.VIEW_NIGHTLY_RUNS)
def nightly_runs(request):
    """Tenant admins see each night's recompute: when, how long, what changed, and why it failed."""
    runs = selectors.nightly_runs()
    return render(
        request,
        "metrics/nightly_runs.html",
        {"runs": runs, "nightly_alert": selectors.nightly_run_attention(runs), "max_attempts": MAX_ATTEMPTS},
    )
