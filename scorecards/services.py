"""Writes of the weekly scorecard: delivery (who receives it, one row per user and week, sending) and
subscriptions (a member's own on/off and segment choice, and the no-login unsubscribe link)."""

from __future__ import annotations

import dataclasses
import datetime
import logging
import smtplib
import threading
import time
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from cs_platform.audit.services import audit_record, audit_record_many
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Tenant
from cs_platform.tenancy.policy import Capability
from scorecards.models import DeliveryStatus, ScorecardDelivery, ScorecardSubscription
from scorecards.selectors import ScorecardRecipient, recipient_now, scorecard_recipients, subscription_default
from scorecards.weeks import IsoWeek

if TYPE_CHECKING:
    from django.core.mail import EmailMessage
    from django.core.mail.backends.base import BaseEmailBackend

    from scorecards.email import RenderedScorecard

logger = logging.getLogger(__name__)

# --- Delivery ---------------------------------------------------------------------------------------------
# Guarantee: each (tenant, user, week) has one ScorecardDelivery row, and a row is sent by whoever moves it
# to "sending" first (one conditional UPDATE), so a second beat tick, a duplicated task message or a retry
# never sends twice. Delivery is AT MOST ONCE: a worker that dies between the SMTP server's "250 OK" and
# the database update leaves the row in "sending"; after SENDING_LEASE the sweep marks it "failed" with an
# error that says the email may have gone out, and it is only sent again if an admin presses "retry now".
# The one window smtplib cannot close: the server accepts the message but its reply is lost (connection
# reset after the final "."). smtplib raises, we record "retrying", and the retry could duplicate; the
# Message-ID is the same on every attempt of a delivery, so mailbox providers that collapse duplicates do.
SENDING_LEASE = datetime.timedelta(minutes=15)  # longer than the send task's hard time limit
STALE_GRACE = datetime.timedelta(minutes=15)  # how late a queued message may be before the sweep re-queues
SMTP_TIMEOUT_SECONDS = 30
# The error of a row whose worker stopped mid-send: "retry all failed" leaves these alone (see below).
STUCK_ERROR = (
    "The worker stopped while sending (after the lease of "
    f"{int(SENDING_LEASE.total_seconds() // 60)} min): the email may or may not have been delivered, so it "
    "is not re-sent automatically. Use retry now to send it again."
)
_ERROR_CHARS = 1000
_STALE_BATCH = 5000


@dataclasses.dataclass(frozen=True)
class PreparedWeek:
    week: IsoWeek
    recipients: int
    created: int  # rows this call inserted (0 when the week was already prepared)
    sendable_ids: list[int]  # rows waiting to be sent: pending, or retrying and due


@transaction.atomic
def scorecard_deliveries_prepare(*, tenant, week: IsoWeek, now: datetime.datetime | None = None) -> PreparedWeek:
    """One ScorecardDelivery per recipient for `week`, inserted in bulk; rows that exist (the unique
    (tenant, user, week) key) are left alone, so preparing twice inserts nothing and re-sends nothing."""
    now = now or timezone.now()
    recipients = scorecard_recipients(tenant=tenant)
    with context.tenant_context(tenant):
        existing = set(ScorecardDelivery.objects.filter(week=str(week)).values_list("user_id", flat=True))
        rows = [
            ScorecardDelivery(
                tenant=tenant, user=r.user, week=str(week), week_start=week.monday, email=r.email, created_at=now
            )
            for r in recipients
            if r.user.pk not in existing
        ]
        # ignore_conflicts: a concurrent prepare of the same week (two ticks racing) inserts each row once.
        ScorecardDelivery.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)
        created = ScorecardDelivery.objects.filter(week=str(week)).count() - len(existing)
        sendable = list(
            ScorecardDelivery.objects.filter(_due_filter(now), week=str(week))
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        if created:
            audit_record(
                tenant=tenant,
                actor=None,
                action="scorecard_delivery.prepare",
                object_type="scorecards.week",
                object_id=str(week),
                after={"week": str(week), "recipients": len(recipients), "created": created},
            )
    return PreparedWeek(week=week, recipients=len(recipients), created=created, sendable_ids=sendable)


def _due_filter(now: datetime.datetime) -> Q:
    return Q(status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING]) & (
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )


