#!/usr/bin/env python
"""Benchmark of the dashboards (DESIGN.md "Performance targets", issue #4).

Target: for a tenant with 10,000 accounts and a year of data, the median server time of home (CSM
and executive), segment scorecard and account 360 over 50 requests each is under 150 ms, and each
page's query count does not grow with the number of accounts.

    make bench                                                        # every tests/perf/bench_*.py
    .venv/bin/python tests/perf/bench_dashboards.py --accounts 1000   # quick mode
    .venv/bin/python tests/perf/bench_dashboards.py --only account-csm --explain account-csm
    .venv/bin/python tests/perf/bench_dashboards.py --rebuild         # regenerate the dataset

It uses its own database (cs_platform_bench_dash, created if missing, migrated as the owner) with two
tenants of the same shape (tests/perf/datagen.py, dashboards_shape): the measured one (--accounts,
default 10,000) and a small one (--small-accounts, default 100) whose query counts are printed beside
the large one's. Data is written with set-based SQL as the owner; every request is served as the app
role (NOBYPASSRLS), so Row-Level Security is in force as in production. Benchmarks print figures; they
do not assert. See tests/perf/README.md ("Dashboards") for what each figure means.
"""

from __future__ import annotations

import argparse
import datetime
import re
import statistics
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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

BENCH_DB = bench_database("cs_platform_bench_dash")
TARGET_MS = 150.0
# Pages the target names (DESIGN.md); the others are measured too but only reported.
TARGET_PAGES = ("home-csm", "home-exec", "segment", "account-exec", "account-csm")


@dataclass(frozen=True)
class PageSpec:
    key: str
    label: str
    role: str  # which generated user requests it: csm, executive, compliance
    path: str  # with {account_id} / {segment_id} placeholders


PAGES = {
    spec.key: spec
    for spec in (
        PageSpec("home-csm", "home, CSM (their book)", "csm", "/"),
        PageSpec("home-exec", "home, executive (portfolio)", "executive", "/"),
        PageSpec("segment", "segment scorecard, executive", "executive", "/portfolio/segments/{segment_id}/"),
        PageSpec("account-exec", "account 360, executive", "executive", "/accounts/{account_id}/"),
        PageSpec("account-csm", "account 360, owning CSM", "csm", "/accounts/{account_id}/"),
        PageSpec("portfolio", "portfolio, executive", "executive", "/portfolio/"),
        PageSpec("accounts", "account list, executive", "executive", "/accounts/"),
        PageSpec("compliance", "compliance, compliance officer", "compliance", "/compliance/"),
        # The default view (open), every decision of the tenant counted per view: ~16,000 at 10,000 accounts.
        PageSpec("decisions", "decisions, executive", "executive", "/decisions/"),
        PageSpec("decisions-csm", "decisions, CSM (their book)", "csm", "/decisions/?status=overdue"),
    )
}


# --- Command line and environment ---------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=10_000, help="accounts of the measured tenant (10000)")
    parser.add_argument("--small-accounts", type=int, default=100, help="accounts of the small tenant (100)")
    parser.add_argument("--requests", type=int, default=50, help="timed requests per page (50)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed requests per page first (3)")
    parser.add_argument(
        "--budget",
        type=float,
        default=60.0,
        help="seconds per page: a slower page stops after 5 timed requests or more (60)",
    )
    parser.add_argument("--rebuild", action="store_true", help="drop the benchmark database and regenerate")
    parser.add_argument("--only", choices=sorted(PAGES), help="time this page only")
    parser.add_argument("--explain", choices=sorted(PAGES), help="EXPLAIN ANALYZE this page's slowest queries")
    parser.add_argument("--explain-top", type=int, default=3, help="queries explained with --explain (3)")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    if args.accounts < 100 or args.small_accounts < 50:
        parser.error("--accounts must be at least 100 and --small-accounts at least 50")
    if args.small_accounts >= args.accounts:
        parser.error("--small-accounts must be smaller than --accounts")
    args.requests = max(1, args.requests)
    return args


# --- The pages' arguments ------------------------------------------------------------------------------
@dataclass
class Target:
    """One tenant's users and the URLs each page is requested at."""

    name: str
    tenant_id: int
    users: dict[str, int]  # role -> user id
    urls: dict[str, list[str]] = field(default_factory=dict)


