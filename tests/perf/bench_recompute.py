#!/usr/bin/env python
"""Benchmark of the nightly recompute (DESIGN.md, "Performance targets").

Target: the nightly recompute of 100,000 accounts on PostgreSQL on a 2-core machine runs within 2x of
a hand-written single-SQL floor on the same data, and at least 50x faster than a per-account ORM loop.

    make bench                                             # every tests/perf/bench_*.py, full size
    .venv/bin/python tests/perf/bench_recompute.py --accounts 5000       # quick mode
    .venv/bin/python tests/perf/bench_recompute.py --rebuild             # regenerate the dataset

It uses its own database (cs_platform_bench, created if missing, migrated as the owner), one tenant
("Bench Tenant") and a generated dataset that is reused while it has the requested size. Data is
generated with set-based SQL as the owner (a superuser: RLS does not apply to it); every timed run
connects as the app role (NOBYPASSRLS), so Row-Level Security is in force as in production.
Benchmarks print figures; they do not assert. See tests/perf/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import random
import resource
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.perf.benchlib import (  # noqa: E402 - needs ROOT on sys.path
    bench_database,
    drop_temporary_defaults,
    heading,
    open_database,
    row,
    say,
    setup_django,
    start,
    temporary_defaults,
    vacuum_analyze,
)

BENCH_DB = bench_database("cs_platform_bench")
TENANT_NAME = "Bench Tenant"
TENANT_SLUG = "bench-tenant"


# --- Command line and environment ---------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=100_000, help="accounts in the dataset (default 100000)")
    parser.add_argument("--sample", type=int, default=2000, help="accounts scored by the naive ORM loop (2000)")
    parser.add_argument("--rebuild", action="store_true", help="drop the benchmark database and regenerate")
    parser.add_argument("--big-chunk", type=int, default=0, help="also time a re-run with this chunk size")
    parser.add_argument("--verify-sample", type=int, default=1000, help="accounts compared engine vs floor")
    parser.add_argument("--tracemalloc", action="store_true", help="one more engine re-run under tracemalloc")
    parser.add_argument("--profile", metavar="FILE", help="cProfile the typical-night engine run into FILE")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="health chunks scored at once in the typical night (default: CPU count; "
        "the idempotent re-run always uses 1, so both figures are printed)",
    )
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    args.workers = max(1, args.workers)
    if args.accounts < 100:
        parser.error("--accounts must be at least 100")
    args.sample = max(1, min(args.sample, args.accounts))
    return args


# --- Output ---------------------------------------------------------------------------------------------
def secs(value: float) -> str:
    return f"{value:,.2f} s"


def mib(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:,.0f} MiB"


# --- Measuring --------------------------------------------------------------------------------------------
def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class RssSampler:
    """Peak resident set size of this process during a block (sampled every 20 ms; Linux)."""

    def __init__(self) -> None:
        self.start = self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss_bytes())

    def __enter__(self) -> RssSampler:
        gc.collect()
        self.start = self.peak = _rss_bytes()
        self.maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())
        self.maxrss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    @property
    def growth(self) -> int:
        return self.peak - self.start


class QueryCounter:
    """Counts statements sent through Django's connection, without keeping them (cheap, unlike
    CaptureQueriesContext which stores every SQL text: megabytes per bulk upsert)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


class PhaseTimer:
    """Wraps the steps run_tenant calls (looked up in metrics.nightly's namespace) to time each."""

    NAMES = (
        "decisions_escalate",
        "journey_status_recompute",
        "compliance_status_recompute",
        "account_chunks",
        "health_snapshots_compute",
    )

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.health_started: float | None = None

    @contextmanager
    def installed(self) -> Iterator[PhaseTimer]:
        from nightly import pipeline as nightly

        originals = {name: getattr(nightly, name) for name in self.NAMES}

        def wrap(name: str, func: Callable) -> Callable:
            def timed(*args, **kwargs):
                started = time.perf_counter()
                if name == "account_chunks":  # the health step starts by listing the chunks
                    self.health_started = started
                try:
                    return func(*args, **kwargs)
                finally:
                    self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

            return timed

        for name, func in originals.items():
            setattr(nightly, name, wrap(name, func))
        try:
            yield self
        finally:
            for name, func in originals.items():
                setattr(nightly, name, func)

    def health(self, ended: float) -> float:
        """Wall-clock time of the health step, from listing the chunks to the end of the run. (The
        chunks' own times add up to more when they run on several threads, and the tenant-wide
        steps overlap when compliance runs beside journeys.)"""
        return ended - self.health_started if self.health_started is not None else 0.0

    def summary(self) -> str:
        short = {
            "decisions_escalate": "escalate",
            "journey_status_recompute": "journeys",
            "compliance_status_recompute": "compliance",
            "account_chunks": "ids",
            "health_snapshots_compute": "health chunks (summed)",
        }
        return ", ".join(f"{short[name]} {self.seconds[name]:.1f}" for name in self.NAMES if name in self.seconds)


# --- Dataset ----------------------------------------------------------------------------------------------
META_SQL = """
CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value text NOT NULL);
-- The engine's results, kept aside before the floor overwrites the day's snapshots with its own.
CREATE TABLE IF NOT EXISTS bench_engine_totals (
    tenant_id bigint NOT NULL,
    account_id bigint NOT NULL,
    snapshot_date date NOT NULL,
    total numeric(5, 2) NOT NULL,
    band varchar(6) NOT NULL,
    change_7d numeric(6, 2),
    PRIMARY KEY (tenant_id, account_id, snapshot_date)
);
"""


def read_meta(owner) -> dict[str, str]:
    with owner.cursor() as cursor:
        cursor.execute(META_SQL)
        cursor.execute("SELECT key, value FROM bench_meta")
        meta = dict(cursor.fetchall())
    owner.commit()
    return meta


def keep_engine_totals(owner, *, tenant_id: int, day: datetime.date) -> None:
    with owner.cursor() as cursor:
        cursor.execute(
            "DELETE FROM bench_engine_totals WHERE tenant_id = %(t)s;"
            "INSERT INTO bench_engine_totals SELECT tenant_id, account_id, snapshot_date, total, band, change_7d "
            "FROM metrics_healthsnapshot WHERE tenant_id = %(t)s AND snapshot_date = %(d)s",
            {"t": tenant_id, "d": day},
        )
    owner.commit()


def create_tenant_and_users():
    """The tenant through the real service (segments, KPI targets, scorecards, journey template and
    frameworks from seed 000), and two members: decision owners (csm) report to a manager."""
    from django.contrib.auth import get_user_model

    from cs_platform.identity.services import membership_create
    from cs_platform.tenancy.models import Role
    from provisioning.services import tenant_create

    tenant = tenant_create(name=TENANT_NAME, slug=TENANT_SLUG)
    users = get_user_model().objects
    manager_user = users.create_user(username="bench-manager", email="manager@bench.test")
    csm_user = users.create_user(username="bench-csm", email="csm@bench.test")
    manager = membership_create(tenant=tenant, user=manager_user, role=Role.MANAGER)
    membership_create(tenant=tenant, user=csm_user, role=Role.CSM, manager=manager)
    admin_user = users.create_user(username="bench-admin", email="admin@bench.test")
    membership_create(tenant=tenant, user=admin_user, role=Role.ADMIN)
    return tenant, csm_user


