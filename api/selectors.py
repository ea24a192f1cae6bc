"""Reads of API tokens for the admin pages and for Bearer authentication."""

from __future__ import annotations

from django.db.models import Exists, OuterRef

from api.models import ApiToken
from cs_platform.tenancy import context, system
from cs_platform.tenancy.models import Membership
from cs_platform.tenancy.policy import Capability


def api_tokens_for_admin() -> list[ApiToken]:
    """Every token of the current tenant, newest first, with creator and revoker, and `creator_is_admin`:
    a token whose creator is no longer an active admin (Capability.MANAGE_API_TOKENS) does not authenticate
    (api.authentication), and the page must say so rather than call it active (one query, joined)."""
    admin = Membership.objects.filter(
        user_id=OuterRef("created_by_id"), is_active=True, role__in=Capability.MANAGE_API_TOKENS.roles
    )
    return list(
        ApiToken.objects.select_related("created_by", "revoked_by")
        .annotate(creator_is_admin=Exists(admin))
        .order_by("-created_at", "-pk")
    )


def api_token_for_admin(token_id: int) -> ApiToken | None:
    """One token of the current tenant, or None (another tenant's id reads as missing). One query."""
    return ApiToken.objects.filter(pk=token_id).first()


def api_token_by_hash(key_hash: str) -> tuple[ApiToken | None, Membership | None]:
    """The token with this hash in any tenant, and its creator's active membership in that tenant (the
    authentication also requires it to be an admin's: the role is on this row, so no further query).

    Cross-tenant by nature: the token is what tells us the tenant. On PostgreSQL the SECURITY DEFINER
    lookup cs_api_token_tenant (api migration 0004) names the tenant holding the hash, and everything
    else is read inside that tenant under RLS. Three queries (the tenant lookup; token with tenant and
    creator; membership)."""
    tenant_id = _tenant_of_token(key_hash)
    if tenant_id is None:
        return None, None
    with context.tenant_context(tenant_id):
        token = ApiToken.objects.select_related("tenant", "created_by").filter(key_hash=key_hash).first()
        if token is None:
            return None, None
        membership = (
            Membership.objects.select_related("tenant").filter(user_id=token.created_by_id, is_active=True).first()
        )
    return token, membership


def _tenant_of_token(key_hash: str) -> int | None:
    if system.uses_database_lookups():
        return system.lookup_rows("cs_api_token_tenant", key_hash)[0][0]
    return ApiToken._plain.filter(key_hash=key_hash).order_by("pk").values_list("tenant_id", flat=True).first()