def page_targets(owner, info: dict[str, Any], *, label: str, spread: int = 50) -> Target:
    """The requesting users (the first CSM, executive and compliance officer) and the URLs: the
    largest segment; for account 360, `spread` accounts of the CSM's book (the executive sees
    `spread` accounts spread over the whole tenant)."""
    tenant_id = info["tenant_id"]
    csm = info["users"]["csm"][0]
    with owner.cursor() as cursor:
        cursor.execute(
            "SELECT segment_id FROM accounts_account WHERE tenant_id = %s GROUP BY segment_id "
            "ORDER BY count(*) DESC, segment_id LIMIT 1",
            [tenant_id],
        )
        segment_id = cursor.fetchone()[0]
        cursor.execute(
            "SELECT id FROM accounts_account WHERE tenant_id = %s AND owner_csm_id = %s ORDER BY id", [tenant_id, csm]
        )
        book = [r[0] for r in cursor.fetchall()]
        cursor.execute("SELECT id FROM accounts_account WHERE tenant_id = %s ORDER BY id", [tenant_id])
        every = [r[0] for r in cursor.fetchall()]
    owner.commit()

    def spread_over(ids: list[int]) -> list[int]:
        step = max(1, len(ids) // spread)
        return ids[::step][:spread]

    target = Target(
        name=label,
        tenant_id=tenant_id,
        users={"csm": csm, "executive": info["users"]["executive"][0], "compliance": info["users"]["compliance"][0]},
    )
    for key, spec in PAGES.items():
        if "{account_id}" in spec.path:
            ids = spread_over(book if spec.role == "csm" else every)
            target.urls[key] = [spec.path.format(account_id=pk) for pk in ids]
        else:
            target.urls[key] = [spec.path.format(segment_id=segment_id)]
    return target


# --- Requests -------------------------------------------------------------------------------------------------
@dataclass
class PageResult:
    key: str
    times_ms: list[float] = field(default_factory=list)
    queries: int | None = None
    small_queries: int | None = None
    error: str = ""
    slowest: list[tuple[float, str]] = field(default_factory=list)  # (ms, sql) of the counted request
    bytes: int = 0

    def stat(self, name: str) -> float:
        values = sorted(self.times_ms)
        if name == "median":
            return statistics.median(values)
        if name == "p95":
            return p95(values)
        return values[0] if name == "min" else values[-1]


class PageError(Exception):
    pass


def client_for(user_id: int):
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.get(pk=user_id))
    return client


def fetch(client, url: str):
    """One request; a status other than 200 or an exception raises PageError with what to show."""
    try:
        response = client.get(url)
    except Exception as exc:  # the page is being built: report it and carry on
        frames = traceback.format_exception(exc)
        raise PageError(f"exception {type(exc).__name__}: {exc}\n" + "".join(frames[-4:]).rstrip()) from exc
    if response.status_code != 200:
        body = response.content.decode("utf-8", "replace").strip().splitlines()
        location = f" -> {response.get('Location')}" if response.get("Location") else ""
        raise PageError(f"status {response.status_code}{location}\n" + "\n".join(line[:160] for line in body[:8]))
    return response


_SET_PREFIX = re.compile(r"^SELECT set_config\('app\.tenant_id'.*?; ", re.S)


