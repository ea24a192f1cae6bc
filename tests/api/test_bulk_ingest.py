"""Bulk ingest (POST /api/v1/{measurements,surveys,incidents}/bulk): all or nothing, every bad row
listed by index and field, the row limit, the body's shape, one audit event, and Idempotency-Key."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from api.models import IdempotencyRecord
from api.services import api_token_create
from cs_platform.audit.models import AuditEvent
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from metrics.models import Incident, KpiMeasurement, SurveyResponse
from segments.models import KpiDefinition
from tests import factories
from tests.api.helpers import api_post, bearer
from tests.helpers import event_count, owned_account

TODAY = datetime.date.today()
MEASUREMENTS = "/api/v1/measurements/bulk"
BULK = ("metrics:read", "metrics:write")  # the scopes of the tests' token


def _measurement_rows(world, n: int, *, accounts: int = 5, kpis: int = 2) -> list[dict]:
    """n distinct (account, KPI, day) rows over a few accounts and KPIs, every day in the past."""
    owned = [owned_account(world, name=f"Bank {i}") for i in range(accounts)]
    with context.tenant_context(world.tenant):
        kpi_ids = list(
            KpiDefinition.objects.filter(segment_id=owned[0].segment_id).order_by("pk").values_list("pk", flat=True)
        )[:kpis]
    rows = []
    for i in range(n):
        account = owned[i % accounts].pk
        kpi = kpi_ids[(i // accounts) % kpis]
        day = TODAY - datetime.timedelta(days=i // (accounts * kpis))
        rows.append({"account": account, "kpi": kpi, "measured_on": day.isoformat(), "value": i % 1000 + 0.25})
    return rows


def _measurements(world) -> int:
    with context.tenant_context(world.tenant):
        return KpiMeasurement.objects.count()


# --- all or nothing, at 10,000 rows -------------------------------------------------------------------------


@pytest.mark.django_db
def test_ten_thousand_good_rows_are_stored_with_one_audit_event(client, tenant_a):
    rows = _measurement_rows(tenant_a, 10_000)
    auth = bearer(tenant_a, *BULK)
    events = event_count(tenant_a.tenant)
    with CaptureQueriesContext(connection) as captured:
        response = api_post(client, MEASUREMENTS, {"rows": rows}, auth)
    assert response.status_code == 201, response.content[:500]
    body = response.json()
    assert body["stored"] == 10_000 and body["created"] == 10_000 and body["updated"] == 0
    assert _measurements(tenant_a) == 10_000
    # Set-based: a constant number of queries, not one per row. On PostgreSQL the rows are one
    # INSERT ... ON CONFLICT DO NOTHING (all new: nothing to lock or update); the SQLite demo's
    # bulk_create makes 5 batches of 2,000.
    assert len(captured.captured_queries) < 25
    assert event_count(tenant_a.tenant) == events + 1
    with context.tenant_context(tenant_a.tenant):
        event = AuditEvent.objects.order_by("-seq").first()
        assert event.action == "kpi_measurement.bulk_record" and event.actor_id == tenant_a.user(Role.ADMIN).pk
        assert event.after["rows"] == 10_000 and event.after["sha256"] == body["sha256"]
        assert sorted(event.after["ids"]) == sorted(KpiMeasurement.objects.values_list("pk", flat=True))
        # ids[i] is rows[i]'s id.
        first = KpiMeasurement.objects.get(pk=body["ids"][0])
    assert (first.account_id, first.kpi_id, first.measured_on.isoformat()) == (
        rows[0]["account"],
        rows[0]["kpi"],
        rows[0]["measured_on"],
    )


@pytest.mark.django_db
def test_one_bad_row_among_ten_thousand_stores_nothing_and_is_named(client, tenant_a):
    rows = _measurement_rows(tenant_a, 10_000)
    rows[7_321]["measured_on"] = (TODAY + datetime.timedelta(days=2)).isoformat()
    auth = bearer(tenant_a, *BULK)
    events = event_count(tenant_a.tenant)
    response = api_post(client, MEASUREMENTS, {"rows": rows}, auth)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid" and body["error_count"] == 1 and body["bad_rows"] == 1
    assert body["errors"] == [
        {"row": 7_321, "field": "measured_on", "code": "future", "message": body["errors"][0]["message"]}
    ]
    assert _measurements(tenant_a) == 0 and event_count(tenant_a.tenant) == events


@pytest.mark.django_db
def test_every_bad_row_is_listed(client, tenant_a, tenant_b):
    rows = _measurement_rows(tenant_a, 20)
    theirs = factories.AccountFactory(tenant=tenant_b.tenant)
    with context.tenant_context(tenant_a.tenant):
        other_segment_kpi = KpiDefinition.objects.exclude(segment__code="bank").values_list("pk", flat=True)[0]
    rows[1]["account"] = theirs.pk  # another tenant's account: not in the book
    rows[3]["value"] = "lots"
    rows[5]["kpi"] = other_segment_kpi
    rows[8] = "not an object"
    rows[9]["measured_on"] = "20/11/2026"
    rows[11].pop("value")
    rows[13] = dict(rows[12])  # the same account, KPI and day twice
    rows[15]["value"] = 1.23456
    response = api_post(client, MEASUREMENTS, {"rows": rows}, bearer(tenant_a, *BULK))
    assert response.status_code == 400
    found = [(e["row"], e["field"], e["code"]) for e in response.json()["errors"]]
    assert found == [
        (1, "account", "does_not_exist"),
        (3, "value", "invalid"),
        (5, "kpi", "wrong_segment"),
        (8, None, "invalid"),
        (9, "measured_on", "invalid"),
        (11, "value", "required"),
        (13, "measured_on", "duplicate"),
        (15, "value", "max_decimal_places"),
    ]
    assert response.json()["bad_rows"] == 8
    assert _measurements(tenant_a) == 0


@pytest.mark.django_db
def test_ids_out_of_the_bigint_range_are_bad_rows_not_a_server_error(client, tenant_a):
    rows = _measurement_rows(tenant_a, 2)
    rows[0]["account"] = 2**70
    rows[1]["kpi"] = -(2**70)
    response = api_post(client, MEASUREMENTS, {"rows": rows}, bearer(tenant_a, *BULK))
    assert response.status_code == 400
    assert [(e["row"], e["field"], e["code"]) for e in response.json()["errors"]] == [
        (0, "account", "invalid"),
        (1, "kpi", "invalid"),
    ]
    survey = [{"account": 2**70, "survey_type": "nps", "score": 9, "responded_on": TODAY.isoformat(), "contact": 2**70}]
    response = api_post(client, "/api/v1/surveys/bulk", {"rows": survey}, bearer(tenant_a, *BULK))
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["account", "contact"]


@pytest.mark.django_db
def test_the_error_list_is_capped_and_says_how_many(client, tenant_a):
    rows = [{"account": "x", "kpi": "y", "measured_on": "2020-01-01", "value": 1}] * 1_500
    response = api_post(client, MEASUREMENTS, {"rows": rows}, bearer(tenant_a, *BULK))
    body = response.json()
    assert response.status_code == 400 and len(body["errors"]) == 1_000
    # Two bad fields a row: neither the account nor the KPI is an id.
    assert body["error_count"] == 3_000 and body["bad_rows"] == 1_500 and "1000 of 3000" in body["message"]
    assert {e["row"] for e in body["errors"]} == set(range(500))


@pytest.mark.django_db
def test_a_csm_may_only_ingest_into_their_book(client, tenant_a):
    rows = _measurement_rows(tenant_a, 4, accounts=2)  # owned by the CSM
    stranger = factories.AccountFactory(tenant=tenant_a.tenant)
    client.force_login(tenant_a.user(Role.CSM))
    bad = [dict(rows[0], account=stranger.pk), *rows[1:]]
    response = client.post(MEASUREMENTS, {"rows": bad}, content_type="application/json")
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "account"
    response = client.post(MEASUREMENTS, {"rows": rows}, content_type="application/json")
    assert response.status_code == 201 and _measurements(tenant_a) == 4


@pytest.mark.django_db
def test_a_second_value_for_the_same_day_replaces_and_is_audited_with_before_and_after(client, tenant_a):
    rows = _measurement_rows(tenant_a, 3)
    auth = bearer(tenant_a, *BULK)
    assert api_post(client, MEASUREMENTS, {"rows": rows}, auth).status_code == 201
    response = api_post(client, MEASUREMENTS, {"rows": [dict(rows[0], value=7), rows[1]]}, auth)
    assert response.status_code == 201
    assert (response.json()["created"], response.json()["updated"]) == (0, 2)
    assert _measurements(tenant_a) == 3
    with context.tenant_context(tenant_a.tenant):
        updates = list(AuditEvent.objects.filter(action="kpi_measurement.update").order_by("seq"))
    assert [(e.before["value"], e.after["value"]) for e in updates] == [("0.2500", "7"), ("1.2500", "1.25")]


# --- limits and shape ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_over_the_limit_is_refused_before_any_work(client, tenant_a, settings):
    settings.API_BULK_MAX_ROWS = 10
    rows = _measurement_rows(tenant_a, 11)
    auth = bearer(tenant_a, *BULK)
    with CaptureQueriesContext(connection) as captured:
        response = api_post(client, MEASUREMENTS, {"rows": rows}, auth, idempotency_key="big-one")
    assert response.status_code == 400
    assert response.json()["code"] == "too_many_rows" and response.json()["errors"][0]["field"] == "rows"
    assert not any("metrics_kpimeasurement" in q["sql"] or "idempotency" in q["sql"] for q in captured.captured_queries)
    assert _measurements(tenant_a) == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body, field",
    [
        ("[]", "rows"),  # a bare list
        ('{"rows": {"account": 1}}', "rows"),
        ('{"row": []}', "rows"),
        ('{"rows": []}', "rows"),
        ("{not json", None),
    ],
)
def test_a_body_of_the_wrong_shape_is_a_400_in_the_error_format(client, tenant_a, body, field):
    response = api_post(client, MEASUREMENTS, body, bearer(tenant_a, *BULK))
    assert response.status_code == 400
    data = response.json()
    assert set(data) >= {"status", "code", "message", "errors"} and data["status"] == 400
    assert [e["field"] for e in data["errors"]] == ([field] if field else [])


# --- idempotency ------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_idempotent_retry_stores_once_and_replays_the_same_body(client, tenant_a):
    rows = _measurement_rows(tenant_a, 50)
    auth = bearer(tenant_a, *BULK)
    first = api_post(client, MEASUREMENTS, {"rows": rows}, auth, idempotency_key="sync-2026-11-23")
    assert first.status_code == 201 and "Idempotent-Replayed" not in first
    events = event_count(tenant_a.tenant)
    # Same body, keys in another order: the same request.
    again = api_post(
        client,
        MEASUREMENTS,
        {"rows": [dict(reversed(r.items())) for r in rows]},
        auth,
        idempotency_key="sync-2026-11-23",
    )
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert _measurements(tenant_a) == 50 and event_count(tenant_a.tenant) == events
    with context.tenant_context(tenant_a.tenant):
        assert IdempotencyRecord.objects.filter(key="sync-2026-11-23").count() == 1
        assert AuditEvent.objects.filter(action="kpi_measurement.bulk_record").get().after["idempotency_key"] == (
            "sync-2026-11-23"
        )
    # Another key is another request (the values are replaced, the count stays).
    other = api_post(client, MEASUREMENTS, {"rows": rows}, auth, idempotency_key="sync-2026-11-23b")
    assert other.status_code == 201 and "Idempotent-Replayed" not in other


@pytest.mark.django_db
def test_the_same_key_with_another_body_is_a_422(client, tenant_a):
    rows = _measurement_rows(tenant_a, 5)
    auth = bearer(tenant_a, *BULK)
    assert api_post(client, MEASUREMENTS, {"rows": rows}, auth, idempotency_key="k1").status_code == 201
    response = api_post(client, MEASUREMENTS, {"rows": [dict(rows[0], value=99)]}, auth, idempotency_key="k1")
    assert response.status_code == 422 and response.json()["code"] == "idempotency_conflict"
    with context.tenant_context(tenant_a.tenant):
        assert str(KpiMeasurement.objects.order_by("pk")[0].value) == "0.2500"  # not replaced by 99
    # The same key on another endpoint is another key.
    survey = [{"account": rows[0]["account"], "survey_type": "nps", "score": 9, "responded_on": TODAY.isoformat()}]
    assert api_post(client, "/api/v1/surveys/bulk", {"rows": survey}, auth, idempotency_key="k1").status_code == 201


@pytest.mark.django_db
def test_a_refused_request_is_not_remembered_and_expired_keys_are_forgotten(client, tenant_a, settings):
    rows = _measurement_rows(tenant_a, 5)
    auth = bearer(tenant_a, *BULK)
    bad = [dict(rows[0], value="x"), *rows[1:]]
    assert api_post(client, MEASUREMENTS, {"rows": bad}, auth, idempotency_key="fix-me").status_code == 400
    # Fixed rows under the same key: stored (a 400 was not stored).
    assert api_post(client, MEASUREMENTS, {"rows": rows}, auth, idempotency_key="fix-me").status_code == 201
    with context.tenant_context(tenant_a.tenant):
        IdempotencyRecord.objects.update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    # Expired: the key is free again, so another body is a new request, not a conflict.
    response = api_post(client, MEASUREMENTS, {"rows": rows[:2]}, auth, idempotency_key="fix-me")
    assert response.status_code == 201 and "Idempotent-Replayed" not in response
    from api.idempotency import idempotency_records_purge

    with context.tenant_context(tenant_a.tenant):
        IdempotencyRecord.objects.update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    assert idempotency_records_purge(tenant=tenant_a.tenant) == 1


@pytest.mark.django_db
def test_the_nightly_run_purges_expired_keys_only(client, tenant_a):
    from nightly.pipeline import run_tenant

    rows = _measurement_rows(tenant_a, 4)
    auth = bearer(tenant_a, *BULK)
    assert api_post(client, MEASUREMENTS, {"rows": rows[:2]}, auth, idempotency_key="old").status_code == 201
    assert api_post(client, MEASUREMENTS, {"rows": rows[2:]}, auth, idempotency_key="fresh").status_code == 201
    with context.tenant_context(tenant_a.tenant):
        IdempotencyRecord.objects.filter(key="old").update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    summary = run_tenant(tenant=tenant_a.tenant, day=TODAY)
    assert summary["idempotency_purged"] == 1
    with context.tenant_context(tenant_a.tenant):
        assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["fresh"]


@pytest.mark.django_db
def test_a_too_long_idempotency_key_is_refused(client, tenant_a):
    rows = _measurement_rows(tenant_a, 1)
    response = api_post(client, MEASUREMENTS, {"rows": rows}, bearer(tenant_a, *BULK), idempotency_key="k" * 256)
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "Idempotency-Key"
    assert _measurements(tenant_a) == 0


# --- surveys and incidents -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_survey_bulk_validates_scales_contacts_and_dates(client, tenant_a):
    account, other = owned_account(tenant_a), owned_account(tenant_a, name="Other Bank")
    contact = factories.ContactFactory(tenant=tenant_a.tenant, account=account)
    day = TODAY.isoformat()
    good = [
        {"account": account.pk, "survey_type": "nps", "score": 0, "responded_on": day, "contact": contact.pk},
        {"account": other.pk, "survey_type": "ces", "score": 7, "responded_on": day, "comment": "Easy"},
    ]
    bad = [
        *good,
        {"account": account.pk, "survey_type": "nps", "score": 11, "responded_on": day},
        {"account": other.pk, "survey_type": "nps", "score": 5, "responded_on": day, "contact": contact.pk},
        {
            "account": account.pk,
            "survey_type": "csat",
            "score": 3,
            "responded_on": (TODAY + datetime.timedelta(days=1)).isoformat(),
        },
        {"account": account.pk, "survey_type": "pulse", "score": 3, "responded_on": day},
        {"account": account.pk, "survey_type": "csat", "score": True, "responded_on": day},
    ]
    auth = bearer(tenant_a, *BULK)
    response = api_post(client, "/api/v1/surveys/bulk", {"rows": bad}, auth)
    assert response.status_code == 400
    assert [(e["row"], e["field"], e["code"]) for e in response.json()["errors"]] == [
        (2, "score", "out_of_range"),
        (3, "contact", "does_not_exist"),
        (4, "responded_on", "future"),
        (5, "survey_type", "invalid_choice"),
        (6, "score", "invalid"),
    ]
    response = api_post(client, "/api/v1/surveys/bulk", {"rows": good}, auth)
    assert response.status_code == 201 and response.json()["stored"] == 2
    with context.tenant_context(tenant_a.tenant):
        assert SurveyResponse.objects.count() == 2
        event = AuditEvent.objects.order_by("-seq").first()
        assert event.action == "survey_response.bulk_create" and sorted(event.after["ids"]) == sorted(
            SurveyResponse.objects.values_list("pk", flat=True)
        )


@pytest.mark.django_db
def test_incident_bulk_validates_and_stores(client, tenant_a):
    account = owned_account(tenant_a)
    now = timezone.now()
    opened, resolved = (now - datetime.timedelta(hours=4)).isoformat(), (now - datetime.timedelta(hours=1)).isoformat()
    good = [
        {
            "account": account.pk,
            "title": "Outage",
            "severity": "sev1",
            "opened_at": opened,
            "resolved_at": resolved,
            "escalated": True,
            "external_ref": "INC-1",
        },
        {"account": account.pk, "title": "Slow", "severity": "sev4"},
    ]
    bad = [
        *good,
        {"account": account.pk, "title": "", "severity": "sev9"},
        {"account": account.pk, "title": "Backwards", "severity": "sev2", "opened_at": resolved, "resolved_at": opened},
        {
            "account": account.pk,
            "title": "Later",
            "severity": "sev2",
            "opened_at": (now + datetime.timedelta(days=1)).isoformat(),
            "escalated": "yes",
        },
    ]
    auth = bearer(tenant_a, *BULK)
    response = api_post(client, "/api/v1/incidents/bulk", {"rows": bad}, auth)
    assert response.status_code == 400
    assert [(e["row"], e["field"], e["code"]) for e in response.json()["errors"]] == [
        (2, "title", "blank"),
        (2, "severity", "invalid_choice"),
        (3, "resolved_at", "before_opened"),
        (4, "opened_at", "future"),
        (4, "escalated", "invalid"),
    ]
    assert response.json()["bad_rows"] == 3
    response = api_post(client, "/api/v1/incidents/bulk", {"rows": good}, auth)
    assert response.status_code == 201, response.content
    with context.tenant_context(tenant_a.tenant):
        stored = list(Incident.objects.order_by("pk"))
    assert [(i.title, i.escalated, i.resolved_at is not None) for i in stored] == [
        ("Outage", True, True),
        ("Slow", False, False),
    ]


# --- concurrent duplicates ------------------------------------------------------------------------------------


def test_concurrent_duplicates_store_once(tenant_committed, django_db_blocker):
    """Several clients send the same key and body at once (a retry racing the original): the advisory
    lock on the key queues them, the first stores, the others replay its answer. Committed data and
    real threads, each with its own connection."""
    import threading

    from django.contrib.auth import get_user_model
    from django.db import connections
    from django.test import Client

    from accounts.services import account_create
    from cs_platform.identity.services import membership_create

    senders = 4
    with django_db_blocker.unblock():
        admin = get_user_model().objects.create_user(username="bulk-race-admin", email="bulk-race@committed.test")
        membership_create(tenant=tenant_committed, user=admin, role=Role.ADMIN)
        segment = factories.segment_of(tenant_committed)
        account = account_create(tenant=tenant_committed, actor=admin, name="Race Bank", segment=segment)
        with context.tenant_context(tenant_committed):
            kpi = KpiDefinition.objects.filter(segment=segment).order_by("pk").first()
        _, plaintext = api_token_create(tenant=tenant_committed, name="race", scopes=["metrics:write"], actor=admin)
    rows = [
        {
            "account": account.pk,
            "kpi": kpi.pk,
            "measured_on": (TODAY - datetime.timedelta(days=n)).isoformat(),
            "value": n,
        }
        for n in range(300)
    ]
    body = json.dumps({"rows": rows})
    barrier = threading.Barrier(senders)
    answers: list[tuple[int, str, dict]] = []
    errors: list[BaseException] = []

    def send() -> None:
        try:
            with django_db_blocker.unblock():
                barrier.wait()
                response = Client().post(
                    MEASUREMENTS,
                    body,
                    content_type="application/json",
                    HTTP_IDEMPOTENCY_KEY="race-1",
                    HTTP_AUTHORIZATION=f"Bearer {plaintext}",
                )
                answers.append((response.status_code, response.get("Idempotent-Replayed", ""), response.json()))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert sorted(status for status, _, _ in answers) == [201] * senders
    assert sorted(replayed for _, replayed, _ in answers) == [""] + ["true"] * (senders - 1)
    assert all(answer == answers[0][2] for _, _, answer in answers)
    with django_db_blocker.unblock(), context.tenant_context(tenant_committed):
        assert KpiMeasurement.objects.count() == 300
        assert AuditEvent.objects.filter(action="kpi_measurement.bulk_record").count() == 1
        assert AuditEvent.objects.filter(action="kpi_measurement.update").count() == 0
        assert IdempotencyRecord.objects.count() == 1
    # tenant_committed purges the tenant's rows; the user row goes with the test database.


def test_two_tokens_overwriting_the_same_keys_at_once_each_report_and_audit_their_changes(
    tenant_committed, django_db_blocker
):
    """Issue #16 item 1 through HTTP: two integrations (two admins' tokens) send different values for
    the same (account, KPI, day) keys and the second request reaches the rows while the first has
    written them but not committed (tests/concurrency.py forces it). The first answers "created", the
    second "updated" with a before/after event naming the first's value for every key, the stored
    values are the second's, and the audit chain verifies. Before the fix both answered "created"."""
    import io

    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from accounts.services import account_create
    from cs_platform.identity.services import membership_create
    from tests.concurrency import race

    keys = 120
    with django_db_blocker.unblock():
        admins, tokens = [], []
        for name in ("first", "second"):
            admin = get_user_model().objects.create_user(
                username=f"overwrite-{name}-{tenant_committed.pk}", email=f"overwrite-{name}@committed.test"
            )
            membership_create(tenant=tenant_committed, user=admin, role=Role.ADMIN)
            tokens.append(
                api_token_create(tenant=tenant_committed, name=name, scopes=["metrics:write"], actor=admin)[1]
            )
            admins.append(admin)
        segment = factories.segment_of(tenant_committed)
        account = account_create(tenant=tenant_committed, actor=admins[0], name="Overwrite Bank", segment=segment)
        with context.tenant_context(tenant_committed):
            kpi = KpiDefinition.objects.filter(segment=segment).order_by("pk").first()
    days = [(TODAY - datetime.timedelta(days=n)).isoformat() for n in range(keys)]

    def send(token: str, offset: int, idempotency_key: str | None):
        def call():
            rows = [
                {"account": account.pk, "kpi": kpi.pk, "measured_on": d, "value": offset + n}
                for n, d in enumerate(days)
            ]
            extra = {"HTTP_IDEMPOTENCY_KEY": idempotency_key} if idempotency_key else {}
            response = Client().post(
                MEASUREMENTS,
                json.dumps({"rows": rows}),
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {token}",
                **extra,
            )
            return response.status_code, response.json()

        return call

    (status_1, first), (status_2, second) = race(
        tenant_committed, send(tokens[0], 1000, None), send(tokens[1], 5000, "overwrite-1"), blocker=django_db_blocker
    )
    assert (status_1, status_2) == (201, 201), (first, second)
    assert (first["created"], first["updated"]) == (keys, 0)
    assert (second["created"], second["updated"]) == (0, keys)
    with django_db_blocker.unblock(), context.tenant_context(tenant_committed):
        stored = dict(KpiMeasurement.objects.values_list("id", "value"))
        assert sorted(stored.values()) == [5000 + n for n in range(keys)]
        updates = AuditEvent.objects.filter(action="kpi_measurement.update")
        found = {(e.actor_id, int(e.object_id), Decimal(e.before["value"]), Decimal(e.after["value"])) for e in updates}
        assert found == {(admins[1].pk, pk, value - 4000, value) for pk, value in stored.items()}
        out = io.StringIO()
        call_command("verify_audit", tenant=tenant_committed.slug, stdout=out)
        assert "intact" in out.getvalue()


