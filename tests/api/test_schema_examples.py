"""The OpenAPI schema documents every operation with examples and error shapes (README: "Every operation
has examples"), and the examples tell the truth about the serializers.

The schema is generated exactly as `manage.py spectacular` writes it. Each check walks every operation,
so an operation added without examples or error answers fails here, and an example that drifts from
its serializer (a renamed field, a value outside an enum, a date that is not a date) fails too."""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from django.core.management import call_command
from jsonschema import Draft202012Validator, FormatChecker

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
WRITES = ("post", "put", "patch")
ERROR = "#/components/schemas/Error"


# --- the schema ----------------------------------------------------------------------------------------
def _generate(tmp_path, *options: str) -> str:
    target = tmp_path / "schema.out"
    call_command("spectacular", "--validate", "--fail-on-warn", *options, "--file", str(target))
    return target.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def schema(tmp_path_factory) -> dict:
    return json.loads(_generate(tmp_path_factory.mktemp("schema"), "--format", "openapi-json"))


def test_spectacular_validates_the_schema_without_warnings(tmp_path):
    document = yaml.safe_load(_generate(tmp_path))
    assert document["openapi"].startswith("3.")
    assert document["paths"]


def _operations(schema: dict) -> Iterator[tuple[str, dict]]:
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield f"{method.upper()} {path}", operation


def test_the_walk_sees_every_operation(schema):
    # A guard for the checks below: if the walk saw nothing, they would pass on nothing.
    labels = [label for label, _ in _operations(schema)]
    assert len(labels) >= 60, labels
    assert {"GET /api/v1/me/", "DELETE /api/v1/accounts/{account_id}/", "POST /api/v1/measurements/bulk"} <= set(labels)