# Each statement is set-based over generate_series; `(a.g * p + q) % m` patterns spread the data
# deterministically, random() (seeded) adds values. Parameters: t tenant, d the benchmark day.
GENERATE_SQL: list[tuple[str, str]] = [
    (
        "accounts",
        """
        INSERT INTO accounts_account (tenant_id, name, segment_id, tier, arr, currency, contract_start, renewal_date,
            lifecycle_stage, executive_sponsor, jurisdictions, regulators, data_standards, created_at, updated_at)
        SELECT %(t)s, 'Bench Institution ' || lpad(g::text, 6, '0'), (%(segments)s::bigint[])[1 + g %% 4],
            (ARRAY['strategic', 'enterprise', 'mid_market', 'growth'])[1 + (g / 4) %% 4], (g %% 997) * 1000,
            'USD', %(d)s::date - (g %% 1500),
            CASE WHEN g %% 20 = 7 THEN NULL ELSE %(d)s::date + (g * 7919 %% 540) - 90 END,
            'adoption', '', '["US-NY"]', '["SEC"]', '["ISO 20022"]', now(), now()
        FROM generate_series(1, %(n)s) AS g
        """,
    ),
    (
        "index tables",
        """
        CREATE TEMP TABLE bench_acc AS
            SELECT id, (row_number() OVER (ORDER BY id))::int AS g, segment_id
            FROM accounts_account WHERE tenant_id = %(t)s;
        CREATE TEMP TABLE bench_kpi AS
            SELECT id, segment_id, code, comparator, target_low::float8 AS lo, target_high::float8 AS hi,
                   (row_number() OVER (PARTITION BY segment_id ORDER BY sort_order, id))::int - 1 AS k
            FROM segments_kpidefinition WHERE tenant_id = %(t)s;
        CREATE TEMP TABLE bench_req AS
            SELECT id, (row_number() OVER (ORDER BY id))::int - 1 AS r
            FROM compliance_requirement WHERE tenant_id = %(t)s;
        ANALYZE bench_acc; ANALYZE bench_kpi; ANALYZE bench_req;
        """,
    ),
    (
        "KPI measurements",
        # ~10 per account over the segment's KPIs, 0-130 days back (so some fall out of the 120-day
        # window); 2 % of the accounts have none (missing-data re-weighting).
        """
        INSERT INTO metrics_kpimeasurement (tenant_id, account_id, kpi_id, measured_on, value, source, recorded_at)
        SELECT %(t)s, a.id, k.id, %(d)s::date - (j * 13 + (a.g * 31 + j * 7) %% 12),
            round((CASE
                WHEN k.code IN ('customer_trust', 'client_satisfaction') THEN 3.0 + random() * 2.0
                WHEN k.comparator = 'lt' THEN k.hi * (0.55 + random() * 0.9)
                WHEN k.comparator = 'eq' THEN CASE WHEN random() < 0.6 THEN 100 ELSE 85 + random() * 15 END
                WHEN k.code = 'api_adoption' THEN 50 + random() * 50
                ELSE k.lo * (0.75 + random() * 0.5)
            END)::numeric, 4),
            'bench', now()
        FROM bench_acc a
        CROSS JOIN generate_series(0, %(kpi_per_account)s - 1) AS j
        JOIN bench_kpi k ON k.segment_id = a.segment_id AND k.k = j %% 4
        WHERE a.g %% 50 <> 0
        """,
    ),
    (
        "survey responses",
        # Up to 2 NPS, 1 CSAT and 1 CES per account over 200 days (180-day window); 10 % have none.
        """
        INSERT INTO metrics_surveyresponse (tenant_id, account_id, survey_type, score, responded_on, comment)
        SELECT %(t)s, a.id, (ARRAY['nps', 'nps', 'csat', 'ces'])[s + 1],
            CASE WHEN s < 2 THEN floor(random() * 11) WHEN s = 2 THEN 1 + floor(random() * 5)
                 ELSE 1 + floor(random() * 7) END,
            %(d)s::date - ((a.g * 13 + s * 37) %% 200), ''
        FROM bench_acc a CROSS JOIN generate_series(0, 3) AS s
        WHERE (a.g + s) %% 7 <> 0 AND a.g %% 10 <> 3
        """,
    ),
    (
        "incidents",
        # 0-2 per account over 110 days (90-day window); 75 % resolved after 1-100 h (some after the
        # day's end), 20 % escalated.
        """
        INSERT INTO metrics_incident (tenant_id, account_id, title, severity, opened_at, resolved_at, escalated,
                                      external_ref)
        SELECT %(t)s, id, 'Bench incident', (ARRAY['sev1', 'sev2', 'sev3', 'sev4'])[1 + g %% 4], opened,
            CASE WHEN random() < 0.75 THEN opened + (1 + random() * 99) * interval '1 hour' END, random() < 0.2, ''
        FROM (
            SELECT a.id, a.g, %(d)s::date + time '12:00' - ((a.g * 17 + i * 29) %% 110) * interval '1 day'
                   - random() * interval '10 hours' AS opened
            FROM bench_acc a CROSS JOIN generate_series(0, 1) AS i
            WHERE (a.g * 3 + i) %% 5 < 3
        ) AS x
        """,
    ),
    (
        "journeys",
        # 85 % of the accounts have a journey started 0-300 days ago, 10 % also an older one, ~1 % one
        # that starts in the future.
        """
        INSERT INTO journeys_accountjourney (tenant_id, account_id, template_id, started_on, status, status_reason)
        SELECT %(t)s, a.id, %(template)s, %(d)s::date - ((a.g * 11) %% 300), 'on_track', ''
        FROM bench_acc a WHERE a.g %% 20 > 2
        UNION ALL
        SELECT %(t)s, a.id, %(template)s, %(d)s::date - 300 - (a.g %% 200), 'on_track', ''
        FROM bench_acc a WHERE a.g %% 10 = 5
        UNION ALL
        SELECT %(t)s, a.id, %(template)s, %(d)s::date + 10, 'on_track', ''
        FROM bench_acc a WHERE a.g %% 97 = 0
        """,
    ),
    (
        "journey activities",
        # Every template activity, due at its phase's end; past-due ones mostly done.
        """
        INSERT INTO journeys_journeyactivity (tenant_id, journey_id, activity_id, status, due_on, completed_on)
        SELECT %(t)s, id, activity_id,
            CASE WHEN done THEN 'done' WHEN r < 0.5 THEN 'in_progress' ELSE 'not_started' END,
            due, CASE WHEN done THEN least(%(d)s::date, greatest(started_on, due - floor(r * 30)::int)) END
        FROM (
            SELECT j.id, pa.id AS activity_id, j.started_on, j.started_on + ph.end_day AS due, random() AS r,
                   j.started_on <= %(d)s::date - 3
                   AND random() < CASE WHEN j.started_on + ph.end_day < %(d)s::date - 3 THEN 0.97 ELSE 0.25 END AS done
            FROM journeys_accountjourney j
            JOIN journeys_phase ph ON ph.template_id = j.template_id
            JOIN journeys_phaseactivity pa ON pa.phase_id = ph.id
            WHERE j.tenant_id = %(t)s
        ) AS x
        """,
    ),
    (
        "decisions",
        # ~1.2 per account, due from 110 days ago to 10 days ahead; 55 % resolved, 10 % fallback
        # (resolved a week early to 3 days late), the rest open (the past-due ones escalate).
        """
        INSERT INTO journeys_decision (tenant_id, account_id, kind, title, description, owner_id, due_date, fallback,
                                       status, resolution, resolved_at, created_at)
        SELECT %(t)s, id, 'decision', 'Bench decision', '', %(owner)s, due, 'Proceed with the default', status, '',
            CASE WHEN status <> 'open' THEN due + time '09:00' + (random() * 10 - 7) * interval '1 day' END,
            now()
        FROM (
            SELECT a.id, %(d)s::date + 10 - ((a.g * 19 + i * 41) %% 120) AS due,
                   CASE WHEN random() < 0.55 THEN 'resolved' WHEN random() < 0.25 THEN 'fallback'
                        ELSE 'open' END AS status
            FROM bench_acc a CROSS JOIN generate_series(0, 1) AS i
            WHERE (a.g + i * 3) %% 5 < 3
        ) AS x
        """,
    ),
    (
        "obligations",
        "INSERT INTO compliance_obligation (tenant_id, account_id, requirement_id, due_date, status) "
        "SELECT %(t)s, a.id, r.id, %(d)s::date - 120 + ((a.g * 23 + o * 53) %% 240), 'not_started' "
        "FROM bench_acc a CROSS JOIN generate_series(0, 2) AS o "
        "JOIN bench_req r ON r.r = (a.g + o * 5) %% (SELECT count(*) FROM bench_req)",
    ),
    (
        "evidence",
        # 75 % of obligations have evidence valid for a year from 0-400 days ago (so some lapsed, some
        # expiring); ~2 % of it only becomes valid in the future.
        """
        INSERT INTO compliance_evidence (tenant_id, obligation_id, file, filename, checksum_sha256, valid_from,
                                         valid_until, uploaded_at)
        SELECT %(t)s, id, '', 'evidence.pdf', md5(id::text) || md5(id::text), valid_from, valid_from + 365, now()
        FROM (
            SELECT id,
                CASE WHEN id %% 50 = 0 THEN %(d)s::date + 5 ELSE %(d)s::date - (id * 7 %% 400)::int END AS valid_from
            FROM compliance_obligation WHERE tenant_id = %(t)s AND id %% 4 <> 0
        ) AS x
        """,
    ),
    (
        "audit results",
        # 30 % of obligations audited once or twice; a quarter of the audits failed with findings.
        """
        INSERT INTO compliance_auditresult (tenant_id, obligation_id, audited_on, outcome, open_findings, auditor,
                                            notes)
        SELECT %(t)s, id, %(d)s::date - ((id * 13 + n * 61) %% 200)::int,
            CASE WHEN failed THEN 'failed' ELSE 'passed' END,
            CASE WHEN failed THEN 1 + (id %% 3)::int ELSE 0 END, 'Bench Audit LLP', ''
        FROM (
            SELECT o.id, n, random() < 0.25 AS failed
            FROM compliance_obligation o CROSS JOIN generate_series(0, 1) AS n
            WHERE o.tenant_id = %(t)s AND o.id %% 10 < 3 AND (n = 0 OR o.id %% 3 = 0)
        ) AS x
        """,
    ),
    (
        "health history",
        # Snapshots 7 and 30 days back, so change_7d / change_30d have something to compare with.
        """
        INSERT INTO metrics_healthsnapshot (tenant_id, account_id, snapshot_date, total, band, components, computed_at)
        SELECT %(t)s, id, day, total,
            CASE WHEN total >= 70 THEN 'green' WHEN total < 50 THEN 'red' ELSE 'yellow' END, '[]', now()
        FROM (
            SELECT a.id, %(d)s::date - back AS day, round((20 + random() * 75)::numeric, 2) AS total
            FROM bench_acc a CROSS JOIN (VALUES (7), (30)) AS b (back)
            WHERE a.g %% 10 <> 9
        ) AS x
        """,
    ),
]

