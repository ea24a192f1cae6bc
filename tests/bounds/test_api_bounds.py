"""Hostile input to the REST API (issue #15 item 8). Each answered 500 before the bounds, or stored a value
that made later reads answer 500; now a 400 in the API's error format naming the field, parameter or row,
and nothing stored. Schemathesis (tests/api/test_schemathesis.py) drives every operation with generated
values besides; these are the cases it does not generate (deep nesting, NUL and lone surrogates in JSON,
bytes in headers, dates shifted out of Python's years by an offset)."""

from __future__ import annotations

import json

import pytest

from accounts.models import Account
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from journeys.models import AccountJourney, JourneyTemplate
from metrics.models import Incident, SurveyResponse
from tests import factories
from tests.api.helpers import api_post, bearer, field_errors
from tests.helpers import owned_account


def _error(response) -> dict:
    body = response.json()
    assert response.status_code == 400 and body["status"] == 400, response.content
    return body


@pytest.mark.django_db
def test_a_bulk_incident_dated_year_one_at_plus_14_is_a_bad_row_and_reads_keep_working(client, tenant_a):
    """The reported case: stored as 1 BC in UTC, it made the account page and the incidents list answer
    500 for everyone from then on."""
    account = owned_account(tenant_a)
    headers = bearer(tenant_a, "metrics:read", "metrics:write")
    row = {"account": account.pk, "title": "Outage", "severity": "sev1", "opened_at": "0001-01-01T00:00:00+14:00"}
    body = _error(api_post(client, "/api/v1/incidents/bulk", {"rows": [row]}, headers))
    assert body["errors"] == [
        {
            "row": 0,
            "field": "opened_at",
            "code": "date_out_of_range",
            "message": "Enter a date and time from 1900-01-01 to 2200-12-31.",
        }
    ]
    with context.tenant_context(tenant_a.tenant):
        assert not Incident.objects.exists()
    assert client.get("/api/v1/incidents/", **headers).status_code == 200
    client.force_login(tenant_a.user(Role.ADMIN))
    assert client.get(f"/accounts/{account.pk}/").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    "opened_at", ["0001-01-02T00:00:00Z", "1899-12-31T23:59:59Z", "2201-01-01T00:00:00Z", "9999-12-31T23:59:59-14:00"]
)
def test_an_incident_opened_outside_the_bounds_is_refused_by_field(client, tenant_a, opened_at):
    account = owned_account(tenant_a)
    headers = bearer(tenant_a, "metrics:write")
    body = {"account": account.pk, "title": "Outage", "severity": "sev1", "opened_at": opened_at}
    assert "opened_at" in field_errors(api_post(client, "/api/v1/incidents/", body, headers))


@pytest.mark.django_db
def test_a_journey_starting_9999_12_31_is_refused_by_field(client, tenant_a):
    """Every activity's due date is counted from the start: 9999-12-31 plus 45 days overflows."""
    account = owned_account(tenant_a)
    with context.tenant_context(tenant_a.tenant):
        template = JourneyTemplate.objects.filter(is_reference=True).order_by("pk").first()
    headers = bearer(tenant_a, "journeys:write")
    body = {"account": account.pk, "template": template.pk, "started_on": "9999-12-31"}
    errors = field_errors(api_post(client, "/api/v1/journeys/", body, headers))
    assert errors == {"started_on": "Enter a date from 1900-01-01 to 2200-12-31."}
    with context.tenant_context(tenant_a.tenant):
        assert not AccountJourney.objects.filter(account=account).exists()


@pytest.mark.django_db
def test_json_nested_thousands_deep_is_a_parse_error(client, tenant_a):
    headers = bearer(tenant_a, "accounts:write")
    deep = '{"name": ' + "[" * 5000 + "]" * 5000 + "}"
    body = _error(api_post(client, "/api/v1/accounts/", deep, headers))
    assert body["code"] == "parse_error"
    assert body["message"] == "JSON nested more than 20 levels deep is not accepted."


@pytest.mark.django_db
def test_json_just_past_the_depth_limit_is_refused_and_at_it_parses(client, tenant_a):
    headers = bearer(tenant_a, "accounts:write")
    too_deep = _error(api_post(client, "/api/v1/accounts/", {"name": _nested(20)}, headers))
    assert too_deep["code"] == "parse_error"
    # 20 levels with the body's own object: parsed, then refused by the serializer for what it is.
    at_limit = api_post(client, "/api/v1/accounts/", {"name": _nested(19)}, headers)
    assert "name" in field_errors(at_limit)


def _nested(levels: int):
    value: list = []
    for _ in range(levels - 1):
        value = [value]
    return value


