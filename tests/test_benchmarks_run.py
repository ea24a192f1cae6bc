"""The benchmark scripts (tests/perf/, `make bench`) still run to their summary on today's schema.

They are not collected by pytest and write their data with raw SQL (tests/perf/datagen.py), so a new
NOT NULL column or a renamed table broke bench_recompute.py without any test failing (found by `make
bench`). The generator runs here on the test database with the foreign-key checks on, and each shape
is checked against what tests/perf/README.md says of it; then each script runs on a tiny dataset in its
own databases (BENCH_DATABASE_SUFFIX), and must finish and print its figures. Nothing is timed: the
figures of a tiny run mean nothing (tests/perf/README.md)."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.committed import owner_connection, purge_tenant
from tests.perf import datagen

ROOT = Path(__file__).resolve().parent.parent
SUFFIX = "_smoke"
# Each script with tiny sizes, and lines its output must hold (its figures, computed).
RUNS = {
    "bench_recompute": (
        ["--accounts", "300", "--sample", "20", "--verify-sample", "50", "--workers", "1"],
        ["(a) engine, typical night", "(b) floor", "(c) naive ORM loop", "loop extrapolated / engine"],
    ),
    "bench_dashboards": (
        ["--accounts", "200", "--small-accounts", "50", "--requests", "2", "--warmup", "1"],
        ["Summary", "segment scorecard"],
    ),
    "bench_api": (
        ["--accounts", "200", "--requests", "2", "--warmup", "1", "--rows", "200", "--iterations", "2"],
        ["/api/v1/accounts/?page_size=100", "bulk ingest, median"],
    ),
    "bench_scorecards": (
        ["--tenants", "2", "--executives", "3", "--accounts", "100"],
        ["accepted by the SMTP server", "total for 6 emails"],
    ),
}
DATABASES = ["cs_platform_bench", "cs_platform_bench_dash", "cs_platform_bench_api", "cs_platform_bench_scorecards"]


def _drop_smoke_databases() -> None:
    import psycopg2

    # The scripts create their databases as the owner role (DATABASE_OWNER_URL, as the Makefile sets it).
    url = urlparse(os.environ["DATABASE_OWNER_URL"])
    conn = psycopg2.connect(
        dbname="postgres", user=url.username, password=url.password, host=url.hostname, port=url.port or 5432
    )
    conn.autocommit = True
    with conn.cursor() as cursor:
        for name in DATABASES:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}{SUFFIX}" WITH (FORCE)')
    conn.close()


@pytest.fixture(scope="module")
def runs():
    """All four scripts at once (two CPUs: the wall time is about that of the slowest), each output."""
    env = {**os.environ, "BENCH_DATABASE_SUFFIX": SUFFIX}
    _drop_smoke_databases()
    processes = {
        name: subprocess.Popen(
            [sys.executable, f"tests/perf/{name}.py", *args],
            cwd=ROOT,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for name, (args, _) in RUNS.items()
    }
    outputs = {}
    try:
        for name, process in processes.items():
            out, _ = process.communicate(timeout=400)
            outputs[name] = (process.returncode, out)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
        _drop_smoke_databases()
    return outputs


@pytest.mark.parametrize("script", sorted(RUNS))
def test_the_benchmark_runs_to_its_summary_on_a_tiny_dataset(runs, script):
    returncode, output = runs[script]
    assert returncode == 0, f"{script} exited {returncode}:\n{output[-4000:]}"
    assert "Traceback" not in output, output[-4000:]
    for line in RUNS[script][1]:
        assert line in output, f"{script} printed no {line!r}:\n{output[-4000:]}"


# --- The generator, in process -------------------------------------------------------------------------------
GENERATED_ACCOUNTS = 200


@contextmanager
def _generated(kind: str, blocker):
    """A tenant created and filled by the generator in the shape `kind` names, committed (the generator
    writes on its own owner connection), with the foreign-key checks on; purged afterwards. Yields
    (shape, {role: user ids}, datagen.Generated, query), query(sql) reading as the owner with the
    parameters t (the tenant) and d (the day)."""
    shape = {"recompute": datagen.recompute_shape, "dashboards": datagen.dashboards_shape}[kind](GENERATED_ACCOUNTS)
    day = datetime.date.today()
    with blocker.unblock(), owner_connection() as owner:
        tenant, users = datagen.create_tenant(name=f"Generated {kind}", slug=f"gen-{kind}", members=shape.members)
        try:
            owner.autocommit = False  # as the benchmarks' owner connection (benchlib.owner_connect)
            result = datagen.generate(
                owner, tenant=tenant, users=users, shape=shape, day=day, seed=42, foreign_key_checks=True
            )
            owner.autocommit = True

            def query(sql: str) -> list[tuple]:
                with owner.cursor() as cursor:
                    cursor.execute(sql, {"t": tenant.pk, "d": day})
                    return cursor.fetchall()

            yield shape, users, result, query
        finally:
            purge_tenant(tenant.pk, [pk for ids in users.values() for pk in ids])


# Module-scoped: each shape is generated once for the tests that read it.
@pytest.fixture(scope="module")
def recompute_data(django_db_setup, django_db_blocker):
    with _generated("recompute", django_db_blocker) as data:
        yield data


@pytest.fixture(scope="module")
def dashboards_data(django_db_setup, django_db_blocker):
    with _generated("dashboards", django_db_blocker) as data:
        yield data


def _per_account(query, table: str, column: str = "account_id") -> dict[int, int]:
    """Rows of `table` per account, every account of the tenant included (0 for none)."""
    return dict(
        query(
            f"SELECT a.id, count(x.{column}) FROM accounts_account a LEFT JOIN {table} x ON x.{column} = a.id "  # noqa: S608
            "WHERE a.tenant_id = %(t)s GROUP BY a.id"
        )
    )


@pytest.mark.parametrize("data", ["recompute_data", "dashboards_data"])
def test_the_generator_fills_every_table_of_its_shape_with_valid_rows(request, data):
    shape, _, result, query = request.getfixturevalue(data)
    # Every NOT NULL column is in the INSERTs: a column added to a model is added to datagen's statement.
    assert result.defaulted == []
    counts = {table: query(f"SELECT count(*) FROM {table} WHERE tenant_id = %(t)s")[0][0] for table in shape.tables()}  # noqa: S608
    assert all(counts.values()), counts
    assert counts["accounts_account"] == result.rows["accounts"] == GENERATED_ACCOUNTS
    assert counts["metrics_kpimeasurement"] == result.rows["KPI measurements"]
    # The segment mix, in seed order: a cycle of sum(mix) accounts holds mix[i] of segment i.
    per_segment = query(
        "SELECT count(a.id) FROM segments_segment s LEFT JOIN accounts_account a ON a.segment_id = s.id "
        "WHERE s.tenant_id = %(t)s GROUP BY s.id ORDER BY s.sort_order, s.id"
    )
    assert [n for (n,) in per_segment] == [GENERATED_ACCOUNTS * w // sum(shape.segment_mix) for w in shape.segment_mix]
    # Each obligation's requirement applies to the account's segment; so many per account.
    assert not query(
        "SELECT o.id FROM compliance_obligation o JOIN accounts_account a ON a.id = o.account_id "
        "JOIN compliance_requirement r ON r.id = o.requirement_id "
        "WHERE o.tenant_id = %(t)s AND r.segment_id IS DISTINCT FROM a.segment_id AND r.segment_id IS NOT NULL"
    )
    low, high = shape.compliance.obligations
    assert set(_per_account(query, "compliance_obligation").values()) == set(range(low, high + 1))


def test_the_recompute_shape_is_the_documented_one(recompute_data):
    """About 10 KPI measurements each over 130 days, snapshots 7 and 30 days back only, a few percent
    of the accounts lacking each kind of data, decisions owned by the one CSM."""
    _, users, _, query = recompute_data
    kpis = _per_account(query, "metrics_kpimeasurement")
    assert set(kpis.values()) == {0, 10}
    assert 0 < list(kpis.values()).count(0) < GENERATED_ACCOUNTS * 0.06  # 2 %
    assert query(
        "SELECT min(%(d)s - measured_on), max(%(d)s - measured_on) FROM metrics_kpimeasurement WHERE tenant_id = %(t)s"
    ) == [(0, 129)]
    # No change_7d / change_30d: the days 14, 37 and 60 back are not in the history.
    assert query(
        "SELECT array_agg(DISTINCT %(d)s - snapshot_date), count(change_7d) + count(change_30d), "
        "count(*) FILTER (WHERE components <> '[]') FROM metrics_healthsnapshot WHERE tenant_id = %(t)s"
    ) == [([7, 30], 0, 0)]
    assert 0 < list(_per_account(query, "metrics_healthsnapshot").values()).count(0) < GENERATED_ACCOUNTS * 0.2
    assert 0 < list(_per_account(query, "metrics_surveyresponse").values()).count(0) < GENERATED_ACCOUNTS * 0.2
    journeys = list(_per_account(query, "journeys_accountjourney").values())
    assert 0 < journeys.count(0) < GENERATED_ACCOUNTS * 0.3 and 0 < journeys.count(2) and max(journeys) <= 3
    assert query("SELECT DISTINCT owner_id FROM journeys_decision WHERE tenant_id = %(t)s") == [(users["csm"][0],)]
    assert query("SELECT count(*) FROM accounts_account WHERE tenant_id = %(t)s AND owner_csm_id IS NOT NULL") == [(0,)]


def test_the_dashboards_shape_is_the_documented_one(dashboards_data):
    """Books of 20 accounts, a year of daily snapshots, monthly KPI readings of every KPI, ~2 touchpoints
    a month, 2-3 contacts, the CSM's object permissions and the audit trail."""
    _, users, _, query = dashboards_data
    # The n-th account (in id order) belongs to CSM n // 20, so each book holds every segment.
    owners = query("SELECT owner_csm_id FROM accounts_account WHERE tenant_id = %(t)s ORDER BY id")
    csms = users["csm"]
    assert [owner for (owner,) in owners] == [csms[n // 20 % len(csms)] for n in range(1, GENERATED_ACCOUNTS + 1)]
    assert query(
        "SELECT count(*) FROM accounts_accountuserobjectpermission p JOIN accounts_account a "
        "ON a.id = p.content_object_id AND a.owner_csm_id = p.user_id WHERE p.tenant_id = %(t)s"
    ) == [(3 * GENERATED_ACCOUNTS,)]
    assert set(_per_account(query, "accounts_contact").values()) == {2, 3}
    assert set(_per_account(query, "accounts_touchpoint").values()) == {24}
    assert query(
        "SELECT count(DISTINCT snapshot_date), min(%(d)s - snapshot_date), max(%(d)s - snapshot_date), "
        "count(*) FILTER (WHERE change_7d IS NULL), count(*) FILTER (WHERE components = '[]') "
        "FROM metrics_healthsnapshot WHERE tenant_id = %(t)s"
    ) == [(365, 1, 365, 7 * GENERATED_ACCOUNTS, 0)]
    # Per account reporting: 12 readings of every KPI of its segment.
    readings = query(
        "SELECT m.account_id, count(*), count(DISTINCT m.kpi_id), "
        "  (SELECT count(*) FROM segments_kpidefinition k WHERE k.segment_id = min(a.segment_id)) "
        "FROM metrics_kpimeasurement m JOIN accounts_account a ON a.id = m.account_id "
        "WHERE m.tenant_id = %(t)s GROUP BY m.account_id"
    )
    assert readings and all(n == 12 * of == 12 * kpis for _, n, kpis, of in readings)
    assert 0 < GENERATED_ACCOUNTS - len(readings) < GENERATED_ACCOUNTS * 0.06  # 2 % report none
    assert not query(
        "SELECT d.id FROM journeys_decision d JOIN accounts_account a ON a.id = d.account_id "
        "WHERE d.tenant_id = %(t)s AND d.owner_id <> a.owner_csm_id"
    )
    decisions = query("SELECT count(*) FROM journeys_decision WHERE tenant_id = %(t)s")[0][0]
    assert dict(
        query(
            "SELECT action, count(*) FROM audit_auditevent WHERE tenant_id = %(t)s AND action IN "
            "('account.create', 'account.grant_csm', 'decision.create') GROUP BY 1"
        )
    ) == {
        "account.create": GENERATED_ACCOUNTS,
        "account.grant_csm": GENERATED_ACCOUNTS,
        "decision.create": decisions,
    }