NOT_DUE = "not-due"


def retry_delay(attempt: int) -> float:
    """Seconds to wait after failed attempt `attempt` (1-based): SCORECARD_RETRY_BASE_SECONDS * 2**(attempt-1),
    capped at SCORECARD_RETRY_MAX_SECONDS so a long outage is retried hourly rather than ever more rarely."""
    return min(settings.SCORECARD_RETRY_BASE_SECONDS * 2 ** (attempt - 1), settings.SCORECARD_RETRY_MAX_SECONDS)


@dataclasses.dataclass(frozen=True)
class SendOutcome:
    delivery_id: int
    # The row's status afterwards; "not-due" (a retrying row whose next attempt is later: the message came
    # early) or "not-claimed" (sent, failed, skipped or being sent by someone else: the message just ends).
    status: str
    retry_in: float | None = None
    # When the next attempt is due: the very value written to the row's next_attempt_at, so the task
    # queues its next message with this eta and it cannot arrive before the row is due (issue #16 item 7).
    next_attempt_at: datetime.datetime | None = None
    size: int = 0  # bytes of the message sent
    error: str = ""  # why it was not sent (failed or retrying)


def _message_id(tenant, delivery: ScorecardDelivery) -> str:
    # The same on every attempt of a delivery (see the guarantee above); the domain is the sender's.
    domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2].strip("> ") or "localhost"
    return f"<scorecard.{delivery.week}.{tenant.pk}.{delivery.pk}@{domain}>"


def _unsubscribe_url(tenant, user) -> str | None:
    try:
        from scorecards.tokens import unsubscribe_url
    except ImportError:  # the subscription pages are not installed
        return None
    try:
        return unsubscribe_url(tenant, user)
    except Exception:  # noqa: BLE001 - no URL route yet: the email goes out without the link
        logger.warning("no unsubscribe URL for user %s; sending without it", getattr(user, "pk", user))
        return None


