"""Business rules live in the services (issue #17 item 3): what the API refuses, the service refuses too
when called directly, with the same field, code and message; the bulk ingest, which validates rows
set-based, gives the same refusal per row (metrics.rules states each rule once)."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import Account, Contact
from accounts.selectors import visible_accounts
from accounts.services import account_create, account_reassign, contact_create, contact_update
from cs_platform.identity.services import membership_create
from cs_platform.tenancy import context
from cs_platform.tenancy.clock import tenant_today
from cs_platform.tenancy.models import Role
from journeys.models import ActivityStatus, JourneyActivity
from journeys.services import journey_activity_complete
from metrics import api as metrics_api
from metrics.bulk import (
    BulkRowsInvalid,
    incidents_bulk_ingest,
    kpi_measurements_bulk_ingest,
    survey_responses_bulk_ingest,
)
from metrics.models import Incident, KpiMeasurement, SurveyResponse
from metrics.services import incident_open, incident_resolve, kpi_measurement_record, survey_response_record
from segments.models import KpiDefinition
from segments.services import kpi_definition_update
from tests import factories
from tests.api.helpers import api_post, bearer
from tests.helpers import event_count, log_in_as, owned_account

Refusal = tuple[str, str, str]  # (field, code, message)


def _service_refusals(call) -> set[Refusal]:
    with pytest.raises(ValidationError) as raised:
        call()
    return {
        (field, error.code or "invalid", message)
        for field, errors in raised.value.error_dict.items()
        for error in errors
        for message in error
    }


def _api_refusals(response) -> set[Refusal]:
    assert response.status_code == 400, response.content
    return {(item["field"], item["code"], item["message"]) for item in response.json()["errors"]}


def _bulk_refusals(ingest, world, rows: list[dict]) -> set[Refusal]:
    admin = world.user(Role.ADMIN)
    with context.tenant_context(world.tenant), pytest.raises(BulkRowsInvalid) as raised:
        book = visible_accounts(admin, world.memberships[Role.ADMIN])
        ingest(tenant=world.tenant, rows=rows, accounts=book, actor=admin)
    return {(error["field"], error["code"], error["message"]) for error in raised.value.errors}


def _kpis(world, account) -> tuple[KpiDefinition, KpiDefinition]:
    """A KPI of the account's segment and one of another segment."""
    with context.tenant_context(world.tenant):
        own = KpiDefinition.objects.filter(segment_id=account.segment_id).order_by("pk").first()
        other = KpiDefinition.objects.exclude(segment_id=account.segment_id).order_by("pk").first()
    return own, other


def _count(world, model) -> int:
    with context.tenant_context(world.tenant):
        return model.objects.count()


# --- Metrics ------------------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_a_measurement_dated_in_the_future_is_the_services_refusal(client, tenant_a):
    account = owned_account(tenant_a)
    kpi, _ = _kpis(tenant_a, account)
    tomorrow = tenant_today(tenant_a.tenant) + datetime.timedelta(days=1)
    body = {"account": account.pk, "kpi": kpi.pk, "measured_on": tomorrow.isoformat(), "value": "10"}
    auth = bearer(tenant_a, "metrics:write")
    events = event_count(tenant_a.tenant)

    api = _api_refusals(api_post(client, "/api/v1/measurements/", body, auth))
    service = _service_refusals(
        lambda: kpi_measurement_record(tenant=tenant_a.tenant, account=account, kpi=kpi, measured_on=tomorrow, value=10)
    )
    bulk = _bulk_refusals(kpi_measurements_bulk_ingest, tenant_a, [body])

    assert api == service == bulk == {("measured_on", "future", "A measurement cannot be dated in the future.")}
    assert _count(tenant_a, KpiMeasurement) == 0 and event_count(tenant_a.tenant) == events


@pytest.mark.django_db
def test_a_kpi_of_another_segment_is_the_services_refusal(client, tenant_a):
    account = owned_account(tenant_a)
    _, foreign = _kpis(tenant_a, account)
    today = tenant_today(tenant_a.tenant)
    body = {"account": account.pk, "kpi": foreign.pk, "measured_on": today.isoformat(), "value": "10"}

    api = _api_refusals(api_post(client, "/api/v1/measurements/", body, bearer(tenant_a, "metrics:write")))
    service = _service_refusals(
        lambda: kpi_measurement_record(tenant=tenant_a.tenant, account=account, kpi=foreign, measured_on=today, value=1)
    )
    bulk = _bulk_refusals(kpi_measurements_bulk_ingest, tenant_a, [body])

    expected = {("kpi", "wrong_segment", "This KPI belongs to another segment than the account's.")}
    assert api == service == bulk == expected
    assert _count(tenant_a, KpiMeasurement) == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"score": 11}, ("score", "out_of_range", "A NPS score must be a whole number from 0 to 10.")),
        ({"days": 1}, ("responded_on", "future", "A survey response cannot be dated in the future.")),
    ],
)
def test_a_survey_response_out_of_scale_or_in_the_future_is_the_services_refusal(client, tenant_a, change, expected):
    account = owned_account(tenant_a)
    day = tenant_today(tenant_a.tenant) + datetime.timedelta(days=change.get("days", 0))
    score = change.get("score", 9)
    body = {"account": account.pk, "survey_type": "nps", "score": score, "responded_on": day.isoformat()}

    api = _api_refusals(api_post(client, "/api/v1/surveys/", body, bearer(tenant_a, "metrics:write")))
    service = _service_refusals(
        lambda: survey_response_record(
            tenant=tenant_a.tenant, account=account, survey_type="nps", score=score, responded_on=day
        )
    )
    bulk = _bulk_refusals(survey_responses_bulk_ingest, tenant_a, [body])

    assert api == service == bulk == {expected}
    assert _count(tenant_a, SurveyResponse) == 0


