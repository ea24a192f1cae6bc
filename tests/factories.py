"""factory-boy factories. Tenant-owned factories create inside the given tenant's context."""

from __future__ import annotations

import datetime
import uuid
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from accounts.models import Account, Contact, Touchpoint
from compliance.models import AuditResult, ComplianceStatusSnapshot, Evidence, Obligation, Requirement
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Membership, Tenant
from journeys.models import Decision
from metrics.models import HealthSnapshot, Incident, KpiMeasurement, SurveyResponse
from scorecards.models import ScorecardDelivery
from scorecards.weeks import IsoWeek
from segments.models import KpiDefinition, Segment
from webhooks.models import WebhookDelivery, WebhookEndpoint

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
        from provisioning.services import tenant_create

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
    # Well beyond every renewal window (the longest is 180 days), whatever day the suite runs on.
    renewal_date = factory.LazyFunction(lambda: datetime.date.today() + datetime.timedelta(days=400))


class ContactFactory(TenantOwnedFactory):
    class Meta:
        model = Contact

    account = factory.SubFactory(AccountFactory, tenant=factory.SelfAttribute("..tenant"))
    name = factory.Sequence(lambda n: f"Contact {n}")
    email = factory.LazyAttribute(lambda o: f"{o.name.lower().replace(' ', '.')}@client.test")


class TouchpointFactory(TenantOwnedFactory):
    class Meta:
        model = Touchpoint

    account = factory.SubFactory(AccountFactory, tenant=factory.SelfAttribute("..tenant"))
    kind = "call"
    occurred_at = factory.LazyFunction(lambda: timezone.now() - datetime.timedelta(days=1))
    subject = factory.Sequence(lambda n: f"Check-in call {n}")


class DecisionFactory(TenantOwnedFactory):
    class Meta:
        model = Decision

    account = factory.SubFactory(AccountFactory, tenant=factory.SelfAttribute("..tenant"))
    title = factory.Sequence(lambda n: f"Choose the settlement file format {n}")
    owner = factory.SubFactory(UserFactory)
    due_date = factory.LazyFunction(lambda: datetime.date.today() + datetime.timedelta(days=7))
    fallback = "Keep the current format"


def requirement_of(tenant, framework_code: str | None = None) -> Requirement:
    """A reference requirement that applies to the bank segment (the factories' default)."""
    with context.tenant_context(tenant):
        requirements = Requirement.objects.filter(segment__code__in=["bank"]) | Requirement.objects.filter(
            segment__isnull=True
        )
        if framework_code:
            requirements = requirements.filter(framework__code=framework_code)
        return requirements.order_by("framework__code", "code").first()


class ObligationFactory(TenantOwnedFactory):
    class Meta:
        model = Obligation

    account = factory.SubFactory(AccountFactory, tenant=factory.SelfAttribute("..tenant"))
    requirement = factory.LazyAttribute(lambda o: requirement_of(o.tenant))
    due_date = factory.LazyFunction(lambda: datetime.date.today() + datetime.timedelta(days=60))


class EvidenceFactory(TenantOwnedFactory):
    class Meta:
        model = Evidence

    obligation = factory.SubFactory(ObligationFactory, tenant=factory.SelfAttribute("..tenant"))
    filename = "soc2-report.pdf"
    checksum_sha256 = "0" * 64
    valid_from = factory.LazyFunction(lambda: datetime.date.today() - datetime.timedelta(days=30))
    valid_until = factory.LazyFunction(lambda: datetime.date.today() + datetime.timedelta(days=335))


class AuditResultFactory(TenantOwnedFactory):
    class Meta:
        model = AuditResult

    obligation = factory.SubFactory(ObligationFactory, tenant=factory.SelfAttribute("..tenant"))
    audited_on = factory.LazyFunction(lambda: datetime.date.today() - datetime.timedelta(days=10))
    outcome = "passed"


