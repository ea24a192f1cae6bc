"""Autovacuum keeps the small reference tables' statistics current (monitoring migration 0002): without
it a new deployment's segments, frameworks, requirements, phases and users are never analyzed and the
planner's guesses make the compliance overview ~5x slower (tests/perf/README.md)."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.db import connection

migration = importlib.import_module("monitoring.migrations.0002_small_tables_analyze_threshold")


@pytest.mark.django_db
def test_small_tables_are_analyzed_after_a_few_changed_rows():
    tables = migration._tables(apps)
    assert "compliance_requirement" in tables and "auth_user" in tables
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname, reloptions FROM pg_class WHERE relname = ANY(%s)", [tables])
        options = dict(cursor.fetchall())
    assert sorted(options) == sorted(tables)
    assert {
        table: opts for table, opts in options.items() if "autovacuum_analyze_threshold=5" not in (opts or [])
    } == {}
