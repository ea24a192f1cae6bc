"""What every endpoint shares: the error format, throttling per token and per user with Retry-After,
the JSON 404 under /api/, and the public schema and docs."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import override_settings

from cs_platform.tenancy.models import Role
from tests.api.helpers import authorization, bearer

ME = "/api/v1/me/"


@pytest.fixture(autouse=True)
def _fresh_throttle_counters():
    # Budgets live in the shared cache (Redis in the suite); each test starts with full ones.
    cache.clear()
    yield
    cache.clear()


def _is_error(body: dict, status: int, code: str) -> None:
    assert set(body) >= {"status", "code", "message", "errors"}, body
    assert (body["status"], body["code"]) == (status, code), body
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["errors"], list)


# --- one error format ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_anonymous_calls_get_401_in_the_error_format(client):
    response = client.get(ME)
    assert response.status_code == 401
    _is_error(response.json(), 401, "not_authenticated")


@pytest.mark.django_db
def test_a_wrong_method_gets_405_in_the_error_format(client, tenant_a):
    response = client.delete(ME, **bearer(tenant_a, "accounts:read"))
    assert response.status_code == 405
    _is_error(response.json(), 405, "method_not_allowed")
    assert "DELETE" in response.json()["message"]


@pytest.mark.django_db
def test_an_unknown_api_url_gets_a_json_404(client, tenant_a):
    response = client.get("/api/v1/no-such-thing/", **bearer(tenant_a, "accounts:read"))
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    _is_error(response.json(), 404, "not_found")
    assert "/api/v1/no-such-thing/" in response.json()["message"]


@pytest.mark.django_db
def test_pages_outside_the_api_keep_the_html_404(client, tenant_a):
    client.force_login(tenant_a.user(Role.ADMIN))
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_nested_validation_errors_are_flattened_with_dotted_fields():
    from rest_framework import serializers

    from api.errors import flatten

    class Row(serializers.Serializer):
        value = serializers.DecimalField(max_digits=6, decimal_places=2)

    class Body(serializers.Serializer):
        name = serializers.CharField()
        rows = Row(many=True)

    body = Body(data={"rows": [{"value": "1"}, {"value": "x"}]})
    assert not body.is_valid()
    assert flatten(body.errors) == [
        {"field": "name", "code": "required", "message": "This field is required."},
        {"field": "rows.1.value", "code": "invalid", "message": "A valid number is required."},
    ]


def test_a_service_validation_error_becomes_a_400_naming_the_field():
    from django.core.exceptions import ValidationError

    from api.errors import api_exception_handler

    response = api_exception_handler(ValidationError({"renewal_date": "Renewal must follow the contract start."}), {})
    assert response.status_code == 400
    assert response.data == {
        "status": 400,
        "code": "invalid",
        "message": "The request is not valid: see errors.",
        "errors": [{"field": "renewal_date", "code": "invalid", "message": "Renewal must follow the contract start."}],
    }


# --- throttling ---------------------------------------------------------------------------------------


@pytest.mark.django_db
@override_settings(API_THROTTLE_RATES={"token": "3/min", "user": "100/min"})
def test_a_token_over_its_rate_gets_429_with_retry_after(client, tenant_a):
    headers = bearer(tenant_a, "accounts:read")
    assert [client.get(ME, **headers).status_code for _ in range(3)] == [200, 200, 200]
    response = client.get(ME, **headers)
    assert response.status_code == 429
    _is_error(response.json(), 429, "throttled")
    retry_after = int(response["Retry-After"])
    assert 1 <= retry_after <= 60
    assert response.json()["retry_after"] == retry_after
    # Another token of the same user has its own budget.
    assert client.get(ME, **bearer(tenant_a, "accounts:read", name="Other")).status_code == 200


@pytest.mark.django_db
@override_settings(API_THROTTLE_RATES={"token": "100/min", "user": "4/min"})
def test_a_users_tokens_and_session_share_the_user_budget(client, tenant_a):
    first, second = bearer(tenant_a, "accounts:read", name="One"), bearer(tenant_a, "accounts:read", name="Two")
    assert [client.get(ME, **headers).status_code for headers in (first, second, first)] == [200, 200, 200]
    client.force_login(tenant_a.user(Role.ADMIN))  # the tokens' creator
    assert client.get(ME).status_code == 200
    assert client.get(ME).status_code == 429
    assert client.get(ME, **second).status_code == 429
    # Another user's budget is untouched.
    client.force_login(tenant_a.user(Role.CSM))
    assert client.get(ME).status_code == 200


@pytest.mark.django_db
@override_settings(API_THROTTLE_RATES={"token": "100/min", "user": "100/min", "failed_auth": "3/min"})
def test_an_address_sending_unknown_tokens_gets_429_but_known_tokens_still_work(client, tenant_a):
    unknown = {"HTTP_AUTHORIZATION": "Bearer csp_0badc0de_" + "x" * 32}
    malformed = {"HTTP_AUTHORIZATION": "Bearer not-a-token"}
    codes = [client.get(ME, **headers).status_code for headers in (unknown, malformed, unknown)]
    assert codes == [401, 401, 401]  # malformed headers count too
    response = client.get(ME, **unknown)
    assert response.status_code == 429
    _is_error(response.json(), 429, "throttled")
    assert "invalid tokens" in response.json()["message"]
    assert 1 <= int(response["Retry-After"]) <= 60
    # With no proxy configured (API_NUM_PROXIES=0), a forged X-Forwarded-For buys no fresh budget.
    assert client.get(ME, HTTP_X_FORWARDED_FOR="10.9.9.9", **unknown).status_code == 429
    # A working integration behind the same address is not locked out by a broken one.
    assert client.get(ME, **bearer(tenant_a, "accounts:read")).status_code == 200
    # Another address has its own budget.
    assert client.get(ME, REMOTE_ADDR="10.20.30.40", **unknown).status_code == 401


@pytest.mark.django_db
@override_settings(API_THROTTLE_RATES={"token": "100/min", "user": "100/min", "failed_auth": "2/min"})
def test_revoked_and_expired_tokens_do_not_use_the_failure_budget(client, tenant_a):
    # They are real credentials a client once held (the 401 says why); only guesses and typos count.
    from api.services import api_token_create, api_token_revoke

    admin = tenant_a.user(Role.ADMIN)
    token, plaintext = api_token_create(tenant=tenant_a.tenant, name="Old", scopes=["accounts:read"], actor=admin)
    api_token_revoke(tenant=tenant_a.tenant, token=token, actor=admin)
    responses = [client.get(ME, **authorization(plaintext)) for _ in range(4)]
    assert [r.status_code for r in responses] == [401] * 4
    assert responses[-1].json()["message"] == "Token revoked."


@pytest.mark.django_db
def test_the_rates_come_from_settings_at_request_time(client, tenant_a):
    headers = bearer(tenant_a, "accounts:read")
    with override_settings(API_THROTTLE_RATES={"token": "1/min", "user": "100/min"}):
        assert client.get(ME, **headers).status_code == 200
        assert client.get(ME, **headers).status_code == 429
    with override_settings(API_THROTTLE_RATES={"token": "5/min", "user": "100/min"}):
        assert client.get(ME, **headers).status_code == 200


@pytest.mark.parametrize("raw", ["0/min", "ten/min", "10/fortnight", "10"])
def test_bad_throttle_rates_fail_loudly(raw):
    from django.core.exceptions import ImproperlyConfigured

    from cs_platform.settings import _rate, _setting

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("API_THROTTLE_TOKEN_RATE", raw)
        with pytest.raises(ImproperlyConfigured, match="API_THROTTLE_TOKEN_RATE"):
            _setting("API_THROTTLE_TOKEN_RATE", _rate, "1200/min")


# --- schema and docs ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_schema_is_public_openapi_3_and_documents_the_error_format(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert "bearerToken" in schema["components"]["securitySchemes"]
    assert set(schema["components"]["schemas"]["Error"]["required"]) == {"status", "code", "message", "errors"}
    me = schema["paths"]["/api/v1/me/"]["get"]
    for code in ("200", "401", "403", "429"):
        assert code in me["responses"], code
    assert me["responses"]["429"]["headers"]["Retry-After"]["schema"]["type"] == "integer"
    assert me["responses"]["401"]["content"]["application/json"]["examples"]


@pytest.mark.django_db
def test_the_docs_pages_load_their_assets_from_our_own_static_files(client):
    for url in ("/api/docs/", "/api/redoc/"):
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert "/static/drf_spectacular_sidecar/" in html, url
        assert "cdn" not in html.lower() and "unpkg" not in html.lower(), url


# --- pagination ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_bad_cursor_is_a_400_naming_the_cursor(client, tenant_a):
    response = client.get("/api/v1/accounts/?cursor=not-a-cursor", **bearer(tenant_a, "accounts:read"))
    assert response.status_code == 400
    _is_error(response.json(), 400, "invalid")
    assert [item["field"] for item in response.json()["errors"]] == ["cursor"]


@pytest.mark.django_db
def test_django_404s_inside_views_keep_the_not_found_code(client, tenant_a, tenant_b):
    from tests import factories

    theirs = factories.AccountFactory(tenant=tenant_b.tenant)
    response = client.get(f"/api/v1/accounts/{theirs.pk}/", **bearer(tenant_a, "accounts:read"))
    assert response.status_code == 404
    _is_error(response.json(), 404, "not_found")
