from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from cs_platform.tenancy.middleware import SESSION_KEY


@login_required
@require_POST
def switch_tenant(request):
    """Make another of the user's tenants the active one for this session."""
    slug = (request.POST.get("tenant") or "").strip()
    membership = next((m for m in request.memberships if m.tenant.slug == slug), None)
    if membership is None:
        # Same message whether the tenant does not exist or the user is not a member: no hint.
        messages.error(request, f"You have no membership in a tenant called “{slug}”.")
    else:
        request.session[SESSION_KEY] = membership.tenant_id
        messages.success(request, f"Switched to {membership.tenant.name}.")
    # After a switch the previous page may show the old tenant's object: go home.
    return redirect("home")
