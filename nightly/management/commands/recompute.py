"""Run the nightly engine synchronously: `python manage.py recompute --tenant SLUG|--all [--date D]`."""

import datetime
import time

from django.core.management.base import BaseCommand, CommandError

from cs_platform import bounds
from cs_platform.tenancy.clock import tenant_today
from cs_platform.tenancy.models import Tenant
from nightly import pipeline as nightly


class Command(BaseCommand):
    help = "Recompute journeys, escalations, compliance status and health snapshots for a date (default today)."

    def add_arguments(self, parser):
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--tenant", help="Tenant slug.")
        target.add_argument("--all", action="store_true", help="Every tenant, one after the other.")
        parser.add_argument("--date", help="YYYY-MM-DD (default: today in each tenant's time zone).")
        parser.add_argument("--chunk-size", type=int, default=None, help="Accounts scored per batch.")
        parser.add_argument(
            "--workers", type=int, default=None, help="Health chunks scored at once (default NIGHTLY_WORKERS)."
        )
        parser.add_argument(
            "--backfill-weeks",
            type=int,
            default=0,
            metavar="N",
            help="First run the N weekly dates before the date (and the date 30 days before it), oldest first, "
            "so a new installation has trend history. Each date is an ordinary, idempotent nightly run.",
        )

    def handle(
        self, *args, tenant=None, all=False, date=None, chunk_size=None, workers=None, backfill_weeks=0, **options
    ):
        if not 0 <= backfill_weeks <= 104:
            raise CommandError("--backfill-weeks must be between 0 and 104.")
        if chunk_size is not None and chunk_size < 1:
            raise CommandError("--chunk-size must be a positive number.")
        if workers is not None and not 1 <= workers <= 64:
            raise CommandError("--workers must be between 1 and 64.")
        try:
            day = datetime.date.fromisoformat(date) if date else None
        except ValueError:
            raise CommandError(f"--date {date!r} is not a date in the form YYYY-MM-DD.") from None
        if day is not None and (message := bounds.date_error(day)):
            raise CommandError(f"--date {date!r}: {message}")
        if all:
            tenants = list(Tenant.objects.order_by("slug"))
        else:
            found = Tenant.objects.filter(slug=tenant).first()
            if found is None:
                known = ", ".join(Tenant.objects.order_by("slug").values_list("slug", flat=True)) or "none"
                raise CommandError(f"Unknown tenant slug {tenant!r}. Known tenants: {known}.")
            tenants = [found]
        failures = []
        for item in tenants:
            last_day = day or tenant_today(item)
            for run_day in self._dates(last_day, backfill_weeks):
                started = time.perf_counter()
                try:
                    summary = nightly.run_tenant(tenant=item, day=run_day, chunk_size=chunk_size, workers=workers)
                except Exception as exc:  # one tenant's failure never stops the others
                    failures.append(item.slug)
                    self.stderr.write(f"{item.slug} {run_day}: FAILED: {exc}")
                    break
                self.stdout.write(self._describe(item, run_day, summary, time.perf_counter() - started))
        if failures:
            raise CommandError(f"Recompute failed for: {', '.join(failures)} (see the errors above).")

    @staticmethod
    def _dates(last_day: datetime.date, weeks: int) -> list[datetime.date]:
        """The weekly dates the dashboards' band trend reads, plus the day 30 days back that the 30-day
        change compares with, oldest first, then `last_day` itself."""
        if not weeks:
            return [last_day]
        back = {7 * week for week in range(1, weeks + 1)} | {30}
        return [last_day - datetime.timedelta(days=days) for days in sorted(back, reverse=True)] + [last_day]

    @staticmethod
    def _describe(tenant, day, summary, seconds: float) -> str:
        health = summary["health"]
        bands = ", ".join(f"{band} {n}" for band, n in sorted(health["bands"].items())) or "none"
        journeys = summary["journeys"]
        compliance = summary["compliance"]
        return (
            f"{tenant.slug} {day}: {health['accounts']} accounts scored ({bands}); "
            f"journeys {journeys['journeys']} ({journeys['status_changes']} status changes); "
            f"obligations {compliance['obligations']} ({compliance['status_changes']} status changes); "
            f"{summary['escalations']['escalated']} decisions escalated; {seconds:.2f} s"
        )
