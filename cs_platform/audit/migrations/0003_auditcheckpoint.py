"""Signed checkpoints of each tenant's audit chain (issue #15): tenant-isolated like every tenant table and
append-only like the events. The app role also loses UPDATE/DELETE/TRUNCATE on the table after each migrate
(cs_platform.tenancy.roles.APPEND_ONLY_TABLES)."""

import django.db.models.deletion
import django.db.models.manager
from django.db import migrations, models

import cs_platform.tenancy.operations

FORWARD = """
CREATE OR REPLACE FUNCTION audit_checkpoint_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_auditcheckpoint is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_checkpoint_no_update_delete BEFORE UPDATE OR DELETE ON audit_auditcheckpoint
    FOR EACH ROW EXECUTE FUNCTION audit_checkpoint_refuse_change();
CREATE TRIGGER audit_checkpoint_no_truncate BEFORE TRUNCATE ON audit_auditcheckpoint
    FOR EACH STATEMENT EXECUTE FUNCTION audit_checkpoint_refuse_change();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS audit_checkpoint_no_truncate ON audit_auditcheckpoint;
DROP TRIGGER IF EXISTS audit_checkpoint_no_update_delete ON audit_auditcheckpoint;
DROP FUNCTION IF EXISTS audit_checkpoint_refuse_change();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):

    dependencies = [
        ("audit", "0002_append_only_triggers"),
        ("tenancy", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="AuditCheckpoint",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("number", models.PositiveBigIntegerField(help_text="Position in the tenant's checkpoint chain, from 1.")),
                ("seq", models.PositiveBigIntegerField(help_text="Seq of the chain's last event when signed (0: no event yet).")),
                ("event_hash", models.CharField(help_text="That event's hash (64 zeros when seq is 0).", max_length=64)),
                ("created_at", models.DateTimeField()),
                ("reason", models.CharField(choices=[("hourly", "Hourly (Celery beat)"), ("nightly", "End of the nightly run"), ("manual", "Made by hand (manage.py audit_checkpoint)")], max_length=16)),
                ("prev_digest", models.CharField(help_text="SHA-256 of the previous checkpoint's signed payload.", max_length=64)),
                ("key_id", models.CharField(help_text="SHA-256 of the signing key's raw public key.", max_length=64)),
                ("signature", models.CharField(help_text="Ed25519 signature of the payload, hex.", max_length=128)),
                ("tenant", models.ForeignKey(editable=False, on_delete=django.db.models.deletion.PROTECT, related_name="+", to="tenancy.tenant")),
            ],
            options={
                "ordering": ["number"],
                "constraints": [
                    models.UniqueConstraint(fields=("tenant", "number"), name="auditcheckpoint_tenant_number_uniq"),
                    models.UniqueConstraint(fields=("tenant", "prev_digest"), name="auditcheckpoint_tenant_prev_uniq"),
                ],
            },
            managers=[
                ("objects", django.db.models.manager.Manager()),
                ("_plain", django.db.models.manager.Manager()),
            ],
        ),
        # PostgreSQL: row-level security per tenant and tenant-composite foreign keys.
        cs_platform.tenancy.operations.EnableTenantIsolation(["auditcheckpoint"]),
        migrations.RunPython(forward, backward, elidable=False),
    ]
