#!/usr/bin/env python
"""Benchmark of the weekly scorecard emails (DESIGN.md "Performance targets", issue #6).

Target: 1,000 executives across 10 tenants, each email built from that executive's view of the
tenant's data, rendered (HTML, text, PNG charts) and delivered to a local SMTP server, in under 60 s;
the per-email median is printed beside the total.

    make bench                                                           # every tests/perf/bench_*.py
    .venv/bin/python tests/perf/bench_scorecards.py                      # 10 tenants x 100 executives
    .venv/bin/python tests/perf/bench_scorecards.py --workers 2          # two sending threads
    .venv/bin/python tests/perf/bench_scorecards.py --tenants 2 --executives 20   # quick mode
    .venv/bin/python tests/perf/bench_scorecards.py --rebuild            # regenerate the dataset

It uses its own database (cs_platform_bench_scorecards, created if missing, migrated as the owner). Each
tenant has the dashboards benchmark's shape (tests/perf/datagen.py: tenant_create, 49 members,
--accounts accounts with a year of KPI measurements, surveys, incidents, journeys, decisions,
obligations and health snapshots), then the nightly job for today and the segment snapshots of the last
13 weekly dates, plus extra executives up to --executives. The timed part is exactly what the workers
do, as the app role (NOBYPASSRLS): scorecard_deliveries_prepare per tenant, then scorecard_delivery_send
per delivery (claim, weekly_scorecard, render_scorecard, scorecard_message, SMTP, record, audit) to an
aiosmtpd server in this process, over one SMTP connection per sending thread. The week's delivery rows
are deleted before each run so every invocation times the same work. Benchmarks print; they do not
assert.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
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
    setup_django,
    start,
    vacuum_analyze,
    write_dataset,
)

BENCH_DB = bench_database("cs_platform_bench_scorecards")
TARGET_SECONDS = 60.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=10, help="tenants (10)")
    parser.add_argument("--executives", type=int, default=100, help="executives per tenant (100)")
    parser.add_argument("--accounts", type=int, default=200, help="accounts per tenant (200)")
    parser.add_argument("--workers", type=int, default=1, help="sending threads, one DB and SMTP connection each (1)")
    parser.add_argument(
        "--no-share", action="store_true", help="build every email from scratch (no ScorecardViews): what sharing saves"
    )
    parser.add_argument("--rebuild", action="store_true", help="drop the benchmark database and regenerate")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    if args.tenants < 1 or args.executives < 2 or args.accounts < 100 or not 1 <= args.workers <= 16:
        parser.error("need --tenants >= 1, --executives >= 2, --accounts >= 100 and 1 <= --workers <= 16")
    return args


# --- Dataset ------------------------------------------------------------------------------------------------
def add_executives(tenant, *, slug: str, have: int, want: int) -> int:
    """Executives beyond the generator's two, in bulk (no password: nobody logs in as them)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    from cs_platform.tenancy import context
    from cs_platform.tenancy.models import Membership, Role

    User = get_user_model()  # noqa: N806
    unusable = make_password(None)
    users = User.objects.bulk_create(
        [
            User(
                username=f"{slug}-exec-{n:03d}",
                email=f"exec{n:03d}@{slug}.test",
                first_name="Exec",
                last_name=f"{n:03d}",
                password=unusable,
            )
            for n in range(have + 1, want + 1)
        ]
    )
    with context.tenant_context(tenant):
        Membership.objects.bulk_create(
            [Membership(tenant=tenant, user=user, role=Role.EXECUTIVE) for user in users], batch_size=1000
        )
    return len(users)


def build_tenant(owner, *, number: int, accounts: int, executives: int, day: datetime.date, seed: int) -> dict:
    slug = f"sc-bench-{number:02d}"
    started = time.perf_counter()
    shape = dataclasses.replace(datagen.dashboards_shape(accounts), audit_trail=False)  # the emails do not read it
    tenant, users = datagen.create_tenant(name=f"Scorecard Bench {number:02d}", slug=slug, members=shape.members)
    datagen.generate(owner, tenant=tenant, users=users, shape=shape, day=day, seed=seed + number)
    vacuum_analyze(owner, shape.tables())
    datagen.nightly(tenant=tenant, day=day)
    datagen.segment_history(tenant=tenant, day=day)
    added = add_executives(tenant, slug=slug, have=len(users["executive"]), want=executives)
    elapsed = time.perf_counter() - started
    row(f"{slug}: {accounts} accounts, {len(users['executive']) + added} executives", f"{elapsed:.1f} s")
    return {"tenant_id": tenant.pk, "slug": slug, "nightly_days": [day.isoformat()], "seconds": round(elapsed, 1)}


def refresh_today(owner, meta: dict, day: datetime.date) -> None:
    """A dataset built on an earlier day gets today's nightly run and segment snapshots, as the real job
    would have made them, so the email reads the same kind of week."""
    from cs_platform.tenancy.models import Tenant

    for info in meta["tenant_info"]:
        if day.isoformat() in info["nightly_days"]:
            continue
        tenant = Tenant.objects.get(pk=info["tenant_id"])
        seconds, _ = datagen.nightly(tenant=tenant, day=day)
        datagen.segment_history(tenant=tenant, day=day)
        info["nightly_days"].append(day.isoformat())
        row(f"  {info['slug']}: nightly run and segment snapshots for {day}", f"{seconds:.1f} s")
    vacuum_analyze(owner, datagen.NIGHTLY_TABLES)