@pytest.mark.django_db
def test_nul_in_a_bulk_comment_is_refused_naming_its_path(client, tenant_a):
    account = owned_account(tenant_a)
    headers = bearer(tenant_a, "metrics:write")
    rows = [{"account": account.pk, "survey_type": "nps", "score": 9, "responded_on": "2026-01-05"}] * 2
    rows = [rows[0], {**rows[1], "comment": "great\x00"}]
    errors = field_errors(api_post(client, "/api/v1/surveys/bulk", {"rows": rows}, headers))
    assert errors == {"rows.1.comment": "Null characters are not allowed."}
    with context.tenant_context(tenant_a.tenant):
        assert not SurveyResponse.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "text, field",
    [
        ('{"name": "Bank\\u0000", "segment": 1}', "name"),
        ('{"name\\u0000": "Bank"}', "name\x00"),
        ('{"name": "Bank \\ud800", "segment": 1}', "name"),
    ],
)
def test_nul_and_lone_surrogates_anywhere_in_json_are_refused(client, tenant_a, text, field):
    headers = bearer(tenant_a, "accounts:write")
    body = _error(api_post(client, "/api/v1/accounts/", text, headers))
    assert [item["field"] for item in body["errors"]] == [field]
    with context.tenant_context(tenant_a.tenant):
        assert not Account.objects.exists()


@pytest.mark.django_db
def test_escaped_backslashes_and_real_surrogate_pairs_are_ordinary_text(client, tenant_a):
    """The refusals read the parsed strings: a literal backslash-u-0000 and an emoji written as a
    surrogate pair are fine."""
    headers = bearer(tenant_a, "accounts:write")
    segment = owned_account(tenant_a).segment_id
    text = json.dumps({"name": "C:\\u0000 Bank \U0001f3e6", "segment": segment})
    assert "\\\\u0000" in text and "\\ud83c\\udfe6" in text
    response = api_post(client, "/api/v1/accounts/", text, headers)
    assert response.status_code == 201, response.content
    assert response.json()["name"] == "C:\\u0000 Bank \U0001f3e6"


@pytest.mark.django_db
def test_nul_in_a_query_parameter_is_a_400_naming_it_in_the_error_format(client, tenant_a):
    headers = bearer(tenant_a, "accounts:read")
    response = client.get("/api/v1/accounts/", {"cursor": "abc\x00"}, **headers)
    body = _error(response)
    assert body["errors"] == [
        {"field": "cursor", "code": "null_characters_not_allowed", "message": "Null characters are not allowed."}
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("name, value", [("renewal_before", "0001-01-01"), ("updated_after", "2201-01-01T00:00:00Z")])
def test_filter_dates_outside_the_bounds_are_refused_by_parameter(client, tenant_a, name, value):
    headers = bearer(tenant_a, "accounts:read")
    assert name in field_errors(client.get("/api/v1/accounts/", {name: value}, **headers))


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["sync\x002026", "line\nbreak", "\x7f"])
def test_an_idempotency_key_with_control_characters_is_refused(client, tenant_a, key):
    account = owned_account(tenant_a)
    headers = bearer(tenant_a, "metrics:write")
    rows = [{"account": account.pk, "survey_type": "nps", "score": 9, "responded_on": "2026-01-05"}]
    response = api_post(client, "/api/v1/surveys/bulk", {"rows": rows}, headers, idempotency_key=key)
    assert field_errors(response) == {"Idempotency-Key": "Idempotency-Key must be 1 to 255 printable characters."}


@pytest.mark.django_db
def test_integers_outside_the_columns_range_are_field_errors(client, tenant_a):
    account = owned_account(tenant_a)
    headers = bearer(tenant_a, "compliance:write", "contacts:write", "accounts:read")
    obligation = factories.ObligationFactory(tenant=tenant_a.tenant, account=account)
    for value in (2**31, 10**30):
        body = {"obligation": obligation.pk, "audited_on": "2026-01-05", "outcome": "failed", "open_findings": value}
        response = api_post(client, "/api/v1/audit-results/", body, headers)
        assert "open_findings" in field_errors(response)
    for value in (2**63, -(2**70)):
        response = api_post(client, "/api/v1/contacts/", {"account": value, "name": "Dana"}, headers)
        assert "account" in field_errors(response)
    for huge in (2**63, 10**30):
        assert client.get(f"/api/v1/accounts/{huge}/", **headers).status_code == 404


@pytest.mark.django_db
def test_lists_and_free_text_are_bounded(client, tenant_a):
    headers = bearer(tenant_a, "accounts:write", "journeys:write")
    segment = owned_account(tenant_a).segment_id
    body = {"name": "Listy Bank", "segment": segment, "jurisdictions": ["US-NY"] * 51}
    assert field_errors(api_post(client, "/api/v1/accounts/", body, headers)) == {"jurisdictions": "At most 50 items."}
    account = owned_account(tenant_a, name="Wordy Bank")
    decision = {
        "account": account.pk,
        "title": "Cut-over",
        "owner": tenant_a.user(Role.CSM).pk,
        "due_date": "2026-01-05",
        "fallback": "Keep the file",
        "description": "x" * 10_001,
    }
    assert "description" in field_errors(api_post(client, "/api/v1/decisions/", decision, headers))
