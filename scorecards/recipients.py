"""Who receives the weekly scorecard email: active members with an address whose subscription says yes
(without one, executives only), for which segments, and the reads of the preferences page."""

from __future__ import annotations

import dataclasses
from typing import Any

from accounts.selectors import book_segments
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Membership, Role
from cs_platform.tenancy.policy import Capability
from scorecards.models import ScorecardSubscription
from segments.models import Segment

# A member without a subscription row gets the default: executives receive the email, nobody else does.
DEFAULT_RECIPIENT_ROLES = frozenset({Role.EXECUTIVE})


def subscription_default(role: str | None) -> bool:
    """Whether a member with `role` and no explicit choice receives the weekly email."""
    return role in DEFAULT_RECIPIENT_ROLES


@dataclasses.dataclass(frozen=True)
class ScorecardRecipient:
    """One member who receives the week's email, and for which segments (None: all they can see)."""

    user: Any
    membership: Any
    email: str
    segment_ids: list[int] | None


def _recipients_from(memberships: list, subscriptions: dict[int, ScorecardSubscription]) -> list[ScorecardRecipient]:
    """Apply the rules to memberships already read (active, with an email): an enabled subscription, or
    an executive's default without a row. A subscription whose segments are all gone, or (for a restricted
    book) hold none of the member's accounts, has nothing to show and is skipped rather than sent empty."""
    chosen: list[tuple[Any, ScorecardSubscription | None]] = []
    for membership in memberships:
        subscription = subscriptions.get(membership.user_id)
        if subscription is None:
            if subscription_default(membership.role):
                chosen.append((membership, None))
        elif subscription.enabled:
            chosen.append((membership, subscription))
    if not chosen:
        return []
    # Only a segment choice needs the tenant's segments (executives on the default need no query).
    chose = any(subscription is not None and subscription.segment_ids for _, subscription in chosen)
    tenant_segments = set(Segment.objects.values_list("pk", flat=True)) if chose else set()
    # Restricted books (CSMs, managers): the segments their accounts are in, for all of them at once.
    books = book_segments([m for m, _ in chosen if m.role not in Capability.SEE_WHOLE_TENANT.roles])
    recipients = []
    for membership, subscription in chosen:
        wanted = [pk for pk in (subscription.segment_ids if subscription else []) or [] if pk in tenant_segments]
        if subscription is not None and subscription.segment_ids and not wanted:
            continue
        if membership.role not in Capability.SEE_WHOLE_TENANT.roles:
            visible = books.get(membership.pk, set())
            wanted = [pk for pk in wanted if pk in visible] if wanted else []
            if not visible or (subscription is not None and subscription.segment_ids and not wanted):
                continue
        recipients.append(
            ScorecardRecipient(
                user=membership.user, membership=membership, email=membership.user.email, segment_ids=wanted or None
            )
        )
    return recipients


def _eligible_memberships(user_ids: list[int] | None = None) -> list:
    memberships = (
        Membership.objects.filter(is_active=True, user__is_active=True)
        .exclude(user__email="")
        .select_related("user")
        .order_by("user_id")
    )
    if user_ids is not None:
        memberships = memberships.filter(user_id__in=user_ids)
    return list(memberships)


def scorecard_recipients(*, tenant) -> list[ScorecardRecipient]:
    """Who receives `tenant`'s weekly scorecard: active members with an email address whose subscription
    says yes (no row: executives only). Three queries, plus three when any subscriber has a restricted
    book (their books' segments, all at once; see accounts.selectors.book_segments)."""
    with context.tenant_context(tenant):
        memberships = _eligible_memberships()
        subscriptions = {s.user_id: s for s in ScorecardSubscription.objects.all()}
        return _recipients_from(memberships, subscriptions)


def recipient_now(user_id: int) -> ScorecardRecipient | None:
    """The member as a recipient at send time (in the current tenant), or None if they unsubscribed,
    left or lost their address since the row was prepared."""
    memberships = _eligible_memberships([user_id])
    subscriptions = {s.user_id: s for s in ScorecardSubscription.objects.filter(user_id=user_id)}
    found = _recipients_from(memberships, subscriptions)
    return found[0] if found else None


def scorecard_subscription_state(*, tenant, user, role: str | None) -> tuple[bool, list[int], bool]:
    """(enabled, segment_ids, explicit) for `user` in `tenant`: their recorded choice, or the role's
    default when they never made one. One query. (A read kept beside the writes it mirrors.)"""
    with context.tenant_context(tenant):
        row = ScorecardSubscription.objects.filter(user=user).values_list("enabled", "segment_ids").first()
    if row is None:
        return subscription_default(role), [], False
    return row[0], list(row[1] or []), True


def tenant_segments() -> list:
    """The current tenant's segments in their display order (the preferences form's choices)."""
    return list(Segment.objects.order_by("sort_order", "name", "pk"))


def member_role(user) -> str | None:
    """The role of `user`'s active membership in the current tenant, or None."""
    return Membership.objects.filter(user=user, is_active=True).values_list("role", flat=True).first()
