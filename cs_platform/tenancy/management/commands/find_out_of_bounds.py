"""List the rows whose dates lie outside the platform's bounds (issue #15).

Since the bounds are enforced (cs_platform.bounds) no such row can be written; this finds the ones
written before, tenant by tenant, so an operator can correct or remove them. A timestamp outside Python's
years 1-9999 makes every page and API list that reads its row fail, so those are the urgent ones.
Exits 1 when it finds any (for monitoring), 0 otherwise."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from cs_platform import bounds
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Tenant
from cs_platform.tenancy.selectors import out_of_bounds_dates


class Command(BaseCommand):
    help = (
        f"List rows whose dates lie outside {bounds.MIN_DATE.isoformat()} to {bounds.MAX_DATE.isoformat()} "
        "(stored before the bounds were enforced). Exits 1 when there are any."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="The tenant's slug; every tenant when left out.")

    def handle(self, *args, tenant: str | None = None, **options):
        tenants = Tenant.objects.order_by("slug")
        if tenant:
            tenants = tenants.filter(slug=tenant)
            if not tenants.exists():
                raise CommandError(f"No tenant with the slug {tenant!r}.")
        total = 0
        for current in tenants:
            # One tenant at a time, in its own context: Row-Level Security shows each its own rows.
            with context.tenant_context(current):
                rows = out_of_bounds_dates()
            for label, field, pk, stored in rows:
                self.stdout.write(f"{current.slug}\t{label}\t#{pk}\t{field}\t{stored}")
            total += len(rows)
        if total:
            raise CommandError(
                f"{total} row(s) with a date outside {bounds.MIN_DATE.isoformat()} to {bounds.MAX_DATE.isoformat()}."
            )
        self.stdout.write("No row has a date outside the bounds.")
