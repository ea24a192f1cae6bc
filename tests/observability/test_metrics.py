"""Prometheus metrics (issue #16 item 5): request latency by view, Celery task durations and failures,
nightly run age per tenant and the email and webhook backlogs, behind an address allowlist or a token."""

from __future__ import annotations

import datetime
import re
import uuid

import pytest
from django.test import override_settings
from django.utils import timezone

from cs_platform.observability.tasks import beat_tick
from cs_platform.outbox import DeliveryStatus
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role, Tenant
from metrics.models import NightlyRun, RunStatus
from tests.observability import tasks as test_tasks
from webhooks.models import WebhookDelivery, WebhookEndpoint


def _value(page: str, name: str, labels: dict[str, str]) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in page.splitlines():
        if line.startswith(f"{name}{{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name}{{{wanted}}} in the metrics page")


def _metrics(client, **extra) -> str:
    response = client.get("/metrics", **extra)
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"].startswith("text/plain; version=")
    return response.content.decode()


@pytest.mark.django_db
def test_metrics_show_requests_tasks_nightly_age_and_backlogs(client, tenant_a):
    tenant = tenant_a.tenant
    client.force_login(tenant_a.user(Role.ADMIN))
    assert client.get("/").status_code == 200
    client.logout()
    beat_tick.apply()
    test_tasks.fail.apply(throw=False)  # run here: the same signals as on a worker
    finished = timezone.now() - datetime.timedelta(hours=3)
    with override_settings(WEBHOOK_ALLOW_PRIVATE_HOSTS=True), context.tenant_context(tenant):
        NightlyRun.objects.create(
            tenant=tenant, run_date=finished.date(), status=RunStatus.DONE, started_at=finished, finished_at=finished
        )
        endpoint = WebhookEndpoint.objects.create(
            tenant=tenant,
            url="https://hooks.example.test/m",
            events=["ping"],
            secret="s" * 32,
            created_by=tenant_a.user(Role.ADMIN),
        )
        for status in (DeliveryStatus.PENDING, DeliveryStatus.PENDING, DeliveryStatus.RETRYING, DeliveryStatus.FAILED):
            WebhookDelivery.objects.create(
                tenant=tenant,
                endpoint=endpoint,
                event_type="ping",
                event_id=uuid.uuid4(),
                status=status,
                created_at=timezone.now() - datetime.timedelta(minutes=10),
            )

    page = _metrics(client)

    # Request latency by view (django-prometheus).
    assert (
        _value(page, "django_http_requests_latency_seconds_by_view_method_count", {"view": "home", "method": "GET"})
        >= 1
    )
    # Celery task durations and failures.
    assert (
        _value(page, "cs_celery_task_duration_seconds_count", {"task": "observability.beat_tick", "state": "SUCCESS"})
        >= 1
    )
    assert (
        _value(page, "cs_celery_task_duration_seconds_count", {"task": "tests.observability.fail", "state": "FAILURE"})
        >= 1
    )
    assert (
        _value(page, "cs_celery_task_failures_total", {"task": "tests.observability.fail", "exception": "RuntimeError"})
        >= 1
    )
    # Nightly run age per tenant, by slug: three hours.
    assert 3 * 3600 - 60 < _value(page, "cs_nightly_run_age_seconds", {"tenant": "alpha"}) < 3 * 3600 + 60
    assert len(re.findall(r"^cs_nightly_run_age_seconds\{", page, re.M)) == Tenant.objects.count()
    # Backlogs: two pending and one retrying webhook (the failed one is not waiting), no email.
    assert _value(page, "cs_delivery_backlog", {"kind": "webhook", "status": "pending"}) == 2
    assert _value(page, "cs_delivery_backlog", {"kind": "webhook", "status": "retrying"}) == 1
    assert _value(page, "cs_delivery_backlog", {"kind": "scorecard_email", "status": "pending"}) == 0
    assert 590 < _value(page, "cs_delivery_backlog_oldest_seconds", {"kind": "webhook"}) < 700


@pytest.mark.django_db
def test_metrics_are_refused_to_other_addresses_unless_they_bring_the_token(client, settings):
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8"]
    settings.METRICS_TOKEN = "a-long-random-metrics-token-0123456789"
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.7").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.7", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    _metrics(client, REMOTE_ADDR="192.0.2.7", HTTP_AUTHORIZATION=f"Bearer {settings.METRICS_TOKEN}")
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.7", HTTP_AUTHORIZATION="Bearer ").status_code == 403


@pytest.mark.django_db
def test_the_scrape_reads_the_database_a_fixed_number_of_times(client, tenant_a, tenant_b, django_assert_num_queries):
    # cs_nightly_run_ages() (one row per tenant, whatever their number), then cs_delivery_backlog().
    with django_assert_num_queries(2):
        _metrics(client)


@pytest.mark.django_db
def test_the_operations_lookups_return_aggregates_and_slugs_only(tenant_a, tenant_b):
    """The SECURITY DEFINER lookups see every tenant: they must answer their one question and nothing
    more (no names, no payloads, no addresses)."""
    from django.db import connection

    from monitoring.selectors import delivery_backlog, nightly_run_ages

    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM cs_nightly_run_ages()")
        assert [col.name for col in cursor.description] == ["tenant_id", "slug", "created_at", "last_done"]
        cursor.execute("SELECT * FROM cs_delivery_backlog()")
        assert [col.name for col in cursor.description] == ["kind", "status", "waiting", "oldest"]
    assert {row.slug for row in nightly_run_ages()} >= {"alpha", "bravo"}  # across tenants, none selected
    assert delivery_backlog() == []