MUTABLE_TABLES = (
    "metrics_healthsnapshot",
    "compliance_compliancestatussnapshot",
    "compliance_obligation",
    "journeys_accountjourney",
    "journeys_decision",
    "metrics_nightlyrun",
    "bench_engine_totals",
)
DATA_TABLES = (
    "accounts_account",
    "metrics_kpimeasurement",
    "metrics_surveyresponse",
    "metrics_incident",
    "journeys_accountjourney",
    "journeys_journeyactivity",
    "journeys_decision",
    "compliance_obligation",
    "compliance_evidence",
    "compliance_auditresult",
    "metrics_healthsnapshot",
)


def generate(owner, *, tenant, owner_user_id: int, accounts: int, day: datetime.date, seed: int) -> float:
    from cs_platform.tenancy import context
    from journeys.models import JourneyTemplate
    from segments.models import Segment

    with context.tenant_context(tenant):
        segments = list(Segment.objects.order_by("sort_order", "pk").values_list("pk", flat=True))
        template = JourneyTemplate.objects.get(is_default=True).pk
    params = {
        "t": tenant.pk,
        "d": day,
        "n": accounts,
        "segments": segments,
        "template": template,
        "owner": owner_user_id,
        "kpi_per_account": 10,
    }
    started = time.perf_counter()
    with owner.cursor() as cursor:
        cursor.execute("SET LOCAL TIME ZONE 'UTC'")
        cursor.execute("SELECT setseed(%s)", [((seed % 1000) / 1000.0)])
        try:
            # Skip the per-row foreign-key triggers: the data is consistent by construction (superuser only).
            cursor.execute("SET LOCAL session_replication_role = replica")
        except Exception:  # not a superuser: keep the foreign-key checks, only slower
            owner.rollback()
            cursor.execute("SET LOCAL TIME ZONE 'UTC'")
            cursor.execute("SELECT setseed(%s)", [((seed % 1000) / 1000.0)])
        filled = temporary_defaults(cursor, GENERATE_SQL)
        if filled:
            row(
                "  new NOT NULL columns given empty values",
                str(len(filled)),
                ", ".join(f"{table}.{column}" for table, column in filled),
            )
        for label, statement in GENERATE_SQL:
            step = time.perf_counter()
            cursor.execute(statement, params)
            count = cursor.rowcount if cursor.rowcount and cursor.rowcount > 0 else 0
            row(f"  {label}", f"{count:,}" if count else "", f"{time.perf_counter() - step:.1f} s")
        drop_temporary_defaults(cursor, filled)
        cursor.execute(
            "INSERT INTO bench_meta (key, value) VALUES ('accounts', %s), ('day', %s), ('tenant_id', %s), "
            "('seed', %s), ('generated_at', now()::text) "
            "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            [str(accounts), day.isoformat(), str(tenant.pk), str(seed)],
        )
    owner.commit()
    vacuum_analyze(owner, DATA_TABLES)
    elapsed = time.perf_counter() - started
    with owner.cursor() as cursor:
        cursor.execute("INSERT INTO bench_meta VALUES ('generation_seconds', %s)", [f"{elapsed:.1f}"])
    owner.commit()
    return elapsed


