def tenancy(request):
    """Current tenant, role and switchable tenants for the base layout."""
    return {
        "current_tenant": getattr(request, "tenant", None),
        "current_membership": getattr(request, "membership", None),
        "switchable_memberships": getattr(request, "memberships", []),
    }
