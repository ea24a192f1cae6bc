"""What the benchmark scripts share: the environment they run in, the owner connection to their own
database, and the way they print. Each script keeps its own dataset and measurements."""

from __future__ import annotations

import os
import sys
from urllib.parse import urlparse, urlunparse

# The same defaults as the Makefile's TEST_ENV, so a script also runs without `make`.
DEFAULT_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": "test-only-secret-key-never-used-in-production-0123456789abcdef",
    "SECURE_SSL_REDIRECT": "false",
    "SESSION_COOKIE_SECURE": "false",
    "CSRF_COOKIE_SECURE": "false",
    "STATIC_MANIFEST": "0",
    "DATABASE_URL": "postgres://cs_app_test@127.0.0.1:5432/cs_platform",
    "DATABASE_OWNER_URL": "postgres://postgres@127.0.0.1:5432/cs_platform",
}


def _with_database(url: str, name: str) -> str:
    return urlunparse(urlparse(url)._replace(path=f"/{name}"))


def configure_environment(*, script: str, database: str) -> tuple[str, str]:
    """Point DATABASE_URL / DATABASE_OWNER_URL at the benchmark's own database, before django.setup()."""
    for key, value in DEFAULT_ENV.items():
        os.environ.setdefault(key, value)
    app_url, owner_url = os.environ["DATABASE_URL"], os.environ["DATABASE_OWNER_URL"]
    if not all(urlparse(u).scheme.startswith("postgres") for u in (app_url, owner_url)):
        sys.exit(f"{script}: DATABASE_URL and DATABASE_OWNER_URL must be postgres:// URLs (see the Makefile).")
    os.environ["DATABASE_URL"] = _with_database(app_url, database)
    os.environ["DATABASE_OWNER_URL"] = _with_database(owner_url, database)
    os.environ["DJANGO_SETTINGS_MODULE"] = "cs_platform.settings"
    return os.environ["DATABASE_URL"], os.environ["DATABASE_OWNER_URL"]


def owner_connect(owner_url: str, dbname: str | None = None, *, script: str = "bench"):
    import psycopg2

    url = urlparse(owner_url)
    try:
        return psycopg2.connect(
            dbname=dbname or url.path.lstrip("/"), user=url.username, password=url.password,
            host=url.hostname, port=url.port or 5432, connect_timeout=10,
        )  # fmt: skip
    except psycopg2.OperationalError as exc:
        sys.exit(
            f"{script}: cannot reach PostgreSQL at {url.hostname}:{url.port or 5432} as {url.username!r}: "
            f"{str(exc).strip()}\nStart PostgreSQL (or set DATABASE_OWNER_URL) and run again."
        )


def ensure_database(owner_url: str, *, database: str, drop: bool, script: str = "bench") -> bool:
    """Create the benchmark database if missing (dropping it first when asked). True when created."""
    from psycopg2 import sql

    conn = owner_connect(owner_url, dbname="postgres", script=script)
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            if drop:
                cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database])
            if cursor.fetchone() is not None:
                return False
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
            return True
    finally:
        conn.close()


def vacuum_analyze(owner, tables) -> None:
    owner.commit()
    owner.autocommit = True
    try:
        with owner.cursor() as cursor:
            for table in tables:
                cursor.execute(f"VACUUM ANALYZE {table}")  # noqa: S608 - fixed table names
    finally:
        owner.autocommit = False


# --- Output ---------------------------------------------------------------------------------------------
def say(message: str = "") -> None:
    print(message, flush=True)


def heading(title: str) -> None:
    say()
    say(f"== {title} " + "=" * max(0, 96 - len(title)))


def row(label: str, value: str, note: str = "") -> None:
    say(f"  {label:<46} {value:>14}  {note}".rstrip())
