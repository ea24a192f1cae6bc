"""Small reference tables get analyzed after a few changes, not 50.

Autovacuum analyzes a table once 50 rows plus 10 % have changed. A tenant's reference data (segments,
KPI definitions, frameworks, requirements, journey phases) and the users and memberships are a few rows
per tenant, so a new deployment's tables stay below that and are never analyzed: the planner then
guesses one requirement row and the compliance overview joins every (requirement, account) pair, ~5x
slower (tests/perf/README.md, issue #16 item 8). A threshold of 5 changed rows makes autovacuum keep
their statistics current; the cost is an ANALYZE of a tiny table now and then. PostgreSQL only."""

from django.conf import settings
from django.db import migrations

SMALL_TABLES = [
    ("segments", "Segment"), ("segments", "KpiDefinition"), ("segments", "Scorecard"),
    ("segments", "ScorecardMeasure"), ("compliance", "Framework"), ("compliance", "Requirement"),
    ("journeys", "JourneyTemplate"), ("journeys", "Phase"), ("journeys", "PhaseActivity"),
    ("journeys", "SuccessCriterion"), ("tenancy", "Tenant"), ("tenancy", "Membership"),
]
THRESHOLD = 5


def _tables(apps) -> list[str]:
    user_app, user_model = settings.AUTH_USER_MODEL.split(".")
    return [apps.get_model(app, model)._meta.db_table for app, model in [*SMALL_TABLES, (user_app, user_model)]]


def _set(apps, schema_editor, threshold: int | None) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    quote = schema_editor.quote_name
    for table in _tables(apps):
        if threshold is None:
            schema_editor.execute(f"ALTER TABLE {quote(table)} RESET (autovacuum_analyze_threshold)")
        else:
            schema_editor.execute(f"ALTER TABLE {quote(table)} SET (autovacuum_analyze_threshold = {threshold:d})")


def lower_threshold(apps, schema_editor) -> None:
    _set(apps, schema_editor, THRESHOLD)


def reset_threshold(apps, schema_editor) -> None:
    _set(apps, schema_editor, None)


class Migration(migrations.Migration):
    dependencies = [
        ("monitoring", "0001_lookups"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("segments", "0002_scorecards"),
        ("compliance", "0003_evidence_content_type_size"),
        ("journeys", "0003_decision_customer_impact"),
    ]

    operations = [
        migrations.RunPython(lower_threshold, reset_threshold),
    ]
