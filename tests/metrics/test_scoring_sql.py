"""The SQL engine (metrics.scoring_sql) against the reference Python engine (segments.health_model).

Both score the seeded demo tenant (a year of varied data: every journey and compliance status,
surveys, incidents, decisions, KPIs met and missed) plus a few edge accounts; every snapshot must
agree component by component, and the audit events must carry the same digest."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.core.management import call_command

from cs_platform.audit.models import AuditEvent
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Tenant
from metrics.health import health_snapshots_compute
from metrics.models import HealthSnapshot
from nightly.pipeline import tenant_wide_steps
from segments.health_model import MEASURES
from segments.models import Scorecard, Segment
from segments.services import scorecard_update
from tests import factories

TODAY = datetime.date(2026, 11, 23)
ROUNDING = 1e-6  # components are stored unrounded: only the order of float operations differs
CENT = Decimal("0.0101")  # totals are rounded to cents; float vs numeric may differ at a .xx5


def _snapshots(tenant, day) -> dict[int, tuple]:
    with context.tenant_context(tenant):
        return {
            s.account_id: (s.total, s.band, s.change_7d, s.change_30d, s.components)
            for s in HealthSnapshot.objects.filter(snapshot_date=day)
        }


def _close(a, b) -> bool:
    if isinstance(a, dict) and isinstance(b, dict) and "kpis" in a and "kpis" in b:
        # The SQL engine stores the per-KPI rows in no particular order (describe() sorts them).
        a, b = dict(a, kpis=sorted(a["kpis"], key=str)), dict(b, kpis=sorted(b["kpis"], key=str))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return abs(a - b) <= ROUNDING
    return a == b


def _digest(tenant, day) -> str:
    with context.tenant_context(tenant):
        event = AuditEvent.objects.filter(action="health.recompute").order_by("-id").first()
    assert event.after["date"] == day.isoformat()
    return event.after["sha256"]


@pytest.fixture
def demo_tenant(db):
    call_command("seed_demo", accounts=60, today=TODAY.isoformat(), allow_without_debug=True)
    tenant = Tenant.objects.get(slug="northwind")
    with context.tenant_context(tenant):
        # Every measure on one scorecard, with per-measure thresholds, so each rule is exercised.
        card = Scorecard.objects.get(segment__code="bank")
        wealth = Segment.objects.get(code="wealth")
    weights = dict.fromkeys(MEASURES, 8)
    weights["kpi_attainment"] = 12
    scorecard_update(
        tenant=tenant,
        scorecard=card,
        green_at=72,
        red_below=55,
        measures=[{"measure": m, "weight": w, "green_at": 80, "red_below": 40} for m, w in weights.items()],
    )
    # Edge accounts: no data at all, no renewal date, a renewal long past.
    factories.AccountFactory(tenant=tenant, segment=wealth, renewal_date=None, name="Quiet Trust Co")
    factories.AccountFactory(tenant=tenant, segment=wealth, renewal_date=TODAY - datetime.timedelta(days=40))
    return tenant


@pytest.mark.django_db
def test_sql_and_python_engines_write_the_same_snapshots(demo_tenant):
    tenant = demo_tenant
    for back in (30, 7):  # history, so the 7- and 30-day changes are compared too
        health_snapshots_compute(tenant=tenant, day=TODAY - datetime.timedelta(days=back), engine="python")
    tenant_wide_steps(tenant=tenant, day=TODAY)

    health_snapshots_compute(tenant=tenant, day=TODAY, engine="python")
    python, python_digest = _snapshots(tenant, TODAY), _digest(tenant, TODAY)
    health_snapshots_compute(tenant=tenant, day=TODAY, engine="sql")
    sql, sql_digest = _snapshots(tenant, TODAY), _digest(tenant, TODAY)

    assert python.keys() == sql.keys() and len(sql) == 62
    for account_id, (total, band, change_7d, change_30d, components) in python.items():
        s_total, s_band, s_7, s_30, s_components = sql[account_id]
        assert abs(total - s_total) <= CENT and band == s_band, account_id
        assert (change_7d is None) == (s_7 is None) and (change_30d is None) == (s_30 is None), account_id
        assert _close(components, s_components), (account_id, components, s_components)
    assert python_digest == sql_digest

    # The comparison is not vacuous: every measure was present somewhere and missing somewhere else,
    # every band occurs, and some accounts have both changes.
    present = {c["measure"] for _, _, _, _, cs in sql.values() for c in cs if not c["missing"]}
    missing = {c["measure"] for _, _, _, _, cs in sql.values() for c in cs if c["missing"]}
    assert present == set(MEASURES)
    assert {"nps", "kpi_attainment", "renewal"} <= missing
    assert {band for _, band, _, _, _ in sql.values()} >= {"green", "yellow", "red"}
    with context.tenant_context(tenant):
        quiet = HealthSnapshot.objects.get(account__name="Quiet Trust Co", snapshot_date=TODAY)
    # With no data, only "escalations" (none in 90 days is a fact, not a gap) is present.
    assert [c["measure"] for c in quiet.components if not c["missing"]] == ["escalations"]
    assert any(s_7 is not None and s_30 is not None for _, _, s_7, s_30, _ in sql.values())


@pytest.mark.django_db
def test_a_chunk_scores_only_its_accounts_and_matches_the_whole_run(demo_tenant):
    tenant = demo_tenant
    tenant_wide_steps(tenant=tenant, day=TODAY)
    health_snapshots_compute(tenant=tenant, day=TODAY, engine="sql")
    whole = _snapshots(tenant, TODAY)
    with context.tenant_context(tenant):
        HealthSnapshot.objects.filter(snapshot_date=TODAY).delete()
    chunk = sorted(whole)[5:17]
    assert health_snapshots_compute(tenant=tenant, day=TODAY, account_ids=chunk, engine="sql")["accounts"] == 12
    part = _snapshots(tenant, TODAY)
    assert sorted(part) == chunk
    assert all(part[a][:2] == whole[a][:2] and _close(part[a][4], whole[a][4]) for a in chunk)
    assert health_snapshots_compute(tenant=tenant, day=TODAY, account_ids=[], engine="sql")["accounts"] == 0


@pytest.mark.django_db
def test_an_unknown_scorecard_measure_fails_the_sql_engine_loudly(tenant_a):
    from segments.models import ScorecardMeasure
    from segments.services import scorecard_defaults_ensure

    tenant = tenant_a.tenant
    scorecard_defaults_ensure(tenant=tenant)
    with context.tenant_context(tenant):
        card = Scorecard.objects.get(segment__code="fintech")
        ScorecardMeasure.objects.create(tenant=tenant, scorecard=card, measure="bogus", weight=5)
    with pytest.raises(ValueError, match="'bogus' \\(segment fintech\\)"):
        health_snapshots_compute(tenant=tenant, day=TODAY, engine="sql")