class ScorecardViews:
    """What emails of a batch share. Every whole-tenant reader (admin, executive, compliance, viewer) with
    the same role and segment choice sees the same figures, so their Scorecard is computed once and only
    the recipient changes; the rendering (templates, PNG charts) is done once too, as a template whose
    recipient name and unsubscribe link are filled in per email. The template is checked against a real
    rendering the first time: if filling it in does not reproduce that rendering exactly (the email came
    to depend on the user in another way), the key falls back to rendering per email from the shared
    figures. Restricted books (CSMs, managers) are never shared. Entries expire after `ttl` seconds, so a
    long-lived worker process never serves last night's figures for long. Thread-safe."""

    _NAME = "ScorecardRecipient0Placeholder"
    _URL = "https://unsubscribe.invalid/ScorecardUnsubscribe0Placeholder"

    def __init__(self, *, ttl: float = 600.0, max_items: int = 256) -> None:
        self.ttl, self.max_items = ttl, max_items
        self._items: dict[tuple, tuple[float, Any, Any]] = {}
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def _get(self, key: tuple) -> tuple[Any, Any] | None:
        with self._lock:
            found = self._items.get(key)
            if found is None or found[0] < time.monotonic():
                self.misses += 1
                return None
            self.hits += 1
            return found[1], found[2]

    def _put(self, key: tuple, scorecard, template) -> None:
        with self._lock:
            if len(self._items) >= self.max_items:
                self._items.clear()  # a batch touches a few keys; a full cache is an old one
            self._items[key] = (time.monotonic() + self.ttl, scorecard, template)

    @classmethod
    def _personalise(cls, template, *, name: str, unsubscribe_url: str | None):
        from django.utils.html import escape

        url = unsubscribe_url or ""
        return dataclasses.replace(
            template,
            text=template.text.replace(cls._NAME, name).replace(cls._URL, url),
            html=template.html.replace(cls._NAME, escape(name)).replace(cls._URL, escape(url)),
        )

    def render(self, *, tenant, recipient: ScorecardRecipient, week: IsoWeek, unsubscribe_url: str | None):
        from scorecards.email import render_scorecard

        role = recipient.membership.role
        if role not in Capability.SEE_WHOLE_TENANT.roles:
            return render_scorecard(_scorecard_of(tenant, recipient, week), unsubscribe_url=unsubscribe_url)
        key = (tenant.pk, str(week), role, tuple(sorted(recipient.segment_ids or ())), unsubscribe_url is not None)
        name = recipient.user.get_full_name() or recipient.user.get_username()
        found = self._get(key)
        if found is not None:
            scorecard, template = found
            if template is not None:
                return self._personalise(template, name=name, unsubscribe_url=unsubscribe_url)
            return render_scorecard(
                dataclasses.replace(scorecard, user=recipient.user), unsubscribe_url=unsubscribe_url
            )
        scorecard = _scorecard_of(tenant, recipient, week)
        real = render_scorecard(scorecard, unsubscribe_url=unsubscribe_url)
        template = None
        try:
            placeholder = _PlaceholderUser(self._NAME)
            candidate = render_scorecard(
                dataclasses.replace(scorecard, user=placeholder), unsubscribe_url=self._URL if unsubscribe_url else None
            )
            if self._personalise(candidate, name=name, unsubscribe_url=unsubscribe_url) == real:
                template = candidate
        except Exception:  # noqa: BLE001 - the rendering wanted more of the user: render per email
            logger.debug("scorecard template not shareable for %s", key, exc_info=True)
        self._put(key, scorecard, template)
        return real


class _PlaceholderUser:
    """Stands in for the recipient when the shared template is rendered."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.pk = self.id = None
        self.email = self.username = self.first_name = name
        self.last_name = ""

    def get_full_name(self) -> str:
        return self.name

    def get_username(self) -> str:
        return self.name

    def __str__(self) -> str:
        return self.name


def _scorecard_of(tenant, recipient: ScorecardRecipient, week: IsoWeek):
    from scorecards.selectors import weekly_scorecard

    with context.tenant_context(tenant):
        return weekly_scorecard(
            user=recipient.user, membership=recipient.membership, week=week, segment_ids=recipient.segment_ids
        )


def scorecard_build(
    *,
    tenant,
    recipient: ScorecardRecipient,
    week: IsoWeek,
    to: str | None = None,
    with_unsubscribe: bool = True,
    message_id: str | None = None,
    connection: BaseEmailBackend | None = None,
    views: ScorecardViews | None = None,
) -> tuple[RenderedScorecard, EmailMessage]:
    """(rendered, message) of `recipient`'s email for `week`, built from what their role sees. `to`
    overrides the address (test sends); a redirected email carries no unsubscribe link, since that link
    would unsubscribe the recipient, not whoever reads the test copy. `views` shares the figures and the
    rendering between recipients who see the same thing (batches: the command, the workers)."""
    from scorecards.email import render_scorecard, scorecard_message

    unsubscribe = _unsubscribe_url(tenant, recipient.user) if with_unsubscribe else None
    if views is None:
        rendered = render_scorecard(_scorecard_of(tenant, recipient, week), unsubscribe_url=unsubscribe)
    else:
        rendered = views.render(tenant=tenant, recipient=recipient, week=week, unsubscribe_url=unsubscribe)
    message = scorecard_message(rendered, to=to or recipient.email, unsubscribe_url=unsubscribe, connection=connection)
    if message_id:
        message.extra_headers["Message-ID"] = message_id
    return rendered, message


def _claim(delivery_id: int, now: datetime.datetime, *, due_only: bool) -> bool:
    """Move the row to "sending" and count the attempt, in one committed UPDATE: of two workers holding
    the same delivery, exactly one gets 1 here. While sending, next_attempt_at is the lease's end."""
    rows = ScorecardDelivery.objects.filter(
        pk=delivery_id, status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING]
    )
    if due_only:
        rows = rows.filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
    return bool(
        rows.update(status=DeliveryStatus.SENDING, attempts=F("attempts") + 1, next_attempt_at=now + SENDING_LEASE)
    )


