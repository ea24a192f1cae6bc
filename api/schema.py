"""OpenAPI description of the API's authentication, error answers and examples. drf-spectacular finds
the authentication extension once this module is imported (see ApiConfig.ready); ApiAutoSchema is
REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"].

Every operation documents (tests/api/test_schema_examples.py keeps it so):
* its 4xx answers in the one error format (api/errors.py): 401, 403 and 429 always, 400 when it takes a
  body or query parameters, 404 when its path names an object; and 503 (database or Redis unreachable,
  or request budgets uncheckable with API_THROTTLE_FAIL_OPEN=false), in the same format. ApiAutoSchema
  adds whichever an operation does not declare itself, each with an example, so a new endpoint gets them
  without a decorator;
* a success example, declared in its app's api.py: a request body example on writes (on the view), and
  the serializer's response example (`response_example`), which every operation answering with that
  serializer shows; a list shows it as one row of a page between `next` and `previous` links of that
  list (ApiAutoSchema._get_paginator)."""

from __future__ import annotations

import copy
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema_serializer

from api.errors import ErrorSerializer

# The server in example links (a tenant's deployment answers on its own host).
EXAMPLE_SERVER = "https://cs.example.com"
# DRF cursors are opaque base64 positions: "p=486" forward, "r=1&p=487" backward.
_NEXT_CURSOR, _PREVIOUS_CURSOR = "cD00ODY%3D", "cj0xJnA9NDg3"


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.BearerTokenAuthentication"
    name = "bearerToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A tenant API token (csp_...), created by a tenant admin under Settings > API tokens.",
        }


def response_example(summary: str, value: dict[str, Any]):
    """Declares a serializer's response example (a class decorator): every operation answering with
    the serializer shows it (one row of a page for lists) unless the view gives its own for that
    response."""
    return extend_schema_serializer(
        examples=[OpenApiExample(summary, value=value, response_only=True, status_codes=["200", "201"])]
    )


def id_parameter(name: str, value: int, summary: str) -> OpenApiParameter:
    """A path id (digits, see TenantViewSetMixin.lookup_value_regex) with an example: for operations such
    as DELETE that have neither a body to send nor one to read."""
    return OpenApiParameter(
        name,
        OpenApiTypes.STR,
        OpenApiParameter.PATH,
        pattern=r"^\d+$",
        examples=[OpenApiExample(summary, value=str(value))],
    )


_ERRORS = {
    "400": "The request is not valid; `errors` names each bad field (and row, for bulk requests).",
    "401": "No credentials, or the token is malformed, unknown, revoked or expired.",
    "403": "The token lacks the scope, or the user's role may not do this.",
    "404": "No such object in the caller's tenant and book (other tenants' objects are never revealed).",
    "429": "Too many requests for this token or user, or unknown tokens from this address; see `Retry-After`.",
    "503": "The database or Redis cannot be reached, or (with API_THROTTLE_FAIL_OPEN=false) the request "
    "budgets cannot be checked; retry after `Retry-After` seconds.",
}
# Each code's examples by name: the bodies api.errors really answers (tests/api/test_schema_examples.py).
_EXAMPLES = {
    "400": {
        "invalid": {
            "status": 400,
            "code": "invalid",
            "message": "The request is not valid: see errors.",
            "errors": [{"field": "value", "code": "invalid", "message": "A valid number is required."}],
        }
    },
    "401": {
        "no_credentials": {
            "status": 401,
            "code": "not_authenticated",
            "message": "Authentication credentials were not provided.",
            "errors": [],
        },
        "token_expired": {"status": 401, "code": "authentication_failed", "message": "Token expired.", "errors": []},
    },
    "403": {
        "token_scope": {
            "status": 403,
            "code": "permission_denied",
            "message": "This token lacks the scope for this request.",
            "errors": [],
        },
        "session_role": {
            "status": 403,
            "code": "permission_denied",
            "message": "Your role (Viewer) cannot do this.",
            "errors": [],
        },
    },
    "404": {
        "not_found": {
            "status": 404,
            "code": "not_found",
            "message": "No Account matches the given query.",
            "errors": [],
        }
    },
    "429": {
        "throttled": {
            "status": 429,
            "code": "throttled",
            "message": "Request was throttled. Expected available in 12 seconds.",
            "errors": [],
            "retry_after": 12,
        }
    },
    "503": {
        "service_unavailable": {
            "status": 503,
            "code": "service_unavailable",
            "message": "The service is temporarily unavailable: retry later.",
            "errors": [],
            "retry_after": 30,
        },
        "throttling_unavailable": {
            "status": 503,
            "code": "throttling_unavailable",
            "message": "Request budgets cannot be checked right now, so requests are refused: retry later.",
            "errors": [],
            "retry_after": 30,
        },
    },
}
# A read with a bad query parameter (a stale cursor here; an unknown filter value or ordering alike).
_QUERY_400_EXAMPLE = {
    "status": 400,
    "code": "invalid",
    "message": "Invalid cursor: follow the next or previous link.",
    "errors": [{"field": "cursor", "code": "invalid", "message": "Invalid cursor: follow the next or previous link."}],
}


