"""OpenAPI description of the API's authentication and error answers. drf-spectacular finds the
authentication extension once this module is imported (see ApiConfig.ready)."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiExample

from api.errors import ErrorSerializer
from cs_platform.tenancy import context


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.BearerTokenAuthentication"
    name = "bearerToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A tenant API token (csp_...), created by a tenant admin under Settings > API tokens.",
        }


_ERRORS = {
    "400": ("The request is not valid; `errors` names each bad field (and row, for bulk requests).", "invalid"),
    "401": ("No credentials, or the token is malformed, unknown, revoked or expired.", "not_authenticated"),
    "403": ("The token lacks the scope, or the user's role may not do this.", "permission_denied"),
    "404": ("No such object in the caller's tenant and book (other tenants' objects are never revealed).", "not_found"),
    "429": ("Too many requests for this token or user; retry after `Retry-After` seconds.", "throttled"),
}
_EXAMPLES = {
    "400": {"status": 400, "code": "invalid", "message": "The request is not valid: see errors.",
            "errors": [{"field": "value", "code": "invalid", "message": "A valid number is required."}]},
    "401": {"status": 401, "code": "authentication_failed", "message": "Token expired.", "errors": []},
    "403": {"status": 403, "code": "permission_denied",
            "message": "This token lacks the scope for this request.", "errors": []},
    "404": {"status": 404, "code": "not_found", "message": "No Account matches the given query.", "errors": []},
    "429": {"status": 429, "code": "throttled", "message": "Request was throttled. Expected available in 12 seconds.",
            "errors": [], "retry_after": 12},
}  # fmt: skip


class ApiAutoSchema(AutoSchema):
    """Documents the common error answers on every operation, in the one error format."""

    def _error_codes(self) -> list[str]:
        codes = ["401", "403", "429"]
        if self.method in ("POST", "PUT", "PATCH") or self._is_list_view():
            codes.append("400")  # bodies, and list filters, can be invalid
        if "{" in self.path:
            codes.append("404")
        return codes

    def _get_filter_parameters(self):
        # drf-spectacular's django-filter support builds `Model._default_manager.none()`, which the
        # tenant manager refuses without a tenant, and schema generation has none. `.none()` reads no
        # row, so the system scope reveals nothing.
        with context.system_scope():
            return super()._get_filter_parameters()

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code in self._error_codes():
            if code in responses:
                continue
            description, _ = _ERRORS[code]
            response = self._get_response_for_code(ErrorSerializer, code)
            response["description"] = description
            example = OpenApiExample(
                _EXAMPLES[code]["code"], value=_EXAMPLES[code], response_only=True, status_codes=[code]
            )
            for media in response.get("content", {}).values():
                media.setdefault("examples", {})[_EXAMPLES[code]["code"]] = {"value": example.value}
            if code == "429":
                response["headers"] = {
                    "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait before retrying."}
                }
            responses[code] = response
        return responses
