"""OpenAPI description of the API's authentication (drf-spectacular finds this extension once the
module is imported, see ApiConfig.ready)."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.BearerTokenAuthentication"
    name = "bearerToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A tenant API token (csp_...), created by a tenant admin under Settings > API tokens.",
        }