def _permanent(exc: BaseException) -> bool:
    """A refusal that no retry will change: every recipient refused with a 5xx code (no such mailbox)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return bool(exc.recipients) and all(code >= 500 for code, _ in exc.recipients.values())
    return False


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".replace("\x00", "\ufffd")[:_ERROR_CHARS]


def _finish(
    tenant,
    delivery: ScorecardDelivery,
    *,
    status: str,
    error: str = "",
    message_id: str = "",
    next_attempt_at=None,
    sent_at=None,
    audit_action: str | None = None,
    extra: dict | None = None,
) -> None:
    with transaction.atomic(), context.tenant_context(tenant):
        ScorecardDelivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.SENDING).update(
            status=status,
            last_error=error,
            next_attempt_at=next_attempt_at,
            sent_at=sent_at,
            message_id=message_id or delivery.message_id,
            email=delivery.email,
        )
        if audit_action:
            audit_record(
                tenant=tenant,
                actor=None,
                action=audit_action,
                obj=delivery,
                after={
                    "user_id": delivery.user_id,
                    "week": delivery.week,
                    "email": delivery.email,
                    "status": status,
                    "attempts": delivery.attempts,
                    "message_id": message_id,
                    "error": error,
                    **(extra or {}),
                },
            )


def scorecard_delivery_send(
    *,
    tenant,
    delivery_id: int,
    connection: BaseEmailBackend | None = None,
    now: datetime.datetime | None = None,
    due_only: bool = True,
    views: ScorecardViews | None = None,
) -> SendOutcome:
    """One attempt at a delivery: claim it, build the recipient's email as their role sees it, send it
    through Django's mail connection (`connection`, reused across a batch, or a new one), record the
    outcome. SMTP and network errors become "retrying" with an exponential next_attempt_at and, after
    SCORECARD_MAX_ATTEMPTS, "failed"; both keep the error for the admin page. due_only=False (the
    command, "retry now") also takes a retrying row whose next attempt is not due yet."""
    from django.core.mail import get_connection

    now = now or timezone.now()
    with context.tenant_context(tenant):
        if not _claim(delivery_id, now, due_only=due_only):
            # A message that came before its row is due (clock skew between hosts, a sweep message racing
            # the scheduled one) says when the row is due, so the task can come back then instead of
            # leaving the email to the sweep. One query, on this path only.
            waiting = (
                ScorecardDelivery.objects.filter(
                    pk=delivery_id,
                    status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING],
                    next_attempt_at__gt=now,
                )
                .values_list("next_attempt_at", flat=True)
                .first()
            )
            if due_only and waiting is not None:
                return SendOutcome(delivery_id=delivery_id, status=NOT_DUE, next_attempt_at=waiting)
            return SendOutcome(delivery_id=delivery_id, status="not-claimed")
        delivery = ScorecardDelivery.objects.get(pk=delivery_id)
    message_id = _message_id(tenant, delivery)
    size = 0
    # From the claim on, the row is "sending". Until the message is handed to the SMTP connection
    # nothing can have left, so any failure before that (a database hiccup, a soft time limit, a
    # rendering bug) must come back as "retrying" below, not be left for the sweep to fail as "may have
    # been delivered".
    try:
        with context.tenant_context(tenant):
            recipient = recipient_now(delivery.user_id)
        if recipient is None:
            _finish(
                tenant,
                delivery,
                status=DeliveryStatus.SKIPPED,
                error="No longer a recipient (unsubscribed, left the tenant or has no email address) when it was due.",
                audit_action="scorecard_delivery.skip",
            )
            return SendOutcome(delivery_id=delivery_id, status=DeliveryStatus.SKIPPED)
        # The member's address now, not the one captured when the week was prepared: a retry days later
        # must not go to an address they have given up. The row records where it actually went.
        delivery.email = recipient.email
        _rendered, message = scorecard_build(
            tenant=tenant,
            recipient=recipient,
            week=IsoWeek.parse(delivery.week),
            to=recipient.email,
            message_id=message_id,
            connection=connection or get_connection(timeout=SMTP_TIMEOUT_SECONDS),
            views=views,
        )
        # Approximate (before MIME encoding): message() would build the whole MIME tree a second time.
        size = len(_rendered.text) + len(_rendered.html) + sum(len(png) for png in _rendered.images.values())
        message.send(fail_silently=False)
    except Exception as exc:  # SMTP/OSError above all; a rendering bug is retried and shown the same way
        error = _error_text(exc)
        if not isinstance(exc, smtplib.SMTPException | OSError):
            logger.exception("scorecard delivery %s could not be built", delivery_id)
        if _permanent(exc) or delivery.attempts >= settings.SCORECARD_MAX_ATTEMPTS:
            _finish(tenant, delivery, status=DeliveryStatus.FAILED, error=error, audit_action="scorecard_delivery.fail")
            # WARNING with tenant and delivery id: an on-call engineer greps the JSON logs for them.
            logger.warning(
                "scorecard delivery %s failed for good after attempt %s: %s",
                delivery_id,
                delivery.attempts,
                error,
                extra={"tenant_id": tenant.pk, "delivery_id": delivery_id, "attempt": delivery.attempts},
            )
            return SendOutcome(delivery_id=delivery_id, status=DeliveryStatus.FAILED, error=error)
        retry_in = retry_delay(delivery.attempts)
        next_attempt_at = timezone.now() + datetime.timedelta(seconds=retry_in)
        _finish(
            tenant,
            delivery,
            status=DeliveryStatus.RETRYING,
            error=error,
            next_attempt_at=next_attempt_at,
            audit_action="scorecard_delivery.retry_scheduled",
            extra={"retry_in_seconds": round(retry_in, 1)},
        )
        logger.warning(
            "scorecard delivery %s attempt %s failed: %s",
            delivery_id,
            delivery.attempts,
            error,
            extra={"tenant_id": tenant.pk, "delivery_id": delivery_id, "attempt": delivery.attempts},
        )
        return SendOutcome(
            delivery_id=delivery_id,
            status=DeliveryStatus.RETRYING,
            retry_in=retry_in,
            error=error,
            next_attempt_at=next_attempt_at,
        )
    _finish(
        tenant,
        delivery,
        status=DeliveryStatus.SENT,
        message_id=message_id,
        sent_at=timezone.now(),
        audit_action="scorecard_delivery.send",
        extra={"bytes": size},
    )
    return SendOutcome(delivery_id=delivery_id, status=DeliveryStatus.SENT, size=size)


def scorecard_test_send(*, tenant, week: IsoWeek, to: str, actor=None) -> list[str]:
    """Send every recipient's email of `week` to `to` instead (an operator's check before the real send):
    subject marked with the recipient, no unsubscribe link (it would unsubscribe the recipient), no
    delivery row touched, so the real send still happens. Audited: it sends the tenant's figures to an
    address of the operator's choosing. Returns the recipients whose email was sent."""
    from django.core.mail import get_connection

    from scorecards.email import scorecard_message

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