@pytest.mark.django_db
def test_ten_thousand_and_one_real_rows_are_refused_at_the_default_limit(client, tenant_a, settings):
    """The limit as deployed (no override): one row over is refused whole, in the API's error format
    with the limit stated, and nothing is stored or audited; the same rows less one are then accepted,
    so it was the count that was refused and not a row."""
    assert settings.API_BULK_MAX_ROWS == 10_000  # the default, not an override from the environment
    rows = _measurement_rows(tenant_a, 10_001)
    auth = bearer(tenant_a, *BULK)
    events = event_count(tenant_a.tenant)
    response = api_post(client, MEASUREMENTS, {"rows": rows}, auth, idempotency_key="one-too-many")
    assert response.status_code == 400
    assert response.json() == {
        "status": 400,
        "code": "too_many_rows",
        "message": "At most 10000 rows per request; this one has 10001.",
        "errors": [{"field": "rows", "code": "too_many_rows", "message": "At most 10000 rows per request."}],
    }
    assert _measurements(tenant_a) == 0 and event_count(tenant_a.tenant) == events
    with context.tenant_context(tenant_a.tenant):
        assert not IdempotencyRecord.objects.exists()  # the key is free for the corrected request

    response = api_post(client, MEASUREMENTS, {"rows": rows[:10_000]}, auth, idempotency_key="one-too-many")
    assert response.status_code == 201, response.content[:500]
    assert _measurements(tenant_a) == 10_000
