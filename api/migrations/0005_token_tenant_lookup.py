"""A bearer token names its tenant, but under RLS the app role can only search one tenant's tokens: the
SECURITY DEFINER lookup answers "which tenant holds this token hash?" and nothing more; the token itself
is then read inside that tenant."""

from django.db import migrations

from cs_platform.tenancy.operations import CreateSystemLookup


class Migration(migrations.Migration):
    dependencies = [("api", "0004_scrub_session_secrets"), ("tenancy", "0002_rls_without_system_scope")]
    operations = [
        CreateSystemLookup(
            name="cs_api_token_tenant",
            arguments="p_key_hash text",
            returns="bigint",
            body="SELECT tenant_id FROM api_apitoken WHERE key_hash = p_key_hash ORDER BY id LIMIT 1",
        ),
    ]
