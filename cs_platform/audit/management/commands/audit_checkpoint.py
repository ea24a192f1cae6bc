from django.core.management.base import BaseCommand, CommandError

from cs_platform.audit.models import CheckpointReason
from cs_platform.audit.services import audit_checkpoint_create
from cs_platform.tenancy.models import Tenant


class Command(BaseCommand):
    help = "Sign the audit chain head of a tenant (or of every tenant) now, as beat does every interval."

    def add_arguments(self, parser):
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--tenant", help="Tenant slug.")
        target.add_argument("--all", action="store_true", dest="every", help="Every tenant.")

    def handle(self, *args, tenant: str | None, every: bool, **options):
        tenants = list(Tenant.objects.order_by("slug")) if every else list(Tenant.objects.filter(slug=tenant))
        if not tenants:
            known = ", ".join(Tenant.objects.order_by("slug").values_list("slug", flat=True)) or "none"
            raise CommandError(f"Unknown tenant slug {tenant!r}. Known tenants: {known}.")
        for found in tenants:
            checkpoint = audit_checkpoint_create(tenant=found, reason=CheckpointReason.MANUAL)
            self.stdout.write(
                f"{found.slug}: checkpoint {checkpoint.number} signs event #{checkpoint.seq} "
                f"(key {checkpoint.key_id[:16]}…)"
            )
