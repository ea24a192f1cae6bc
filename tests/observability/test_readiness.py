"""Liveness and readiness (issue #16 item 5): /readyz answers 503 naming the check when PostgreSQL, the
cache (Redis), the broker, beat or a tenant's nightly run is down or stale; /healthz stays 200 throughout.
Outages are real: our own redis-server killed, ports nothing listens on, a process whose database is
unreachable. The shared PostgreSQL and Redis are never touched."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from cs_platform.observability.services import heartbeat_record
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Tenant
from metrics.models import NightlyRun, RunStatus
from tests import factories
from tests.outages import free_port, own_redis

pytestmark = pytest.mark.skipif(
    not settings.CELERY_BROKER_URL, reason="readiness checks the broker: make test sets one"
)


def _ready(client):
    response = client.get("/readyz")
    assert response["Content-Type"] == "application/json"
    assert "no-store" in response["Cache-Control"]
    return response.status_code, response.json()


@pytest.fixture
def ticked(db):
    heartbeat_record(name="beat")


@pytest.mark.django_db
def test_ready_when_everything_is_up(client, ticked, tenant_a):
    status, body = _ready(client)
    assert (status, body["status"], body["failed"]) == (200, "ok", []), body
    assert body["checks"] == {"database": "ok", "cache": "ok", "broker": "ok", "beat": "ok", "nightly_runs": "ok"}
    assert client.get("/healthz").status_code == 200


@pytest.mark.django_db
def test_cache_down_is_503_naming_the_cache_and_liveness_stays_up(client, ticked):
    with own_redis() as server:
        cache = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": server.url}}
        with override_settings(CACHES=cache):
            assert _ready(client)[0] == 200  # the same Redis, up
            server.stop()
            status, body = _ready(client)
            assert client.get("/healthz").status_code == 200
    assert status == 503 and body["failed"] == ["cache"], body
    assert body["checks"]["cache"] == "cache unavailable"
    assert str(server.port) not in json.dumps(body)  # no address, no driver message


@pytest.mark.django_db
def test_broker_down_is_503_naming_the_broker(client, ticked):
    port = free_port()
    with override_settings(CELERY_BROKER_URL=f"redis://:hunter2-secret@127.0.0.1:{port}/0"):
        status, body = _ready(client)
        assert client.get("/healthz").status_code == 200
    assert status == 503 and body["failed"] == ["broker"], body
    assert "hunter2" not in json.dumps(body) and str(port) not in json.dumps(body)


@pytest.mark.django_db
def test_a_stale_or_missing_beat_tick_is_503(client, settings):
    status, body = _ready(client)
    assert status == 503 and body["failed"] == ["beat"] and body["checks"]["beat"] == "no beat tick recorded yet"

    heartbeat_record(
        name="beat", at=timezone.now() - datetime.timedelta(seconds=settings.READINESS_BEAT_MAX_AGE_SECONDS + 5)
    )
    status, body = _ready(client)
    assert status == 503 and body["failed"] == ["beat"], body
    assert client.get("/healthz").status_code == 200

    heartbeat_record(name="beat")
    assert _ready(client)[0] == 200


@pytest.mark.django_db
def test_a_subset_of_checks_leaves_the_others_out_and_unknown_names_are_400(client, settings):
    # No beat tick recorded: the full probe fails on it, the load balancer's subset does not.
    assert _ready(client)[1]["failed"] == ["beat"]
    response = client.get("/readyz", {"checks": "database,cache,broker"})
    assert response.status_code == 200, response.json()
    assert response.json()["checks"] == {"database": "ok", "cache": "ok", "broker": "ok"}
    response = client.get("/readyz", {"checks": "database,beat"})
    assert (response.status_code, response.json()["failed"]) == (503, ["beat"])
    for bad in ("database,cahce", "", ",", "x" * 300):
        response = client.get("/readyz", {"checks": bad})
        assert response.status_code == 400, bad
        assert response.json()["error"] == "unknown_checks" and "database" in response.json()["known"]


def _nightly(tenant, *, finished_hours_ago: float, days_back: int, status=RunStatus.DONE):
    finished = timezone.now() - datetime.timedelta(hours=finished_hours_ago)
    run_date = timezone.now().date() - datetime.timedelta(days=days_back)  # one run per tenant and date
    with context.tenant_context(tenant):
        NightlyRun.objects.create(
            tenant=tenant, run_date=run_date, status=status, started_at=finished, finished_at=finished
        )


@pytest.mark.django_db
def test_a_tenant_whose_nightly_run_is_stale_is_503_by_count_only(client, ticked):
    old = timezone.now() - datetime.timedelta(days=5)
    fresh = factories.TenantFactory(slug="fresh-nightly", name="Fresh nightly")
    stale = factories.TenantFactory(slug="secret-client-name", name="Secret client name")
    never = factories.TenantFactory(slug="never-ran", name="Never ran")
    brand_new = factories.TenantFactory(slug="brand-new", name="Brand new")  # first run tonight: not stale
    Tenant.objects.filter(pk__in=[fresh.pk, stale.pk, never.pk]).update(created_at=old)
    _nightly(fresh, finished_hours_ago=20, days_back=1)
    _nightly(stale, finished_hours_ago=settings.READINESS_NIGHTLY_MAX_AGE_HOURS + 1, days_back=2)
    _nightly(stale, finished_hours_ago=2, days_back=1, status=RunStatus.FAILED)  # a failed run does not count

    status, body = _ready(client)
    assert status == 503 and body["failed"] == ["nightly_runs"], body
    total = Tenant.objects.count()
    assert body["checks"]["nightly_runs"] == (
        f"2 of {total} tenants have no nightly run finished in the last {settings.READINESS_NIGHTLY_MAX_AGE_HOURS} h"
    )
    text = json.dumps(body)
    assert "secret-client-name" not in text and "never-ran" not in text and "Secret" not in text

    _nightly(stale, finished_hours_ago=1, days_back=0)
    _nightly(never, finished_hours_ago=1, days_back=0)
    assert _ready(client)[0] == 200
    assert brand_new.pk


DATABASE_DOWN_SCRIPT = """
import json, django
django.setup()
from django.test import Client
client = Client()
ready = client.get("/readyz")
print(json.dumps({"healthz": client.get("/healthz").status_code, "readyz": ready.status_code, "body": ready.json()}))
"""


def test_postgresql_down_is_503_naming_the_database_and_liveness_stays_up(tmp_path):
    """A real process whose DATABASE_URL points at a port nothing listens on (PostgreSQL unreachable)."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://cs_app:pg-secret-password@127.0.0.1:{port}/cs_platform",
        "DATABASE_OWNER_URL": f"postgres://cs_owner:pg-secret-password@127.0.0.1:{port}/cs_platform",
        "DJANGO_SETTINGS_MODULE": "cs_platform.settings",
        "LOG_LEVEL": "CRITICAL",
    }
    result = subprocess.run(
        [sys.executable, "-c", DATABASE_DOWN_SCRIPT],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["healthz"] == 200 and outcome["readyz"] == 503, outcome
    body = outcome["body"]
    assert "database" in body["failed"] and body["checks"]["database"] == "database unavailable", body
    # What needs the database fails with it; the cache and the broker are still up.
    assert body["checks"]["cache"] == body["checks"]["broker"] == "ok", body
    assert "pg-secret-password" not in result.stdout and str(port) not in json.dumps(body)


@pytest.mark.django_db
def test_readiness_answers_only_get_and_head(client, ticked):
    assert client.post("/readyz").status_code == 405
    assert client.head("/readyz").status_code == 200
