"""The API's URL space. Each app's `api.py` registers its resources on one router (version 1) and may
add plain paths (bulk ingest, exports) in its `urlpatterns`; the schema and its docs are public."""

from importlib import import_module

from django.http import HttpResponse
from django.template import engines
from django.urls import include, path
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from api import views

API_MODULES = (
    "accounts.api",
    "segments.api",
    "metrics.api",
    "journeys.api",
    "compliance.api",
    "cs_platform.audit.api",
    "cs_platform.audit.api_checkpoints",
)

router = SimpleRouter()
extra_v1 = []
for module_name in API_MODULES:
    module = import_module(module_name)
    module.register(router)
    extra_v1 += getattr(module, "urlpatterns", [])

# drf-spectacular's Redoc page links Google Fonts, and Redoc's sidebar always shows a logo from
# cdn.redoc.ly. The docs load nothing from outside this server: the page without the font links (Redoc
# falls back to sans-serif), and a Content-Security-Policy that keeps the browser from fetching the logo
# (Redoc hides it when it fails). Redoc runs its search in a worker built from a blob: URL.
_REDOC_PAGE = engines["django"].from_string(
    '{% extends "drf_spectacular/redoc.html" %}{% block head %}<title>{{ title|default:"Redoc" }}</title>'
    '<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
    "<style>body { margin: 0; padding: 0; }</style>{% endblock head %}"
)

_REDOC_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'"
)


class LocalRedocView(SpectacularRedocView):
    @extend_schema(exclude=True)
    def get(self, request, *args, **kwargs):
        data = super().get(request, *args, **kwargs).data
        response = HttpResponse(_REDOC_PAGE.render(data, request))
        response["Content-Security-Policy"] = _REDOC_CSP
        return response


urlpatterns = [
    path("api/v1/me/", views.MeView.as_view(), name="api_me"),
    path("api/v1/", include(extra_v1)),
    path("api/v1/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api_schema"), name="api_docs"),
    path("api/redoc/", LocalRedocView.as_view(url_name="api_schema"), name="api_redoc"),
    path("settings/api-tokens/", views.api_tokens, name="api_tokens"),
    path("settings/api-tokens/<int:token_id>/revoke/", views.api_token_revoke_view, name="api_token_revoke"),
]