def count_queries(client, url: str) -> tuple[int, list[tuple[float, str]], int]:
    """Query count of one request (CaptureQueriesContext), with each query's time and SQL."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        response = fetch(client, url)
    timed = [(float(q["time"]) * 1000.0, _SET_PREFIX.sub("", q["sql"])) for q in captured.captured_queries]
    return len(captured.captured_queries), sorted(timed, key=lambda item: -item[0]), len(response.content)


def measure_page(key: str, big: Target, small: Target, *, requests: int, warmup: int, budget: float) -> PageResult:
    result = PageResult(key)
    spec = PAGES[key]
    urls = big.urls[key]
    try:
        client = client_for(big.users[spec.role])
        warmed = time.perf_counter()
        for i in range(warmup):
            fetch(client, urls[i % len(urls)])
            if time.perf_counter() - warmed > budget / 4:
                break  # a page taking seconds is warm after one request
        for i in range(requests):
            url = urls[(i + warmup) % len(urls)]
            started = time.perf_counter()
            fetch(client, url)
            result.times_ms.append((time.perf_counter() - started) * 1000.0)
            if len(result.times_ms) >= 5 and sum(result.times_ms) > budget * 1000.0:
                break  # a page taking seconds says enough in 5 requests; the count is printed
        result.queries, result.slowest, result.bytes = count_queries(client, urls[0])
        small_client = client_for(small.users[spec.role])
        fetch(small_client, small.urls[key][0])  # warm, like the large tenant's
        result.small_queries, _, _ = count_queries(small_client, small.urls[key][0])
    except PageError as exc:
        result.error = str(exc)
    return result


def explain(result: PageResult, *, tenant_id: int, top: int) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of the page's slowest queries, as the app role under RLS, in a
    transaction that is rolled back."""
    from django.db import connection, transaction

    from cs_platform.tenancy import context

    heading(f"EXPLAIN ANALYZE: {PAGES[result.key].label}, the {top} slowest queries of one request")
    for ms, sql in result.slowest[:top]:
        say(f"-- {ms:.1f} ms: {sql[:600]}{' ...' if len(sql) > 600 else ''}")
        if not sql.lstrip().upper().startswith(("SELECT", "WITH")):
            say("   (not a SELECT: not explained)")
            continue
        try:
            with context.tenant_context(tenant_id), transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
                for (line,) in cursor.fetchall():
                    say(f"   {line}")
                transaction.set_rollback(True)
        except Exception as exc:  # a statement psycopg2 would not take back as text: say so and go on
            say(f"   (could not explain: {type(exc).__name__}: {str(exc).strip()[:200]})")
        say()


