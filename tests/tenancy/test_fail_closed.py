import pytest

from accounts.models import Account
from cs_platform.tenancy import context
from segments.models import Segment
from tests import factories


@pytest.mark.django_db
def test_querying_a_tenant_model_without_a_tenant_raises(tenant_a):
    with pytest.raises(context.NoTenantSelected):
        Account.objects.count()
    with pytest.raises(context.NoTenantSelected):
        list(Segment.objects.all())


@pytest.mark.django_db
def test_tenant_context_filters_and_there_is_no_cross_tenant_mode(tenant_a, tenant_b):
    factories.AccountFactory(tenant=tenant_a.tenant)
    factories.AccountFactory(tenant=tenant_b.tenant)
    factories.AccountFactory(tenant=tenant_b.tenant)
    with context.tenant_context(tenant_a.tenant):
        assert Account.objects.count() == 1
    with context.tenant_context(tenant_b.tenant):
        assert Account.objects.count() == 2
    # The escape hatch is gone: cross-tenant reads are named lookups (cs_platform.tenancy.system).
    assert not hasattr(context, "system_scope") and not hasattr(context, "in_system_scope")


@pytest.mark.django_db
def test_saving_without_a_tenant_or_into_another_tenant_is_refused(tenant_a, tenant_b):
    segment = factories.segment_of(tenant_a.tenant)
    with pytest.raises(context.NoTenantSelected):
        Account(name="Orphan Bank", segment=segment).save()
    with context.tenant_context(tenant_b.tenant), pytest.raises(context.NoTenantSelected):
        Account(tenant=tenant_a.tenant, name="Smuggled Bank", segment=segment).save()
    with context.tenant_context(tenant_a.tenant):
        account = Account(name="Proper Bank", segment=segment)
        account.save()
    assert account.tenant_id == tenant_a.tenant.pk


@pytest.mark.django_db
def test_context_is_restored_after_nested_scopes(tenant_a, tenant_b):
    with context.tenant_context(tenant_a.tenant):
        with context.tenant_context(tenant_b.tenant):
            assert context.current_tenant_id() == tenant_b.tenant.pk
        assert context.current_tenant_id() == tenant_a.tenant.pk
