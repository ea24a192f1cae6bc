"""Two SECURITY DEFINER lookups for operations: under RLS the app role sees one tenant at a time, and a
scrape or a readiness probe must not loop over every tenant. Each answers one aggregate question and
returns no tenant data beyond the slug: the age of each tenant's last finished nightly run, and how many
emails and webhooks wait to be sent."""

from django.db import migrations

from cs_platform.tenancy.operations import CreateSystemLookup


class Migration(migrations.Migration):
    dependencies = [
        ("tenancy", "0002_rls_without_system_scope"),
        ("metrics", "0004_healthsnapshot_autoanalyze"),
        ("scorecards", "0001_initial"),
        ("webhooks", "0002_scrub_session_secrets"),
    ]
    operations = [
        CreateSystemLookup(
            name="cs_nightly_run_ages",
            arguments="",
            returns="TABLE(tenant_id bigint, slug text, created_at timestamptz, last_done timestamptz)",
            body=(
                "SELECT t.id, t.slug::text, t.created_at, "
                "(SELECT max(r.finished_at) FROM metrics_nightlyrun r WHERE r.tenant_id = t.id AND r.status = 'done') "
                "FROM tenancy_tenant t ORDER BY t.id"
            ),
        ),
        CreateSystemLookup(
            name="cs_delivery_backlog",
            arguments="",
            returns="TABLE(kind text, status text, waiting bigint, oldest timestamptz)",
            body=(
                "SELECT 'scorecard_email'::text, status::text, count(*), min(created_at) FROM scorecards_scorecarddelivery "
                "WHERE status IN ('pending', 'sending', 'retrying') GROUP BY status "
                "UNION ALL "
                "SELECT 'webhook'::text, status::text, count(*), min(created_at) FROM webhooks_webhookdelivery "
                "WHERE status IN ('pending', 'retrying') GROUP BY status"
            ),
        ),
    ]