# --- Main ----------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _, owner_url = start(
        script="bench_dashboards",
        database=BENCH_DB,
        title=f"Dashboard benchmark: {args.accounts:,} accounts (and {args.small_accounts}), database {BENCH_DB}",
    )
    wanted = {"big": args.accounts, "small": args.small_accounts, "seed": args.seed}

    def unfit(meta: dict) -> str | None:
        if meta and {k: meta.get(k) for k in wanted} == wanted and "tenants" in meta:
            return None
        return f"the dataset is {({k: meta.get(k) for k in wanted}) if meta else 'missing'}, {wanted} asked for"

    owner, meta = open_database(
        owner_url,
        database=BENCH_DB,
        script="bench_dashboards",
        rebuild=args.rebuild,
        read_meta=read_dataset,
        unfit=unfit,
    )
    reuse = bool(meta)

    seconds = setup_django(test_client=True)
    read_dataset(owner)  # creates bench_meta in a database just created
    row("migrate + create_app_role", f"{seconds:.1f} s")
    from cs_platform.tenancy.models import Tenant

    today = datetime.date.today()
    if reuse:
        heading("Dataset")
        for info in meta["tenants"].values():
            row(
                f"reused: {info['slug']} (--rebuild to regenerate)",
                f"{info['accounts']:,}",
                f"generated in {info['generation_seconds']} s for {info['day']}",
            )
            if today.isoformat() not in info["nightly_days"]:
                # Pages read "today": give them today's snapshots and statuses, as the real job would.
                seconds, _ = datagen.nightly(tenant=Tenant.objects.get(pk=info["tenant_id"]), day=today)
                info["nightly_days"].append(today.isoformat())
                row(
                    f"  nightly run_tenant for {today}", f"{seconds:.1f} s", "(the dataset was built on an earlier day)"
                )
                vacuum_analyze(owner, datagen.NIGHTLY_TABLES)
        write_dataset(owner, meta)
    else:
        started = time.perf_counter()
        meta = dict(wanted, tenants={})
        meta["tenants"]["big"] = datagen.build_tenant(
            owner,
            name="Dashboard Bench",
            slug="dash-bench",
            shape=datagen.dashboards_shape(args.accounts),
            day=today,
            seed=args.seed,
        )
        meta["tenants"]["small"] = datagen.build_tenant(
            owner,
            name="Dashboard Bench Small",
            slug="dash-small",
            shape=datagen.dashboards_shape(args.small_accounts),
            day=today,
            seed=args.seed,
        )
        meta["generation_seconds"] = round(time.perf_counter() - started, 1)
        write_dataset(owner, meta)
        heading("Dataset")
        row("generated, both tenants", f"{meta['generation_seconds']:.1f} s")
    for info in meta["tenants"].values():
        seconds, added = datagen.segment_history(tenant=Tenant.objects.get(pk=info["tenant_id"]), day=today)
        if added:
            row(f"  segment snapshots of {added} weekly dates ({info['slug']})", f"{seconds:.1f} s")
    # The generated tables, and the nightly run's compliance snapshots.
    tables = datagen.dashboards_shape(args.accounts).tables() + ("compliance_compliancestatussnapshot",)
    counts = datagen.table_counts(owner, meta["tenants"]["big"]["tenant_id"], tables)
    for table, count in counts.items():
        row(f"  {table}", f"{count:,}")
    with owner.cursor() as cursor:
        cursor.execute("SELECT pg_database_size(current_database())")
        row("  database size (both tenants)", f"{cursor.fetchone()[0] / 2**20:,.0f} MiB")
    owner.commit()

    big = page_targets(owner, meta["tenants"]["big"], label="big")
    small = page_targets(owner, meta["tenants"]["small"], label="small")
    keys = [args.only] if args.only else list(PAGES)
    if args.explain and args.explain not in keys:
        keys.append(args.explain)

    heading(
        f"Server time of {args.requests} requests per page after {args.warmup} warm-up (django.test.Client, app role)"
    )
    results: list[PageResult] = []
    for key in keys:
        result = measure_page(key, big, small, requests=args.requests, warmup=args.warmup, budget=args.budget)
        results.append(result)
        spec = PAGES[key]
        if result.error:
            say(f"  {spec.label:<34} {spec.path:<34} FAILED: {result.error.splitlines()[0]}")
            for line in result.error.splitlines()[1:]:
                say(f"      {line}")
            continue
        say(
            f"  {spec.label:<34} {spec.path:<34} median {result.stat('median'):6.1f} ms, "
            f"{result.queries} queries (small tenant: {result.small_queries}), "
            f"{result.bytes / 1024:.0f} KiB"
        )

    heading(
        f"Summary ({args.accounts:,} accounts; query counts at {args.accounts:,} and {args.small_accounts} accounts)"
    )
    say(f"  {'page':<34} {'median':>8} {'p95':>8} {'min':>8} {'max':>8} {'n':>4} {'queries':>8} {'(small)':>8}  target")
    for result in results:
        spec = PAGES[result.key]
        if result.error:
            say(f"  {spec.label:<34} {'error: ' + result.error.splitlines()[0]}")
            continue
        median = result.stat("median")
        verdict = ("met" if median < TARGET_MS else "MISSED") if result.key in TARGET_PAGES else "(not a target)"
        grows = "" if result.queries == result.small_queries else "  QUERY COUNT DIFFERS"
        say(
            f"  {spec.label:<34} {median:8.1f} {result.stat('p95'):8.1f} {result.stat('min'):8.1f} "
            f"{result.stat('max'):8.1f} {len(result.times_ms):>4} {result.queries:>8} {result.small_queries:>8}  "
            f"median < {TARGET_MS:.0f} ms {verdict}{grows}"
        )
    say("  (times in ms, wall clock around client.get: the whole Django stack, middleware and template included;")
    say(f"   n = timed requests: fewer than {args.requests} when a page used up its --budget of {args.budget:.0f} s)")

    slow = [r for r in results if not r.error and r.stat("median") >= TARGET_MS]
    for result in slow:
        heading(f"Slowest queries of one request: {PAGES[result.key].label}")
        total = sum(ms for ms, _ in result.slowest)
        say(f"  {len(result.slowest)} queries, {total:.1f} ms in SQL of {result.stat('median'):.1f} ms median")
        for ms, sql in result.slowest[:5]:
            say(f"  {ms:7.1f} ms  {' '.join(sql.split())[:220]}")
    if args.explain:
        found = next((r for r in results if r.key == args.explain and not r.error), None)
        if found is None:
            say(f"\n  --explain {args.explain}: the page did not answer 200, nothing to explain")
        else:
            explain(found, tenant_id=big.tenant_id, top=args.explain_top)
    owner.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
