"""The nightly emission: events detected set-based after the run, deliveries only to active endpoints
subscribed to the event type, nothing twice, and no detection work when nobody listens."""

from __future__ import annotations

import datetime
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from compliance.models import ComplianceStatusSnapshot
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from journeys.models import DecisionStatus
from metrics.models import HealthSnapshot
from nightly import pipeline as nightly
from tests import factories
from tests.webhooks.conftest import make_endpoint
from webhooks import events, services, tasks
from webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db

DAY = datetime.date(2026, 3, 10)


def _snapshot(world, account, day, band, total="50.00"):
    factories.HealthSnapshotFactory(tenant=world.tenant, account=account, snapshot_date=day, band=band, total=total)


def _deliveries(world) -> list[WebhookDelivery]:
    with context.tenant_context(world.tenant):
        return list(WebhookDelivery.objects.order_by("endpoint_id", "payload__data__account__id"))


@pytest.fixture
def band_world(tenant_a, tenant_b, insecure):
    """Band moves: A green→red (yesterday), D yellow→green (three days ago: a gap in the runs); no move
    for B; C's first snapshot is no move. Tenant B has a move of its own, which A must not send."""
    world = tenant_a
    a, b, c, d = (factories.AccountFactory(tenant=world.tenant, name=f"Bank {n}") for n in "ABCD")
    _snapshot(world, a, DAY - datetime.timedelta(days=1), "green")
    _snapshot(world, a, DAY, "red", "31.50")
    _snapshot(world, b, DAY - datetime.timedelta(days=1), "green")
    _snapshot(world, b, DAY, "green")
    _snapshot(world, c, DAY, "yellow")
    _snapshot(world, d, DAY - datetime.timedelta(days=3), "yellow")
    _snapshot(world, d, DAY - datetime.timedelta(days=5), "red")
    _snapshot(world, d, DAY, "green", "80.00")
    other = factories.AccountFactory(tenant=tenant_b.tenant)
    _snapshot(tenant_b, other, DAY - datetime.timedelta(days=1), "green")
    _snapshot(tenant_b, other, DAY, "red")
    return world, (a, b, c, d)


def test_band_changes_are_delivered_to_subscribed_active_endpoints_only(band_world, django_capture_on_commit_callbacks):
    world, (a, _, _, d) = band_world
    subscribed, _ = make_endpoint(world, "http://127.0.0.1:9/bands", events=["health.band_changed"])
    make_endpoint(world, "http://127.0.0.1:9/decisions", events=["decision.escalated"])
    disabled, _ = make_endpoint(world, "http://127.0.0.1:9/off", events=["health.band_changed"])
    services.webhook_endpoint_update(
        tenant=world.tenant, endpoint=disabled, actor=world.user(Role.ADMIN), is_active=False
    )

    with mock.patch.object(tasks.webhook_deliver, "apply_async") as apply_async:
        with django_capture_on_commit_callbacks(execute=True):
            summary = events.webhook_events_emit(tenant=world.tenant, day=DAY)
            apply_async.assert_not_called()  # only once the rows are committed

    assert summary == {"events": 2, "deliveries": 2}
    deliveries = _deliveries(world)
    assert {x.endpoint_id for x in deliveries} == {subscribed.pk}
    assert [x.payload["data"] for x in deliveries] == [
        {
            "account": {"id": a.pk, "name": "Bank A"},
            "from_band": "green",
            "to_band": "red",
            "score": 31.5,
            "date": "2026-03-10",
        },
        {
            "account": {"id": d.pk, "name": "Bank D"},
            "from_band": "yellow",
            "to_band": "green",
            "score": 80.0,
            "date": "2026-03-10",
        },
    ]
    assert all(x.event_type == "health.band_changed" and x.payload["type"] == x.event_type for x in deliveries)
    assert all(x.payload["id"] == str(x.event_id) for x in deliveries)
    # One task per delivery, by id, first attempt.
    assert sorted(c.args[0] for c in apply_async.call_args_list) == sorted(
        (world.tenant.pk, x.pk, 1) for x in deliveries
    )

    # The same night again (a re-run) sends nothing twice.
    with mock.patch.object(tasks.webhook_deliver, "apply_async") as apply_async:
        with django_capture_on_commit_callbacks(execute=True):
            again = events.webhook_events_emit(tenant=world.tenant, day=DAY)
    assert again == {"events": 2, "deliveries": 0} and len(_deliveries(world)) == 2
    apply_async.assert_not_called()


