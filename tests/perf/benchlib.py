"""What the benchmark scripts share: the environment they run in, the owner connection to their own
database (created, recreated, migrated), the dataset's metadata, percentiles, and the way they print.
Their data comes from one generator (datagen.py); each script keeps its own measurements."""

from __future__ import annotations

import json
import math
import os
import re
import sys
import time
from collections.abc import Callable
from typing import Any
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


def bench_database(name: str) -> str:
    """A benchmark's database name, plus BENCH_DATABASE_SUFFIX when set: the suite's smoke run of the
    scripts (tests/test_benchmarks_run.py) uses its own small databases and leaves a developer's big
    datasets alone."""
    suffix = os.environ.get("BENCH_DATABASE_SUFFIX", "")
    if suffix and not re.fullmatch(r"_[a-z0-9_]{1,20}", suffix):
        sys.exit(f"BENCH_DATABASE_SUFFIX={suffix!r}: expected an underscore and up to 20 of a-z, 0-9, _")
    return name + suffix


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


def start(*, script: str, database: str, title: str) -> tuple[str, str]:
    """configure_environment(), then the heading and the PostgreSQL line every benchmark prints first."""
    app_url, owner_url = configure_environment(script=script, database=database)
    heading(title)
    row("PostgreSQL (app role, RLS in force)", urlparse(app_url).username or "?", app_url.split("@")[-1])
    return app_url, owner_url


def owner_connect(owner_url: str, dbname: str | None = None, *, script: str = "bench"):
    import psycopg2

    url = urlparse(owner_url)
    try:
        return psycopg2.connect(
            dbname=dbname or url.path.lstrip("/"),
            user=url.username,
            password=url.password,
            host=url.hostname,
            port=url.port or 5432,
            connect_timeout=10,
        )
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


def open_database(
    owner_url: str,
    *,
    database: str,
    script: str,
    rebuild: bool,
    read_meta: Callable[[Any], dict],
    unfit: Callable[[dict], str | None],
) -> tuple[Any, dict]:
    """The owner connection to the benchmark database (created if missing, dropped first on --rebuild)
    and the stored description of its dataset, to reuse. When `unfit(meta)` says why that dataset does
    not match the arguments, the database is dropped and created again and the description is {}."""
    created = ensure_database(owner_url, database=database, script=script, drop=rebuild)
    owner = owner_connect(owner_url, script=script)
    meta = {} if created else read_meta(owner)
    reason = None if created else unfit(meta)
    if reason:
        say(f"  {reason}: regenerating")
        owner.close()
        ensure_database(owner_url, database=database, script=script, drop=True)
        owner = owner_connect(owner_url, script=script)
        meta = {}
    return owner, meta


def setup_django(*, test_client: bool = False) -> float:
    """django.setup(), then migrate the benchmark database and create the app role; the seconds they
    took. With test_client, django.test.Client's host ("testserver") is allowed."""
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    started = time.perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    call_command("create_app_role", verbosity=0)
    if test_client and "testserver" not in settings.ALLOWED_HOSTS:
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    return time.perf_counter() - started


def read_dataset(owner) -> dict:
    """The dataset's description (JSON under bench_meta's "dataset" key); {} when none. Creates bench_meta."""
    with owner.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value text NOT NULL)")
        cursor.execute("SELECT value FROM bench_meta WHERE key = 'dataset'")
        found = cursor.fetchone()
    owner.commit()
    return json.loads(found[0]) if found else {}


def write_dataset(owner, meta: dict) -> None:
    with owner.cursor() as cursor:
        cursor.execute(
            "INSERT INTO bench_meta VALUES ('dataset', %s) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            [json.dumps(meta)],
        )
    owner.commit()


def vacuum_analyze(owner, tables) -> None:
    owner.commit()
    owner.autocommit = True
    try:
        with owner.cursor() as cursor:
            for table in tables:
                cursor.execute(f"VACUUM ANALYZE {table}")  # noqa: S608 - fixed table names
    finally:
        owner.autocommit = False


def p95(values: list[float]) -> float:
    """The 95th percentile, nearest rank (the slowest value for fewer than 20 samples)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


# --- Output ---------------------------------------------------------------------------------------------
def say(message: str = "") -> None:
    print(message, flush=True)


def heading(title: str) -> None:
    say()
    say(f"== {title} " + "=" * max(0, 96 - len(title)))


def row(label: str, value: str, note: str = "") -> None:
    say(f"  {label:<46} {value:>14}  {note}".rstrip())
