"""Who makes checkpoints: Celery beat at least hourly (one task per tenant), the end of each nightly run, and
`manage.py audit_checkpoint`; and the key command that makes and shows signing keys."""

from __future__ import annotations

import base64
import datetime
import re

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings

from cs_platform.audit import signing
from cs_platform.audit.models import AuditCheckpoint, AuditEvent
from cs_platform.audit.selectors import audit_chain_verify
from cs_platform.audit.tasks import checkpoint_dispatch, checkpoint_tenant
from cs_platform.celery import app as celery_app
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from nightly.pipeline import run_tenant
from tests import factories

DAY = datetime.date(2026, 3, 10)


def _checkpoints(tenant) -> list[AuditCheckpoint]:
    with context.tenant_context(tenant):
        return list(AuditCheckpoint.objects.order_by("number"))


def test_beat_asks_for_checkpoints_at_least_hourly():
    entry = settings.CELERY_BEAT_SCHEDULE["audit-checkpoint-dispatch"]
    assert entry["task"] == "audit.checkpoint_dispatch"
    assert entry["schedule"] == settings.AUDIT_CHECKPOINT_INTERVAL_MINUTES * 60 <= 3600
    assert {"audit.checkpoint_dispatch", "audit.checkpoint_tenant"} <= set(celery_app.tasks)


@pytest.mark.django_db
def test_the_dispatch_fans_out_one_checkpoint_task_per_tenant(tenant_a, tenant_b):
    # Eager: the tasks run here, in the test's transaction, as the demo runs them without a broker.
    celery_app.conf.task_always_eager = True
    try:
        dispatched = checkpoint_dispatch.apply().get()
    finally:
        celery_app.conf.task_always_eager = False
    assert {tenant_a.tenant.pk, tenant_b.tenant.pk} <= set(dispatched)
    for world in (tenant_a, tenant_b):
        (checkpoint,) = _checkpoints(world.tenant)
        with context.tenant_context(world.tenant):
            head = AuditEvent.objects.order_by("-seq").first()
        assert (checkpoint.reason, checkpoint.seq, checkpoint.event_hash) == ("hourly", head.seq, head.hash)


@pytest.mark.skipif(connection.vendor != "postgresql" or not settings.CELERY_BROKER_URL, reason="needs a broker")
def test_a_worker_signs_a_tenants_checkpoint(tenant_committed, django_db_blocker, tmp_path):
    # A real prefork worker on the real broker, connected as the app role (see tests/metrics/test_celery_worker.py).
    from tests.metrics.test_celery_worker import worker_pool

    with worker_pool(tmp_path) as workers:
        workers.start()
        result = checkpoint_tenant.apply_async((tenant_committed.pk,), queue=workers.queue).get(timeout=60)
    with django_db_blocker.unblock():
        (checkpoint,) = _checkpoints(tenant_committed)
        assert result == {"tenant": tenant_committed.pk, "number": 1, "seq": checkpoint.seq}
        assert audit_chain_verify(tenant=tenant_committed).checkpoints == 1


@pytest.mark.django_db
def test_each_nightly_run_ends_with_a_checkpoint_of_everything_it_recorded(tenant_a):
    tenant = tenant_a.tenant
    # Five days past due: tonight's run escalates it, an audit event of the run itself.
    factories.DecisionFactory(tenant=tenant, owner=tenant_a.user(Role.CSM), due_date=DAY - datetime.timedelta(days=5))
    summary = run_tenant(tenant=tenant, day=DAY, chunk_size=1000)
    (checkpoint,) = _checkpoints(tenant)
    with context.tenant_context(tenant):
        head = AuditEvent.objects.order_by("-seq").first()
        assert AuditEvent.objects.filter(action="decision.escalate").exists()
    assert (checkpoint.reason, checkpoint.seq, checkpoint.event_hash) == ("nightly", head.seq, head.hash)
    assert summary["audit_checkpoint"] == {"number": 1, "seq": head.seq}
    run_tenant(tenant=tenant, day=DAY, chunk_size=1000)
    assert [c.number for c in _checkpoints(tenant)] == [1, 2]


@pytest.mark.django_db
def test_the_checkpoint_command_signs_one_tenant_or_all(tenant_a, tenant_b, capsys):
    call_command("audit_checkpoint", tenant=tenant_a.tenant.slug)
    assert [(c.number, c.reason) for c in _checkpoints(tenant_a.tenant)] == [(1, "manual")]
    assert _checkpoints(tenant_b.tenant) == []
    assert re.search(r"alpha: checkpoint 1 signs event #\d+ \(key [0-9a-f]{16}…\)", capsys.readouterr().out)
    call_command("audit_checkpoint", every=True)
    assert [c.number for c in _checkpoints(tenant_a.tenant)] == [1, 2]
    assert [c.number for c in _checkpoints(tenant_b.tenant)] == [1]
    with pytest.raises(CommandError, match=r"Unknown tenant slug 'nope'\. Known tenants: alpha, bravo"):
        call_command("audit_checkpoint", tenant="nope")


def test_the_key_command_makes_a_working_key_and_shows_the_configured_ones(capsys):
    call_command("audit_signing_key")
    out = capsys.readouterr().out
    private = re.search(r"^AUDIT_SIGNING_KEY=(\S+)$", out, re.MULTILINE).group(1)
    public = re.search(r"^Public key \(base64\): (\S+)$", out, re.MULTILINE).group(1)
    key_id = re.search(r"^Key id \(SHA-256 of the raw public key\): ([0-9a-f]{64})$", out, re.MULTILINE).group(1)
    key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(private))
    assert base64.b64encode(key.public_key().public_bytes_raw()).decode() == public
    assert signing.key_id_of(base64.b64decode(public)) == key_id
    assert private != settings.AUDIT_SIGNING_KEY
    # The rotation hint keeps the current key verifiable.
    current = signing.signing_key()[1]
    assert f"AUDIT_VERIFY_PUBLIC_KEYS={current.public_key}" in out

    with override_settings(AUDIT_SIGNING_KEY=private, AUDIT_VERIFY_PUBLIC_KEYS=[current.public_key]):
        call_command("audit_signing_key", show=True)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"{key_id}  Ed25519  {public}  signing (AUDIT_SIGNING_KEY)",
        f"{current.key_id}  Ed25519  {current.public_key}  verify only (AUDIT_VERIFY_PUBLIC_KEYS)",
    ]