def test_two_subscribers_share_the_event_id(band_world):
    world, _ = band_world
    first, _ = make_endpoint(world, "http://127.0.0.1:9/one", events=["health.band_changed"])
    second, _ = make_endpoint(world, "http://127.0.0.1:9/two", events=["health.band_changed", "decision.escalated"])
    assert events.webhook_events_emit(tenant=world.tenant, day=DAY)["deliveries"] == 4
    by_endpoint: dict[int, set] = {}
    for delivery in _deliveries(world):
        by_endpoint.setdefault(delivery.endpoint_id, set()).add(delivery.event_id)
    assert by_endpoint[first.pk] == by_endpoint[second.pk] and len(by_endpoint[first.pk]) == 2


def _snapshot_queries(queries) -> list[str]:
    return [
        q["sql"]
        for q in queries
        if any(
            t in q["sql"]
            for t in ("metrics_healthsnapshot", "compliance_compliancestatussnapshot", "journeys_decision")
        )
    ]


def test_no_endpoint_means_no_detection_work(band_world):
    world, _ = band_world
    with CaptureQueriesContext(connection) as queries:
        assert events.webhook_events_emit(tenant=world.tenant, day=DAY) == {"events": 0, "deliveries": 0}
    assert _snapshot_queries(queries) == []
    # Only the active-endpoint lookup reads a table (the rest is the tenant context's set_config).
    assert [q["sql"] for q in queries if "FROM" in q["sql"]] == [
        q["sql"] for q in queries if "webhooks_webhookendpoint" in q["sql"]
    ]
    assert len([q for q in queries if "FROM" in q["sql"]]) == 1
    assert _deliveries(world) == []


def test_only_the_subscribed_event_types_are_detected(band_world):
    world, _ = band_world
    make_endpoint(world, "http://127.0.0.1:9/decisions", events=["decision.escalated"])
    with CaptureQueriesContext(connection) as queries:
        assert events.webhook_events_emit(tenant=world.tenant, day=DAY) == {"events": 0, "deliveries": 0}
    touched = _snapshot_queries(queries)
    assert len(touched) == 1 and "journeys_decision" in touched[0]


def test_band_detection_is_one_query_whatever_the_number_of_accounts(band_world, django_assert_num_queries):
    from webhooks import selectors

    world, _ = band_world
    for n in range(20):
        account = factories.AccountFactory(tenant=world.tenant)
        _snapshot(world, account, DAY - datetime.timedelta(days=1), "green")
        _snapshot(world, account, DAY, "red" if n % 2 else "green")
    with context.tenant_context(world.tenant):
        with django_assert_num_queries(1):
            changes = selectors.band_changes(DAY)
    assert len(changes) == 12


