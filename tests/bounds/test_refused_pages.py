"""Hostile input to the pages (issue #15 item 8): each of these answered 500, or stored a value that
made later reads answer 500, before the bounds. Now a 400 page that extends base.html and names the input,
or the form again with the field's error, and nothing stored."""

from __future__ import annotations

import datetime

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Touchpoint
from api.models import ApiToken
from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role
from journeys.models import Decision
from tests import factories
from tests.helpers import field_error, log_in_as, owned_account, page_text


def _in_zone(world, zone: str) -> None:
    world.tenant.time_zone = zone
    world.tenant.save(update_fields=["time_zone"])


def _refused_page(response, name: str) -> str:
    assert response.status_code == 400, response.status_code
    assert [t.name for t in response.templates][:2] == ["400.html", "base.html"]
    text = page_text(response)
    assert f"<code>{name}</code> was refused: Null characters are not allowed." in text, text
    return text


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/accounts/", "/decisions/", "/compliance/"])
def test_nul_in_a_list_pages_search_is_a_400_page_naming_it(client, tenant_a, path):
    log_in_as(client, tenant_a, Role.ADMIN)
    _refused_page(client.get(path, {"q": "bank\x00"}), "q")


@pytest.mark.django_db
def test_nul_in_any_query_parameter_is_refused_before_the_database_sees_it(client, tenant_a):
    log_in_as(client, tenant_a, Role.CSM)
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/compliance/", {"status": "failed", "owner": "\x00"})
    _refused_page(response, "owner")
    assert len(queries) == 0  # not even the session: the 400 comes before it is read


@pytest.mark.django_db
def test_nul_in_a_form_field_is_refused_and_nothing_is_stored(client, tenant_a):
    account = owned_account(tenant_a)
    log_in_as(client, tenant_a, Role.CSM)
    response = client.post(
        f"/accounts/{account.pk}/touchpoints/new/",
        {"kind": "call", "occurred_at": "2026-01-05T10:00", "subject": "QBR", "notes": "before\x00after"},
    )
    _refused_page(response, "notes")
    with context.tenant_context(tenant_a.tenant):
        assert not Touchpoint.objects.filter(account=account).exists()


@pytest.mark.django_db
def test_nul_in_the_session_cookie_is_refused_instead_of_reaching_the_session_table(client, tenant_a):
    client.cookies[settings.SESSION_COOKIE_NAME] = "abcdefgh\x00ijklmnop"
    response = client.get("/accounts/")
    assert response.status_code == 400
    assert "<code>sessionid</code> was refused" in page_text(response)


@pytest.mark.django_db
def test_a_touchpoint_in_year_one_east_of_utc_is_a_form_error_not_a_stored_year_zero(client, tenant_a):
    """00:00 on 0001-01-01 in a UTC+14 tenant is 1 BC in UTC: PostgreSQL stored it and every read of the
    account's timeline failed (Python has no year 0)."""
    _in_zone(tenant_a, "Etc/GMT-14")  # UTC+14 at every date, year 1 included
    account = owned_account(tenant_a)
    log_in_as(client, tenant_a, Role.CSM)
    response = client.post(
        f"/accounts/{account.pk}/touchpoints/new/", {"kind": "call", "occurred_at": "0001-01-01T00:00", "subject": "x"}
    )
    assert response.status_code == 400
    assert "from 1900-01-01 to 2200-12-31" in field_error(page_text(response), "occurred_at")
    with context.tenant_context(tenant_a.tenant):
        assert not Touchpoint.objects.filter(account=account).exists()
    assert client.get(f"/accounts/{account.pk}/").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("due_date", ["9999-12-31", "1899-12-31"])
def test_a_decision_due_outside_the_bounds_is_a_form_error(client, tenant_a, due_date):
    account = owned_account(tenant_a)
    log_in_as(client, tenant_a, Role.CSM)
    response = client.post(
        f"/accounts/{account.pk}/decisions/new/",
        {
            "kind": "decision",
            "title": "Cut-over date",
            "owner": tenant_a.user(Role.CSM).pk,
            "due_date": due_date,
            "fallback": "Keep the current file",
        },
    )
    assert response.status_code == 400
    assert "from 1900-01-01 to 2200-12-31" in field_error(page_text(response), "due_date")
    with context.tenant_context(tenant_a.tenant):
        assert not Decision.objects.filter(account=account).exists()


