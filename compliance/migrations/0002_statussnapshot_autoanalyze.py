"""Analyze the compliance status snapshot table after every ~10,000 new rows (one row per account
per night), for the reason given in metrics/migrations/0004_healthsnapshot_autoanalyze.py."""

from django.db import migrations

TABLE = "compliance_compliancestatussnapshot"


def tune(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"ALTER TABLE {TABLE} SET (autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 10000)"
        )


def untune(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE {TABLE} RESET (autovacuum_analyze_scale_factor, autovacuum_analyze_threshold)")


class Migration(migrations.Migration):
    dependencies = [("compliance", "0001_initial")]
    operations = [migrations.RunPython(tune, untune)]
