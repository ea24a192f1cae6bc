"""Analyze the compliance status snapshot table after every 10,000 new rows (one row per account
per night), for the reason given in metrics/migrations/0004_healthsnapshot_autoanalyze.py."""

from django.db import migrations

from cs_platform.operations import SetStorageParameters


class Migration(migrations.Migration):
    dependencies = [("compliance", "0001_initial")]
    operations = [
        SetStorageParameters(
            "compliance_compliancestatussnapshot",
            {"autovacuum_analyze_scale_factor": 0, "autovacuum_analyze_threshold": 10000},
        )
    ]
