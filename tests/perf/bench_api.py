#!/usr/bin/env python
"""Benchmark of the REST API (issue #5): list latency with a Bearer token and 10,000-row bulk ingest.

Targets (DESIGN.md): a 10,000-row KPI measurement bulk ingest (validation included) under 2 s on
PostgreSQL, and a median under 50 ms for `GET /api/v1/accounts/?page_size=100` on a 10,000-account
tenant; each is printed as met or MISSED. `/api/v1/health-scores/latest/?page_size=100` is reported too.

    make bench                                           # every tests/perf/bench_*.py
    .venv/bin/python tests/perf/bench_api.py --requests 20 --iterations 3   # quicker
    .venv/bin/python tests/perf/bench_api.py --rebuild   # regenerate the dataset

It uses its own small database (cs_platform_bench_api, created if missing, migrated as the owner): one
tenant made by tenant_create (reference data) with the dashboards benchmark's users and accounts, and
one health snapshot per account for today (tests/perf/datagen.py, api_shape).
No other data: the figures are about the API layer, and the bulk target is about the write path.
Requests are served in-process (django.test.Client) as the app role (NOBYPASSRLS), so Row-Level
Security is in force. Each bulk iteration writes 10,000 fresh (account, KPI, day) rows; the rows the
script wrote are deleted (untimed) before the first iteration. Prints figures; asserts nothing.
See tests/perf/README.md ("API").
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.perf import datagen  # noqa: E402 - needs ROOT on sys.path
from tests.perf.benchlib import (  # noqa: E402 - needs ROOT on sys.path
    bench_database,
    heading,
    open_database,
    p95,
    read_dataset,
    row,
    say,
    setup_django,
    start,
    vacuum_analyze,
    write_dataset,
)

BENCH_DB = bench_database("cs_platform_bench_api")
BULK_TARGET_S = 2.0
LIST_TARGET_MS = 50  # median of a 100-row page of accounts
SOURCE = "bench-api"

_COMPONENTS = json.dumps(
    [
        {
            "measure": "kpi_attainment",
            "weight": 30.0,
            "raw": 66.7,
            "score": 66.7,
            "effective_weight": 30.0,
            "contribution": 20.0,
            "band": "yellow",
            "missing": False,
            "facts": {"met": 2, "of": 3, "kpis": [{"kpi": "uptime", "value": 99.9, "met": True}]},
        },
        {
            "measure": "nps",
            "weight": 20.0,
            "raw": 35.0,
            "score": 67.5,
            "effective_weight": 20.0,
            "contribution": 13.5,
            "band": "yellow",
            "missing": False,
            "facts": {"n": 14},
        },
        {
            "measure": "mttr",
            "weight": 15.0,
            "raw": 6.5,
            "score": 80.0,
            "effective_weight": 15.0,
            "contribution": 12.0,
            "band": "green",
            "missing": False,
            "facts": {"n": 4},
        },
        {
            "measure": "escalations",
            "weight": 15.0,
            "raw": 1.0,
            "score": 75.0,
            "effective_weight": 15.0,
            "contribution": 11.25,
            "band": "green",
            "missing": False,
            "facts": {},
        },
        {
            "measure": "renewal",
            "weight": 20.0,
            "raw": 120.0,
            "score": 90.0,
            "effective_weight": 20.0,
            "contribution": 18.0,
            "band": "green",
            "missing": False,
            "facts": {},
        },
    ]
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=10_000, help="accounts of the tenant (10000)")
    parser.add_argument("--requests", type=int, default=50, help="timed GET requests per list (50)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed requests first (3)")
    parser.add_argument("--rows", type=int, default=10_000, help="rows per bulk request (10000)")
    parser.add_argument("--iterations", type=int, default=10, help="timed bulk requests (10)")
    parser.add_argument("--rebuild", action="store_true", help="drop the benchmark database and regenerate")
    parser.add_argument("--profile", metavar="FILE", help="cProfile the first bulk request into FILE")
    parser.add_argument("--skip-lists", action="store_true", help="time the bulk ingest only")
    args = parser.parse_args(argv)
    if args.accounts < 100:
        parser.error("--accounts must be at least 100")
    return args


def build(owner, *, accounts: int, day: datetime.date) -> dict:
    """The tenant with the dashboards benchmark's members and accounts, and one health snapshot per
    account for `day` (datagen.api_shape)."""
    shape = datagen.api_shape(accounts, components=_COMPONENTS)
    tenant, users = datagen.create_tenant(name="API Bench", slug="api-bench", members=shape.members)
    datagen.generate(owner, tenant=tenant, users=users, shape=shape, day=day, seed=42)
    return {"tenant_id": tenant.pk, "admin_id": users["admin"][0], "accounts": accounts}


def snapshots(owner, *, tenant, accounts: int, day: datetime.date) -> None:
    """The day's snapshots of a dataset built on an earlier day, so the latest date is today's."""
    with owner.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM metrics_healthsnapshot WHERE tenant_id = %s AND snapshot_date = %s LIMIT 1", [tenant.pk, day]
        )
        present = cursor.fetchone() is not None
    owner.commit()
    if not present:
        shape = datagen.api_shape(accounts, components=_COMPONENTS)
        datagen.generate(owner, tenant=tenant, users={}, shape=shape, day=day, seed=42, only=["health history"])


def time_list(client, url: str, auth: dict, *, requests: int, warmup: int) -> tuple[list[float], int, str]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(warmup):
        response = client.get(url, **auth)
        if response.status_code != 200:
            return [], response.status_code, response.content[:200].decode("utf-8", "replace")
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(url, **auth)
        times.append((time.perf_counter() - started) * 1000.0)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, **auth)
    return times, len(captured.captured_queries), f"{len(response.json().get('results', []))} rows"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _, owner_url = start(
        script="bench_api", database=BENCH_DB, title=f"API benchmark: {args.accounts:,} accounts, database {BENCH_DB}"
    )

    def unfit(meta: dict) -> str | None:  # no dataset yet: build it in the database as it is
        if meta and meta.get("accounts") != args.accounts:
            return f"the dataset has {meta.get('accounts')} accounts, {args.accounts} asked for"
        return None

    owner, meta = open_database(
        owner_url, database=BENCH_DB, script="bench_api", rebuild=args.rebuild, read_meta=read_dataset, unfit=unfit
    )

    seconds = setup_django(test_client=True)
    read_dataset(owner)  # creates bench_meta in a database just created
    row("migrate + create_app_role", f"{seconds:.1f} s")
    from django.contrib.auth import get_user_model
    from django.test import Client

    from api.services import api_token_create
    from cs_platform.tenancy import context
    from cs_platform.tenancy.models import Tenant
    from segments.models import KpiDefinition

    today = datetime.date.today()
    heading("Dataset")
    if not meta:
        started = time.perf_counter()
        meta = build(owner, accounts=args.accounts, day=today)
        meta["day"] = today.isoformat()
        write_dataset(owner, meta)
        vacuum_analyze(owner, ["accounts_account", "metrics_healthsnapshot"])
        row("generated", f"{args.accounts:,} accounts", f"{time.perf_counter() - started:.1f} s")
    else:
        row("reused (--rebuild to regenerate)", f"{meta['accounts']:,} accounts", f"built {meta['day']}")
    tenant = Tenant.objects.get(pk=meta["tenant_id"])
    snapshots(owner, tenant=tenant, accounts=meta["accounts"], day=today)
    admin = get_user_model().objects.get(pk=meta["admin_id"])
    _, plaintext = api_token_create(
        tenant=tenant,
        name=f"bench {time.time():.0f}",
        actor=admin,
        scopes=["accounts:read", "metrics:read", "metrics:write", "health:read"],
    )
    auth = {"HTTP_AUTHORIZATION": f"Bearer {plaintext}"}
    client = Client()

    heading(f"GET, {args.requests} requests after {args.warmup} warm-up (Bearer token, django.test.Client, app role)")
    say(f"  {'endpoint':<46} {'median':>9} {'p95':>9} {'queries':>8}  note")
    for url in (
        () if args.skip_lists else ("/api/v1/accounts/?page_size=100", "/api/v1/health-scores/latest/?page_size=100")
    ):
        times, queries, note = time_list(client, url, auth, requests=args.requests, warmup=args.warmup)
        if not times:
            say(f"  {url:<46} {'-':>9} {'-':>9} {'-':>8}  status {queries}: not available ({note[:80]!r})")
            continue
        if url.startswith("/api/v1/accounts/"):
            verdict = "met" if statistics.median(times) < LIST_TARGET_MS else "MISSED"
            note = f"{note}; median {verdict} (target < {LIST_TARGET_MS} ms)"
        say(f"  {url:<46} {statistics.median(times):>7.1f}ms {p95(times):>7.1f}ms {queries:>8}  {note}")

    heading(
        f"POST /api/v1/measurements/bulk, {args.rows:,} fresh rows, {args.iterations} iterations "
        f"(target < {BULK_TARGET_S:.0f} s)"
    )
    with owner.cursor() as cursor:
        cursor.execute("DELETE FROM metrics_kpimeasurement WHERE tenant_id = %s", [tenant.pk])
        cursor.execute("SELECT id, segment_id FROM accounts_account WHERE tenant_id = %s ORDER BY id", [tenant.pk])
        accounts = cursor.fetchall()
    owner.commit()
    with context.tenant_context(tenant):
        first_kpi = {}
        for pk, segment_id in KpiDefinition.objects.order_by("sort_order", "pk").values_list("pk", "segment_id"):
            first_kpi.setdefault(segment_id, pk)
    warm = [{"account": accounts[0][0], "kpi": first_kpi[accounts[0][1]], "measured_on": today.isoformat(), "value": 1}]
    client.post("/api/v1/measurements/bulk", json.dumps({"rows": warm}), content_type="application/json", **auth)
    times: list[float] = []
    cpus: list[float] = []
    for iteration in range(args.iterations):
        day = (today - datetime.timedelta(days=iteration + 1)).isoformat()
        rows = [
            {"account": pk, "kpi": first_kpi[segment], "measured_on": day, "value": (pk * 7 + iteration) % 1000 + 0.5}
            for pk, segment in (accounts[i % len(accounts)] for i in range(args.rows))
        ]
        if args.rows > len(accounts):  # more rows than accounts: spread them over earlier days
            for i, item in enumerate(rows):
                item["measured_on"] = (
                    today - datetime.timedelta(days=1 + iteration + args.iterations * (i // len(accounts)))
                ).isoformat()
        body = json.dumps({"rows": rows})
        profiler = None
        if args.profile and iteration == 0:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        started, cpu = time.perf_counter(), time.process_time()
        response = client.post(
            "/api/v1/measurements/bulk",
            body,
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=f"bench-{day}",
            **auth,
        )
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
        if response.status_code != 201:
            say(f"  iteration {iteration + 1}: status {response.status_code} {response.content[:300]!r}")
            break
        times.append(seconds)
        cpus.append(cpu)
        row(
            f"  iteration {iteration + 1}",
            f"{seconds:.2f} s",
            f"{response.json()['stored']:,} stored, {len(body):,} bytes, Django process CPU {cpu:.2f} s",
        )
    if times:
        load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
        row("load average (1, 5, 15 min)", load, f"on {os.cpu_count()} CPUs: other work slows every figure")
        median = statistics.median(times)
        row("bulk ingest, median", f"{median:.2f} s", "met" if median < BULK_TARGET_S else "MISSED")
        row("bulk ingest, p95", f"{p95(times):.2f} s")
        row(
            "  of which Django process CPU, median",
            f"{statistics.median(cpus):.2f} s",
            "the rest: PostgreSQL (insert, deferred foreign-key checks at commit), waiting",
        )
    with owner.cursor() as cursor:
        cursor.execute("DELETE FROM metrics_kpimeasurement WHERE tenant_id = %s", [tenant.pk])
        cursor.execute("DELETE FROM api_idempotencyrecord WHERE tenant_id = %s", [tenant.pk])
    owner.commit()
    owner.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
