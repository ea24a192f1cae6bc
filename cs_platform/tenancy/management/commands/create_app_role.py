"""Create (or harden) the PostgreSQL role the web app and workers connect as.

    DATABASE_OWNER_URL=postgres://owner@host/db DATABASE_URL=postgres://cs_app:PW@host/db \
        python manage.py create_app_role

The role is LOGIN, NOSUPERUSER, NOBYPASSRLS, so Row-Level Security applies to it. Its password is
taken from the password in DATABASE_URL (or --password-env VAR). Re-running is safe.
"""

import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from psycopg2 import sql

from cs_platform.tenancy.roles import app_role_name, as_owner, grant_app_role


class Command(BaseCommand):
    help = "Create the non-owner, non-BYPASSRLS database role used by the web app and workers."

    def add_arguments(self, parser):
        parser.add_argument("--role", help="Role name (default: DATABASE_APP_ROLE or the DATABASE_URL user).")
        parser.add_argument("--password-env", help="Environment variable holding the role's password.")
        parser.add_argument("--database", default="default")

    def handle(self, *args, **options):
        alias = options["database"]
        connection = connections[alias]
        if connection.vendor != "postgresql":
            raise CommandError("create_app_role only applies to PostgreSQL (DATABASE_URL is not postgres://).")
        role = options["role"] or app_role_name()
        if not role:
            raise CommandError("No role name: pass --role or set DATABASE_APP_ROLE / a user in DATABASE_URL.")
        owner_user = (settings.DATABASE_OWNER or {}).get("USER")
        if role == owner_user:
            raise CommandError(
                f"The app role {role!r} is the owner role: set DATABASE_URL to a different user than "
                "DATABASE_OWNER_URL so Row-Level Security applies to the app."
            )
        if options["password_env"]:
            password = os.environ.get(options["password_env"])
            if password is None:
                raise CommandError(f"Environment variable {options['password_env']} is not set.")
        else:
            password = connection.settings_dict.get("PASSWORD") or None
        with as_owner(alias):
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
                exists = cursor.fetchone() is not None
                verb = "ALTER" if exists else "CREATE"
                statement = sql.SQL(verb + " ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE").format(
                    sql.Identifier(role)
                )
                if password:
                    statement = statement + sql.SQL(" PASSWORD {}").format(sql.Literal(password))
                cursor.execute(statement)
                cursor.execute(
                    sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                        sql.Identifier(connection.settings_dict["NAME"]), sql.Identifier(role)
                    )
                )
            grant_app_role(connection, role)
        self.stdout.write(self.style.SUCCESS(f"{'Updated' if exists else 'Created'} app role {role!r} (NOBYPASSRLS)."))