# --- SMTP -----------------------------------------------------------------------------------------------------
class CountingHandler:
    """Counts what the SMTP server accepted; keeps sizes, not bodies."""

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.recipients: set[str] = set()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.sizes.append(len(envelope.original_content or b""))
        self.recipients.update(envelope.rcpt_tos)
        return "250 Message accepted for delivery"


def serve_smtp(conn, port: int) -> None:
    """The SMTP server's process: aiosmtpd on 127.0.0.1:port until told to stop, then what it received.
    A process of its own, as a real local MTA would be, so its parsing does not share our interpreter."""
    import logging

    from aiosmtpd.controller import Controller

    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command at INFO
    handler = CountingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=port, data_size_limit=64 * 2**20)
    controller.start()
    conn.send("ready")
    conn.recv()  # "stop"
    controller.stop()
    conn.send((handler.sizes, sorted(handler.recipients)))


class SmtpProcess:
    def __init__(self) -> None:
        import multiprocessing

        from tests.scorecards.smtp import free_port

        self.port = free_port()
        self._conn, child = multiprocessing.Pipe()
        self._process = multiprocessing.get_context("spawn").Process(target=serve_smtp, args=(child, self.port))
        self._process.start()
        if not self._conn.poll(30) or self._conn.recv() != "ready":
            sys.exit("bench_scorecards: the SMTP server process did not start")

    def stop(self) -> tuple[list[int], list[str]]:
        self._conn.send("stop")
        received = self._conn.recv() if self._conn.poll(60) else ([], [])
        self._process.join(10)
        return received


def start_smtp() -> SmtpProcess:
    from django.conf import settings

    server = SmtpProcess()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    return server


# --- The timed run ----------------------------------------------------------------------------------------------
def reset_week(owner, week: str, tenant_ids: list[int]) -> int:
    with owner.cursor() as cursor:
        cursor.execute(
            "DELETE FROM scorecards_scorecarddelivery WHERE week = %s AND tenant_id = ANY(%s)", [week, tenant_ids]
        )
        deleted = cursor.rowcount
    owner.commit()
    return deleted


def run(tenants: list, week, *, workers: int, share: bool = True) -> dict[str, Any]:
    from django.core.mail import get_connection

    from scorecards import delivery as scorecard_delivery

    # The build step (weekly_scorecard + render + message) timed apart from the rest of each send.
    build_seconds: list[float] = []
    real_build = scorecard_delivery.scorecard_build

    def timed_build(**kwargs):
        started = time.perf_counter()
        try:
            return real_build(**kwargs)
        finally:
            build_seconds.append(time.perf_counter() - started)

    scorecard_delivery.scorecard_build = timed_build
    views = scorecard_delivery.ScorecardViews()
    local = threading.local()
    per_email: list[float] = []
    statuses: dict[str, int] = {}
    lock = threading.Lock()

    def send(job: tuple[Any, int]) -> None:
        tenant, delivery_id = job
        if not hasattr(local, "smtp"):
            local.smtp = get_connection(timeout=scorecard_delivery.SMTP_TIMEOUT_SECONDS)
            local.smtp.open()
            with lock:
                opened.append(local.smtp)
        started = time.perf_counter()
        outcome = scorecard_delivery.scorecard_delivery_send(
            tenant=tenant, delivery_id=delivery_id, connection=local.smtp, views=views if share else None
        )
        elapsed = time.perf_counter() - started
        with lock:
            per_email.append(elapsed)
            statuses[outcome.status] = statuses.get(outcome.status, 0) + 1

    opened: list = []
    started = time.perf_counter()
    prepare_started = time.perf_counter()
    jobs = []
    for tenant in tenants:
        prepared = scorecard_delivery.scorecard_deliveries_prepare(tenant=tenant, week=week)
        jobs.extend((tenant, pk) for pk in prepared.sendable_ids)
    prepare_seconds = time.perf_counter() - prepare_started
    try:
        if workers == 1:
            for job in jobs:
                send(job)
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(send, jobs))
    finally:
        for smtp in opened:
            smtp.close()
        scorecard_delivery.scorecard_build = real_build
    total = time.perf_counter() - started
    return {
        "total": total,
        "prepare": prepare_seconds,
        "emails": len(jobs),
        "per_email": per_email,
        "build": build_seconds,
        "statuses": statuses,
        "views": (views.hits, views.misses),
    }


