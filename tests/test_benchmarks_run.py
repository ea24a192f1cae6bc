"""The benchmark scripts (tests/perf/, `make bench`) still run to their summary on today's schema.

They are not collected by pytest and write their data with raw SQL, so a new NOT NULL column or a
renamed table broke bench_recompute.py without any test failing (found by `make bench`). This runs each
script on a tiny dataset in its own databases (BENCH_DATABASE_SUFFIX) and checks that it finishes and
prints its figures. It times nothing: the figures of a tiny run mean nothing (tests/perf/README.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest

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
