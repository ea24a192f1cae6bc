"""Webhook deliveries join the delivery outbox (cs_platform.outbox, issue #17 item 5): one status
vocabulary with the weekly scorecard emails. A delivery the receiver accepted was "succeeded"; it is
"sent" now, as an email is. "sending" (claimed by a worker, under a lease) and "skipped" are new values.

The table forces Row-Level Security, which holds for the owner that migrates too, so the rows are
updated tenant by tenant, each inside its tenant."""

from django.db import migrations, models

from cs_platform.tenancy import context

FORWARDS = {"succeeded": "sent"}
# Back to the old vocabulary: a row claimed under a lease is waiting again, for the old sweep to find.
BACKWARDS = {"sent": "succeeded", "sending": "retrying", "skipped": "failed"}


def _rename(apps, schema_editor, mapping: dict[str, str]) -> None:
    tenant_model = apps.get_model("tenancy", "Tenant")
    delivery_model = apps.get_model("webhooks", "WebhookDelivery")
    db = schema_editor.connection.alias
    for tenant_id in tenant_model.objects.using(db).order_by("pk").values_list("pk", flat=True):
        with context.tenant_context(tenant_id):
            for old, new in mapping.items():
                delivery_model.objects.using(db).filter(tenant_id=tenant_id, status=old).update(status=new)


def forwards(apps, schema_editor):
    _rename(apps, schema_editor, FORWARDS)


def backwards(apps, schema_editor):
    _rename(apps, schema_editor, BACKWARDS)


class Migration(migrations.Migration):
    dependencies = [("webhooks", "0002_scrub_session_secrets"), ("tenancy", "0001_initial")]

    operations = [
        migrations.AlterField(
            model_name="webhookdelivery",
            name="status",
            field=models.CharField(
                choices=[
                    ("pending", "Pending"),
                    ("sending", "Sending"),
                    ("retrying", "Retrying"),
                    ("sent", "Sent"),
                    ("failed", "Failed"),
                    ("skipped", "Skipped"),
                ],
                default="pending",
                max_length=10,
            ),
        ),
        migrations.RunPython(forwards, backwards, elidable=False),
    ]
