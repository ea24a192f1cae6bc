#!/usr/bin/env python
"""Load benchmark (issue #16, item 8): a real gunicorn serving a realistic tenant to locust clients.

Target (this 2-core machine kind): at 30 concurrent clients p95 under 500 ms for pages and API reads,
and under 1 s while a 10,000-row bulk ingest runs again and again. Printed as met or MISSED.

    make bench                                                  # every tests/perf/bench_*.py
    .venv/bin/python tests/perf/bench_load.py                   # defaults: 3,000 accounts, 60 s a level
    .venv/bin/python tests/perf/bench_load.py --workers 2 --threads 4     # gthread, for comparison
    .venv/bin/python tests/perf/bench_load.py --closed-loop-only          # no think time, saturation

What it does: its own database (cs_platform_bench_load), one tenant of the dashboards benchmark's shape
(tests/perf/datagen.py: tenant_create, 49 members, a year of data for --accounts accounts, the real
nightly run), reused while --accounts matches. Real Django sessions for the generated users
(force_login) and API tokens are written to a plan file; gunicorn starts on a free port with
gunicorn.conf.py (--workers, --threads) as the app role (RLS in force) with the Makefile's Redis;
locust runs headless in a subprocess (gevent must not patch this process) at each level: 10, 30 and 60
clients with think time, then 30 clients while one more client posts 10,000-row bulk ingests back to
back, then 30 clients with no think time (the saturation figure). The model is in tests/perf/README.md.
Prints throughput and p50/p95/p99 per page and endpoint per level; asserts nothing.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.perf import datagen  # noqa: E402 - needs ROOT on sys.path
from tests.perf.benchlib import (  # noqa: E402 - needs ROOT on sys.path
    bench_database,
    heading,
    open_database,
    read_dataset,
    row,
    say,
    setup_django,
    start,
    vacuum_analyze,
    write_dataset,
)

BENCH_DB = bench_database("cs_platform_bench_load")
TARGET_P95_MS = 500.0
TARGET_BULK_P95_MS = 1000.0
TARGET_CLIENTS = 30
BULK_ROWS = 10_000
LOCUSTFILE = ROOT / "tests" / "perf" / "locustfile.py"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=3000, help="accounts of the tenant (3000)")
    parser.add_argument("--levels", default="10,30,60", help="client counts with think time (10,30,60)")
    parser.add_argument("--run-time", type=int, default=60, help="seconds per level, after all clients started (60)")
    parser.add_argument("--wait", default="1,3", help="think time bounds in seconds, min,max (1,3)")
    parser.add_argument("--workers", type=int, default=3, help="GUNICORN_WORKERS (3: cores + 1, the default)")
    parser.add_argument("--threads", type=int, default=1, help="GUNICORN_THREADS (1 = sync workers; 4 = gthread)")
    parser.add_argument("--no-bulk", action="store_true", help="skip the level with a bulk ingest running")
    parser.add_argument("--no-closed-loop", action="store_true", help="skip the no-think-time level")
    parser.add_argument("--closed-loop-only", action="store_true", help="only the no-think-time level")
    parser.add_argument("--rebuild", action="store_true", help="drop the benchmark database and regenerate")
    args = parser.parse_args(argv)
    if args.accounts < 100:
        parser.error("--accounts must be at least 100")
    try:
        args.levels = [int(x) for x in args.levels.split(",") if x.strip()]
        args.wait = tuple(float(x) for x in args.wait.split(","))
    except ValueError:
        parser.error("--levels takes whole numbers, --wait two numbers (min,max)")
    if not args.levels or min(args.levels) < 1 or len(args.wait) != 2 or not 0 <= args.wait[0] <= args.wait[1]:
        parser.error("--levels: client counts of 1 or more; --wait: 0 <= min <= max")
    if args.run_time < 2:
        parser.error("--run-time must be at least 2 seconds")
    return args


# --- Dataset and plan ----------------------------------------------------------------------------------
def build(owner, *, accounts: int, day: datetime.date) -> dict:
    """The dashboards benchmark's tenant shape (a year of data, the real nightly run) and its segment history."""
    from cs_platform.tenancy.models import Tenant

    info = datagen.build_tenant(
        owner, name="Load Bench", slug="load-bench", shape=datagen.dashboards_shape(accounts), day=day, seed=42
    )
    datagen.segment_history(tenant=Tenant.objects.get(pk=info["tenant_id"]), day=day)
    return info