class ApiAutoSchema(AutoSchema):
    """Documents the common error answers on every operation, in the one error format, and shows list
    examples as pages of this API's cursor pagination."""

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is not None:
            self._add_error_responses(operation)
        return operation

    def _error_codes(self, operation: dict) -> list[str]:
        places = {parameter["in"] for parameter in operation.get("parameters", [])}
        codes = ["401", "403", "429", "503"]
        if "requestBody" in operation or "query" in places:
            codes.append("400")  # bodies, and list filters, ordering and cursors, can be invalid
        if "path" in places:
            codes.append("404")
        return codes

    def _error_examples(self, code: str, operation: dict) -> dict[str, dict]:
        if code == "400" and "requestBody" not in operation:
            return {"invalid": _QUERY_400_EXAMPLE}
        if code == "404":
            # The message of Django's get_object_or_404, as api.errors answers it.
            try:
                model = self.view.get_queryset().model._meta.object_name
            except Exception:  # a view without a model queryset
                return _EXAMPLES[code]
            return {"not_found": {**_EXAMPLES[code]["not_found"], "message": f"No {model} matches the given query."}}
        return _EXAMPLES[code]

    def _add_error_responses(self, operation: dict) -> None:
        responses = operation["responses"]
        for code in self._error_codes(operation):
            if code in responses:
                continue
            response = self._get_response_for_code(ErrorSerializer, code)
            response["description"] = _ERRORS[code]
            if code in ("429", "503"):
                response["headers"] = {
                    "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait before retrying."}
                }
            responses[code] = response
        # Every 4xx and 503 in the error format shows an example, also those a view declares without one.
        for code, response in responses.items():
            if code in _EXAMPLES:
                examples = self._error_examples(code, operation)
                for media in response.get("content", {}).values():
                    if not media.get("examples"):
                        media["examples"] = {name: {"value": copy.deepcopy(value)} for name, value in examples.items()}
        operation["responses"] = dict(sorted(responses.items()))

    def _get_paginator(self):
        # DRF's cursor pagination documents its links with a placeholder URL (with a stray quote): show
        # this list's own path instead, in the page schema and so in every page example.
        paginator = super()._get_paginator()
        if paginator is None or not hasattr(paginator, "cursor_query_param"):
            return paginator
        base = paginator.get_paginated_response_schema
        url = f"{EXAMPLE_SERVER}{self.path}?{paginator.cursor_query_param}="

        def paginated_response_schema(schema):
            page = base(schema)
            links = page.get("properties", {})
            if "next" in links and "previous" in links:
                links["next"]["example"] = url + _NEXT_CURSOR
                links["previous"]["example"] = url + _PREVIOUS_CURSOR
            return page

        paginator.get_paginated_response_schema = paginated_response_schema
        return paginator

    def _get_examples(self, serializer, direction, media_type, status_code=None, extras=None):
        examples = super()._get_examples(serializer, direction, media_type, status_code, extras)
        if not examples and direction == "response":
            # drf-spectacular reads a serializer's own examples (response_example) only when the view
            # declares none at all, so a create with a request example would show no 201 example. Fall
            # back to the serializer's whenever the view's do not cover this response.
            # An instance attribute, because extend_schema subclasses this class to add the view's.
            self.get_examples = list
            try:
                examples = super()._get_examples(serializer, direction, media_type, status_code, extras)
            finally:
                del self.get_examples
        return examples
