"""One error format for every 4xx and 5xx answer of the API:

    {"status": 400, "code": "invalid", "message": "...", "errors": [{"field": "arr", "code": "invalid",
     "message": "A valid number is required."}]}

`errors` lists one item per bad field (nested fields joined with dots; `row` is the index of the bad
row in a bulk request) and is empty when the whole request is refused. 429 and 503 answers also carry
`retry_after` (seconds, as the Retry-After header).

Server errors take the same format: DRF hands exceptions it does not know back to Django, and Django's
handler500 (cs_platform.urls) answers /api/ paths with json_server_error, whether the exception came
from a view or from a middleware (the session or tenant lookup when PostgreSQL is down)."""

from __future__ import annotations

import sys
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from redis.exceptions import RedisError
from rest_framework import exceptions, serializers, status
from rest_framework.exceptions import ErrorDetail
from rest_framework.response import Response
from rest_framework.views import exception_handler

from cs_platform.bad_requests import RefusedInput

_MESSAGES = {
    "invalid": "The request is not valid: see errors.",
    "parse_error": "The request body is not valid JSON.",
}


class ErrorItemSerializer(serializers.Serializer):
    field = serializers.CharField(allow_null=True, help_text="The field at fault, dotted for nested fields.")
    code = serializers.CharField(help_text="A machine-readable reason, such as required or invalid.")
    message = serializers.CharField()
    row = serializers.IntegerField(required=False, help_text="Bulk requests: the 0-based index of the bad row.")


class ErrorSerializer(serializers.Serializer):
    status = serializers.IntegerField()
    code = serializers.CharField(
        help_text="invalid, parse_error, not_authenticated, authentication_failed, permission_denied, not_found, "
        "method_not_allowed, unsupported_media_type, throttled, too_many_rows, request_too_large, "
        "idempotency_conflict, bad_request, server_error, service_unavailable, throttling_unavailable..."
    )
    message = serializers.CharField()
    errors = ErrorItemSerializer(many=True)
    retry_after = serializers.IntegerField(
        required=False, help_text="429 and 503 only: seconds to wait (as Retry-After)."
    )


class Conflict(exceptions.APIException):
    """409: the request is valid but the object's state forbids it (an account with history)."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "The object's state does not allow this request."


class RequestTooLarge(exceptions.APIException):
    """413: the body is over DATA_UPLOAD_MAX_MEMORY_SIZE (Django refuses to read it)."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"

    @classmethod
    def for_settings(cls) -> RequestTooLarge:
        return cls(
            f"The request body is over the limit of {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes. Bulk endpoints "
            f"take at most {settings.API_BULK_MAX_ROWS} rows per request: send the rows in several smaller requests."
        )


# Server errors that mean a dependency is down or overloaded, not a bug: 503, worth retrying.
_UNAVAILABLE = (OperationalError, InterfaceError, RedisError)
UNAVAILABLE_RETRY_AFTER = 30  # seconds, about a database or Redis restart


def error_body(status_code: int, code: str, message: str, errors: list[dict[str, Any]] | None = None) -> dict:
    return {"status": status_code, "code": code, "message": message, "errors": errors or []}


def flatten(detail: Any, field: str | None = None) -> list[dict[str, Any]]:
    """DRF's nested error detail (dicts of lists of ErrorDetail) as a flat list of items."""
    if isinstance(detail, dict):
        items = []
        for key, value in detail.items():
            name = None if key in ("non_field_errors", "__all__") else str(key)
            items += flatten(value, f"{field}.{name}" if field and name else (name or field))
        return items
    if isinstance(detail, list):
        items = []
        for index, value in enumerate(detail):
            # A list of dicts is a list of nested objects: name the element; a list of messages is not.
            items += flatten(value, f"{field}.{index}" if isinstance(value, dict | list) and field else field)
        return items
    return [{"field": field, "code": getattr(detail, "code", None) or "invalid", "message": str(detail)}]


