"""Backup and restore on a real dump (issue #16, item 9): scripts/backup.sh (pg_dump custom format,
pg_dumpall --roles-only, the evidence files), scripts/restore.sh into a fresh database, then
`manage.py restore_verify` as the app role against the restored copy, which passes; then the copy is
tampered with (an evidence file changed or removed, an audit event rewritten as the owner, a tenant
policy dropped) and the command fails naming each problem.

The source database is a copy of the migrated test database (CREATE DATABASE ... TEMPLATE, fast) in which
a subprocess creates two tenants through the services (audit events, a signed checkpoint, an evidence
file), so everything in the dump was committed by the application itself. Databases are named after the
test database and dropped afterwards. The roles are dumped (and checked) but not replayed: this cluster
is shared, its roles exist already, and replaying roles.sql would only re-ALTER every role in it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import psycopg2
import pytest
from django.conf import settings
from django.db import connections

ROOT = Path(settings.BASE_DIR)
TENANTS = ("backup-north", "backup-south")

SEED = textwrap.dedent(
    """
    import datetime, django
    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.files.uploadedfile import SimpleUploadedFile
    from accounts.services import account_create
    from compliance.models import Requirement
    from compliance.services import evidence_add, obligation_create
    from cs_platform.audit.models import CheckpointReason
    from cs_platform.audit.services import audit_checkpoint_create
    from cs_platform.tenancy import context
    from provisioning.services import tenant_create
    from cs_platform.identity.services import membership_create
    from segments.models import Segment

    for slug in %(tenants)r:
        tenant = tenant_create(name=slug.title(), slug=slug)
        admin = get_user_model().objects.create_user(username=f"admin@{slug}", email=f"admin@{slug}.test")
        membership_create(tenant=tenant, user=admin, role="admin")
        with context.tenant_context(tenant):
            segment = Segment.objects.order_by("sort_order", "pk").first()
            requirement = Requirement.objects.filter(segment__isnull=True).order_by("pk").first()
        account = account_create(tenant=tenant, actor=admin, name=f"{slug} Bank", segment=segment)
        obligation = obligation_create(tenant=tenant, account=account, requirement=requirement,
                                       due_date=datetime.date(2027, 6, 30), actor=admin)
        for n in range(2):
            upload = SimpleUploadedFile(f"controls-{n}.csv", f"control,status\\nAC-{n},ok\\n{slug}\\n".encode())
            evidence_add(tenant=tenant, obligation=obligation, upload=upload, valid_from=datetime.date(2026, 1, 1),
                         valid_until=datetime.date(2027, 1, 1), actor=admin)
        audit_checkpoint_create(tenant=tenant, reason=CheckpointReason.HOURLY)
    print("seeded")
    """
)


def _url(url: str, database: str) -> str:
    return urlunparse(urlparse(url)._replace(path=f"/{database}"))


def _owner(database: str = "postgres"):
    conn = psycopg2.connect(_url(os.environ["DATABASE_OWNER_URL"], database))
    conn.autocommit = True
    return conn


def _drop(*names: str) -> None:
    conn = _owner()
    with conn.cursor() as cursor:
        for name in names:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


def _run(command: list[str], env: dict, *, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    if check:
        output = f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        assert done.returncode == 0, f"{command[0]} exited {done.returncode}:\n{output}"
    return done


@pytest.fixture
def restored(django_db_setup, django_db_blocker, tmp_path):
    """Seed a copy of the test database, back it up with scripts/backup.sh, restore it with
    scripts/restore.sh into a fresh database; yields (env for the restored copy, backup dir, restore db)."""
    template = connections["default"].settings_dict["NAME"]
    source, target = f"{template}_backup_src", f"{template}_restore"
    _drop(source, target)
    with django_db_blocker.unblock():
        connections.close_all()
    conn = _owner()
    with conn.cursor() as cursor:
        # A template must have no other sessions; any left on the test database are this suite's own.
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [template],
        )
        cursor.execute(f'CREATE DATABASE "{source}" TEMPLATE "{template}"')
    conn.close()
    media, restored_media, backups = tmp_path / "media", tmp_path / "restored-media", tmp_path / "backups"
    media.mkdir()
    base = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    app_url, owner_url = os.environ["DATABASE_URL"], os.environ["DATABASE_OWNER_URL"]
    try:
        seed_env = {
            **base,
            "DATABASE_URL": _url(app_url, source),
            "DATABASE_OWNER_URL": _url(owner_url, source),
            "MEDIA_ROOT": str(media),
            "DJANGO_SETTINGS_MODULE": "cs_platform.settings",
        }
        assert "seeded" in _run([sys.executable, "-c", SEED % {"tenants": TENANTS}], seed_env).stdout
        assert len(list(media.rglob("*.csv"))) == 4

        backup_env = {
            **base,
            "DATABASE_OWNER_URL": _url(owner_url, source),
            "MEDIA_ROOT": str(media),
            "BACKUP_DIR": str(backups),
        }
        _run(["bash", "scripts/backup.sh"], backup_env)
        (backup,) = backups.iterdir()
        assert {p.name for p in backup.iterdir()} == {"database.dump", "roles.sql", "media.tar.gz", "SHA256SUMS"}
        roles = (backup / "roles.sql").read_text()
        app_role = urlparse(app_url).username
        assert f"CREATE ROLE {app_role};" in roles and "NOBYPASSRLS" in roles

        restore_env = {
            **base,
            "RESTORE_DATABASE_URL": _url(owner_url, target),
            "MEDIA_ROOT": str(restored_media),
            "SKIP_ROLES": "1",
        }
        _run(["bash", "scripts/restore.sh", str(backup)], restore_env)
        verify_env = {
            **base,
            "DATABASE_URL": _url(app_url, target),
            "DATABASE_OWNER_URL": _url(owner_url, target),
            "MEDIA_ROOT": str(restored_media),
            "DJANGO_SETTINGS_MODULE": "cs_platform.settings",
        }
        yield verify_env, backup, target
    finally:
        _drop(source, target)


def verify(env: dict) -> subprocess.CompletedProcess:
    args = [a for slug in TENANTS for a in ("--tenant", slug)]
    return _run([sys.executable, "manage.py", "restore_verify", "--require-checkpoints", *args], env, check=False)


def test_a_restored_dump_verifies_and_each_kind_of_tampering_is_named(restored):
    env, backup, target = restored
    done = verify(env)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Restore verified: 2 tenants, no problems." in output
    for slug in TENANTS:
        assert f"Tenant {slug} " in output
    assert output.count("2 files present, SHA-256 matches") == 2
    assert output.count("1 signed checkpoints verified") == 2
    assert "NOSUPERUSER NOBYPASSRLS" in output

    # An evidence file altered, another one lost.
    files = sorted(Path(env["MEDIA_ROOT"]).rglob("*.csv"))
    files[0].write_bytes(files[0].read_bytes() + b"edited\n")
    files[1].unlink()
    done = verify(env)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "checksum mismatch" in output and files[0].name in output
    assert "file missing under MEDIA_ROOT" in output and files[1].name in output
    assert "Restore NOT verified: 2 problem(s)" in output

    # An audit event rewritten by the owner (its append-only triggers switched off for the purpose),
    # and a tenant policy dropped.
    conn = _owner(target)
    with conn.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
        cursor.execute(
            "UPDATE audit_auditevent SET action = 'account.forged' WHERE seq = 2 AND tenant_id = "
            "(SELECT id FROM tenancy_tenant WHERE slug = %s)",
            [TENANTS[1]],
        )
        assert cursor.rowcount == 1
        cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER USER")
        cursor.execute("DROP POLICY tenant_isolation ON accounts_contact")
    conn.close()
    done = verify(env)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert f"PROBLEM ({TENANTS[1]}): audit trail broken at event #2" in output
    assert "content altered" in output
    assert "PROBLEM (database): table accounts_contact: the tenant_isolation policy is missing" in output
    assert f"PROBLEM ({TENANTS[0]}): audit" not in output  # the other tenant's trail is intact