@pytest.mark.django_db
def test_an_incident_opened_in_the_future_is_the_services_refusal(client, tenant_a):
    account = owned_account(tenant_a)
    later = (timezone.now() + datetime.timedelta(hours=2)).replace(microsecond=0)
    body = {"account": account.pk, "title": "Wires late", "severity": "sev2", "opened_at": later.isoformat()}

    api = _api_refusals(api_post(client, "/api/v1/incidents/", body, bearer(tenant_a, "metrics:write")))
    service = _service_refusals(
        lambda: incident_open(
            tenant=tenant_a.tenant, account=account, title="Wires late", severity="sev2", opened_at=later
        )
    )
    bulk = _bulk_refusals(incidents_bulk_ingest, tenant_a, [body])

    assert api == service == bulk == {("opened_at", "future", "A time in the future is not allowed.")}
    assert _count(tenant_a, Incident) == 0


@pytest.mark.django_db
def test_an_incident_resolved_before_it_opened_or_in_the_future_is_the_services_refusal(client, tenant_a):
    account = owned_account(tenant_a)
    opened = (timezone.now() - datetime.timedelta(hours=3)).replace(microsecond=0)
    incident = incident_open(
        tenant=tenant_a.tenant, account=account, title="Wires late", severity="sev2", opened_at=opened
    )
    auth = bearer(tenant_a, "metrics:write")
    url = f"/api/v1/incidents/{incident.pk}/resolve/"

    for resolved_at, expected in [
        (
            opened - datetime.timedelta(hours=1),
            ("before_opened", "An incident cannot be resolved before it was opened."),
        ),
        (opened + datetime.timedelta(hours=5), ("future", "A time in the future is not allowed.")),
    ]:
        api = _api_refusals(api_post(client, url, {"resolved_at": resolved_at.isoformat()}, auth))
        service = _service_refusals(
            lambda at=resolved_at: incident_resolve(tenant=tenant_a.tenant, incident=incident, resolved_at=at)
        )
        row = {
            "account": account.pk,
            "title": "Wires late",
            "severity": "sev2",
            "opened_at": opened.isoformat(),
            "resolved_at": resolved_at.isoformat(),
        }
        bulk = _bulk_refusals(incidents_bulk_ingest, tenant_a, [row])
        assert api == service == bulk == {("resolved_at", *expected)}
    with context.tenant_context(tenant_a.tenant):
        assert Incident.objects.get(pk=incident.pk).resolved_at is None


# --- Accounts -----------------------------------------------------------------------------------------------
@pytest.fixture
def loner(tenant_a):
    """A CSM in nobody's team: not one the manager may hand an account to."""
    user = factories.UserFactory(username="loner@alpha.test")
    membership_create(tenant=tenant_a.tenant, user=user, role=Role.CSM, actor=tenant_a.user(Role.ADMIN))
    return user


@pytest.mark.django_db
def test_the_owner_a_manager_may_give_a_new_account_is_the_services_rule(client, tenant_a, loner):
    manager = tenant_a.user(Role.MANAGER)
    segment = factories.segment_of(tenant_a.tenant)
    log_in_as(client, tenant_a, Role.MANAGER)
    for owner in (loner, None):
        body = {"name": "Harbor Point Bank", "segment": segment.pk, "owner_csm": owner.pk if owner else None}
        api = _api_refusals(api_post(client, "/api/v1/accounts/", body))
        service = _service_refusals(
            lambda owner=owner: account_create(
                tenant=tenant_a.tenant, actor=manager, name="Harbor Point Bank", segment=segment, owner_csm=owner
            )
        )
        assert api == service == {("owner_csm", "invalid", "Choose a CSM of your team.")}
    assert _count(tenant_a, Account) == 0
    # Without an actor (seeding, imports) the service takes any active member.
    account_create(tenant=tenant_a.tenant, name="Harbor Point Bank", segment=segment, owner_csm=loner)


