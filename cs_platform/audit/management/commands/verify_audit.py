from django.core.management.base import BaseCommand, CommandError

from cs_platform.audit.selectors import audit_chain_verify
from cs_platform.tenancy.models import Tenant


class Command(BaseCommand):
    help = "Verify a tenant's audit hash chain; exits non-zero naming the first bad event."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="Tenant slug.")

    def handle(self, *args, tenant, **options):
        found = Tenant.objects.filter(slug=tenant).first()
        if found is None:
            known = ", ".join(Tenant.objects.order_by("slug").values_list("slug", flat=True)) or "none"
            raise CommandError(f"Unknown tenant slug {tenant!r}. Known tenants: {known}.")
        report = audit_chain_verify(tenant=found)
        if not report.ok:
            raise CommandError(
                f"Audit chain of {found.slug} is BROKEN at event #{report.bad_seq} (id {report.bad_event_id}): "
                f"{report.problem}. {report.checked} events before it verified."
            )
        self.stdout.write(self.style.SUCCESS(f"Audit chain of {found.slug} intact: {report.checked} events verified."))