class ComplianceStatusSnapshotFactory(TenantOwnedFactory):
    class Meta:
        model = ComplianceStatusSnapshot

    account = factory.SubFactory(AccountFactory, tenant=factory.SelfAttribute("..tenant"))
    snapshot_date = factory.LazyFunction(datetime.date.today)
    status = "compliant"
    counts = factory.LazyFunction(lambda: {"compliant": 1})


class HealthSnapshotFactory(TenantOwnedFactory):
    class Meta:
        model = HealthSnapshot

    account = factory.SubFactory(AccountFactory, tenant=factory.SelfAttribute("..tenant"))
    snapshot_date = factory.LazyFunction(datetime.date.today)
    total = Decimal("72.50")
    band = "green"
    components = factory.LazyFunction(list)


def _first_kpi(tenant, segment_id: int) -> KpiDefinition:
    # In the tenant's context: PostgreSQL's row-level security hides every row without one.
    with context.tenant_context(tenant):
        return KpiDefinition.objects.filter(segment_id=segment_id).order_by("sort_order", "pk")[0]


class KpiMeasurementFactory(TenantOwnedFactory):
    class Meta:
        model = KpiMeasurement

    account = factory.SubFactory(AccountFactory, tenant=factory.SelfAttribute("..tenant"))
    kpi = factory.LazyAttribute(lambda o: _first_kpi(o.tenant, o.account.segment_id))
    measured_on = factory.LazyFunction(datetime.date.today)
    value = Decimal("50")


class SurveyResponseFactory(TenantOwnedFactory):
    class Meta:
        model = SurveyResponse

    account = factory.SubFactory(AccountFactory, tenant=factory.SelfAttribute("..tenant"))
    survey_type = "nps"
    score = 9
    responded_on = factory.LazyFunction(datetime.date.today)


class IncidentFactory(TenantOwnedFactory):
    class Meta:
        model = Incident

    account = factory.SubFactory(AccountFactory, tenant=factory.SelfAttribute("..tenant"))
    title = factory.Sequence(lambda n: f"Payment file rejected {n}")
    severity = "sev2"
    opened_at = factory.LazyFunction(lambda: timezone.now() - datetime.timedelta(days=3))


def journey_of(account, *, started_on: datetime.date | None = None):
    """Start the reference journey on `account` through the service (so activities get due dates)."""
    from journeys.models import AccountJourney, JourneyTemplate
    from journeys.services import account_journey_start

    tenant = account.tenant
    with context.tenant_context(tenant):
        template = JourneyTemplate.objects.filter(is_reference=True).order_by("pk").first()
    journey = account_journey_start(
        tenant=tenant, account=account, template=template, started_on=started_on or datetime.date.today()
    )
    with context.tenant_context(tenant):
        return AccountJourney.objects.get(pk=journey.pk)


# --- The delivery outbox's two tables ----------------------------------------------------------------------
class WebhookEndpointFactory(TenantOwnedFactory):
    """An endpoint row as registration stores it (the URL is not checked: no delivery is made here)."""

    class Meta:
        model = WebhookEndpoint

    url = factory.Sequence(lambda n: f"https://hooks{n}.example.test/in")
    events = factory.LazyFunction(lambda: ["health.band_changed"])
    secret = factory.Sequence(lambda n: f"whsec_test_{n:032d}")
    created_by = factory.SubFactory(UserFactory)


class WebhookDeliveryFactory(TenantOwnedFactory):
    class Meta:
        model = WebhookDelivery

    endpoint = factory.SubFactory(WebhookEndpointFactory, tenant=factory.SelfAttribute("..tenant"))
    event_type = "ping"
    event_id = factory.LazyFunction(uuid.uuid4)
    payload = factory.LazyFunction(lambda: {"type": "ping", "data": {}})


class ScorecardDeliveryFactory(TenantOwnedFactory):
    class Meta:
        model = ScorecardDelivery

    user = factory.SubFactory(UserFactory)
    week = factory.LazyFunction(lambda: str(IsoWeek.of(timezone.localdate())))
    week_start = factory.LazyAttribute(lambda o: IsoWeek.parse(o.week).monday)
    email = factory.LazyAttribute(lambda o: o.user.email)
