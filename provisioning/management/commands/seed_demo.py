"""Load the demo: two tenants (Northwind, Harborview) with users for every role and a year of data.

    DEBUG=true python manage.py seed_demo [--accounts 220] [--seed 2026] [--today YYYY-MM-DD]

Idempotent (existing tenants are skipped, users are get-or-create) and deterministic (same --seed and
--today give the same data). The generator lives in provisioning/demo.py.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from provisioning.demo import seeder as demo


class Command(BaseCommand):
    help = "Create two demo tenants with users for every role and a year of realistic data (idempotent)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--accounts",
            type=int,
            default=demo.DEFAULT_ACCOUNTS,
            help=f"Client accounts per tenant (default {demo.DEFAULT_ACCOUNTS}).",
        )
        parser.add_argument(
            "--seed", type=int, default=demo.DEFAULT_SEED, help=f"Random seed (default {demo.DEFAULT_SEED})."
        )
        parser.add_argument("--today", help="Date anchor YYYY-MM-DD for the year of history (default: today).")
        parser.add_argument(
            "--allow-without-debug",
            action="store_true",
            help="Seed even though DEBUG is off. The demo users share a published password: never in production.",
        )

    def handle(self, *args, accounts: int, seed: int, today: str | None, allow_without_debug: bool, **options):
        if not settings.DEBUG and not allow_without_debug:
            raise CommandError(
                "seed_demo creates users (including a superuser) whose password is published. "
                "Run it with DEBUG=true, or pass --allow-without-debug for a non-production environment."
            )
        if not 1 <= accounts <= demo.MAX_ACCOUNTS:
            raise CommandError(f"--accounts must be between 1 and {demo.MAX_ACCOUNTS}, got {accounts}.")
        try:
            anchor = demo.parse_today(today)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        started = time.perf_counter()
        try:
            reports = demo.seed_demo(today=anchor, seed=seed, accounts=accounts)
        except ValidationError as exc:  # e.g. a tenant name taken by a tenant with another slug
            raise CommandError(f"Could not seed the demo: {'; '.join(exc.messages)}") from None
        self.stdout.write(f"Demo data anchored on {anchor.isoformat()}, seed {seed}, {accounts} accounts per tenant.")
        for line in demo.format_summary(reports, time.perf_counter() - started):
            self.stdout.write(line)
        self.stdout.write("")
        for line in demo.format_logins(demo.demo_logins()):
            self.stdout.write(line)
