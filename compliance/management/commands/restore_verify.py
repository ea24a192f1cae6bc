"""Verify a restored database (and its evidence files) before anyone relies on it.

    DATABASE_URL=postgres://cs_app:...@host/cs_platform_restored MEDIA_ROOT=/srv/restored-media \
        python manage.py restore_verify

Checks, and prints per tenant: the audit trail's hash chain and every signed checkpoint (what
`verify_audit` checks), each evidence file present under MEDIA_ROOT with the SHA-256 recorded at upload,
and for the database: the app role exists without SUPERUSER/BYPASSRLS with its grants, every tenant
table forces Row-Level Security with the tenant policy, the audit tables are append-only. Exits 1 naming
every problem; README "Backup and restore". Lives in compliance: the one app that may read both the audit
trail (cs_platform) and the evidence rows, below the layers that use them.
"""

from __future__ import annotations

import hashlib

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from compliance.selectors import evidence_files
from cs_platform.audit.selectors import audit_chain_verify
from cs_platform.tenancy import context
from cs_platform.tenancy.integrity import app_role_problems, rls_problems, tenant_tables
from cs_platform.tenancy.models import Tenant
from cs_platform.tenancy.roles import app_role_name

# Problems listed per tenant and kind; the rest are counted (a lost media volume is every file).
SHOWN = 20


def _sha256(field) -> str:
    digest = hashlib.sha256()
    with field.storage.open(field.name, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class Command(BaseCommand):
    help = (
        "After a restore: verify every tenant's audit chain and signed checkpoints, the evidence files' checksums, "
        "the app role and Row-Level Security. Prints a report per tenant; exits 1 on any problem."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", action="append", metavar="SLUG", help="Only this tenant (repeatable).")
        parser.add_argument(
            "--require-checkpoints",
            action="store_true",
            help="A tenant with audit events and no verified signed checkpoint is a problem, not a warning.",
        )
        parser.add_argument(
            "--skip-files", action="store_true", help="Do not check evidence files (a database restored without media)."
        )

    def handle(self, *args, tenant=None, require_checkpoints=False, skip_files=False, **options):
        if connection.vendor != "postgresql":
            raise CommandError("restore_verify checks a PostgreSQL database (DATABASE_URL is not postgres://).")
        problems = 0
        role = app_role_name()
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_database(), current_user")
            database, user = cursor.fetchone()
        self.stdout.write(f"Database {database} (connected as {user}):")
        found = app_role_problems(role) + rls_problems(role)
        problems += self._lines("database", found)
        if not found:
            self.stdout.write(
                f"  {'roles and RLS':<14} app role {role!r} NOSUPERUSER NOBYPASSRLS with its grants; RLS forced with "
                f"the tenant policy on {len(tenant_tables())} tables; audit tables append-only"
            )
        tenants = Tenant.objects.order_by("slug")
        if tenant:
            tenants = tenants.filter(slug__in=tenant)
            missing = sorted(set(tenant) - set(tenants.values_list("slug", flat=True)))
            problems += self._lines("database", [f"no tenant {slug!r}" for slug in missing])
        tenants = list(tenants)
        if not tenants:
            problems += self._lines("database", ["no tenants in this database"])
        for each in tenants:
            problems += self._tenant(each, require_checkpoints=require_checkpoints, skip_files=skip_files)
        if problems:
            raise CommandError(f"Restore NOT verified: {problems} problem(s) above ({len(tenants)} tenants checked).")
        self.stdout.write(self.style.SUCCESS(f"Restore verified: {len(tenants)} tenants, no problems."))

    def _lines(self, scope: str, problems: list[str]) -> int:
        for message in problems[:SHOWN]:
            self.stdout.write(self.style.ERROR(f"  PROBLEM ({scope}): {message}"))
        if len(problems) > SHOWN:
            self.stdout.write(self.style.ERROR(f"  ... and {len(problems) - SHOWN} more {scope} problems"))
        return len(problems)

    def _tenant(self, tenant: Tenant, *, require_checkpoints: bool, skip_files: bool) -> int:
        self.stdout.write(f"Tenant {tenant.slug} ({tenant.name}):")
        problems: list[str] = []
        report = audit_chain_verify(tenant=tenant)
        for problem in report.problems:
            problems.append(f"audit trail broken at {problem.where}: {problem.message}")
        if report.ok:
            if report.newest_checkpoint is None:
                covered = "no signed checkpoint"
            else:
                number, seq, created_at = report.newest_checkpoint
                covered = f"{report.checkpoints} signed checkpoints verified, newest {number} covering #{seq}"
            self.stdout.write(f"  {'audit trail':<14} intact: {report.checked} events; {covered}")
        for warning in report.warnings:
            if require_checkpoints and warning.startswith("no verified checkpoint"):
                problems.append(f"audit trail: {warning}")
            else:
                self.stdout.write(self.style.WARNING(f"  {'warning':<14} {warning}"))
        if not skip_files:
            problems += self._evidence(tenant)
        count = self._lines(tenant.slug, problems)
        self.stdout.write(self.style.SUCCESS("  => OK") if not count else self.style.ERROR(f"  => {count} problem(s)"))
        return count

    def _evidence(self, tenant: Tenant) -> list[str]:
        problems, checked = [], 0
        with context.tenant_context(tenant):
            for evidence in evidence_files().iterator(chunk_size=500):
                where = f"evidence {evidence.pk} ({evidence.filename!r}, {evidence.file.name})"
                if not evidence.file.storage.exists(evidence.file.name):
                    problems.append(f"{where}: file missing under MEDIA_ROOT")
                    continue
                actual = _sha256(evidence.file)
                if actual != evidence.checksum_sha256:
                    problems.append(
                        f"{where}: checksum mismatch, recorded {evidence.checksum_sha256[:12]}…, file {actual[:12]}…"
                    )
                    continue
                checked += 1
        if not problems:
            self.stdout.write(f"  {'evidence':<14} {checked} files present, SHA-256 matches the recorded checksum")
        return problems
