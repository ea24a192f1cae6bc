"""The API's URL space. Each app's `api.py` registers its resources on one router (version 1) and may
add plain paths (bulk ingest, exports) in its `urlpatterns`; the schema and its docs are public."""

from importlib import import_module

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import SimpleRouter

from api import docs, views

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

urlpatterns = [
    path("api/v1/me/", views.MeView.as_view(), name="api_me"),
    path("api/v1/", include(extra_v1)),
    path("api/v1/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path("api/docs/", docs.SwaggerDocsView.as_view(url_name="api_schema"), name="api_docs"),
    path("api/redoc/", docs.RedocDocsView.as_view(url_name="api_schema"), name="api_redoc"),
    path("settings/api-tokens/", views.api_tokens, name="api_tokens"),
    path("settings/api-tokens/<int:token_id>/revoke/", views.api_token_revoke_view, name="api_token_revoke"),
]
