"""The bounds themselves (cs_platform.bounds), the services that enforce them whatever the caller, and
the command that finds rows stored before they were enforced."""

from __future__ import annotations

import datetime
import io
import json

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from accounts.models import Touchpoint
from api.services import api_token_create
from compliance.services import audit_result_record, obligation_create
from cs_platform import bounds
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from journeys.services import account_journey_start
from metrics.services import incident_resolve, survey_response_record
from tests import factories
from tests.helpers import owned_account

PLUS_14 = datetime.timezone(datetime.timedelta(hours=14))
MINUS_14 = datetime.timezone(datetime.timedelta(hours=-14))


@pytest.mark.parametrize(
    "value, refused",
    [
        (datetime.date(1900, 1, 1), False),
        (datetime.date(2200, 12, 31), False),
        (datetime.date(1899, 12, 31), True),
        (datetime.date(2201, 1, 1), True),
        (datetime.date(1, 1, 1), True),
        (datetime.date(9999, 12, 31), True),
        # Year 1 at +14:00 is year 0 in UTC: compared as an instant without building the shifted value.
        (datetime.datetime(1, 1, 1, tzinfo=PLUS_14), True),
        (datetime.datetime(9999, 12, 31, 23, 59, tzinfo=MINUS_14), True),
        (datetime.datetime(1900, 1, 1, 13, 59, tzinfo=PLUS_14), True),  # 1899-12-31T23:59Z
        (datetime.datetime(1900, 1, 1, 14, 0, tzinfo=PLUS_14), False),
        (datetime.datetime(2200, 12, 31, 23, 59), False),
    ],
)
def test_dates_and_moments_are_bounded(value, refused):
    assert (bounds.value_error(value) is not None) is refused
    if refused:
        with pytest.raises(ValidationError) as caught:
            bounds.check(day=value)
        assert list(caught.value.message_dict) == ["day"]


def test_json_deeper_than_the_interpreter_can_parse_is_refused_as_too_deep():
    with pytest.raises(bounds.JsonRefused) as caught:
        bounds.json_loads("[" * 100_000 + "]" * 100_000)
    assert caught.value.code == "too_deep" and caught.value.path is None


def test_json_depth_is_counted_per_level_of_containers():
    assert bounds.json_loads(json.dumps(_nested(bounds.JSON_MAX_DEPTH))) is not None
    with pytest.raises(bounds.JsonRefused):
        bounds.json_loads(json.dumps(_nested(bounds.JSON_MAX_DEPTH + 1)))
    wide = {"rows": [{"a": [1, 2], "b": {"c": "d"}} for _ in range(10_000)]}
    assert bounds.json_loads(json.dumps(wide)) == wide


def _nested(levels: int):
    value: dict = {}
    for _ in range(levels - 1):
        value = {"x": value}
    return value


