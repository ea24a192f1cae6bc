"""Analyze the health snapshot table after every 10,000 new rows rather than after 10 % of the table.

Each night adds one row per account; with the default scale factor a table holding a year of
snapshots is re-analyzed only every few weeks, so the planner keeps believing "today" has no rows
and plans the dashboards' today-queries (and the nightly engine's) for an empty day."""

from django.db import migrations

from cs_platform.operations import SetStorageParameters


class Migration(migrations.Migration):
    dependencies = [("metrics", "0003_health_band_grey")]
    operations = [
        SetStorageParameters(
            "metrics_healthsnapshot",
            {"autovacuum_analyze_scale_factor": 0, "autovacuum_analyze_threshold": 10000},
        )
    ]
