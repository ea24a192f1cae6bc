from django.core.management.base import BaseCommand, CommandError

from cs_platform.audit.selectors import audit_chain_verify
from cs_platform.tenancy.models import Tenant

# Problems listed after the first one; the rest are counted (a wholesale rewrite can break every checkpoint).
MORE_PROBLEMS_SHOWN = 20


class Command(BaseCommand):
    help = (
        "Verify a tenant's audit trail: the hash chain of its events, and the chain against every signed "
        "checkpoint (missing tail, rewritten events, forged, unknown-key or missing checkpoints). Exits non-zero "
        "naming the first problem."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="Tenant slug.")

    def handle(self, *args, tenant, **options):
        found = Tenant.objects.filter(slug=tenant).first()
        if found is None:
            known = ", ".join(Tenant.objects.order_by("slug").values_list("slug", flat=True)) or "none"
            raise CommandError(f"Unknown tenant slug {tenant!r}. Known tenants: {known}.")
        report = audit_chain_verify(tenant=found)
        for warning in report.warnings:
            self.stderr.write(self.style.WARNING(f"Warning: {warning}."))
        if not report.ok:
            first, *others = report.problems
            lines = [
                f"Audit trail of {found.slug} is BROKEN at {first.where}: {first.message}. "
                f"{report.checked} events before it verified."
            ]
            lines += [f"Also at {p.where}: {p.message}." for p in others[:MORE_PROBLEMS_SHOWN]]
            if len(others) > MORE_PROBLEMS_SHOWN:
                lines.append(f"... and {len(others) - MORE_PROBLEMS_SHOWN} more problems.")
            raise CommandError("\n".join(lines))
        if report.newest_checkpoint is None:
            covered = "no signed checkpoint yet"
        else:
            number, seq, created_at = report.newest_checkpoint
            covered = (
                f"{report.checkpoints} signed checkpoints verified, the newest ({number}, "
                f"{created_at:%Y-%m-%d %H:%M:%S %Z}) covering events up to #{seq}"
            )
        self.stdout.write(
            self.style.SUCCESS(f"Audit chain of {found.slug} intact: {report.checked} events verified; {covered}.")
        )