@pytest.mark.parametrize(
    "text, path",
    [
        ('{"rows": [{"a": "ok"}, {"comment": "x\\u0000"}]}', "rows.1.comment"),
        ('{"rows": [{"bad\\u0000key": 1}]}', "rows.0.bad\x00key"),
        ('["\\udc00"]', "0"),
        ('{"a": "\\ud83c"}', "a"),
    ],
)
def test_json_strings_with_nul_or_lone_surrogates_are_refused_by_path(text, path):
    with pytest.raises(bounds.JsonRefused) as caught:
        bounds.json_loads(text)
    assert caught.value.path == path


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", '{"a": -Infinity}', "[1,", "\x00"])
def test_json_that_is_not_json_is_a_value_error(text):
    with pytest.raises(ValueError):
        bounds.json_loads(text)


# --- Services enforce the bounds for every caller -------------------------------------------------------
@pytest.mark.django_db
def test_every_full_cleaned_tenant_row_is_bounded(tenant_a):
    account = owned_account(tenant_a)
    from accounts.services import account_update, touchpoint_log

    with pytest.raises(ValidationError) as caught:
        touchpoint_log(
            tenant=tenant_a.tenant,
            account=account,
            kind="call",
            subject="x",
            occurred_at=datetime.datetime(1, 1, 1, tzinfo=PLUS_14),
        )
    assert list(caught.value.message_dict) == ["occurred_at"]
    with pytest.raises(ValidationError) as caught:
        account_update(
            tenant=tenant_a.tenant, account=account, renewal_date=datetime.date(9999, 12, 31), regulators=["SEC"] * 51
        )
    assert sorted(caught.value.message_dict) == ["regulators", "renewal_date"]
    with context.tenant_context(tenant_a.tenant):
        assert not Touchpoint.objects.exists()


@pytest.mark.django_db
def test_services_that_take_plain_values_bound_them(tenant_a):
    account = owned_account(tenant_a)
    actor = tenant_a.user(Role.ADMIN)
    far = datetime.date(9999, 12, 31)
    with context.tenant_context(tenant_a.tenant):
        from journeys.models import JourneyTemplate

        template = JourneyTemplate.objects.filter(is_reference=True).order_by("pk").first()
    incident = factories.IncidentFactory(tenant=tenant_a.tenant, account=account)
    refusals = {
        "started_on": lambda: account_journey_start(
            tenant=tenant_a.tenant, account=account, template=template, started_on=far
        ),
        "responded_on": lambda: survey_response_record(
            tenant=tenant_a.tenant, account=account, survey_type="nps", score=9, responded_on=datetime.date(1, 1, 1)
        ),
        "comment": lambda: survey_response_record(
            tenant=tenant_a.tenant,
            account=account,
            survey_type="nps",
            score=9,
            responded_on=datetime.date(2026, 1, 5),
            comment="x\x00",
        ),
        "resolved_at": lambda: incident_resolve(
            tenant=tenant_a.tenant, incident=incident, resolved_at=datetime.datetime(9999, 12, 31, tzinfo=MINUS_14)
        ),
        "due_date": lambda: obligation_create(
            tenant=tenant_a.tenant, account=account, requirement=factories.requirement_of(tenant_a.tenant), due_date=far
        ),
        "notes": lambda: audit_result_record(
            tenant=tenant_a.tenant,
            obligation=factories.ObligationFactory(tenant=tenant_a.tenant),
            audited_on=datetime.date(2026, 1, 5),
            outcome="failed",
            notes="x" * (bounds.TEXT_MAX_LENGTH + 1),
        ),
        "expires_at": lambda: api_token_create(
            tenant=tenant_a.tenant,
            name="Far",
            scopes=["accounts:read"],
            expires_at=datetime.datetime(9999, 12, 31, 23, 59, tzinfo=MINUS_14),
            actor=actor,
        ),
    }
    for field, call in refusals.items():
        with pytest.raises(ValidationError) as caught:
            call()
        assert field in caught.value.message_dict, (field, caught.value)


# --- Rows stored before the bounds -----------------------------------------------------------------------
@pytest.mark.django_db
def test_find_out_of_bounds_names_rows_stored_before_the_bounds(tenant_a, tenant_b):
    """What such a row does: a timestamp outside Python's years makes every read of its row fail, so the
    incidents list and the account page answered 500. The command finds them without reading them as
    dates, tenant by tenant."""
    account = factories.AccountFactory(tenant=tenant_a.tenant)
    incident = factories.IncidentFactory(tenant=tenant_a.tenant, account=account)
    decision = factories.DecisionFactory(tenant=tenant_a.tenant, account=account, owner=tenant_a.user(Role.CSM))
    factories.IncidentFactory(tenant=tenant_b.tenant)
    with context.tenant_context(tenant_a.tenant), connection.cursor() as cursor:
        # As stored before the fix, past every check: the bulk ingest's year 1 at +14:00, a decision form's due date.
        cursor.execute(
            "UPDATE metrics_incident SET opened_at = '0001-01-01T00:00:00+14:00' WHERE id = %s", [incident.pk]
        )
        cursor.execute("UPDATE journeys_decision SET due_date = '9999-12-31' WHERE id = %s", [decision.pk])
    out = io.StringIO()
    with pytest.raises(CommandError, match="2 row"):
        call_command("find_out_of_bounds", stdout=out)
    assert out.getvalue().splitlines() == [
        f"alpha\tjourneys.Decision\t#{decision.pk}\tdue_date\t9999-12-31",
        f"alpha\tmetrics.Incident\t#{incident.pk}\topened_at\t0001-12-31 10:00:00+00 BC",
    ]
    clean = io.StringIO()
    call_command("find_out_of_bounds", "--tenant", "bravo", stdout=clean)
    assert clean.getvalue().strip() == "No row has a date outside the bounds."


def test_the_bounds_leave_room_for_every_computation_the_product_does():
    """Journeys run 240 days from their start, windows look back a year or two: none of it may leave
    Python's calendar from inside the bounds, in any time zone."""
    assert bounds.MAX_DATE + datetime.timedelta(days=3650) < datetime.date.max
    assert bounds.MIN_DATE - datetime.timedelta(days=3650) > datetime.date.min
    assert timezone.is_aware(bounds.MIN_MOMENT) and timezone.is_aware(bounds.MAX_MOMENT)


@pytest.mark.django_db
def test_recompute_refuses_a_date_outside_the_bounds(tenant_a):
    with pytest.raises(CommandError, match="from 1900-01-01 to 2200-12-31"):
        call_command("recompute", "--tenant", tenant_a.tenant.slug, "--date", "0001-01-01")
