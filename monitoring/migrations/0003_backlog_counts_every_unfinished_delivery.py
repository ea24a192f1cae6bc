"""cs_delivery_backlog counts webhook deliveries being sent too: since they joined the delivery outbox
(cs_platform.outbox, issue #17 item 5), a claimed delivery is "sending" until its attempt ends, as an
email is, and one whose worker died stays so until the sweep takes it back; both are still to deliver."""

from django.db import migrations

from cs_platform.tenancy.operations import CreateSystemLookup

_NAME, _ARGUMENTS, _RETURNS = "cs_delivery_backlog", "", "TABLE(kind text, status text, waiting bigint, oldest timestamptz)"


def _body(webhook_statuses: str) -> str:
    return (
        "SELECT 'scorecard_email'::text, status::text, count(*), min(created_at) FROM scorecards_scorecarddelivery "
        "WHERE status IN ('pending', 'sending', 'retrying') GROUP BY status "
        "UNION ALL "
        "SELECT 'webhook'::text, status::text, count(*), min(created_at) FROM webhooks_webhookdelivery "
        f"WHERE status IN ({webhook_statuses}) GROUP BY status"
    )


def _replace(webhook_statuses: str):
    def run(apps, schema_editor):
        # CREATE OR REPLACE keeps the function's grants (the app role's EXECUTE).
        lookup = CreateSystemLookup(name=_NAME, arguments=_ARGUMENTS, returns=_RETURNS, body=_body(webhook_statuses))
        lookup.database_forwards("monitoring", schema_editor, None, None)

    return run


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0002_small_tables_analyze_threshold"), ("webhooks", "0003_outbox_status_vocabulary")]

    operations = [
        migrations.RunPython(
            _replace("'pending', 'sending', 'retrying'"), _replace("'pending', 'retrying'"), elidable=False
        )
    ]
