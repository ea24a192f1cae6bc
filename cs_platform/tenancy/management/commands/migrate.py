"""`migrate` that connects as the owning role (DATABASE_OWNER_URL) instead of the app role."""

from django.core.management.commands.migrate import Command as MigrateCommand

from cs_platform.tenancy.roles import as_owner


class Command(MigrateCommand):
    help = MigrateCommand.help + " Runs as the schema owner role from DATABASE_OWNER_URL."

    def handle(self, *args, **options):
        with as_owner(options.get("database") or "default"):
            return super().handle(*args, **options)
