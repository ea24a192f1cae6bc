"""Writes of the weekly scorecard email that people make: an operator's test send, an admin's retries of
failed deliveries, and subscriptions (a member's own on/off and segment choice, and the no-login
unsubscribe link). The deliveries themselves: scorecards.delivery."""

from __future__ import annotations

import dataclasses

from django.core.exceptions import ValidationError
from django.core.mail import get_connection
from django.db import transaction
from django.utils import timezone

from cs_platform.audit.services import audit_record, audit_record_many
from cs_platform.outbox import DeliveryStatus
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Membership
from scorecards.delivery import SMTP_TIMEOUT_SECONDS, STUCK_ERROR, ScorecardViews, scorecard_build
from scorecards.email import scorecard_message
from scorecards.models import ScorecardDelivery, ScorecardSubscription
from scorecards.recipients import scorecard_recipients, subscription_default
from scorecards.tasks import scorecard_sends_queue
from scorecards.weeks import IsoWeek
from segments.models import Segment


# --- Deliveries -----------------------------------------------------------------------------------------
def scorecard_test_send(*, tenant, week: IsoWeek, to: str, actor=None) -> list[str]:
    """Send every recipient's email of `week` to `to` instead (an operator's check before the real send):
    subject marked with the recipient, no unsubscribe link (it would unsubscribe the recipient), no
    delivery row touched, so the real send still happens. Audited: it sends the tenant's figures to an
    address of the operator's choosing. Returns the recipients whose email was sent."""
    recipients = scorecard_recipients(tenant=tenant)
    connection = get_connection(timeout=SMTP_TIMEOUT_SECONDS)
    views = ScorecardViews()
    sent: list[str] = []
    with connection:
        for recipient in recipients:
            rendered, _ = scorecard_build(
                tenant=tenant, recipient=recipient, week=week, with_unsubscribe=False, views=views
            )
            rendered = dataclasses.replace(rendered, subject=f"[Test copy of {recipient.email}] {rendered.subject}")
            scorecard_message(rendered, to=to, unsubscribe_url=None, connection=connection).send()
            sent.append(recipient.email)
    audit_record(
        tenant=tenant,
        actor=actor,
        action="scorecard.test_send",
        object_type="scorecards.week",
        object_id=str(week),
        after={"week": str(week), "to": to, "emails": len(sent)},
    )
    return sent


@transaction.atomic
def scorecard_delivery_retry(*, tenant, delivery_id: int, actor) -> ScorecardDelivery:
    """An admin's "retry now" for a failed delivery: a fresh series of attempts, queued at once. This is
    also the only way a delivery whose worker died mid-send (it may have arrived) is sent again."""
    with context.tenant_context(tenant):
        delivery = ScorecardDelivery.objects.select_for_update().filter(pk=delivery_id).first()
        if delivery is None:
            raise ValidationError({"delivery": "No such delivery."})
        if delivery.status != DeliveryStatus.FAILED:
            raise ValidationError(
                {"delivery": f"Only failed deliveries can be retried (this one is {delivery.status})."}
            )
        before = {"status": delivery.status, "attempts": delivery.attempts, "last_error": delivery.last_error}
        delivery.status, delivery.attempts, delivery.next_attempt_at = DeliveryStatus.PENDING, 0, None
        delivery.save(update_fields=["status", "attempts", "next_attempt_at"])
        audit_record(
            tenant=tenant,
            actor=actor,
            action="scorecard_delivery.retry",
            obj=delivery,
            before=before,
            after={"status": delivery.status, "attempts": 0, "week": delivery.week, "email": delivery.email},
        )
    scorecard_sends_queue(tenant_id=tenant.pk, delivery_ids=[delivery.pk])
    return delivery


@transaction.atomic
def scorecard_deliveries_retry_failed(*, tenant, week: IsoWeek, actor) -> int:
    """An admin's "retry all failed" for `week`, after an SMTP outage outlasted the backoff: every failed
    delivery of the week starts a fresh series of attempts, queued once committed; one audit event per
    row. Rows whose worker stopped mid-send are left out (the email may have arrived: only a "retry
    now" on that row, after checking, sends it again). Returns how many were queued."""
    with context.tenant_context(tenant):
        rows = list(
            ScorecardDelivery.objects.select_for_update()
            .filter(week=str(week), status=DeliveryStatus.FAILED)
            .exclude(last_error=STUCK_ERROR)
            .order_by("pk")
            .values_list("pk", "email", "attempts", "last_error")
        )
        ids = [pk for pk, *_ in rows]
        ScorecardDelivery.objects.filter(pk__in=ids).update(
            status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=None
        )
        audit_record_many(
            tenant=tenant,
            actor=actor,
            events=[
                {
                    "action": "scorecard_delivery.retry",
                    "object_type": "scorecards.scorecarddelivery",
                    "object_id": pk,
                    "before": {"status": DeliveryStatus.FAILED, "attempts": attempts, "last_error": error},
                    "after": {
                        "status": DeliveryStatus.PENDING,
                        "attempts": 0,
                        "week": str(week),
                        "email": email,
                        "bulk": True,
                    },
                }
                for pk, email, attempts, error in rows
            ],
        )
    scorecard_sends_queue(tenant_id=tenant.pk, delivery_ids=ids)
    return len(ids)