# What the nightly run writes besides the day's snapshots. After the first run (for the day before the
# benchmark day) these columns are saved; every invocation restores them, so the timed "typical night"
# finds what a real night finds: the previous night's state, and a day's worth of changes.
STATE_COLUMNS = {
    "journeys_accountjourney": (
        "current_phase_id",
        "status",
        "status_reason",
        "status_computed_on",
        "completed_on",
        "onboarding_days",
        "time_to_value_days",
    ),
    "compliance_obligation": ("status", "status_computed_at"),
    "journeys_decision": ("status", "escalated_at", "escalated_to_id"),
}


def save_state(owner, *, tenant_id: int) -> None:
    with owner.cursor() as cursor:
        for table, columns in STATE_COLUMNS.items():
            saved = f"bench_state_{table}"
            cursor.execute(f"DROP TABLE IF EXISTS {saved}")
            cursor.execute(
                f"CREATE TABLE {saved} AS SELECT id, {', '.join(columns)} FROM {table} WHERE tenant_id = %s",
                [tenant_id],
            )
            cursor.execute(f"ALTER TABLE {saved} ADD PRIMARY KEY (id)")
    owner.commit()


def reset_state(owner, *, tenant_id: int, day: datetime.date) -> None:
    """Put the data back as the previous night left it (the audit trail is append-only and keeps
    growing: --rebuild starts it afresh)."""
    with owner.cursor() as cursor:
        for table, columns in STATE_COLUMNS.items():
            saved = f"bench_state_{table}"
            current = ", ".join(f"t.{column}" for column in columns)
            previous = ", ".join(f"s.{column}" for column in columns)
            cursor.execute(
                f"UPDATE {table} AS t SET {', '.join(f'{column} = s.{column}' for column in columns)} "
                f"FROM {saved} AS s WHERE t.id = s.id AND ({current}) IS DISTINCT FROM ({previous})"
            )
        cursor.execute(
            "DELETE FROM metrics_healthsnapshot WHERE tenant_id = %(t)s AND snapshot_date >= %(d)s;"
            "DELETE FROM compliance_compliancestatussnapshot WHERE tenant_id = %(t)s AND snapshot_date >= %(d)s;"
            "DELETE FROM metrics_nightlyrun WHERE tenant_id = %(t)s AND run_date >= %(d)s;"
            "DELETE FROM bench_engine_totals WHERE tenant_id = %(t)s;",
            {"t": tenant_id, "d": day},
        )
    owner.commit()
    vacuum_analyze(owner, MUTABLE_TABLES)


def set_meta(owner, key: str, value: str) -> None:
    with owner.cursor() as cursor:
        cursor.execute(
            "INSERT INTO bench_meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            [key, value],
        )
    owner.commit()


def analyze(owner, tables=MUTABLE_TABLES + ("audit_auditevent",)) -> None:
    """Fresh planner statistics after a run wrote a new day's rows (untimed). Without it, lookups of
    the new day by (account, day) can pick the (tenant, day, band) index and filter 100,000 rows."""
    owner.commit()
    with owner.cursor() as cursor:
        for table in tables:
            cursor.execute(f"ANALYZE {table}")
    owner.commit()


def dataset_counts(owner, tenant_id: int) -> dict[str, int]:
    counts = {}
    with owner.cursor() as cursor:
        for table in DATA_TABLES:
            cursor.execute(f"SELECT count(*) FROM {table} WHERE tenant_id = %s", [tenant_id])  # noqa: S608
            counts[table] = cursor.fetchone()[0]
        cursor.execute("SELECT pg_database_size(current_database())")
        counts["database bytes"] = cursor.fetchone()[0]
    owner.commit()
    return counts


# --- (b) The hand-written single-SQL floor -----------------------------------------------------------
def _clamp(expr: str) -> str:
    """segments.health_model._clamp, keeping NULL (= missing) NULL: greatest/least would ignore it."""
    return f"CASE WHEN ({expr}) IS NULL THEN NULL ELSE greatest(0.0, least(100.0, ({expr}))) END"


# measure code -> score column of the `scored` CTE (segments.health_model.MEASURES, in order)
FLOOR_MEASURES = {
    "kpi_attainment": "s_kpi",
    "nps": "s_nps",
    "csat": "s_csat",
    "ces": "s_ces",
    "trust": "s_trust",
    "adoption": "s_adoption",
    "escalations": "s_escalations",
    "mttr": "s_mttr",
    "journey": "s_journey",
    "compliance": "s_compliance",
    "decision_closure": "s_decision_closure",
    "renewal": "s_renewal",
}


