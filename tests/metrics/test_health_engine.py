"""The nightly health computation on the database: explainable snapshots, idempotent upserts,
constant query counts."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Count
from django.test.utils import CaptureQueriesContext

from accounts.models import Account
from cs_platform.tenancy import context
from metrics.bulk import BulkRowsInvalid, kpi_measurements_bulk_ingest
from metrics.health import health_snapshots_compute
from metrics.models import HealthSnapshot, KpiMeasurement, SurveyResponse
from nightly.pipeline import run_tenant
from segments.models import KpiDefinition, Scorecard, Segment
from segments.services import scorecard_update
from tests import factories
from tests.helpers import last_event

DAY = datetime.date(2026, 11, 20)


def _simple_card(tenant, segment_code="insurer"):
    with context.tenant_context(tenant):
        card = Scorecard.objects.get(segment__code=segment_code)
    return scorecard_update(
        tenant=tenant,
        scorecard=card,
        green_at=70,
        red_below=50,
        measures=[{"measure": "kpi_attainment", "weight": 60}, {"measure": "nps", "weight": 40}],
    )


def _insurer_account(tenant, name="Meridian Mutual Insurance"):
    with context.tenant_context(tenant):
        segment = Segment.objects.get(code="insurer")
    return factories.AccountFactory(
        tenant=tenant, name=name, segment=segment, renewal_date=DAY + datetime.timedelta(days=200)
    )


@pytest.mark.django_db
def test_snapshot_total_and_components_for_a_hand_computed_account(tenant_a):
    tenant = tenant_a.tenant
    _simple_card(tenant)
    account = _insurer_account(tenant)
    with context.tenant_context(tenant):
        renewal = KpiDefinition.objects.get(segment__code="insurer", code="policy_renewal")
        KpiMeasurement.objects.create(
            tenant=tenant, account=account, kpi=renewal, measured_on=DAY - datetime.timedelta(days=40), value=99
        )
        # The latest value in the window counts: 5 % short of 95 -> 80.
        KpiMeasurement.objects.create(
            tenant=tenant, account=account, kpi=renewal, measured_on=DAY - datetime.timedelta(days=5), value="90.25"
        )
        for score in (10, 9, 8, 3):  # 2 promoters, 1 detractor of 4 -> NPS +25 -> score 62.5
            SurveyResponse.objects.create(
                tenant=tenant, account=account, survey_type="nps", score=score, responded_on=DAY
            )
        SurveyResponse.objects.create(
            tenant=tenant, account=account, survey_type="nps", score=0, responded_on=DAY - datetime.timedelta(days=200)
        )  # outside the window
    health_snapshots_compute(tenant=tenant, day=DAY)
    with context.tenant_context(tenant):
        snapshot = HealthSnapshot.objects.get(account=account, snapshot_date=DAY)
    # 80 x 0.6 + 62.5 x 0.4 = 48 + 25 = 73
    assert str(snapshot.total) == "73.00" and snapshot.band == "green"
    parts = {c["measure"]: (c["raw"], c["score"], c["contribution"]) for c in snapshot.components}
    assert parts == {"kpi_attainment": (0.0, 80.0, 48.0), "nps": (25.0, 62.5, 25.0)}
    assert snapshot.change_7d is None and snapshot.change_30d is None
    assert last_event(tenant).action == "health.recompute"


@pytest.mark.django_db
def test_rerunning_a_date_rewrites_not_duplicates_and_changes_are_tracked(tenant_a):
    tenant = tenant_a.tenant
    _simple_card(tenant)
    account = _insurer_account(tenant)
    with context.tenant_context(tenant):
        SurveyResponse.objects.create(
            tenant=tenant, account=account, survey_type="nps", score=10, responded_on=DAY - datetime.timedelta(days=30)
        )
    earlier = DAY - datetime.timedelta(days=7)
    health_snapshots_compute(tenant=tenant, day=earlier)  # NPS +100 -> 100, kpi missing -> total 100
    with context.tenant_context(tenant):
        SurveyResponse.objects.create(tenant=tenant, account=account, survey_type="nps", score=0, responded_on=DAY)
    health_snapshots_compute(tenant=tenant, day=DAY)  # NPS 0 -> 50
    health_snapshots_compute(tenant=tenant, day=DAY)
    with context.tenant_context(tenant):
        rows = list(
            HealthSnapshot.objects.filter(account=account)
            .order_by("snapshot_date")
            .values_list("snapshot_date", "total", "change_7d")
        )
        duplicates = HealthSnapshot.objects.values("account", "snapshot_date").annotate(n=Count("id")).filter(n__gt=1)
        assert not duplicates.exists()
    assert [(d, str(t), None if c is None else str(c)) for d, t, c in rows] == [
        (earlier, "100.00", None),
        (DAY, "50.00", "-50.00"),
    ]


def _accounts(tenant, n: int) -> None:
    with context.tenant_context(tenant):
        segments = list(Segment.objects.order_by("code"))
        kpis = {s.pk: list(s.kpis.all()) for s in segments}
        start = Account.objects.count()
        accounts = Account.objects.bulk_create(
            Account(
                tenant=tenant,
                name=f"Bulk Institution {start + i:04d}",
                segment=segments[i % 4],
                renewal_date=DAY + datetime.timedelta(days=i % 400),
            )
            for i in range(n)
        )
        KpiMeasurement.objects.bulk_create(
            KpiMeasurement(tenant=tenant, account=a, kpi=k, measured_on=DAY - datetime.timedelta(days=d), value=50 + d)
            for a in accounts
            for k in kpis[a.segment_id]
            for d in (3, 33)
        )
        SurveyResponse.objects.bulk_create(
            SurveyResponse(tenant=tenant, account=a, survey_type=t, score=s, responded_on=DAY)
            for a in accounts
            for t, s in (("nps", 9), ("csat", 4))
        )


def _queries(fn) -> int:
    with CaptureQueriesContext(connection) as captured:
        fn()
    return len(captured)


@pytest.mark.django_db
def test_query_count_does_not_grow_with_the_number_of_accounts(tenant_a, tenant_b):
    _accounts(tenant_a.tenant, 10)
    _accounts(tenant_b.tenant, 200)
    small = _queries(lambda: health_snapshots_compute(tenant=tenant_a.tenant, day=DAY))
    large = _queries(lambda: health_snapshots_compute(tenant=tenant_b.tenant, day=DAY))
    assert small == large, (small, large)
    # 14 on PostgreSQL (the SQL engine), whatever the size: savepoint x2, segments lacking a scorecard,
    # release, unknown scorecard measures, planner settings off, the scoring upsert statement, planner
    # settings back, then the audit event: savepoint, advisory lock, chain head, insert, release x2.
    assert large == 14
    small = _queries(lambda: health_snapshots_compute(tenant=tenant_a.tenant, day=DAY, engine="python"))
    large = _queries(lambda: health_snapshots_compute(tenant=tenant_b.tenant, day=DAY, engine="python"))
    assert small == large, (small, large)
    # 23 with the reference (Python) engine: savepoint x2, segments lacking a scorecard, release,
    # scorecards, their measures, segment codes, accounts, KPI definitions, latest KPI values (window
    # function), survey aggregates, incidents, journeys, compliance snapshots, decision closure,
    # snapshots 7/30 days back, the snapshot upsert, then the audit event (6 as above).
    assert large == 23
    whole_small = _queries(lambda: run_tenant(tenant=tenant_a.tenant, day=DAY, chunk_size=1000))
    whole_large = _queries(lambda: run_tenant(tenant=tenant_b.tenant, day=DAY, chunk_size=1000))
    assert whole_small == whole_large, (whole_small, whole_large)
    with context.tenant_context(tenant_b.tenant):
        assert HealthSnapshot.objects.filter(snapshot_date=DAY).count() == 200


@pytest.mark.django_db
def test_chunks_cover_every_account_once(tenant_a):
    _accounts(tenant_a.tenant, 25)
    summary = run_tenant(tenant=tenant_a.tenant, day=DAY, chunk_size=7)
    assert summary["health"]["accounts"] == 25
    with context.tenant_context(tenant_a.tenant):
        assert HealthSnapshot.objects.filter(snapshot_date=DAY).count() == 25


@pytest.mark.django_db
def test_scorecard_validation_names_the_field(tenant_a):
    with context.tenant_context(tenant_a.tenant):
        card = Scorecard.objects.get(segment__code="bank")
    cases = [
        (
            [{"measure": "nps", "weight": 60}, {"measure": "csat", "weight": 30}],
            {"weights": ["The weights add up to 90, not 100."]},
        ),
        ([{"measure": "vibes", "weight": 100}], "measures[0].measure"),
        ([{"measure": "nps", "weight": 100, "green_at": 120}], "measures[0].green_at"),
        ([{"measure": "nps", "weight": 100, "green_at": 40, "red_below": 60}], "measures[0].red_below"),
        ([{"measure": "nps", "weight": 50}, {"measure": "nps", "weight": 50}], "measures[1].measure"),
    ]
    for measures, expected in cases:
        with pytest.raises(ValidationError) as raised:
            scorecard_update(tenant=tenant_a.tenant, scorecard=card, measures=measures)
        if isinstance(expected, dict):
            assert raised.value.message_dict == expected
        else:
            assert expected in raised.value.message_dict, raised.value.message_dict
    with context.tenant_context(tenant_a.tenant):
        assert card.measures.count() == 10  # the defaults are untouched


@pytest.mark.django_db
def test_default_scorecards_weigh_what_seed_000_stresses(tenant_a):
    with context.tenant_context(tenant_a.tenant):
        weights = {
            card.segment.code: {m.measure: m.weight for m in card.measures.all()}
            for card in Scorecard.objects.select_related("segment").prefetch_related("measures")
        }
    for code, measures in weights.items():
        assert sum(measures.values()) == 100, code
    assert max(weights["bank"], key=weights["bank"].get) == "compliance"
    assert max(weights["fintech"], key=weights["fintech"].get) == "adoption"
    assert weights["wealth"]["trust"] >= 15 and weights["insurer"]["mttr"] >= 10


@pytest.mark.django_db
def test_an_unknown_kpi_code_is_rejected_naming_the_row_and_field(tenant_a):
    account = _insurer_account(tenant_a.tenant)
    with context.tenant_context(tenant_a.tenant):
        book = Account.objects.all()
    with pytest.raises(BulkRowsInvalid) as raised:
        kpi_measurements_bulk_ingest(
            tenant=tenant_a.tenant,
            accounts=book,
            rows=[
                {"account": account.pk, "kpi_code": "policy_renewal", "measured_on": DAY.isoformat(), "value": 96},
                {"account": account.pk, "kpi_code": "api_adoption", "measured_on": DAY.isoformat(), "value": 90},
            ],
        )
    ((error),) = raised.value.errors
    assert (error["row"], error["field"], error["code"]) == (1, "kpi_code", "does_not_exist")
    assert "'api_adoption'" in error["message"]