def test_compliance_status_changes_are_delivered(tenant_a, insecure):
    world = tenant_a
    moved, same = factories.AccountFactory(tenant=world.tenant), factories.AccountFactory(tenant=world.tenant)
    with context.tenant_context(world.tenant):
        for account, before, after in ((moved, "compliant", "overdue"), (same, "expiring", "expiring")):
            for day, status in ((DAY - datetime.timedelta(days=1), before), (DAY, after)):
                ComplianceStatusSnapshot.objects.create(
                    tenant=world.tenant, account=account, snapshot_date=day, status=status, counts={status: 1}
                )
    make_endpoint(world, "http://127.0.0.1:9/c", events=["compliance.status_changed"])
    assert events.webhook_events_emit(tenant=world.tenant, day=DAY) == {"events": 1, "deliveries": 1}
    [delivery] = _deliveries(world)
    assert delivery.event_type == "compliance.status_changed"
    assert delivery.payload["data"] == {
        "account": {"id": moved.pk, "name": moved.name},
        "scope": "account",
        "from_status": "compliant",
        "to_status": "overdue",
        "obligations_by_status": {"overdue": 1},
        "date": "2026-03-10",
    }


def test_decisions_escalated_by_the_run_are_delivered_once(tenant_a, insecure):
    from journeys.services import decisions_escalate

    world = tenant_a
    owner = world.user(Role.CSM)
    late = factories.DecisionFactory(tenant=world.tenant, owner=owner, due_date=DAY - datetime.timedelta(days=5))
    factories.DecisionFactory(tenant=world.tenant, owner=owner, due_date=DAY + datetime.timedelta(days=5))
    make_endpoint(world, "http://127.0.0.1:9/d", events=["decision.escalated"])
    # Escalated long ago: not tonight's event.
    old = factories.DecisionFactory(tenant=world.tenant, owner=owner, due_date=DAY - datetime.timedelta(days=40))
    with context.tenant_context(world.tenant):
        type(old).objects.filter(pk=old.pk).update(
            status=DecisionStatus.ESCALATED, escalated_at=datetime.datetime(2026, 2, 8, 2, 5, tzinfo=datetime.UTC)
        )
    with mock.patch(
        "journeys.services.timezone.now", return_value=datetime.datetime(2026, 3, 10, 2, 5, tzinfo=datetime.UTC)
    ):
        assert decisions_escalate(tenant=world.tenant, day=DAY) == {"escalated": 1}

    assert events.webhook_events_emit(tenant=world.tenant, day=DAY) == {"events": 1, "deliveries": 1}
    [delivery] = _deliveries(world)
    data = delivery.payload["data"]
    assert data["decision_id"] == late.pk and data["title"] == late.title
    assert data["account"] == {"id": late.account_id, "name": late.account.name}
    assert data["owner"] == {"id": owner.pk, "email": owner.email}
    assert data["escalated_to"] == {"id": world.user(Role.MANAGER).pk, "email": world.user(Role.MANAGER).email}
    assert data["due_date"] == (DAY - datetime.timedelta(days=5)).isoformat()
    assert data["escalated_at"].startswith("2026-03-10T02:05")
    # The next night: the escalation is still in the window, but it was sent already.
    assert events.webhook_events_emit(tenant=world.tenant, day=DAY + datetime.timedelta(days=1))["deliveries"] == 0


def test_the_nightly_run_emits_at_its_end(tenant_a, insecure):
    """Through the nightly pipeline: the run's own health scores are compared with the previous day's."""
    world = tenant_a
    accounts = [factories.AccountFactory(tenant=world.tenant) for _ in range(3)]
    for account in accounts:
        _snapshot(world, account, DAY - datetime.timedelta(days=1), "red")
    endpoint, _ = make_endpoint(world, "http://127.0.0.1:9/nightly", events=["health.band_changed"])
    summary = nightly.run_tenant(tenant=world.tenant, day=DAY, workers=1)

    with context.tenant_context(world.tenant):
        bands = dict(HealthSnapshot.objects.filter(snapshot_date=DAY).values_list("account_id", "band"))
    moved = sorted(pk for pk, band in bands.items() if band != "red")
    assert len(bands) == 3
    assert summary["webhooks"] == {"events": len(moved), "deliveries": len(moved)}
    deliveries = _deliveries(world)
    assert sorted(x.payload["data"]["account"]["id"] for x in deliveries) == moved
    assert all(x.endpoint_id == endpoint.pk for x in deliveries)