def refresh_today(owner, info: dict, day: datetime.date) -> None:
    """A dataset built on an earlier day gets today's nightly run (pages read "today")."""
    from cs_platform.tenancy.models import Tenant

    if day.isoformat() in info["nightly_days"]:
        return
    tenant = Tenant.objects.get(pk=info["tenant_id"])
    seconds, _ = datagen.nightly(tenant=tenant, day=day)
    datagen.segment_history(tenant=tenant, day=day)
    info["nightly_days"].append(day.isoformat())
    vacuum_analyze(owner, datagen.NIGHTLY_TABLES)
    row(f"nightly run_tenant for {day}", f"{seconds:.1f} s", "(the dataset was built on an earlier day)")


def make_plan(owner, info: dict, *, sessions: int, day: datetime.date) -> dict:
    """Real sessions (force_login) for CSMs, executives and the compliance officer, API tokens, and the
    (account, KPI) pairs of the bulk ingest."""
    import logging

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    from api.services import api_token_create
    from cs_platform.tenancy import context
    from cs_platform.tenancy.models import Tenant
    from segments.models import KpiDefinition

    tenant = Tenant.objects.get(pk=info["tenant_id"])
    users = get_user_model().objects
    tenant_id = info["tenant_id"]
    with owner.cursor() as cursor:
        cursor.execute(
            "SELECT id, owner_csm_id, segment_id FROM accounts_account WHERE tenant_id = %s ORDER BY id", [tenant_id]
        )
        accounts = cursor.fetchall()
        cursor.execute("SELECT DISTINCT segment_id FROM accounts_account WHERE tenant_id = %s", [tenant_id])
        segments = sorted(r[0] for r in cursor.fetchall())
    owner.commit()
    every = [a[0] for a in accounts]
    spread = every[:: max(1, len(every) // 200)]

    def login(user_id: int) -> str:
        client = Client()
        client.force_login(users.get(pk=user_id))
        return client.cookies[settings.SESSION_COOKIE_NAME].value

    logging.getLogger("axes").setLevel(logging.WARNING)  # one "successful login" line per session otherwise
    plan_sessions = []
    csms, executives = info["users"]["csm"], info["users"]["executive"]
    for number in range(sessions):
        slot = number % 10  # six CSMs, three executives, one compliance officer in ten
        if slot < 6:
            user = csms[(number // 10 * 6 + slot) % len(csms)]
            persona, book = "csm", [a[0] for a in accounts if a[1] == user] or spread
        elif slot < 9:
            user, persona, book = executives[number % len(executives)], "executive", spread
        else:
            user, persona, book = info["users"]["compliance"][0], "compliance", spread
        plan_sessions.append({"persona": persona, "cookie": login(user), "accounts": book})

    admin = users.get(pk=info["users"]["admin"][0])
    scopes = ["accounts:read", "metrics:read", "health:read"]
    stamp = f"{time.time():.0f}"
    tokens = [
        api_token_create(tenant=tenant, name=f"load {stamp} {n}", actor=admin, scopes=scopes)[1] for n in range(8)
    ]
    bulk_token = api_token_create(tenant=tenant, name=f"load {stamp} bulk", actor=admin, scopes=["metrics:write"])[1]
    with context.tenant_context(tenant):
        kpis: dict[int, list[int]] = {}
        for pk, segment_id in KpiDefinition.objects.order_by("sort_order", "pk").values_list("pk", "segment_id"):
            kpis.setdefault(segment_id, []).append(pk)
    pairs = [[a[0], kpi] for rank in range(20) for a in accounts for kpi in kpis.get(a[2], [])[rank : rank + 1]]
    return {
        "session_cookie": settings.SESSION_COOKIE_NAME,
        "sessions": plan_sessions,
        "segments": segments,
        "tokens": tokens,
        "api_accounts": spread,
        "bulk_token": bulk_token,
        "bulk_pairs": pairs[:BULK_ROWS],
        "bulk_days": [(day - datetime.timedelta(days=d)).isoformat() for d in range(1, 8)],
    }


def analyze_everything(owner) -> None:
    """ANALYZE every table. The generator analyzes the tables it fills, but the reference tables
    tenant_create writes (segments, frameworks, requirements, journey phases: 4 to 15 rows each) and the
    users stay below autovacuum's threshold of 50 changed rows, so they are never analyzed, and the planner
    then guessed one requirement row and joined the compliance overview's obligations through every
    account (230 ms instead of 50; the CSM home's activity query 77 ms instead of 21)."""
    owner.commit()
    owner.autocommit = True
    try:
        with owner.cursor() as cursor:
            cursor.execute("ANALYZE")
    finally:
        owner.autocommit = False


# --- Server and load -----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(*, workers: int, threads: int, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ,
        "GUNICORN_WORKERS": str(workers),
        "GUNICORN_THREADS": str(threads),
        "GUNICORN_ACCESS_LOG": "",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        # Throttles stay in the path (their Redis round trips are part of a request's cost) with budgets
        # that do not refuse: the benchmark measures serving, not the budgets.
        "API_THROTTLE_TOKEN_RATE": "100000/min",
        "API_THROTTLE_USER_RATE": "100000/min",
        "LOG_LEVEL": "WARNING",
    }
    gunicorn = Path(sys.executable).with_name("gunicorn")
    process = subprocess.Popen(
        [str(gunicorn), "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}", "cs_platform.wsgi:application"],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"bench_load: gunicorn exited {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:  # noqa: S310 - our own server
                if response.status == 200:
                    return process, url
        except OSError:
            time.sleep(0.3)
    process.terminate()
    sys.exit(f"bench_load: gunicorn did not answer /healthz within 60 s:\n{log.read_text()[-3000:]}")


def run_locust(
    *, url: str, plan: Path, out: Path, clients: int, seconds: int, wait: tuple[float, float], bulk: bool
) -> tuple[list[dict], float]:
    """One headless locust run; its per-name stats rows (the CSV locust writes) and the wall time."""
    classes = ["PageUser", "ApiUser"] + (["BulkUser"] if bulk else [])
    env = {**os.environ, "LOAD_PLAN": str(plan), "LOAD_WAIT_MIN": str(wait[0]), "LOAD_WAIT_MAX": str(wait[1])}
    users = clients + (1 if bulk else 0)
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "-u",
        str(users),
        "-r",
        str(users),
        "--run-time",
        f"{seconds + 2}s",
        "--host",
        url,
        "--csv",
        str(out),
        "--reset-stats",
        "--only-summary",
        "--loglevel",
        "ERROR",
        "--stop-timeout",
        "10",
        *classes,
    ]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=seconds + 120)
    elapsed = time.perf_counter() - started
    stats = out.with_name(out.name + "_stats.csv")
    if not stats.exists():
        say(f"  locust wrote no stats (exit {done.returncode}):\n{done.stderr[-3000:]}")
        return [], elapsed
    with stats.open() as handle:
        rows = list(csv.DictReader(handle))
    failures = out.with_name(out.name + "_failures.csv")
    if failures.exists():
        with failures.open() as handle:
            for item in csv.DictReader(handle):
                say(f"  FAILED {item['Occurrences']}x {item['Name']}: {item['Error'][:160]}")
    return rows, elapsed


# --- Where the CPU goes ----------------------------------------------------------------------------------
# This machine is shared (other test suites run beside the benchmark): latencies then measure the queue for
# the CPUs as much as our code. CPU seconds per request, of the gunicorn workers and of the PostgreSQL
# backends serving them, do not depend on that queue; they give the capacity of dedicated cores.
_TICK = os.sysconf("SC_CLK_TCK")


def _cpu(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime (fields 14 and 15 of stat)


def _children(parent: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii") as handle:
                    if int(handle.read().rsplit(")", 1)[1].split()[1]) == parent:
                        found.append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    return found


def _machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values) - idle) / _TICK, sum(values) / _TICK


def cpu_snapshot(process: subprocess.Popen, owner) -> dict:
    with owner.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        backends = [r[0] for r in cursor.fetchall()]
    owner.commit()
    app = [process.pid, *_children(process.pid)]
    return {
        "app": {pid: _cpu(pid) or 0.0 for pid in app},
        "db": {pid: _cpu(pid) or 0.0 for pid in backends},
        "locust": resource.getrusage(resource.RUSAGE_CHILDREN),
        "machine": _machine_busy(),
    }


def cpu_delta(before: dict, after: dict) -> dict[str, float]:
    """CPU seconds used between two snapshots: gunicorn, PostgreSQL backends (those alive at the end;
    CONN_MAX_AGE keeps them for the run), locust (finished children), and the whole machine."""
    used = {}
    for key in ("app", "db"):
        used[key] = sum(max(0.0, cpu - before[key].get(pid, 0.0)) for pid, cpu in after[key].items())
    used["locust"] = (after["locust"].ru_utime + after["locust"].ru_stime) - (
        before["locust"].ru_utime + before["locust"].ru_stime
    )
    busy = after["machine"][0] - before["machine"][0]
    total = after["machine"][1] - before["machine"][1]
    used["machine_busy"], used["machine_total"] = busy, total
    return used


def connections(owner) -> int:
    with owner.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        count = cursor.fetchone()[0]
    owner.commit()
    return count


def report(title: str, rows: list[dict], *, target_ms: float | None, bulk_target_ms: float | None = None) -> None:
    """A table: requests, throughput, failures, p50/p95/p99 per name; the verdict on p95 against the target."""
    heading(title)
    say(
        f"  {'page / endpoint':<40} {'requests':>8} {'req/s':>7} {'fail':>5} {'p50':>7} {'p95':>7} {'p99':>7}"
        f" {'max':>7}  (ms)"
    )
    missed = []
    for item in sorted(rows, key=lambda r: (r["Name"] == "Aggregated", r["Name"])):
        name = item["Name"]
        p50, p95, p99 = (float(item[k] or 0) for k in ("50%", "95%", "99%"))
        say(
            f"  {name[:40]:<40} {int(item['Request Count']):>8} {float(item['Requests/s']):>7.1f}"
            f" {int(item['Failure Count']):>5} {p50:>7.0f} {p95:>7.0f} {p99:>7.0f}"
            f" {float(item['Max Response Time']):>7.0f}"
        )
        if name == "Aggregated" or "bulk ingest" in name or target_ms is None:
            continue
        limit = bulk_target_ms if bulk_target_ms is not None else target_ms
        if p95 >= limit or int(item["Failure Count"]):
            missed.append(f"{name} (p95 {p95:.0f} ms)")
    if target_ms is not None:
        limit = bulk_target_ms if bulk_target_ms is not None else target_ms
        verdict = "met" if not missed else "MISSED: " + ", ".join(missed)
        row(f"target: every page and API read p95 < {limit:.0f} ms", verdict)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _, owner_url = start(
        script="bench_load", database=BENCH_DB, title=f"Load benchmark: {args.accounts:,} accounts, database {BENCH_DB}"
    )

    def unfit(meta: dict) -> str | None:
        if meta and meta.get("accounts") != args.accounts:
            return f"the dataset has {meta.get('accounts')} accounts, {args.accounts} asked for"
        return None

    owner, meta = open_database(
        owner_url, database=BENCH_DB, script="bench_load", rebuild=args.rebuild, read_meta=read_dataset, unfit=unfit
    )
    seconds = setup_django(test_client=True)
    read_dataset(owner)
    row("migrate + create_app_role", f"{seconds:.1f} s")
    today = datetime.date.today()
    if not meta:
        meta = build(owner, accounts=args.accounts, day=today)
    else:
        heading("Dataset")
        row("reused (--rebuild to regenerate)", f"{meta['accounts']:,} accounts", f"built {meta['day']}")
        refresh_today(owner, meta, today)
    write_dataset(owner, meta)
    analyze_everything(owner)

    levels: list[tuple[str, int, tuple[float, float], bool]] = []
    if not args.closed_loop_only:
        levels += [
            (f"{n} clients, think time {args.wait[0]:g}-{args.wait[1]:g} s", n, args.wait, False) for n in args.levels
        ]
        if not args.no_bulk:
            levels.append(
                (
                    f"{TARGET_CLIENTS} clients + 1 client posting {BULK_ROWS:,}-row bulk ingests",
                    TARGET_CLIENTS,
                    args.wait,
                    True,
                )
            )
    if args.closed_loop_only or not args.no_closed_loop:
        levels.append(
            (f"{TARGET_CLIENTS} clients, no think time (closed loop, saturation)", TARGET_CLIENTS, (0.0, 0.0), False)
        )

    heading("Plan")
    plan = make_plan(owner, meta, sessions=max(c for _, c, _, _ in levels), day=today)
    row("sessions (6 CSM : 3 executive : 1 compliance)", f"{len(plan['sessions'])}")
    row("API tokens (admin, read scopes) + 1 bulk token", f"{len(plan['tokens'])}")
    row("bulk ingest rows per request", f"{len(plan['bulk_pairs']):,}")
    workdir = Path(tempfile.mkdtemp(prefix="bench_load_"))
    plan_path = workdir / "plan.json"
    plan_path.write_text(json.dumps(plan))
    server_log = workdir / "gunicorn.log"
    process, url = start_gunicorn(workers=args.workers, threads=args.threads, log=server_log)
    worker_class = "gthread" if args.threads > 1 else "sync"
    row("gunicorn", f"{args.workers} x {args.threads}", f"{worker_class}, {url}, log {server_log}")
    row("machine", f"{os.cpu_count()} CPUs", "locust, gunicorn and PostgreSQL share them")
    try:
        # Warm-up: every worker imports the app, opens its connections and fills its caches.
        run_locust(
            url=url,
            plan=plan_path,
            out=workdir / "warmup",
            clients=10,
            seconds=min(8, args.run_time),
            wait=(0.0, 0.5),
            bulk=False,
        )
        for title, clients, wait, bulk in levels:
            out = workdir / f"level_{clients}_{'bulk' if bulk else ''}{wait[1]:g}"
            load_before = os.getloadavg()[0]
            before = cpu_snapshot(process, owner)
            rows, elapsed = run_locust(
                url=url, plan=plan_path, out=out, clients=clients, seconds=args.run_time, wait=wait, bulk=bulk
            )
            target = None
            if clients == TARGET_CLIENTS and wait[1] > 0:
                target = TARGET_P95_MS
            report(
                f"{title}, {args.run_time} s",
                rows,
                target_ms=target,
                bulk_target_ms=TARGET_BULK_P95_MS if bulk else None,
            )
            used = cpu_delta(before, cpu_snapshot(process, owner))
            row(
                "PostgreSQL connections to the database",
                f"{connections(owner)}",
                f"load average {load_before:.1f} -> {os.getloadavg()[0]:.1f}",
            )
            requests = sum(int(r["Request Count"]) for r in rows if r["Name"] != "Aggregated")
            bulk_requests = sum(int(r["Request Count"]) for r in rows if "bulk ingest" in r["Name"])
            if requests:
                ours = used["app"] + used["db"] + used["locust"]
                other = max(0.0, used["machine_busy"] - ours)
                cores = used["machine_total"] / max(elapsed, 1e-9)
                row(
                    "CPU per request: gunicorn + PostgreSQL",
                    f"{1000 * (used['app'] + used['db']) / requests:.0f} ms",
                    f"gunicorn {1000 * used['app'] / requests:.0f} ms, PostgreSQL {1000 * used['db'] / requests:.0f}"
                    f" ms, locust {1000 * used['locust'] / requests:.0f} ms"
                    + (f" ({bulk_requests} bulk ingests included)" if bulk_requests else ""),
                )
                row(
                    "CPU of other work on the machine",
                    f"{100 * other / max(used['machine_total'], 1e-9):.0f} %",
                    f"of {cores:.0f} CPUs over {elapsed:.0f} s: it queues with ours for the same cores",
                )
    finally:
        process.terminate()
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
    owner.close()
    say(f"\n  locust CSVs and the gunicorn log: {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
