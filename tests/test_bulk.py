import datetime

import pytest

from cs_platform.bulk import bulk_update_rows
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from journeys.models import Decision
from journeys.services import decision_create
from tests import factories


@pytest.mark.django_db
def test_bulk_update_rows_writes_each_row_its_own_values_including_nulls(tenant_a, tenant_b):
    account = factories.AccountFactory(tenant=tenant_a.tenant)
    owner = tenant_a.user(Role.CSM)
    day = datetime.date(2026, 1, 1)
    decisions = [
        decision_create(tenant=tenant_a.tenant, account=account, title=f"D{i}", owner=owner, due_date=day, fallback="f")
        for i in range(3)
    ]
    decisions[0].status, decisions[0].escalated_to_id = "escalated", tenant_a.user(Role.MANAGER).pk
    decisions[1].status, decisions[1].escalated_to_id = "resolved", None
    with context.tenant_context(tenant_a.tenant):
        bulk_update_rows(Decision, decisions[:2], ["status", "escalated_to"])
        rows = dict(Decision.objects.values_list("title", "status"))
        escalated_to = Decision.objects.get(title="D0").escalated_to_id
    assert rows == {"D0": "escalated", "D1": "resolved", "D2": "open"}
    assert escalated_to == tenant_a.user(Role.MANAGER).pk
    # A row of another tenant is never touched, even with its id: the tenant is part of the match.
    other = factories.AccountFactory(tenant=tenant_b.tenant)
    foreign = decision_create(
        tenant=tenant_b.tenant, account=other, title="B", owner=tenant_b.user(Role.CSM), due_date=day, fallback="f"
    )
    foreign.tenant_id = tenant_a.tenant.pk
    foreign.status = "resolved"
    with context.tenant_context(tenant_a.tenant):
        bulk_update_rows(Decision, [foreign], ["status"])
    with context.tenant_context(tenant_b.tenant):
        assert Decision.objects.get(pk=foreign.pk).status == "open"