def floor_sql() -> str:
    from metrics.services import DECISION_WINDOW_DAYS, KPI_WINDOW_DAYS, SURVEY_WINDOW_DAYS
    from segments.health_model import (
        ADOPTION_KPIS,
        COMPLIANCE_SCORES,
        JOURNEY_SCORES,
        MEASURES,
        SHORTFALL_PENALTY,
        TRUST_KPIS,
    )

    assert set(FLOOR_MEASURES) == set(MEASURES), "a measure was added to segments.health_model: add it to the floor"

    def codes(values) -> str:
        return ", ".join(f"'{value}'" for value in values)

    def case(column: str, scores: dict[str, float]) -> str:
        return "CASE " + column + " " + " ".join(f"WHEN '{k}' THEN {v}" for k, v in scores.items()) + " END"

    weights = ",\n            ".join(
        f"coalesce(max(m.weight) FILTER (WHERE m.measure = '{code}'), 0)::float8 AS w_{code}" for code in FLOOR_MEASURES
    )
    numerator = " + ".join(f"coalesce(w_{code} * {col}, 0)" for code, col in FLOOR_MEASURES.items())
    present = " + ".join(f"CASE WHEN {col} IS NULL THEN 0 ELSE w_{code} END" for code, col in FLOOR_MEASURES.items())
    components = ", ".join(f"'{code}', round({col}::numeric, 2)" for code, col in FLOOR_MEASURES.items())
    # kpi_score: relative shortfall (excess for lower-is-better), at least 1 % for any miss.
    shortfall_lower = "CASE WHEN coalesce(k.hi, 0) <> 0 THEN (l.v - k.hi) / k.hi ELSE 1.0 END"
    shortfall_higher = "CASE WHEN coalesce(k.lo, 0) <> 0 THEN (k.lo - l.v) / k.lo ELSE 1.0 END"
    return f"""
    WITH
    acc AS (
        SELECT id, segment_id, renewal_date - %(day)s::date AS days_to_renewal
        FROM accounts_account WHERE tenant_id = %(tenant)s
    ),
    card AS (  -- the segment's scorecard pivoted: one weight column per measure (0 = not scored)
        SELECT c.segment_id, c.green_at::float8 AS green_at, c.red_below::float8 AS red_below,
            {weights}
        FROM segments_scorecard c
        LEFT JOIN segments_scorecardmeasure m ON m.scorecard_id = c.id AND m.weight > 0
        WHERE c.tenant_id = %(tenant)s
        GROUP BY c.id
    ),
    latest AS (  -- latest value of each KPI within the window
        SELECT DISTINCT ON (account_id, kpi_id) account_id, kpi_id, value::float8 AS v
        FROM metrics_kpimeasurement
        WHERE tenant_id = %(tenant)s AND measured_on <= %(day)s::date
          AND measured_on > %(day)s::date - {KPI_WINDOW_DAYS}
        ORDER BY account_id, kpi_id, measured_on DESC
    ),
    kpi_scores AS (
        SELECT l.account_id, k.code, l.v,
            CASE WHEN (CASE k.comparator WHEN 'lt' THEN l.v < k.hi ELSE l.v >= k.lo END) THEN 100.0
                 ELSE greatest(0.0, least(100.0, 100.0 - greatest(0.01, CASE WHEN k.direction = 'lower'
                      THEN {shortfall_lower} ELSE {shortfall_higher} END) * 100.0 * {SHORTFALL_PENALTY})) END AS score
        FROM latest l
        JOIN (SELECT id, code, comparator, direction, target_low::float8 AS lo, target_high::float8 AS hi
              FROM segments_kpidefinition WHERE tenant_id = %(tenant)s) AS k ON k.id = l.kpi_id
    ),
    kpi AS (
        SELECT account_id, avg(score) AS attainment,
            (array_agg(v ORDER BY code) FILTER (WHERE code IN ({codes(TRUST_KPIS)})))[1] AS trust,
            (array_agg(v ORDER BY code) FILTER (WHERE code IN ({codes(ADOPTION_KPIS)})))[1] AS adoption
        FROM kpi_scores GROUP BY account_id
    ),
    surveys AS (
        SELECT account_id,
            count(*) FILTER (WHERE survey_type = 'nps') AS nps_n,
            count(*) FILTER (WHERE survey_type = 'nps' AND score >= 9) AS promoters,
            count(*) FILTER (WHERE survey_type = 'nps' AND score <= 6) AS detractors,
            avg(score) FILTER (WHERE survey_type = 'csat')::float8 AS csat,
            avg(score) FILTER (WHERE survey_type = 'ces')::float8 AS ces
        FROM metrics_surveyresponse
        WHERE tenant_id = %(tenant)s AND responded_on <= %(day)s::date
          AND responded_on > %(day)s::date - {SURVEY_WINDOW_DAYS}
        GROUP BY account_id
    ),
    incidents AS (
        SELECT account_id, count(*) FILTER (WHERE escalated) AS escalations,
            avg(extract(epoch FROM resolved_at - opened_at)::float8 / 3600.0)
                FILTER (WHERE resolved_at IS NOT NULL AND resolved_at < %(until)s) AS mttr_hours
        FROM metrics_incident
        WHERE tenant_id = %(tenant)s AND opened_at >= %(since)s AND opened_at < %(until)s
        GROUP BY account_id
    ),
    journey AS (  -- the most recent journey speaks for the account
        SELECT DISTINCT ON (account_id) account_id, status
        FROM journeys_accountjourney
        WHERE tenant_id = %(tenant)s AND started_on <= %(day)s::date
        ORDER BY account_id, started_on DESC, id DESC
    ),
    compliance AS (
        SELECT account_id, status FROM compliance_compliancestatussnapshot
        WHERE tenant_id = %(tenant)s AND snapshot_date = %(day)s::date
    ),
    decisions AS (
        SELECT account_id, count(*) AS due,
            count(*) FILTER (WHERE status IN ('resolved', 'fallback') AND resolved_at IS NOT NULL
                             AND (resolved_at AT TIME ZONE %(tz)s)::date <= due_date) AS on_time
        FROM journeys_decision
        WHERE tenant_id = %(tenant)s AND due_date <= %(day)s::date
          AND due_date > %(day)s::date - {DECISION_WINDOW_DAYS}
        GROUP BY account_id
    ),
    previous AS (
        SELECT account_id,
            max(total) FILTER (WHERE snapshot_date = %(day)s::date - 7) AS total_7,
            max(total) FILTER (WHERE snapshot_date = %(day)s::date - 30) AS total_30
        FROM metrics_healthsnapshot
        WHERE tenant_id = %(tenant)s AND snapshot_date IN (%(day)s::date - 7, %(day)s::date - 30)
        GROUP BY account_id
    ),
    scored AS MATERIALIZED (  -- materialized: each score is computed once, not at every use below
        SELECT a.id AS account_id, card.*, p.total_7, p.total_30,
            k.attainment AS s_kpi,
            CASE WHEN s.nps_n > 0 THEN ((s.promoters - s.detractors) * 100.0 / s.nps_n + 100.0) / 2.0 END AS s_nps,
            {_clamp("(s.csat - 1.0) / 4.0 * 100.0")} AS s_csat,
            {_clamp("(s.ces - 1.0) / 6.0 * 100.0")} AS s_ces,
            {_clamp("(k.trust - 1.0) / 4.0 * 100.0")} AS s_trust,
            {_clamp("k.adoption")} AS s_adoption,
            greatest(0.0, least(100.0, 100.0 - 25.0 * coalesce(i.escalations, 0))) AS s_escalations,
            {_clamp("(72.0 - i.mttr_hours) / 64.0 * 100.0")} AS s_mttr,
            {case("j.status", JOURNEY_SCORES)} AS s_journey,
            {case("c.status", COMPLIANCE_SCORES)} AS s_compliance,
            CASE WHEN d.due > 0 THEN d.on_time * 100.0 / d.due END AS s_decision_closure,
            {_clamp("a.days_to_renewal / 180.0 * 100.0")} AS s_renewal
        FROM acc a
        JOIN card ON card.segment_id = a.segment_id
        LEFT JOIN kpi k ON k.account_id = a.id
        LEFT JOIN surveys s ON s.account_id = a.id
        LEFT JOIN incidents i ON i.account_id = a.id
        LEFT JOIN journey j ON j.account_id = a.id
        LEFT JOIN compliance c ON c.account_id = a.id
        LEFT JOIN decisions d ON d.account_id = a.id
        LEFT JOIN previous p ON p.account_id = a.id
    ),
    totals AS (  -- weighted mean of the present measures: missing ones' weight is spread over the others
        SELECT scored.*, {present} AS present_weight, {numerator} AS weighted
        FROM scored
    ),
    final AS MATERIALIZED (
        SELECT totals.*,
            CASE WHEN present_weight > 0 THEN round((weighted / present_weight)::numeric, 2) ELSE 0 END AS total
        FROM totals
    )
    INSERT INTO metrics_healthsnapshot AS f
        (tenant_id, account_id, snapshot_date, total, band, components, change_7d, change_30d, computed_at)
    SELECT %(tenant)s, account_id, %(day)s::date, total,
        CASE WHEN present_weight = 0 THEN 'grey' WHEN total >= green_at THEN 'green'
             WHEN total < red_below THEN 'red' ELSE 'yellow' END,
        jsonb_build_object({components}), total - total_7, total - total_30, now()
    FROM final
    ON CONFLICT (tenant_id, account_id, snapshot_date) DO UPDATE SET
        total = EXCLUDED.total, band = EXCLUDED.band, components = EXCLUDED.components,
        change_7d = EXCLUDED.change_7d, change_30d = EXCLUDED.change_30d, computed_at = EXCLUDED.computed_at
    """


