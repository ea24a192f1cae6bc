"""seed_demo: idempotent, deterministic, and covering what the later engines need."""

from __future__ import annotations

import datetime

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command

from compliance.models import Obligation, ObligationStatus
from cs_platform.audit.selectors import audit_chain_verify
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role, Tenant, TenantOwned
from journeys.models import AccountJourney, Decision, DecisionStatus
from segments.models import Segment
from tests.tenants import in_every_tenant

TODAY = "2026-11-23"


def _counts() -> dict[str, int]:
    models = [m for m in apps.get_models() if issubclass(m, TenantOwned)]
    per_tenant = in_every_tenant(lambda: {m._meta.label: m.objects.count() for m in models})
    counts = {m._meta.label: sum(c[m._meta.label] for c in per_tenant) for m in models}
    counts["tenancy.Tenant"] = Tenant.objects.count()
    counts["auth.User"] = apps.get_model("auth", "User").objects.count()
    return counts


@pytest.mark.django_db
def test_seed_demo_twice_yields_the_same_row_counts_and_covers_every_state():
    call_command("seed_demo", accounts=40, today=TODAY, allow_without_debug=True)
    first = _counts()
    call_command("seed_demo", accounts=40, today=TODAY, allow_without_debug=True)
    assert _counts() == first
    assert first["tenancy.Tenant"] == 2 and first["accounts.Account"] == 80

    northwind = Tenant.objects.get(name="Northwind Regulatory Services")
    today = datetime.date.fromisoformat(TODAY)
    with context.tenant_context(northwind):
        from cs_platform.tenancy.models import Membership

        assert set(Membership.objects.values_list("role", flat=True)) == set(Role.values)
        assert set(Segment.objects.filter(accounts__isnull=False).values_list("code", flat=True)) == {
            "bank",
            "insurer",
            "wealth",
            "fintech",
        }
        assert set(Obligation.objects.values_list("status", flat=True)) == set(ObligationStatus.values)
        days = [(today - j.started_on).days for j in AccountJourney.objects.all()]
        assert any(d < 45 for d in days) and any(45 <= d < 120 for d in days) and any(120 <= d < 240 for d in days)
        assert Decision.objects.filter(status=DecisionStatus.OPEN, due_date__lt=today).exists()
    assert audit_chain_verify(tenant=northwind).ok


class _Rollback(Exception):
    pass


def _fingerprint(seed: int) -> tuple:
    """Seed inside a savepoint, read what was made, roll it back."""
    from django.db import transaction
    from django.db.models import Sum

    captured = ()
    try:
        with transaction.atomic():
            call_command("seed_demo", accounts=12, today=TODAY, seed=seed, allow_without_debug=True)
            Account = apps.get_model("accounts", "Account")
            KpiMeasurement = apps.get_model("metrics", "KpiMeasurement")

            def read():
                return (
                    list(Account.objects.values_list("tenant__slug", "name", "arr", "renewal_date", "segment__code")),
                    KpiMeasurement.objects.count(),
                    KpiMeasurement.objects.aggregate(total=Sum("value"))["total"] or 0,
                    list(Obligation.objects.values_list("account__name", "requirement__code", "status")),
                )

            parts = in_every_tenant(read)
            captured = (
                sorted(row for part in parts for row in part[0]),
                sum(part[1] for part in parts),
                sum(part[2] for part in parts),
                sorted(row for part in parts for row in part[3]),
            )
            raise _Rollback
    except _Rollback:
        pass
    return captured


@pytest.mark.django_db
def test_seed_demo_is_deterministic_for_a_seed():
    first = _fingerprint(7)
    assert len(first[0]) == 24 and first[1] > 0
    assert _fingerprint(7) == first
    assert _fingerprint(8) != first


@pytest.mark.django_db
def test_seed_demo_refuses_bad_input_clearly():
    with pytest.raises(CommandError, match="--accounts must be between"):
        call_command("seed_demo", accounts=0, allow_without_debug=True)
    with pytest.raises(CommandError, match="2026-13-01"):
        call_command("seed_demo", today="2026-13-01", allow_without_debug=True)
    with pytest.raises(CommandError, match="DEBUG=true"):
        call_command("seed_demo")