def queries_of_one_email(tenant, week) -> tuple[int, int]:
    """Queries of one send (an executive's), and of a manager's (restricted book), on rows reset to pending."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from cs_platform.outbox import DeliveryStatus
    from cs_platform.tenancy import context
    from scorecards import delivery as scorecard_delivery
    from scorecards.models import ScorecardDelivery

    with context.tenant_context(tenant):
        delivery = ScorecardDelivery.objects.filter(week=str(week)).order_by("pk").first()
        ScorecardDelivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.PENDING, next_attempt_at=None)
    with CaptureQueriesContext(connection) as queries:
        scorecard_delivery.scorecard_delivery_send(tenant=tenant, delivery_id=delivery.pk)
    return len(queries), delivery.pk


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    total_execs = args.tenants * args.executives
    _, owner_url = start(
        script="bench_scorecards",
        database=BENCH_DB,
        title=f"Scorecard benchmark: {total_execs:,} executives in {args.tenants} tenants, database {BENCH_DB}",
    )
    wanted = {"tenants": args.tenants, "executives": args.executives, "accounts": args.accounts, "seed": args.seed}

    def unfit(meta: dict) -> str | None:
        if meta and {k: meta.get(k) for k in wanted} == wanted and "tenant_info" in meta:
            return None
        return f"the dataset is {({k: meta.get(k) for k in wanted}) if meta else 'missing'}, {wanted} asked for"

    owner, meta = open_database(
        owner_url,
        database=BENCH_DB,
        script="bench_scorecards",
        rebuild=args.rebuild,
        read_meta=read_dataset,
        unfit=unfit,
    )
    seconds = setup_django()
    read_dataset(owner)
    row("migrate + create_app_role", f"{seconds:.1f} s")
    from django.conf import settings

    from cs_platform.tenancy.models import Tenant
    from scorecards.weeks import IsoWeek

    today = datetime.date.today()
    # Today is the week's send day, whatever weekday the benchmark runs on: a week's figures are those of
    # its send day (Monday by default), and only today has a nightly run and segment snapshots here. On
    # another day with the default, the email would read this Monday's snapshots without their segment
    # figures and aggregate them live: different work from what a real Monday's send does.
    settings.SCORECARD_WEEKDAY = today.isoweekday()
    heading("Dataset")
    if meta:
        row("reused (--rebuild to regenerate)", f"{args.tenants} tenants", f"generated in {meta['seconds']} s")
        refresh_today(owner, meta, today)
    else:
        started = time.perf_counter()
        meta = dict(wanted, tenant_info=[])
        for number in range(1, args.tenants + 1):
            meta["tenant_info"].append(
                build_tenant(
                    owner, number=number, accounts=args.accounts, executives=args.executives, day=today, seed=args.seed
                )
            )
        meta["seconds"] = round(time.perf_counter() - started, 1)
        row("generated", f"{meta['seconds']:.1f} s")
    write_dataset(owner, meta)
    tenant_ids = [info["tenant_id"] for info in meta["tenant_info"]]
    tenants = list(Tenant.objects.filter(pk__in=tenant_ids).order_by("pk"))
    week = IsoWeek.of(today)
    deleted = reset_week(owner, str(week), tenant_ids)
    row(f"delivery rows of {week} deleted before the run", f"{deleted:,}")
    vacuum_analyze(owner, ("scorecards_scorecarddelivery",))

    server = start_smtp()
    try:
        heading(
            f"Prepare and deliver week {week} ({args.workers} sending thread(s), aiosmtpd process on :{server.port})"
        )
        result = run(tenants, week, workers=args.workers, share=not args.no_share)
        queries, _ = queries_of_one_email(tenants[0], week)
    finally:
        all_sizes, recipients = server.stop()
    per_email_ms = [s * 1000 for s in result["per_email"]]
    build_ms = [s * 1000 for s in result["build"]]
    sizes = all_sizes[: result["emails"]]  # the last one is the query-count email
    row("emails prepared", f"{result['emails']:,}", f"(prepare, all tenants: {result['prepare']:.2f} s)")
    row("outcomes", ", ".join(f"{k} {v}" for k, v in sorted(result["statuses"].items())))
    row("accepted by the SMTP server", f"{len(sizes):,}", f"{len(recipients):,} distinct recipients")
    if sizes:
        row(
            "message size median / max",
            f"{statistics.median(sizes) / 1024:.0f} KiB",
            f"max {max(sizes) / 1024:.0f} KiB",
        )
    if per_email_ms:
        row(
            "per email (send call) median",
            f"{statistics.median(per_email_ms):.1f} ms",
            f"p95 {p95(per_email_ms):.1f} ms, max {max(per_email_ms):.1f} ms",
        )
        row("  of which build (data + render + MIME)", f"{statistics.median(build_ms):.1f} ms", "median")
    row("queries for one email (claim .. audit)", f"{queries}", "(an executive's, views not shared)")
    hits, misses = result["views"]
    row("shared views (figures + rendering)", f"{misses} built", f"{hits} reused")

    heading("Summary")
    verdict = "met" if result["total"] < TARGET_SECONDS else "MISSED"
    row(
        f"total for {result['emails']:,} emails",
        f"{result['total']:.1f} s",
        f"target < {TARGET_SECONDS:.0f} s: {verdict}",
    )
    if per_email_ms:
        row(
            "per-email median",
            f"{statistics.median(per_email_ms):.1f} ms",
            f"throughput {result['emails'] / result['total']:.1f} emails/s",
        )
    owner.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