def run_floor(*, tenant, day: datetime.date) -> tuple[float, int]:
    """The floor, as the app role (RLS in force), in one transaction: (seconds, rows written)."""
    from django.conf import settings
    from django.db import connection, transaction
    from django.utils import timezone

    from cs_platform.tenancy import context
    from metrics.services import INCIDENT_WINDOW_DAYS

    since = timezone.make_aware(
        datetime.datetime.combine(day - datetime.timedelta(days=INCIDENT_WINDOW_DAYS), datetime.time())
    )
    until = timezone.make_aware(datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time()))
    statement = floor_sql()
    params = {"tenant": tenant.pk, "day": day, "since": since, "until": until, "tz": settings.TIME_ZONE}
    started = time.perf_counter()
    with transaction.atomic(), context.tenant_context(tenant), connection.cursor() as cursor:
        cursor.execute(statement, params)
        written = cursor.rowcount
    return time.perf_counter() - started, written


def compare_floor(owner, *, tenant_id: int, day: datetime.date, sample: int, seed: int) -> dict[str, Any]:
    with owner.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(f.account_id), max(abs(h.total - f.total)), "
            "  count(*) FILTER (WHERE abs(h.total - f.total) > 0.01), count(*) FILTER (WHERE h.band <> f.band), "
            "  max(abs(coalesce(h.change_7d, 0) - coalesce(f.change_7d, 0))) "
            "FROM bench_engine_totals h LEFT JOIN metrics_healthsnapshot f "
            "  ON f.tenant_id = h.tenant_id AND f.account_id = h.account_id AND f.snapshot_date = h.snapshot_date "
            "WHERE h.tenant_id = %s AND h.snapshot_date = %s",
            [tenant_id, day],
        )
        engine_rows, matched, max_all, over_cent, band_diff, max_change = cursor.fetchone()
        cursor.execute(
            "SELECT account_id FROM bench_engine_totals WHERE tenant_id = %s AND snapshot_date = %s", [tenant_id, day]
        )
        ids = sorted(r[0] for r in cursor.fetchall())
        picked = random.Random(seed).sample(ids, min(sample, len(ids)))
        cursor.execute(
            "SELECT h.account_id, h.total, f.total FROM bench_engine_totals h "
            "JOIN metrics_healthsnapshot f ON f.tenant_id = h.tenant_id AND f.account_id = h.account_id "
            "  AND f.snapshot_date = h.snapshot_date "
            "WHERE h.tenant_id = %s AND h.snapshot_date = %s AND h.account_id = ANY(%s)",
            [tenant_id, day, picked],
        )
        pairs = cursor.fetchall()
    owner.commit()
    diffs = [abs(float(engine - floor)) for _, engine, floor in pairs]
    return {
        "sample": len(picked),
        "sample_found": len(pairs),
        "sample_max": max(diffs, default=float("nan")),
        "engine_rows": engine_rows,
        "matched": matched,
        "max_all": float(max_all or 0),
        "over_cent": over_cent,
        "band_diff": band_diff,
        "max_change_7d": float(max_change or 0),
    }


# --- (c) The naive per-account ORM loop ------------------------------------------------------------------
def naive_loop(*, tenant, day: datetime.date, account_ids: list[int]) -> dict[int, Any]:
    """What "a query per account" looks like: each account's inputs fetched one by one with the ORM,
    scored with segments.health_model.score_account, saved with update_or_create. Returns {account: total}."""
    from django.utils import timezone

    from accounts.models import Account
    from compliance.models import ComplianceStatusSnapshot
    from cs_platform.tenancy import context
    from journeys.models import AccountJourney, Decision
    from metrics.models import HealthSnapshot, Incident, KpiMeasurement, SurveyResponse
    from metrics.services import DECISION_WINDOW_DAYS, INCIDENT_WINDOW_DAYS, KPI_WINDOW_DAYS, SURVEY_WINDOW_DAYS
    from segments.health_model import AccountInputs, KpiTarget, SurveyStats, score_account
    from segments.services import scorecards_for_scoring

    totals: dict[int, Any] = {}
    since = timezone.make_aware(
        datetime.datetime.combine(day - datetime.timedelta(days=INCIDENT_WINDOW_DAYS), datetime.time())
    )
    until = timezone.make_aware(datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time()))
    back_7, back_30 = day - datetime.timedelta(days=7), day - datetime.timedelta(days=30)
    with context.tenant_context(tenant):
        configs = scorecards_for_scoring(tenant=tenant)
        for account_id in account_ids:
            account = Account.objects.select_related("segment").get(pk=account_id)
            inputs = AccountInputs(
                segment_code=account.segment.code,
                days_to_renewal=None if account.renewal_date is None else (account.renewal_date - day).days,
            )
            latest: dict[int, tuple[KpiTarget, float]] = {}
            for m in (
                KpiMeasurement.objects.filter(
                    account=account,
                    measured_on__lte=day,
                    measured_on__gt=day - datetime.timedelta(days=KPI_WINDOW_DAYS),
                )
                .select_related("kpi")
                .order_by("measured_on")
            ):
                k = m.kpi
                target = KpiTarget(
                    code=k.code,
                    name=k.name,
                    comparator=k.comparator,
                    direction=k.direction,
                    low=None if k.target_low is None else float(k.target_low),
                    high=None if k.target_high is None else float(k.target_high),
                    target_text=k.target_text,
                )
                latest[m.kpi_id] = (target, float(m.value))
            inputs.kpis = sorted(latest.values(), key=lambda pair: pair[0].code)
            scores: dict[str, list[int]] = {"nps": [], "csat": [], "ces": []}
            for survey in SurveyResponse.objects.filter(
                account=account,
                responded_on__lte=day,
                responded_on__gt=day - datetime.timedelta(days=SURVEY_WINDOW_DAYS),
            ):
                scores[survey.survey_type].append(survey.score)
            inputs.nps, inputs.csat, inputs.ces = (SurveyStats.of(scores[t]) for t in ("nps", "csat", "ces"))
            for incident in Incident.objects.filter(account=account, opened_at__gte=since, opened_at__lt=until):
                inputs.escalations += 1 if incident.escalated else 0
                if incident.resolved_at is not None and incident.resolved_at < until:
                    inputs.resolved_hours.append((incident.resolved_at - incident.opened_at).total_seconds() / 3600.0)
            journey = (
                AccountJourney.objects.filter(account=account, started_on__lte=day)
                .order_by("-started_on", "-id")
                .first()
            )
            inputs.journey_status = journey.status if journey else None
            snapshot = ComplianceStatusSnapshot.objects.filter(account=account, snapshot_date=day).first()
            inputs.compliance_status = snapshot.status if snapshot else None
            for decision in Decision.objects.filter(
                account=account,
                due_date__lte=day,
                due_date__gt=day - datetime.timedelta(days=DECISION_WINDOW_DAYS),
            ):
                inputs.decisions_due += 1
                if (
                    decision.status in ("resolved", "fallback")
                    and decision.resolved_at is not None
                    and timezone.localtime(decision.resolved_at).date() <= decision.due_date
                ):
                    inputs.decisions_closed_on_time += 1
            before = dict(
                HealthSnapshot.objects.filter(account=account, snapshot_date__in=(back_7, back_30)).values_list(
                    "snapshot_date", "total"
                )
            )
            config = configs[account.segment_id]
            result = score_account(inputs, config.measures, green_at=config.green_at, red_below=config.red_below)
            HealthSnapshot.objects.update_or_create(
                tenant=tenant,
                account=account,
                snapshot_date=day,
                defaults={
                    "total": result.total,
                    "band": result.band,
                    "components": result.components,
                    "change_7d": None if back_7 not in before else result.total - before[back_7],
                    "change_30d": None if back_30 not in before else result.total - before[back_30],
                    "computed_at": timezone.now(),
                },
            )
            totals[account_id] = result.total
    return totals


