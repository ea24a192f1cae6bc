from cs_platform.tenancy.policy import capabilities_of, role_of


def tenancy(request):
    """Current tenant, role and switchable tenants for the base layout, and `can`: what the member may do
    (cs_platform.tenancy.policy), so templates hide the links and buttons their role would be refused."""
    return {
        "current_tenant": getattr(request, "tenant", None),
        "current_membership": getattr(request, "membership", None),
        "switchable_memberships": getattr(request, "memberships", []),
        "can": capabilities_of(role_of(request)),
    }