@pytest.mark.django_db
def test_only_admins_leave_an_account_without_a_csm_in_the_service_too(client, tenant_a):
    account = owned_account(tenant_a)
    log_in_as(client, tenant_a, Role.MANAGER)
    response = client.patch(f"/api/v1/accounts/{account.pk}/", {"owner_csm": None}, content_type="application/json")
    api = _api_refusals(response)
    service = _service_refusals(
        lambda: account_reassign(
            tenant=tenant_a.tenant, account=account, owner_csm=None, actor=tenant_a.user(Role.MANAGER)
        )
    )
    assert api == service == {("owner_csm", "invalid", "Only admins leave an account without a CSM.")}

    account_reassign(tenant=tenant_a.tenant, account=account, owner_csm=None, actor=tenant_a.user(Role.ADMIN))
    with context.tenant_context(tenant_a.tenant):
        assert Account.objects.get(pk=account.pk).owner_csm_id is None


@pytest.mark.django_db
def test_a_contact_stays_on_its_account_in_the_service_too(client, tenant_a):
    account = owned_account(tenant_a)
    other = owned_account(tenant_a, "Lakeshore Credit Union")
    csm = tenant_a.user(Role.CSM)
    contact = contact_create(tenant=tenant_a.tenant, account=account, actor=csm, name="Priya Raman")
    log_in_as(client, tenant_a, Role.CSM)
    response = client.patch(f"/api/v1/contacts/{contact.pk}/", {"account": other.pk}, content_type="application/json")
    api = _api_refusals(response)
    service = _service_refusals(lambda: contact_update(tenant=tenant_a.tenant, contact=contact, account=other))
    assert api == service == {("account", "invalid", "A contact cannot move to another account; create it there.")}
    # Its own account, echoed back, is not a move.
    contact_update(tenant=tenant_a.tenant, contact=contact, account=account, title="COO")
    with context.tenant_context(tenant_a.tenant):
        assert Contact.objects.get(pk=contact.pk).title == "COO"


# --- Segments and journeys ----------------------------------------------------------------------------------
@pytest.mark.django_db
def test_a_kpis_segment_and_code_are_fixed_in_the_service(tenant_a):
    with context.tenant_context(tenant_a.tenant):
        kpi = KpiDefinition.objects.select_related("segment").order_by("pk").first()
    # Echoed unchanged: not an edit, the rest applies.
    kpi_definition_update(tenant=tenant_a.tenant, kpi=kpi, segment=kpi.segment, code=kpi.code, name="Renamed")
    with context.tenant_context(tenant_a.tenant):
        assert KpiDefinition.objects.get(pk=kpi.pk).name == "Renamed"
    refused = _service_refusals(lambda: kpi_definition_update(tenant=tenant_a.tenant, kpi=kpi, code="other_code"))
    assert refused == {("code", "invalid", "This field cannot be edited.")}


@pytest.mark.django_db
def test_an_activity_completed_without_a_date_is_done_on_the_tenants_today(tenant_a):
    journey = factories.journey_of(
        owned_account(tenant_a), started_on=tenant_today(tenant_a.tenant) - datetime.timedelta(days=3)
    )
    with context.tenant_context(tenant_a.tenant):
        activity = JourneyActivity.objects.filter(journey=journey).order_by("pk").first()
    journey_activity_complete(tenant=tenant_a.tenant, activity=activity)
    with context.tenant_context(tenant_a.tenant):
        done = JourneyActivity.objects.get(pk=activity.pk)
    assert (done.status, done.completed_on) == (ActivityStatus.DONE, tenant_today(tenant_a.tenant))


# --- Bulk rows: the schema and the validator name the same fields ----------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize(
    ("serializer", "ingest", "row"),
    [
        ("MeasurementRowSerializer", kpi_measurements_bulk_ingest, {"kpi": None, "measured_on": None, "value": "1"}),
        ("SurveyRowSerializer", survey_responses_bulk_ingest, {"survey_type": "nps", "score": 9, "responded_on": None}),
        ("IncidentRowSerializer", incidents_bulk_ingest, {"title": "Wires late", "severity": "sev2"}),
    ],
)
def test_the_bulk_row_schema_requires_what_the_validator_requires(tenant_a, serializer, ingest, row):
    """The row serializers only document (metrics.bulk parses); a field the schema calls required must be
    the one the validator refuses as missing, and no other."""
    account = owned_account(tenant_a)
    kpi, _ = _kpis(tenant_a, account)
    today = tenant_today(tenant_a.tenant).isoformat()
    full = {"account": account.pk, **row}
    full.update({key: {"kpi": kpi.pk}.get(key, today) for key, value in row.items() if value is None})
    fields = getattr(metrics_api, serializer)().fields
    required = {name for name, field in fields.items() if field.required}
    # kpi or kpi_code: the schema marks neither required; the validator needs one of them (kpi by default).
    declared_optional = {name for name, field in fields.items() if not field.required} - {"kpi", "kpi_code"}
    for name in required | declared_optional:
        missing = {key: value for key, value in full.items() if key != name}
        try:
            refused = _bulk_refusals(ingest, tenant_a, [missing])
        except pytest.fail.Exception:
            refused = set()  # stored: the field really is optional
        assert (name in required) == ((name, "required", "This field is required.") in refused), name