@pytest.mark.django_db
def test_the_date_pickers_are_told_the_bounds(client, tenant_a):
    account = owned_account(tenant_a)
    log_in_as(client, tenant_a, Role.CSM)
    body = client.get(f"/accounts/{account.pk}/decisions/new/").content.decode()
    assert 'min="1900-01-01"' in body and 'max="2200-12-31"' in body


@pytest.mark.django_db
def test_a_token_expiring_on_9999_12_31_west_of_utc_is_refused_and_the_page_keeps_working(client, tenant_a):
    """The expiry is the end of the day in the tenant's zone: 9999-12-31 23:59 in New York is year 10000 in
    UTC, which PostgreSQL stored and Python could not read back, so the token page answered 500."""
    _in_zone(tenant_a, "America/New_York")
    log_in_as(client, tenant_a, Role.ADMIN)
    response = client.post(
        "/settings/api-tokens/", {"name": "Far future", "scopes": ["accounts:read"], "expires_on": "9999-12-31"}
    )
    assert response.status_code == 400
    assert "Enter a date from 1900-01-01 to 2200-12-31." in page_text(response)
    with context.tenant_context(tenant_a.tenant):
        assert not ApiToken.objects.exists()
    assert client.get("/settings/api-tokens/").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("week", ["0001-W01", "9999-W52"])
def test_a_scorecard_preview_of_a_week_at_the_end_of_the_calendar_is_a_400(client, tenant_a, week):
    log_in_as(client, tenant_a, Role.EXECUTIVE)
    response = client.get("/weekly-email/preview/", {"week": week})
    assert response.status_code == 400
    assert "choose a year from 1900 to 2200" in page_text(response)


@pytest.mark.django_db
def test_the_deliveries_page_shows_the_current_week_for_a_week_at_the_end_of_the_calendar(client, tenant_a):
    log_in_as(client, tenant_a, Role.ADMIN)
    response = client.get("/settings/weekly-email/deliveries/", {"week": "0001-W01"})
    assert response.status_code == 200
    year, week, _ = datetime.date.today().isocalendar()
    assert response.context["week"] in (f"{year}-W{week:02d}", f"{year}-W{week - 1:02d}", f"{year}-W{week + 1:02d}")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "params",
    [
        {"page": "1" + "0" * 30},
        {"size": "-99999999999999999999"},
        {"segment": "99999999999999999999"},
        {"owner": "99999999999999999999"},
        {"sort": "-" * 500},
    ],
)
def test_out_of_range_numbers_in_list_parameters_open_the_list(client, tenant_a, params):
    log_in_as(client, tenant_a, Role.ADMIN)
    assert client.get("/accounts/", params).status_code == 200


@pytest.mark.django_db
def test_out_of_range_ids_in_page_urls_are_404(client, tenant_a):
    log_in_as(client, tenant_a, Role.ADMIN)
    for huge in (2**63, 10**30):
        for path in (f"/accounts/{huge}/", f"/decisions/{huge}/resolve/", f"/compliance/evidence/{huge}/download/"):
            assert client.get(path).status_code == 404, path
    factories.AccountFactory(tenant=tenant_a.tenant)  # the lists still open afterwards
    assert client.get("/accounts/").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("charset", ["rot13", "base64", "idna"])
def test_a_charset_that_is_not_a_text_encoding_is_a_400_not_a_decoding_crash(client, tenant_a, charset):
    """Django takes any codec Python knows as the request's charset; decoding a form or a JSON body with
    rot13 raised LookupError (500). (With a query string too, Django fails while building the request,
    before any middleware: see the issue's report.)"""
    account = owned_account(tenant_a)
    log_in_as(client, tenant_a, Role.CSM)
    # generic(): post() would encode the body with the charset itself, and fail the same way.
    response = client.generic(
        "POST",
        f"/accounts/{account.pk}/touchpoints/new/",
        b"kind=call&subject=x",
        content_type=f"application/x-www-form-urlencoded; charset={charset}",
    )
    assert response.status_code == 400
    assert "<code>Content-Type</code> was refused" in page_text(response)
    api = client.generic("POST", "/api/v1/accounts/", b"{}", content_type=f"application/json; charset={charset}")
    assert api.status_code == 400 and api.json()["errors"][0]["field"] == "Content-Type"
