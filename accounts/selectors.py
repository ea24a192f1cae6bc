"""Reads of client accounts. visible_accounts() is the one place that decides whose book is whose."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import Account, AccountUserObjectPermission
from cs_platform.tenancy.models import Membership, Role
from cs_platform.tenancy.selectors import team_user_ids

VIEW_PERMISSION = "view_account"


def _membership_of(user) -> Membership | None:
    membership = getattr(user, "_cs_membership", None)
    if membership is not None:
        return membership
    if not getattr(user, "is_authenticated", False):
        return None
    return Membership.objects.filter(user=user, is_active=True).first()


def visible_accounts(user, membership: Membership | None = None) -> QuerySet[Account]:
    """The accounts `user` may see in the current tenant, by role (DESIGN.md, Roles):

    * admin, executive, compliance, viewer: every account of the tenant;
    * manager: accounts whose CSM permission or owner is in the manager's team (themselves and
      everyone reporting to them, at any depth);
    * csm: accounts on which they hold the guardian object permission view_account;
    * no membership in the current tenant: nothing.
    Filtered by the current tenant through the fail-closed manager (and RLS on PostgreSQL)."""
    membership = membership or _membership_of(user)
    accounts = Account.objects.all()
    if membership is None or not membership.is_active:
        return accounts.none()
    role = membership.role
    if role in (Role.ADMIN, Role.EXECUTIVE, Role.COMPLIANCE, Role.VIEWER):
        return accounts
    if role == Role.CSM:
        return accounts.filter(pk__in=_permitted_account_ids([user.pk]))
    if role == Role.MANAGER:
        team = team_user_ids(membership)
        return accounts.filter(pk__in=_permitted_account_ids(team)) | accounts.filter(owner_csm_id__in=team)
    return accounts.none()


def _permitted_account_ids(user_ids: list[int]):
    return AccountUserObjectPermission.objects.filter(
        user_id__in=user_ids, permission__codename=VIEW_PERMISSION
    ).values("content_object_id")


def home_accounts(user, membership: Membership | None = None) -> QuerySet[Account]:
    """The home page list: visible accounts with segment and owner joined (one query)."""
    return visible_accounts(user, membership).select_related("segment", "owner_csm").order_by("renewal_date", "name")


def account_detail(user, account_id: int, membership: Membership | None = None) -> Account | None:
    return visible_accounts(user, membership).select_related("segment", "owner_csm").filter(pk=account_id).first()