# --- Subscriptions ----------------------------------------------------------------------------------------
UNSUBSCRIBE_VIA = ("link", "one-click")


def _subscription_view(enabled: bool, segment_ids: list[int], *, explicit: bool) -> dict:
    # What the audit trail shows: the choice, and whether it was the role's default or a recorded row.
    return {"enabled": enabled, "segment_ids": segment_ids, "explicit": explicit}


def _clean_segment_ids(segment_ids) -> list[int]:
    """Distinct, sorted ids of the current tenant's segments; anything else names the field. Another
    tenant's segment id reads exactly like one that does not exist (the tenant manager filters it)."""
    if segment_ids is None:
        return []
    if isinstance(segment_ids, str | bytes | int) or not hasattr(segment_ids, "__iter__"):
        raise ValidationError({"segment_ids": "Give a list of segment ids."})
    try:
        wanted = sorted({int(value) for value in segment_ids})
    except (TypeError, ValueError):
        raise ValidationError({"segment_ids": "Segment ids are whole numbers."}) from None
    if not wanted:
        return []
    known = set(Segment.objects.filter(pk__in=wanted).values_list("pk", flat=True))
    unknown = [pk for pk in wanted if pk not in known]
    if unknown:
        raise ValidationError({"segment_ids": f"Unknown segment(s): {', '.join(map(str, unknown))}."})
    return wanted


def _lock_member(user) -> str | None:
    """The member's role in the current tenant (None if not an active member), locking their membership
    row until the transaction ends. That lock serialises concurrent writes of one member's subscription
    (two tabs, a mail client repeating the one-click POST), including the first, when there is no
    subscription row yet to lock and both would otherwise insert one."""
    row = Membership.objects.select_for_update().filter(user=user).values_list("role", "is_active").first()
    return row[0] if row is not None and row[1] else None


@transaction.atomic
def scorecard_subscription_update(
    *, tenant, user, enabled: bool, segment_ids: list[int] | None, actor
) -> ScorecardSubscription:
    """Record `user`'s own choice in `tenant`: receive the weekly scorecard or not, and for which segments
    (empty: every segment they can see). Only members of the tenant have a choice to make."""
    with context.tenant_context(tenant):
        role = _lock_member(user)
        if role is None:
            raise ValidationError({"user": "Only members of this tenant can subscribe to its scorecard."})
        cleaned = _clean_segment_ids(segment_ids)
        # Read under the member lock: each audit event's "before" is what the previous save wrote.
        subscription = ScorecardSubscription.objects.filter(user=user).first()
        if subscription is None:
            before = _subscription_view(subscription_default(role), [], explicit=False)
            subscription = ScorecardSubscription(tenant=tenant, user=user)
        else:
            before = _subscription_view(subscription.enabled, list(subscription.segment_ids), explicit=True)
        subscription.enabled = bool(enabled)
        subscription.segment_ids = cleaned
        subscription.updated_at = timezone.now()
        subscription.save()
        audit_record(
            tenant=tenant,
            actor=actor,
            action="scorecard_subscription.update",
            obj=subscription,
            before=before,
            after=_subscription_view(subscription.enabled, cleaned, explicit=True),
        )
    return subscription


@transaction.atomic
def scorecard_unsubscribe(*, tenant, user, actor=None, via: str = "link") -> ScorecardSubscription:
    """Turn the weekly email off for `user` in `tenant`, from the email's link (via="link") or a mail
    client's RFC 8058 one-click request (via="one-click"). Idempotent: a second call changes and records
    nothing, so a mail client retrying the one-click POST does not fill the audit trail.
    The segment choice is kept, so subscribing again restores it."""
    if via not in UNSUBSCRIBE_VIA:
        raise ValidationError({"via": f"One of {', '.join(UNSUBSCRIBE_VIA)}."})
    with context.tenant_context(tenant):
        role = _lock_member(user)
        subscription = ScorecardSubscription.objects.filter(user=user).first()
        if subscription is not None and not subscription.enabled:
            return subscription
        if subscription is None:
            before = _subscription_view(subscription_default(role), [], explicit=False)
            subscription = ScorecardSubscription(tenant=tenant, user=user, segment_ids=[])
        else:
            before = _subscription_view(True, list(subscription.segment_ids), explicit=True)
        subscription.enabled = False
        subscription.updated_at = timezone.now()
        subscription.save()
        # No actor (the link needs no login): the member whose email stops is named in the event itself.
        after = _subscription_view(False, list(subscription.segment_ids), explicit=True) | {
            "via": via,
            "member": user.get_username(),
        }
        audit_record(
            tenant=tenant,
            actor=actor,
            action="scorecard_subscription.unsubscribe",
            obj=subscription,
            before=before,
            after=after,
        )
    return subscription