def scorecard_sends_queue(*, tenant_id: int, delivery_ids: list[int]) -> None:
    """One send task per delivery, queued once the rows are committed (the worker must see them). A broker
    outage leaves them pending; the beat sweep queues them later."""
    if not delivery_ids:
        return
    from scorecards.tasks import scorecard_send

    def send() -> None:
        for delivery_id in delivery_ids:
            try:
                scorecard_send.apply_async((tenant_id, delivery_id))
            except Exception:  # noqa: BLE001
                logger.exception("could not queue scorecard delivery %s; the sweep will", delivery_id)

    transaction.on_commit(send)


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


def scorecard_deliveries_sweep(*, now: datetime.datetime | None = None) -> dict[str, int]:
    """The beat's safety net, across tenants: re-queue deliveries whose task message was lost (pending
    for longer than STALE_GRACE, or retrying and overdue by it), and close rows stuck in "sending" past
    their lease as failed (at most once: the email may have left, so it is not re-sent automatically)."""
    now = now or timezone.now()
    cutoff = now - STALE_GRACE
    error = STUCK_ERROR
    lost: list[tuple[int, int]] = []
    failed_stuck = 0
    # RLS shows the app role one tenant at a time: each tenant's rows are read and closed inside it (two
    # indexed queries per tenant, every 15 minutes).
    for tenant_id in Tenant.objects.order_by("pk").values_list("pk", flat=True):
        with transaction.atomic(), context.tenant_context(tenant_id):
            if len(lost) < _STALE_BATCH:
                lost += (
                    ScorecardDelivery.objects.filter(
                        Q(status=DeliveryStatus.PENDING, created_at__lt=cutoff, next_attempt_at__isnull=True)
                        | Q(status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING], next_attempt_at__lt=cutoff)
                    )
                    .order_by("pk")
                    .values_list("tenant_id", "pk")[: _STALE_BATCH - len(lost)]
                )
            closed = list(
                ScorecardDelivery.objects.select_for_update(skip_locked=True)
                .filter(status=DeliveryStatus.SENDING, next_attempt_at__lt=now)
                .order_by("pk")
                .values_list("pk", "user_id", "week", "email", "attempts")[:_STALE_BATCH]
            )
            if not closed:
                continue
            failed_stuck += len(closed)
            ScorecardDelivery.objects.filter(pk__in=[row[0] for row in closed]).update(
                status=DeliveryStatus.FAILED, last_error=error, next_attempt_at=None
            )
            audit_record_many(
                tenant=tenant_id,
                actor=None,
                events=[
                    {
                        "action": "scorecard_delivery.fail",
                        "object_type": "scorecards.scorecarddelivery",
                        "object_id": pk,
                        "after": {
                            "user_id": user_id,
                            "week": week,
                            "email": email,
                            "attempts": attempts,
                            "error": error,
                        },
                    }
                    for pk, user_id, week, email, attempts in closed
                ],
            )
    if lost:
        from scorecards.tasks import scorecard_send

        for tenant_id, pk in lost:
            scorecard_send.apply_async((tenant_id, pk))
        logger.warning("re-queued %s scorecard deliveries whose message was lost", len(lost))
    return {"requeued": len(lost), "stuck_failed": failed_stuck}


# --- Subscriptions ----------------------------------------------------------------------------------------
UNSUBSCRIBE_VIA = ("link", "one-click")


def _subscription_view(enabled: bool, segment_ids: list[int], *, explicit: bool) -> dict:
    # What the audit trail shows: the choice, and whether it was the role's default or a recorded row.
    return {"enabled": enabled, "segment_ids": segment_ids, "explicit": explicit}


def _clean_segment_ids(segment_ids) -> list[int]:
    """Distinct, sorted ids of the current tenant's segments; anything else names the field. Another
    tenant's segment id reads exactly like one that does not exist (the tenant manager filters it)."""
    from segments.models import Segment

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
    from cs_platform.tenancy.models import Membership

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
