"""The API's own pages: the OpenAPI schema and its docs (public), and the tenant admins' token pages.
The version 1 resources are wired in cs_platform/api_urls.py, above the apps that define them."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from api import docs, views

urlpatterns = [
    path("api/schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path("api/docs/", docs.SwaggerDocsView.as_view(url_name="api_schema"), name="api_docs"),
    path("api/redoc/", docs.RedocDocsView.as_view(url_name="api_schema"), name="api_redoc"),
    path("settings/api-tokens/", views.api_tokens, name="api_tokens"),
    path("settings/api-tokens/<int:token_id>/revoke/", views.api_token_revoke_view, name="api_token_revoke"),
]
