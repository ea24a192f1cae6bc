"""Delivery of the weekly scorecard email on the platform's delivery outbox (cs_platform.outbox): the
week's rows (one per member), one email built and sent (what the `scorecards.send` task runs), and the
sweep of lost messages and dead workers.

Guarantee: each (tenant, user, week) has one ScorecardDelivery row, and a row is sent by whoever claims it
(moves it to "sending": one conditional UPDATE), so a second beat tick, a duplicated task message or a
retry never sends twice. A message carries no attempt number, so it claims only a row that is due; one
that comes early is put back for the due time (outbox.NOT_DUE). Delivery is AT MOST ONCE: a worker that
dies between the SMTP server's "250 OK" and the database update leaves the row in "sending"; after
SENDING_LEASE the sweep marks it "failed" with an error that says the email may have gone out
(outbox.LostLease.FAIL), and it is only sent again if an admin presses "retry now".
The one window smtplib cannot close: the server accepts the message but its reply is lost (connection
reset after the final "."). smtplib raises, we record "retrying", and the retry could duplicate; the
Message-ID is the same on every attempt of a delivery, so mailbox providers that collapse duplicates do."""

from __future__ import annotations

import dataclasses
import datetime
import logging
import smtplib
import threading
import time
from typing import Any

from django.conf import settings
from django.core.mail import get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.message import EmailMessage
from django.db import transaction
from django.utils import timezone
from django.utils.html import escape

from cs_platform import outbox
from cs_platform.audit.services import audit_record, audit_record_many
from cs_platform.outbox import DeliveryStatus
from cs_platform.tenancy import context
from cs_platform.tenancy.policy import Capability
from scorecards import email as scorecard_email
from scorecards import tokens
from scorecards.content import weekly_scorecard
from scorecards.models import ScorecardDelivery
from scorecards.recipients import ScorecardRecipient, recipient_now, scorecard_recipients
from scorecards.weeks import IsoWeek

logger = logging.getLogger(__name__)

SENDING_LEASE = datetime.timedelta(minutes=15)  # longer than the send task's hard time limit
SMTP_TIMEOUT_SECONDS = 30
# The error of a row whose worker stopped mid-send: "retry all failed" leaves these alone
# (scorecards.services.scorecard_deliveries_retry_failed).
STUCK_ERROR = (
    "The worker stopped while sending (after the lease of "
    f"{int(SENDING_LEASE.total_seconds() // 60)} min): the email may or may not have been delivered, so it "
    "is not re-sent automatically. Use retry now to send it again."
)
OUTBOX = outbox.Outbox(
    model=ScorecardDelivery,
    settings_prefix="SCORECARD",
    lease=SENDING_LEASE,
    on_lost_lease=outbox.LostLease.FAIL,
    lost_lease_error=STUCK_ERROR,
)
_ERROR_CHARS = 1000


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
            ScorecardDelivery.objects.filter(outbox.due(now), week=str(week))
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
        return tokens.unsubscribe_url(tenant, user)
    except Exception:  # noqa: BLE001 - no URL route yet: the email goes out without the link
        logger.warning("no unsubscribe URL for user %s; sending without it", getattr(user, "pk", user))
        return None


class ScorecardViews:
    """What emails of a batch share. Every whole-tenant reader (admin, executive, compliance, viewer) with
    the same role and segment choice sees the same figures, so their WeeklyScorecard is computed once and only
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
        url = unsubscribe_url or ""
        return dataclasses.replace(
            template,
            text=template.text.replace(cls._NAME, name).replace(cls._URL, url),
            html=template.html.replace(cls._NAME, escape(name)).replace(cls._URL, escape(url)),
        )

    def render(self, *, tenant, recipient: ScorecardRecipient, week: IsoWeek, unsubscribe_url: str | None):
        render_scorecard = scorecard_email.render_scorecard
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
) -> tuple[scorecard_email.RenderedScorecard, EmailMessage]:
    """(rendered, message) of `recipient`'s email for `week`, built from what their role sees. `to`
    overrides the address (test sends); a redirected email carries no unsubscribe link, since that link
    would unsubscribe the recipient, not whoever reads the test copy. `views` shares the figures and the
    rendering between recipients who see the same thing (batches: the command, the workers)."""
    unsubscribe = _unsubscribe_url(tenant, recipient.user) if with_unsubscribe else None
    if views is None:
        rendered = scorecard_email.render_scorecard(_scorecard_of(tenant, recipient, week), unsubscribe_url=unsubscribe)
    else:
        rendered = views.render(tenant=tenant, recipient=recipient, week=week, unsubscribe_url=unsubscribe)
    message = scorecard_email.scorecard_message(
        rendered, to=to or recipient.email, unsubscribe_url=unsubscribe, connection=connection
    )
    if message_id:
        message.extra_headers["Message-ID"] = message_id
    return rendered, message


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
        # Written only while the row is still this attempt's; the audit event records what happened anyway.
        OUTBOX.finish(
            delivery.pk,
            attempt=delivery.attempts,
            status=status,
            next_attempt_at=next_attempt_at,
            last_error=error,
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
    now = now or timezone.now()
    with context.tenant_context(tenant):
        if not OUTBOX.claim(delivery_id, now=now, due_only=due_only):
            # A message that came before its row is due (clock skew between hosts, a sweep message racing
            # the scheduled one) says when the row is due, so the task can come back then instead of
            # leaving the email to the sweep. One query, on this path only.
            waiting = OUTBOX.due_later(delivery_id, now=now) if due_only else None
            if waiting is not None:
                return SendOutcome(delivery_id=delivery_id, status=outbox.NOT_DUE, next_attempt_at=waiting)
            return SendOutcome(delivery_id=delivery_id, status=outbox.NOT_CLAIMED)
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
        after = OUTBOX.after_failure(delivery.attempts, permanent=_permanent(exc))
        if after.status == DeliveryStatus.FAILED:
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
        _finish(
            tenant,
            delivery,
            status=DeliveryStatus.RETRYING,
            error=error,
            next_attempt_at=after.at,
            audit_action="scorecard_delivery.retry_scheduled",
            extra={"retry_in_seconds": round(after.retry_in, 1)},
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
            retry_in=after.retry_in,
            error=error,
            next_attempt_at=after.at,
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


def _audit_lost_leases(tenant_id: int, rows: list[ScorecardDelivery]) -> None:
    audit_record_many(
        tenant=tenant_id,
        actor=None,
        events=[
            {
                "action": "scorecard_delivery.fail",
                "object_type": "scorecards.scorecarddelivery",
                "object_id": row.pk,
                "after": {
                    "user_id": row.user_id,
                    "week": row.week,
                    "email": row.email,
                    "attempts": row.attempts,
                    "error": STUCK_ERROR,
                },
            }
            for row in rows
        ],
    )


def scorecard_deliveries_sweep(*, enqueue: outbox.Enqueue, now: datetime.datetime | None = None) -> dict[str, int]:
    """The beat's safety net, across tenants (the outbox's sweep): re-queue deliveries whose task message
    was lost, and close rows stuck in "sending" past their lease as failed, audited (at most once: the
    email may have left, so it is not re-sent automatically)."""
    result = OUTBOX.sweep(enqueue=enqueue, now=now, on_failed=_audit_lost_leases)
    return {"requeued": result.requeued, "stuck_failed": result.lease_failed}
