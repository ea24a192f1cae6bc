"""Send a tenant's weekly scorecard emails synchronously:

    python manage.py send_scorecards --tenant SLUG [--week YYYY-Www] [--dry-run] [--to EMAIL]

Without options it does what the beat does for the tenant's current week (in its time zone): prepares
one delivery per recipient (idempotent) and sends every delivery not sent yet, including retrying ones
whose next attempt is not due (the operator asked now). Sent rows are never sent again, so running it
twice sends nothing new.

A real send is refused (with the reason) for a week whose send moment has not come, and for the current
week while its send day's nightly run has not finished: the rows are one per user and week, so an early
send would leave the week's proper email unsent. --force sends anyway (the reason is still printed);
--dry-run and --to are never refused, as they record no delivery.

--dry-run builds every recipient's email and lists recipient, subject and size; it sends nothing and
writes nothing (not even delivery rows), also when combined with --to.

--to EMAIL is a test send: every recipient's email of the week is sent to EMAIL instead (subject marked
with the recipient's address), without the unsubscribe link (it would unsubscribe the recipient) and
without touching the delivery records, so the real send still happens. It is recorded in the audit
trail, since it sends the tenant's figures to an address of the operator's choosing.
"""

from __future__ import annotations

import time

from django.core.exceptions import ValidationError
from django.core.mail import get_connection
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email
from django.db import transaction

from cs_platform.outbox import DeliveryStatus
from cs_platform.tenancy import context
from cs_platform.tenancy.clock import tenant_today
from cs_platform.tenancy.models import Tenant
from scorecards import delivery, services
from scorecards import selectors as scorecard_selectors
from scorecards.recipients import scorecard_recipients
from scorecards.schedule import scorecard_send_refusal
from scorecards.weeks import IsoWeek


class Command(BaseCommand):
    help = "Send (or with --dry-run, only render) a tenant's weekly scorecard emails for an ISO week."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="Tenant slug.")
        parser.add_argument("--week", help="ISO week, e.g. 2026-W48 (default: the current week in the tenant's zone).")
        parser.add_argument("--dry-run", action="store_true", help="Render and list; send and write nothing.")
        parser.add_argument("--to", metavar="EMAIL", help="Send every recipient's email to EMAIL instead (test).")
        parser.add_argument(
            "--force",
            action="store_true",
            help="Send even before the week's send moment or its send day's nightly run (see above).",
        )

    def handle(
        self,
        *args,
        tenant: str,
        week: str | None = None,
        dry_run: bool = False,
        to: str | None = None,
        force: bool = False,
        **opts,
    ):
        found = Tenant.objects.filter(slug=tenant).first()
        if found is None:
            known = ", ".join(Tenant.objects.order_by("slug").values_list("slug", flat=True)) or "none"
            raise CommandError(f"Unknown tenant slug {tenant!r}. Known tenants: {known}.")
        if week:
            try:
                iso_week = IsoWeek.parse(week)
            except ValueError as exc:
                raise CommandError(f"--week: {exc}.") from None
        else:
            iso_week = self._current_week(found)
        if to is not None:
            try:
                validate_email(to)
            except ValidationError:
                raise CommandError(f"--to {to!r} is not an email address.") from None
        if dry_run:
            self._dry_run(found, iso_week)
        elif to:
            self._test_send(found, iso_week, to)
        else:
            refusal = scorecard_send_refusal(found, iso_week)
            if refusal and not force:
                raise CommandError(f"{refusal} Pass --force to send anyway, or --dry-run / --to to preview.")
            if refusal:
                self.stderr.write(f"--force: sending although: {refusal}")
            self._send(found, iso_week)

    @staticmethod
    def _current_week(tenant) -> IsoWeek:

        return IsoWeek.of(tenant_today(tenant))

    def _dry_run(self, tenant, week: IsoWeek) -> None:
        # Rendering only reads; the rolled-back transaction makes "writes nothing" hold whatever it calls.
        with transaction.atomic():
            recipients = scorecard_recipients(tenant=tenant)
            self.stdout.write(f"{tenant.slug} {week}: {len(recipients)} recipient(s) (dry run: nothing is sent)")
            total = 0
            views = delivery.ScorecardViews()
            for recipient in recipients:
                rendered, message = delivery.scorecard_build(tenant=tenant, recipient=recipient, week=week, views=views)
                size = len(message.message().as_bytes())
                total += size
                segments = ",".join(map(str, recipient.segment_ids)) if recipient.segment_ids else "all"
                self.stdout.write(
                    f"  {recipient.email} ({recipient.membership.role}, segments {segments}): "
                    f"{rendered.subject!r}, {size:,} bytes, {len(rendered.images)} image(s)"
                )
            self.stdout.write(f"total {total:,} bytes")
            transaction.set_rollback(True)

    def _test_send(self, tenant, week: IsoWeek, to: str) -> None:
        for email in (sent := services.scorecard_test_send(tenant=tenant, week=week, to=to)):
            self.stdout.write(f"  {email}'s email sent to {to}")
        self.stdout.write(f"{tenant.slug} {week}: {len(sent)} test email(s) sent to {to}; no delivery recorded")

    def _send(self, tenant, week: IsoWeek) -> None:
        prepared = delivery.scorecard_deliveries_prepare(tenant=tenant, week=week)
        with context.tenant_context(tenant):
            waiting = scorecard_selectors.deliveries_waiting(week)
        self.stdout.write(
            f"{tenant.slug} {week}: {prepared.recipients} recipient(s), {prepared.created} new delivery row(s), "
            f"{len(waiting)} to send"
        )
        connection = get_connection(timeout=delivery.SMTP_TIMEOUT_SECONDS)
        views = delivery.ScorecardViews()
        counts: dict[str, int] = {}
        started = time.perf_counter()
        try:
            for pk, email in waiting:
                outcome = delivery.scorecard_delivery_send(
                    tenant=tenant, delivery_id=pk, connection=connection, due_only=False, views=views
                )
                counts[outcome.status] = counts.get(outcome.status, 0) + 1
                line = f"  {email}: {outcome.status}"
                if outcome.status != DeliveryStatus.SENT:
                    connection.close()  # a broken SMTP session is reopened for the next email
                    line += f" ({outcome.error})" if outcome.error else ""
                self.stdout.write(line)
        finally:
            connection.close()
        summary = ", ".join(f"{status} {n}" for status, n in sorted(counts.items())) or "nothing to send"
        self.stdout.write(f"done in {time.perf_counter() - started:.1f} s: {summary}")
        unsent = counts.get(DeliveryStatus.RETRYING, 0) + counts.get(DeliveryStatus.FAILED, 0)
        if unsent:
            raise CommandError(
                f"{unsent} email(s) not sent; the workers retry them and /settings/weekly-email/deliveries/ shows them."
            )