def _as_drf(exc: Exception) -> Exception:
    # Django's 404 (get_object, get_object_or_404) and PermissionDenied are DRF's own client errors.
    if isinstance(exc, Http404):
        return exceptions.NotFound(str(exc) or None)
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied(str(exc) or None)
    # Django refuses to read a body over DATA_UPLOAD_MAX_MEMORY_SIZE when DRF parses it. Left alone it is a
    # SuspiciousOperation: Django's HTML 400 and a logged traceback, for what is a client error with a fix.
    if isinstance(exc, RequestDataTooBig):
        return RequestTooLarge.for_settings()
    # Services raise Django's ValidationError; it is the same client error as a serializer's, with the
    # service's code when it gives one (future, wrong_segment...): the rules are the services', so the code
    # a client reads must not depend on whether a serializer happened to check the same thing first.
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            return exceptions.ValidationError({key: _details(errors) for key, errors in exc.error_dict.items()})
        return exceptions.ValidationError(_details(exc.error_list))
    return exc


def _details(errors: list[DjangoValidationError]) -> list[ErrorDetail]:
    return [ErrorDetail(message, code=error.code or "invalid") for error in errors for message in error]


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    exc = _as_drf(exc)
    response = exception_handler(exc, context)  # sets WWW-Authenticate and Retry-After
    if response is None:
        return None  # not a client error: Django's 500 handling applies
    if isinstance(exc, exceptions.ValidationError):
        code, message, errors = "invalid", _MESSAGES["invalid"], flatten(exc.detail)
        if len(errors) == 1 and errors[0]["field"] is None:
            message = errors[0]["message"]
    else:
        detail = getattr(exc, "detail", None)
        codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else None
        code = codes if isinstance(codes, str) else getattr(exc, "default_code", "error")
        message = str(detail) if isinstance(detail, str) else _MESSAGES.get(code, "The request was refused.")
        errors = []
    response.data = error_body(response.status_code, code, message, errors)
    wait = getattr(exc, "wait", None)
    if wait is not None:
        response.data["retry_after"] = int(wait) + (wait % 1 > 0)
    return response


def json_bad_request(request, exception=None) -> JsonResponse:
    """A request Django refused before the API saw it (handler400): NUL in a query parameter, a form body
    over the size limit. Names the parameter when one is at fault."""
    if isinstance(exception, RefusedInput):
        item = {"field": exception.field, "code": exception.code, "message": exception.message}
        body = error_body(
            400, "invalid", f"The {exception.where} {exception.field!r} was refused: {exception.message}", [item]
        )
    else:
        body = error_body(400, "bad_request", "The request could not be read.")
    return JsonResponse(body, status=400, json_dumps_params={"separators": (",", ":")})


def json_not_found(request, exception=None) -> JsonResponse:
    """Unmatched /api/ URLs answer in the API's format instead of the HTML 404 page."""
    return JsonResponse(
        error_body(status.HTTP_404_NOT_FOUND, "not_found", f"No API endpoint at {request.path}."), status=404
    )


def json_server_error(request) -> JsonResponse:
    """handler500 for /api/ paths: an exception no one handled, in a view or a middleware. Touches neither
    the database nor the cache (either may be what failed). Called inside Django's `except` block, so
    sys.exc_info() is the exception: a database or Redis connection error is a 503 with Retry-After (a
    client should retry), anything else a 500 (a bug, logged with its traceback by django.request)."""
    exc = sys.exc_info()[1]
    if isinstance(exc, _UNAVAILABLE):
        body = error_body(503, "service_unavailable", "The service is temporarily unavailable: retry later.")
        body["retry_after"] = UNAVAILABLE_RETRY_AFTER
        response = JsonResponse(body, status=503)
        response["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER)
        return response
    return JsonResponse(error_body(500, "server_error", "The server failed to answer this request."), status=500)