# --- JSON Schema from OpenAPI 3.0 ------------------------------------------------------------------------
def _as_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schema objects as JSON Schema 2020-12: `nullable` becomes a null alternative, and an
    object lists all its properties (an example with a field the serializer does not have is wrong)."""
    if isinstance(node, list):
        return [_as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _as_json_schema(value) for key, value in node.items()}
    if "properties" in node and "additionalProperties" not in node:
        node["additionalProperties"] = False
    if node.pop("nullable", False):
        if "enum" in node and None not in node["enum"]:
            node["enum"] = [*node["enum"], None]
        node = {"anyOf": [node, {"type": "null"}]}
    return node


def _format_checker() -> FormatChecker:
    checker = FormatChecker()

    @checker.checks("date-time", raises=ValueError)
    def _datetime(value: object) -> bool:
        if not isinstance(value, str):
            return True
        if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value):
            return False
        datetime.datetime.fromisoformat(value)
        return True

    @checker.checks("uri")
    def _uri(value: object) -> bool:
        if not isinstance(value, str):
            return True
        parts = urlsplit(value)
        return bool(parts.scheme in ("http", "https") and parts.netloc) and not re.search(r"[\s\"<>]", value)

    return checker


@pytest.fixture(scope="module")
def validate(schema):
    components = _as_json_schema(schema["components"])
    checker = _format_checker()

    def errors(value: Any, against: dict) -> list[str]:
        root = {"allOf": [_as_json_schema(against)], "components": components}
        validator = Draft202012Validator(root, format_checker=checker)
        return [
            f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}"
            for error in validator.iter_errors(value)
        ]

    return errors


def _examples(media: dict) -> dict[str, Any]:
    found = {name: example.get("value") for name, example in (media.get("examples") or {}).items()}
    if "example" in media:
        found["example"] = media["example"]
    return found


def _component(schema: dict, ref: str) -> dict:
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]]


# --- (b) every operation has a success example ---------------------------------------------------------
def test_every_operation_has_a_success_example(schema):
    missing = []
    for label, operation in _operations(schema):
        method = label.split()[0].lower()
        body = operation.get("requestBody", {}).get("content", {})
        if method in WRITES and body and not _examples(body.get("application/json", {})):
            missing.append(f"{label}: no example of its JSON request body")
        success = {code: r for code, r in operation["responses"].items() if code.startswith("2")}
        assert success, f"{label}: no success response"
        with_content = False
        for code, response in success.items():
            for media_type, media in response.get("content", {}).items():
                with_content = True
                if not _examples(media):
                    missing.append(f"{label}: no example of its {code} {media_type} response")
        if not body and not with_content:
            # Nothing to send, nothing to read (a DELETE's 204): the example is the request's URL.
            if not any(p.get("examples") or "example" in p for p in operation.get("parameters", [])):
                missing.append(f"{label}: neither body nor response, and no parameter example")
    assert not missing, "\n".join(missing)


def test_list_examples_are_pages_with_cursor_links(schema):
    wrong = []
    for label, operation in _operations(schema):
        for media in operation["responses"].get("200", {}).get("content", {}).values():
            if not media.get("schema", {}).get("$ref", "").startswith("#/components/schemas/Paginated"):
                continue
            path = label.split()[1]
            for name, page in _examples(media).items():
                links = [page.get("next"), page.get("previous")]
                if not all(isinstance(link, str) and f"{path}?cursor=" in link for link in links):
                    wrong.append(f"{label} {name}: next and previous should be cursor links to {path}")
                if not 1 <= len(page.get("results") or []) <= 2:
                    wrong.append(f"{label} {name}: a page of 1-2 results, not {len(page.get('results') or [])}")
    assert not wrong, "\n".join(wrong)


# --- (b) every example is true to its schema -----------------------------------------------------------
def _all_examples(schema: dict) -> Iterator[tuple[str, Any, dict]]:
    for label, operation in _operations(schema):
        for parameter in operation.get("parameters", []):
            for name, value in _examples(parameter).items():
                yield f"{label} parameter {parameter['name']} example {name}", value, parameter["schema"]
        for media_type, media in operation.get("requestBody", {}).get("content", {}).items():
            for name, value in _examples(media).items():
                yield f"{label} request {media_type} example {name}", value, media["schema"]
        for code, response in operation["responses"].items():
            for media_type, media in response.get("content", {}).items():
                for name, value in _examples(media).items():
                    yield f"{label} {code} {media_type} example {name}", value, media["schema"]


def test_every_example_validates_against_its_schema(schema, validate):
    checked, wrong = 0, []
    for where, value, against in _all_examples(schema):
        checked += 1
        wrong += [f"{where}: {error}" for error in validate(value, against)]
    assert checked >= 200, f"only {checked} examples"
    assert not wrong, "\n".join(wrong)


def test_every_example_value_in_a_component_validates(schema, validate):
    # Schema-level `example`s (the pages' next/previous links, for one) are examples too.
    wrong = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            if "example" in node and isinstance(node.get("type"), str):
                wrong.extend(f"{where}: {error}" for error in validate(node["example"], node))
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}/{index}")

    walk(schema["components"]["schemas"], "components/schemas")
    assert not wrong, "\n".join(wrong)


def test_the_examples_validator_rejects_what_the_serializers_would_not_give(schema, validate):
    # The checks above are only as good as this: a wrong example must not pass.
    from dashboards.api import _ACCOUNT_READ_EXAMPLE as good

    account = {"$ref": "#/components/schemas/Account"}
    assert validate(good, account) == []
    for bad in (
        {"arr_usd": "1.00"},  # no such field
        {"tier": "platinum"},  # not a tier
        {"health_as_of": "23/11/2026"},  # not a date
        {"created_at": "yesterday"},  # not a date-time
        {"health_score": "58.4%"},  # not a decimal
    ):
        assert validate({**good, **bad}, account), bad
    assert validate(
        {"next": 'http://api.example.org/accounts/?cursor=cD00ODY%3D"'}, {"type": "string", "format": "uri"}
    )


# --- (b) every operation declares its 4xx answers in the error format ------------------------------------
def _required_errors(operation: dict) -> set[str]:
    places = {parameter["in"] for parameter in operation.get("parameters", [])}
    codes = {"401", "403", "429"}
    if "requestBody" in operation or "query" in places:
        codes.add("400")
    if "path" in places:
        codes.add("404")
    return codes


def _is_error_format(schema: dict, media_schema: dict) -> bool:
    ref = media_schema.get("$ref", "")
    if ref == ERROR:
        return True
    if not ref.startswith("#/components/schemas/"):
        return False
    error, component = _component(schema, ERROR), _component(schema, ref)
    # An extension of the format (bulk ingest adds error_count and bad_rows).
    return set(component.get("required", [])) >= set(error["required"]) and all(
        component.get("properties", {}).get(name) == spec for name, spec in error["properties"].items()
    )


def test_every_operation_declares_its_4xx_answers_in_the_error_format(schema):
    wrong = []
    for label, operation in _operations(schema):
        responses = operation["responses"]
        absent = _required_errors(operation) - set(responses)
        if absent:
            wrong.append(f"{label}: no {', '.join(sorted(absent))} response")
        for code, response in responses.items():
            if not code.startswith("4"):
                continue
            media = response.get("content", {}).get("application/json")
            if media is None or not _is_error_format(schema, media.get("schema", {})):
                wrong.append(f"{label}: {code} is not in the error format (#/components/schemas/Error)")
            elif not _examples(media):
                wrong.append(f"{label}: {code} has no example")
            elif any(value.get("status") != int(code) for value in _examples(media).values()):
                wrong.append(f"{label}: a {code} example says another status")
        if "Retry-After" not in responses.get("429", {}).get("headers", {}):
            wrong.append(f"{label}: 429 without its Retry-After header")
    assert not wrong, "\n".join(wrong)


def test_the_error_component_is_the_exception_handlers_body(schema):
    from api.errors import error_body

    error = _component(schema, ERROR)
    assert set(error["required"]) == set(error_body(400, "invalid", "x"))
    assert error["properties"]["errors"]["items"]["$ref"] == "#/components/schemas/ErrorItem"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "url"),
    [
        ("/api/v1/accounts/{account_id}/", "/api/v1/accounts/999999999/"),
        ("/api/v1/decisions/{decision_id}/", "/api/v1/decisions/999999999/"),
    ],
)
def test_the_404_examples_are_the_answers_the_api_gives(schema, client, tenant_a, path, url):
    from tests.api.helpers import bearer

    media = schema["paths"][path]["get"]["responses"]["404"]["content"]["application/json"]
    (example,) = _examples(media).values()
    response = client.get(url, **bearer(tenant_a, "accounts:read", "journeys:read"))
    assert response.status_code == 404
    assert response.json() == example


@pytest.mark.django_db
def test_the_401_examples_are_the_answers_without_credentials_and_with_an_expired_token(schema, client, tenant_a):
    from django.utils import timezone

    from api.models import ApiToken
    from cs_platform.tenancy import context
    from tests.api.helpers import bearer

    media = schema["paths"]["/api/v1/accounts/"]["get"]["responses"]["401"]["content"]["application/json"]
    examples = _examples(media)
    assert client.get("/api/v1/accounts/").json() == examples["no_credentials"]
    headers = bearer(tenant_a, "accounts:read")
    with context.tenant_context(tenant_a.tenant):
        ApiToken.objects.update(expires_at=timezone.now() - datetime.timedelta(minutes=1))
    response = client.get("/api/v1/accounts/", **headers)
    assert response.status_code == 401
    assert response.json() == examples["token_expired"]


@pytest.mark.django_db
def test_the_403_examples_are_the_answers_to_a_token_without_the_scope_and_a_viewer_writing(schema, client, tenant_a):
    from cs_platform.tenancy.models import Role
    from tests.api.helpers import api_post, bearer

    media = schema["paths"]["/api/v1/accounts/"]["post"]["responses"]["403"]["content"]["application/json"]
    examples = _examples(media)
    response = api_post(client, "/api/v1/accounts/", {"name": "x"}, bearer(tenant_a, "metrics:write"))
    assert (response.status_code, response.json()) == (403, examples["token_scope"])
    client.force_login(tenant_a.user(Role.VIEWER))
    response = api_post(client, "/api/v1/accounts/", {"name": "x"})
    assert (response.status_code, response.json()) == (403, examples["session_role"])
