import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from accounts.models import Account
from cs_platform.tenancy import context
from metrics.bulk import BulkRowsInvalid, kpi_measurements_bulk_ingest
from metrics.models import KpiMeasurement
from metrics.services import incident_open, incident_resolve, kpi_measurement_record, survey_response_record
from segments.models import KpiDefinition
from tests import factories
from tests.helpers import event_count, last_event

DAY = datetime.date(2026, 10, 1)


def _kpi(tenant, segment="bank", code="risk_reduction"):
    with context.tenant_context(tenant):
        return KpiDefinition.objects.get(segment__code=segment, code=code)


@pytest.mark.django_db
def test_recording_a_measurement_twice_for_a_day_corrects_it_and_audits_both(tenant_a):
    account = factories.AccountFactory(tenant=tenant_a.tenant)
    kpi = _kpi(tenant_a.tenant)
    kpi_measurement_record(tenant=tenant_a.tenant, account=account, kpi=kpi, measured_on=DAY, value="22.5")
    kpi_measurement_record(tenant=tenant_a.tenant, account=account, kpi=kpi, measured_on=DAY, value=27)
    with context.tenant_context(tenant_a.tenant):
        assert list(KpiMeasurement.objects.values_list("value", flat=True)) == [Decimal("27")]
    event = last_event(tenant_a.tenant)
    assert event.action == "kpi_measurement.update"
    assert Decimal(event.before["value"]) == Decimal("22.5") and Decimal(event.after["value"]) == Decimal("27")


@pytest.mark.django_db
def test_a_kpi_of_another_segment_is_refused(tenant_a):
    account = factories.AccountFactory(tenant=tenant_a.tenant)  # a bank
    with pytest.raises(ValidationError, match="another segment"):
        kpi_measurement_record(
            tenant=tenant_a.tenant,
            account=account,
            kpi=_kpi(tenant_a.tenant, "fintech", "api_adoption"),
            measured_on=DAY,
            value=90,
        )


def _book(tenant):
    with context.tenant_context(tenant):
        return Account.objects.all()


@pytest.mark.django_db
def test_bulk_ingest_is_all_or_nothing_and_names_each_bad_row(tenant_a):
    account = factories.AccountFactory(tenant=tenant_a.tenant)
    kpi = _kpi(tenant_a.tenant)
    good = {"account": account.pk, "kpi": kpi.pk, "measured_on": DAY.isoformat(), "value": 30}
    rows = [
        good,
        {**good, "measured_on": (DAY - datetime.timedelta(days=1)).isoformat(), "value": "lots"},
        {**good, "value": "NaN"},
    ]
    before = event_count(tenant_a.tenant)
    with pytest.raises(BulkRowsInvalid) as raised:
        kpi_measurements_bulk_ingest(tenant=tenant_a.tenant, rows=rows, accounts=_book(tenant_a.tenant))
    assert [(e["row"], e["field"], e["code"]) for e in raised.value.errors] == [
        (1, "value", "invalid"),
        (2, "value", "invalid"),
    ]
    with context.tenant_context(tenant_a.tenant):
        assert KpiMeasurement.objects.count() == 0
    assert event_count(tenant_a.tenant) == before


@pytest.mark.django_db
def test_bulk_ingest_upserts_in_constant_queries_and_audits_each_replaced_value(
    tenant_a, django_assert_max_num_queries
):
    account = factories.AccountFactory(tenant=tenant_a.tenant)
    kpi = _kpi(tenant_a.tenant)
    rows = [
        {
            "account": account.pk,
            "kpi": kpi.pk,
            "measured_on": (DAY - datetime.timedelta(days=n)).isoformat(),
            "value": n,
        }
        for n in range(500)
    ]
    before = event_count(tenant_a.tenant)
    book = _book(tenant_a.tenant)
    # savepoint, book's segments, KPIs, the upsert (INSERT ... ON CONFLICT DO NOTHING: all 500 new, so
    # nothing to lock or update), the audit append's savepoint, advisory lock, chain head, event insert,
    # release x2
    with django_assert_max_num_queries(10):
        result = kpi_measurements_bulk_ingest(tenant=tenant_a.tenant, rows=rows, accounts=book)
    assert (result["stored"], result["created"], result["updated"]) == (500, 500, 0)
    # Replacing all 500: savepoint, book's segments, KPIs, INSERT ... ON CONFLICT DO NOTHING (stores
    # nothing), SELECT ... FOR UPDATE of the 500 rows (their values, locked), UPDATE of them, the audit
    # append's savepoint, advisory lock, chain head, the 501 events' insert, release x2
    with django_assert_max_num_queries(12):
        result = kpi_measurements_bulk_ingest(
            tenant=tenant_a.tenant, rows=[{**row, "value": row["value"] + 1} for row in rows], accounts=book
        )
    assert (result["stored"], result["created"], result["updated"]) == (500, 0, 500)
    rows = [{**row, "value": row["value"] + 1} for row in rows]
    before += 1 + 500
    result = kpi_measurements_bulk_ingest(tenant=tenant_a.tenant, rows=[{**rows[0], "value": 99}], accounts=book)
    assert (result["created"], result["updated"]) == (0, 1)
    with context.tenant_context(tenant_a.tenant):
        assert KpiMeasurement.objects.count() == 500
        assert KpiMeasurement.objects.get(measured_on=DAY).value == Decimal("99")
    # One summary event per request, plus the replaced value's own before/after.
    assert event_count(tenant_a.tenant) == before + 3
    replaced = last_event(tenant_a.tenant)
    assert replaced.action == "kpi_measurement.update"
    assert (replaced.before["value"], replaced.after["value"]) == ("1.0000", "99")


@pytest.mark.django_db
@pytest.mark.parametrize(("kind", "score"), [("nps", 11), ("csat", 0), ("ces", 8), ("stars", 3)])
def test_survey_scores_outside_their_scale_are_refused(tenant_a, kind, score):
    account = factories.AccountFactory(tenant=tenant_a.tenant)
    with pytest.raises(ValidationError):
        survey_response_record(tenant=tenant_a.tenant, account=account, survey_type=kind, score=score, responded_on=DAY)


@pytest.mark.django_db
def test_incident_lifecycle(tenant_a):
    account = factories.AccountFactory(tenant=tenant_a.tenant)
    opened = datetime.datetime(2026, 10, 1, 9, 0, tzinfo=datetime.UTC)
    incident = incident_open(
        tenant=tenant_a.tenant, account=account, title="ACH file rejected", severity="sev2", opened_at=opened
    )
    with pytest.raises(ValidationError, match="before it was opened"):
        incident_resolve(tenant=tenant_a.tenant, incident=incident, resolved_at=opened - datetime.timedelta(hours=1))
    incident_resolve(tenant=tenant_a.tenant, incident=incident, resolved_at=opened + datetime.timedelta(hours=5))
    assert last_event(tenant_a.tenant).action == "incident.resolve"
