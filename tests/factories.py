"""factory-boy factories. Tenant-owned factories create inside the given tenant's context."""

from __future__ import annotations

import datetime
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from accounts.models import Account, Contact
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Membership, Tenant
from segments.models import Segment

TEST_PASSWORD = "correct-horse-battery-staple"


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Tenant {n}")
    slug = factory.Sequence(lambda n: f"tenant-{n}")
    time_zone = "UTC"

    @classmethod
    def _create(cls, model_class, *args, reference_data: bool = True, **kwargs):
        from cs_platform.tenancy.services import tenant_create

        # Through the service, so every test tenant has the seed-000 reference data.
        return tenant_create(load_reference_data=reference_data, **kwargs)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}@example.test")
    email = factory.LazyAttribute(lambda o: o.username)
    first_name = "Test"
    last_name = factory.Sequence(lambda n: f"User{n}")
    password = factory.django.Password(TEST_PASSWORD)


class TenantOwnedFactory(factory.django.DjangoModelFactory):
    class Meta:
        abstract = True

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        with context.tenant_context(kwargs["tenant"]):
            return super()._create(model_class, *args, **kwargs)


class MembershipFactory(TenantOwnedFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    role = "csm"


def segment_of(tenant, code: str = "bank") -> Segment:
    with context.tenant_context(tenant):
        return Segment.objects.get(code=code)


class AccountFactory(TenantOwnedFactory):
    class Meta:
        model = Account

    name = factory.Sequence(lambda n: f"Account {n} Credit Union")
    segment = factory.LazyAttribute(lambda o: segment_of(o.tenant, "bank"))
    tier = "enterprise"
    arr = Decimal("250000.00")
    contract_start = datetime.date(2025, 1, 1)
    renewal_date = datetime.date(2026, 12, 31)


class ContactFactory(TenantOwnedFactory):
    class Meta:
        model = Contact

    account = factory.SubFactory(AccountFactory, tenant=factory.SelfAttribute("..tenant"))
    name = factory.Sequence(lambda n: f"Contact {n}")
    email = factory.LazyAttribute(lambda o: f"{o.name.lower().replace(' ', '.')}@client.test")
