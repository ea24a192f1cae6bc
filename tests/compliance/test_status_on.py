"""compliance.selectors.obligations_on (an obligation's status on an earlier day, as SQL) agrees with
what the nightly recompute (compliance.status.obligation_status over compliance.services' inputs)
stores for that day, obligation by obligation, on histories that move between the days."""

from __future__ import annotations

import datetime
import random

import pytest

from accounts.models import Account
from compliance.models import Obligation
from compliance.selectors import obligations_on
from compliance.services import compliance_status_recompute
from cs_platform.tenancy import context
from tests import factories

pytestmark = pytest.mark.django_db

BASE = datetime.date(2026, 11, 30)
DAYS = [BASE - datetime.timedelta(days=n) for n in (45, 21, 14, 7, 1, 0)]


def _day(offset: int) -> datetime.date:
    return BASE + datetime.timedelta(days=offset)


def _histories(tenant, *, n: int = 80, seed: int = 7) -> None:
    """Obligations due around BASE, each with 0-2 pieces of evidence (valid windows that start, lapse or
    enter the 30-day horizon between the days checked) and 0-2 audits (passed, failed with or without
    open findings, some after the earlier days)."""
    rng = random.Random(seed)
    for _ in range(n):
        obligation = factories.ObligationFactory(tenant=tenant, due_date=_day(rng.randint(-60, 40)))
        for _ in range(rng.choice((0, 0, 1, 1, 2))):
            start = rng.randint(-400, 5)
            factories.EvidenceFactory(
                tenant=tenant,
                obligation=obligation,
                valid_from=_day(start),
                valid_until=_day(start + rng.randint(20, 420)),
            )
        for _ in range(rng.choice((0, 1, 1, 2))):
            outcome = rng.choice(("passed", "failed", "failed"))
            factories.AuditResultFactory(
                tenant=tenant,
                obligation=obligation,
                audited_on=_day(rng.randint(-90, 0)),
                outcome=outcome,
                open_findings=rng.choice((0, 1, 3)) if outcome == "failed" else 0,
            )


def test_the_status_on_a_day_is_the_one_the_nightly_stores_for_that_day(tenant_a):
    tenant = tenant_a.tenant
    _histories(tenant)
    seen: set[str] = set()
    for day in DAYS:
        compliance_status_recompute(tenant=tenant, day=day)
        with context.tenant_context(tenant):
            stored = dict(Obligation.objects.values_list("pk", "status"))
            computed = dict(obligations_on(Account.objects.all(), day=day).values_list("pk", "status_on"))
        assert computed == stored, day
        seen |= set(stored.values())
    # The histories exercise every rule (otherwise the comparison proves little).
    assert seen == {"failed", "expiring", "compliant", "overdue", "not_started"}, seen


def test_statuses_move_between_the_days_checked(tenant_a):
    # A guard for the test above: if every obligation kept one status over the days, comparing each day
    # would not show that the SQL reads the day's audits and evidence rather than the latest.
    tenant = tenant_a.tenant
    _histories(tenant)
    with context.tenant_context(tenant):
        first = dict(obligations_on(Account.objects.all(), day=DAYS[0]).values_list("pk", "status_on"))
        last = dict(obligations_on(Account.objects.all(), day=DAYS[-1]).values_list("pk", "status_on"))
    assert sum(first[pk] != last[pk] for pk in first) >= 10


def test_the_day_limits_what_counts(tenant_a):
    tenant = tenant_a.tenant
    obligation = factories.ObligationFactory(tenant=tenant, due_date=_day(-10))
    factories.EvidenceFactory(tenant=tenant, obligation=obligation, valid_from=_day(-3), valid_until=_day(200))
    factories.AuditResultFactory(
        tenant=tenant, obligation=obligation, audited_on=_day(-1), outcome="failed", open_findings=2
    )

    def status(offset: int) -> str:
        with context.tenant_context(tenant):
            return obligations_on(Account.objects.all(), day=_day(offset)).get(pk=obligation.pk).status_on

    assert status(-20) == "not_started"  # due later, no evidence yet
    assert status(-5) == "overdue"  # due date passed, the evidence starts later
    assert status(-2) == "compliant"  # evidence in force, valid beyond 30 days
    assert status(0) == "failed"  # the audit failed with open findings