# --- The engine --------------------------------------------------------------------------------------------
def run_engine(
    *,
    tenant,
    day: datetime.date,
    chunk_size: int | None,
    label: str,
    capture: bool = False,
    trace: bool = False,
    profile: str | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from nightly.pipeline import run_tenant

    counter = QueryCounter()
    phases = PhaseTimer()
    result: dict[str, Any] = {"label": label, "chunk": chunk_size}
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
    gc.collect()
    with RssSampler() as rss, phases.installed(), connection.execute_wrapper(counter):
        captured = CaptureQueriesContext(connection) if capture else None
        if captured is not None:
            captured.__enter__()
        if trace:
            tracemalloc.start()
        if profiler is not None:
            profiler.enable()
        started = time.perf_counter()
        try:
            summary = run_tenant(tenant=tenant, day=day, chunk_size=chunk_size, workers=workers)
        finally:
            ended = time.perf_counter()
            result["seconds"] = ended - started
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(profile)
            if trace:
                result["traced_peak"] = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
            if captured is not None:
                captured.__exit__(None, None, None)
    result.update(
        summary=summary,
        queries=counter.count,
        rss_growth=rss.growth,
        rss_peak=rss.peak,
        maxrss_delta=rss.maxrss_after - rss.maxrss_before,
        phases=phases,
        health_seconds=phases.health(ended),
    )
    if captured is not None:
        result["captured_queries"] = len(captured.captured_queries)
    return result


def print_engine(result: dict[str, Any]) -> None:
    summary = result["summary"]
    health = summary.get("health", {})
    note = (
        f"{result['queries']} queries; health {result['health_seconds']:.1f} s; "
        f"{health.get('accounts', 0):,} accounts; esc {summary['escalations']['escalated']:,}, "
        f"journey changes {summary['journeys']['status_changes']:,}, "
        f"obligation changes {summary['compliance']['status_changes']:,}"
    )
    row(result["label"], secs(result["seconds"]), note)
    say(f"  {'':<46} {'':>14}  phases (s): {result['phases'].summary()}")
    say(
        f"  {'':<46} {'':>14}  memory: peak RSS +{mib(result['rss_growth'])} (peak {mib(result['rss_peak'])}), "
        f"ru_maxrss +{mib(result['maxrss_delta'])}"
        + (f", tracemalloc peak {mib(result['traced_peak'])}" if "traced_peak" in result else "")
    )


# --- Main ----------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _, owner_url = start(
        script="bench_recompute",
        database=BENCH_DB,
        title=f"Nightly recompute benchmark: {args.accounts:,} accounts, database {BENCH_DB}",
    )

    def unfit(meta: dict) -> str | None:
        if meta.get("accounts") == str(args.accounts) and "generation_seconds" in meta:
            return None
        return f"the dataset has {meta.get('accounts', 'no')} accounts, {args.accounts} asked for"

    owner, meta = open_database(
        owner_url, database=BENCH_DB, script="bench_recompute", rebuild=args.rebuild, read_meta=read_meta, unfit=unfit
    )
    reuse = bool(meta)

    seconds = setup_django()
    read_meta(owner)  # creates bench_meta in a database just created
    row("migrate + create_app_role", secs(seconds))
    from django.conf import settings

    from cs_platform.tenancy.models import Tenant

    heading("Dataset")
    if reuse:
        day = datetime.date.fromisoformat(meta["day"])
        tenant = Tenant.objects.get(pk=int(meta["tenant_id"]))
        row(
            "reused (--rebuild to regenerate)",
            meta["accounts"],
            f"generated {meta['generated_at'][:19]} in {meta['generation_seconds']} s, day {day}",
        )
    else:
        day = datetime.date.today()
        started = time.perf_counter()
        tenant, csm_user = create_tenant_and_users()
        row("tenant (tenant_create: seed 000 reference data)", secs(time.perf_counter() - started))
        elapsed = generate(
            owner, tenant=tenant, owner_user_id=csm_user.pk, accounts=args.accounts, day=day, seed=args.seed
        )
        row("generated (set-based SQL as owner + VACUUM ANALYZE)", secs(elapsed))
    counts = dataset_counts(owner, tenant.pk)
    for table, count in counts.items():
        row(f"  {table}", f"{count:,}" if table != "database bytes" else mib(count))

    heading(f"(a) Engine: nightly.pipeline.run_tenant, as the app role (chunk {settings.NIGHTLY_CHUNK_SIZE})")
    meta = read_meta(owner)
    previous_day = day - datetime.timedelta(days=1)
    if "first_run" not in meta:
        # Once per dataset: the night before the benchmark day, from the generated state (every
        # journey and obligation status is new, every overdue decision escalates). Its end state is
        # saved and restored before each invocation's timed runs.
        first = run_engine(tenant=tenant, day=previous_day, chunk_size=None, label=f"first run ever ({previous_day})")
        print_engine(first)
        save_state(owner, tenant_id=tenant.pk)
        analyze(owner)
        set_meta(
            owner,
            "first_run",
            f"{first['seconds']:.2f} s, {first['queries']} queries, phases (s): {first['phases'].summary()}",
        )
    else:
        row(
            f"first run ever ({previous_day}), at generation",
            meta["first_run"].split(",")[0],
            meta["first_run"].split(", ", 1)[1],
        )
    started = time.perf_counter()
    reset_state(owner, tenant_id=tenant.pk, day=day)
    row("state restored as the previous night left it", secs(time.perf_counter() - started), "(untimed setup)")
    night = run_engine(
        tenant=tenant,
        day=day,
        chunk_size=None,
        profile=args.profile,
        workers=args.workers,
        label=f"typical night ({day}), {args.workers} worker(s)",
    )
    print_engine(night)
    analyze(owner)
    rerun = run_engine(
        tenant=tenant, day=day, chunk_size=None, label="idempotent re-run (same day), 1 worker", capture=True
    )
    print_engine(rerun)
    analyze(owner)
    row("  queries (CaptureQueriesContext, re-run)", f"{rerun['captured_queries']}")
    big = None
    if args.big_chunk and args.big_chunk != settings.NIGHTLY_CHUNK_SIZE:
        big = run_engine(tenant=tenant, day=day, chunk_size=args.big_chunk, label=f"re-run, chunk {args.big_chunk}")
        print_engine(big)
        analyze(owner)
    if args.tracemalloc:
        traced = run_engine(tenant=tenant, day=day, chunk_size=None, label="re-run under tracemalloc", trace=True)
        print_engine(traced)
        analyze(owner)

    keep_engine_totals(owner, tenant_id=tenant.pk, day=day)
    # The floor's first run inserts the day's snapshots, as the typical night did; its re-run upserts.
    with owner.cursor() as cursor:
        cursor.execute(
            "DELETE FROM metrics_healthsnapshot WHERE tenant_id = %s AND snapshot_date = %s", [tenant.pk, day]
        )
    owner.commit()
    vacuum_analyze(owner, ["metrics_healthsnapshot"])
    heading("(b) Floor: one SQL statement (CTEs + upsert of the day's snapshots), as the app role")
    floor_first, written = run_floor(tenant=tenant, day=day)
    row("floor, first run (insert)", secs(floor_first), f"{written:,} rows")
    floor_rerun, _ = run_floor(tenant=tenant, day=day)
    analyze(owner, ("metrics_healthsnapshot", "bench_engine_totals"))
    row("floor, re-run (upsert over existing rows)", secs(floor_rerun))
    check = compare_floor(owner, tenant_id=tenant.pk, day=day, sample=args.verify_sample, seed=args.seed)
    row(
        f"max |engine - floor| total, {check['sample_found']} random accounts",
        f"{check['sample_max']:.2f}",
        "(agreement: < 0.05)",
    )
    row(
        "max |engine - floor| total, all accounts",
        f"{check['max_all']:.2f}",
        f"{check['matched']:,}/{check['engine_rows']:,} matched, {check['over_cent']} differ by > 0.01, "
        f"{check['band_diff']} band differences, max change_7d diff {check['max_change_7d']:.2f}",
    )

    heading(f"(c) Naive per-account ORM loop over {args.sample:,} random accounts")
    with owner.cursor() as cursor:
        cursor.execute("SELECT id FROM accounts_account WHERE tenant_id = %s ORDER BY id", [tenant.pk])
        all_ids = [r[0] for r in cursor.fetchall()]
        sample_ids = random.Random(args.seed + 1).sample(all_ids, args.sample)
        cursor.execute(
            "SELECT account_id, total FROM bench_engine_totals WHERE tenant_id = %s AND snapshot_date = %s "
            "AND account_id = ANY(%s)",
            [tenant.pk, day, sample_ids],
        )
        engine_totals = dict(cursor.fetchall())
    owner.commit()
    counter = QueryCounter()
    from django.db import connection

    started = time.perf_counter()
    with connection.execute_wrapper(counter):
        loop_totals = naive_loop(tenant=tenant, day=day, account_ids=sample_ids)
    loop_seconds = time.perf_counter() - started
    extrapolated = loop_seconds / args.sample * len(all_ids)
    loop_diff = max(
        (abs(float(loop_totals[a] - engine_totals[a])) for a in sample_ids if a in engine_totals), default=float("nan")
    )
    row(
        "loop over the sample",
        secs(loop_seconds),
        f"{counter.count:,} queries "
        f"({counter.count / args.sample:.1f} per account), {loop_seconds / args.sample * 1000:.2f} ms per account",
    )
    row(f"extrapolated to {len(all_ids):,} accounts", secs(extrapolated), f"max |loop - engine| total {loop_diff:.2f}")

    heading("Summary")
    engine = night["seconds"]
    row(
        f"(a) engine, typical night, {args.workers} worker(s)",
        secs(engine),
        f"{night['queries']} queries, peak RSS +{mib(night['rss_growth'])}",
    )
    row("(a) engine, first run ever (the day before)", read_meta(owner)["first_run"].split(",")[0])
    row(
        "(a) engine, idempotent re-run, 1 worker",
        secs(rerun["seconds"]),
        f"{rerun['captured_queries']} queries captured; health {rerun['health_seconds']:.1f} s",
    )
    if big is not None:
        row(f"(a) engine, re-run with chunk {args.big_chunk}", secs(big["seconds"]))
    row("(a) engine, health step only (typical night)", secs(night["health_seconds"]))
    row("(b) floor (single SQL, health only)", secs(floor_first), f"re-run {floor_rerun:.2f} s")
    row("(c) naive ORM loop, extrapolated", secs(extrapolated), f"measured on {args.sample:,} accounts")
    ratio_floor = engine / floor_first if floor_first else float("inf")
    ratio_loop = extrapolated / engine if engine else float("inf")
    row("engine / floor  (target <= 2x)", f"{ratio_floor:.1f}x", "OK" if ratio_floor <= 2 else "MISSED")
    row("  health step only / floor", f"{night['health_seconds'] / floor_first:.1f}x")
    row("  idempotent re-run (1 worker) / floor re-run", f"{rerun['seconds'] / floor_rerun:.1f}x")
    row("loop extrapolated / engine  (target >= 50x)", f"{ratio_loop:.1f}x", "OK" if ratio_loop >= 50 else "MISSED")
    row(
        "  loop extrapolated / engine health step",
        f"{extrapolated / night['health_seconds']:.1f}x",
        "(the loop, like the floor, only does the health step)",
    )
    row("  loop extrapolated / idempotent re-run, 1 worker", f"{extrapolated / rerun['seconds']:.1f}x")
    owner.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
