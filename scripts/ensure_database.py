"""Create the PostgreSQL database named in DATABASE_OWNER_URL if it does not exist (used by `make test`).

pytest-django creates its own test_<name> database; this one only has to exist so that
create_app_role can connect and grant CONNECT."""

import os
import sys
from urllib.parse import urlparse

import psycopg2
from psycopg2 import sql

url = urlparse(os.environ.get("DATABASE_OWNER_URL") or os.environ["DATABASE_URL"])
name = url.path.lstrip("/")
try:
    conn = psycopg2.connect(
        dbname="postgres", user=url.username, password=url.password, host=url.hostname, port=url.port or 5432
    )
except psycopg2.OperationalError as exc:
    sys.exit(f"Cannot reach PostgreSQL at {url.hostname}:{url.port or 5432} as {url.username}: {exc}")
conn.autocommit = True
with conn.cursor() as cursor:
    cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
    if cursor.fetchone() is None:
        cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        print(f"Created database {name}.")
conn.close()
