from django.contrib import admin
from django.urls import include, path
from django.views.defaults import page_not_found, server_error

from api.errors import json_bad_request, json_not_found, json_server_error
from cs_platform.bad_requests import bad_request_page
from cs_platform.observability import views as observability_views
from dashboards import views as dashboard_views

# Which app owns which URLs (each app's urls.py holds the paths under its prefixes):
#   /                               dashboards: home by role
#   /login/ /logout/ /account/ ...  cs_platform.identity: login, MFA, passwords, security settings
#   /healthz /readyz /metrics       cs_platform.observability
#   /tenant/switch/                 cs_platform.tenancy
#   /accounts/ /accounts/<id>/      dashboards: the account list and the account 360 page
#   /portfolio/...                  dashboards: portfolio and segment pages
#   /accounts/<id>/touchpoints/..   accounts: touchpoint log, reassignment
#   /accounts/<id>/surveys/new/     metrics: a survey answer
#   /nightly-runs/                  metrics
#   /decisions/ /activities/..      journeys (and /accounts/<id>/decisions/new/)
#   /compliance/...                 compliance
#   /scorecards/...                 segments: the health model (weights per segment)
#   /api/v1/...                     cs_platform.api_urls: every app's REST resources
#   /api/schema/ /api/docs/ ...     api: the schema, its docs, /settings/api-tokens/
#   /settings/webhooks/...          webhooks
#   /settings/scorecard(s)/ ...     scorecards: the weekly email (preferences, preview, deliveries)
#   /admin/                         the Django admin (platform superusers)
urlpatterns = [
    path("", dashboard_views.home, name="home"),
    path("", include("cs_platform.identity.urls")),
    # Liveness (no dependency touched), readiness and Prometheus metrics: cs_platform/observability.
    path("healthz", observability_views.liveness, name="healthz"),
    path("", include("cs_platform.observability.urls")),
    path("", include("cs_platform.tenancy.urls")),
    path("", include("dashboards.urls")),
    path("accounts/", include("accounts.urls")),
    path("", include("journeys.urls")),
    path("compliance/", include("compliance.urls")),
    path("", include("metrics.urls")),
    path("", include("segments.urls")),
    path("", include("cs_platform.api_urls")),
    path("", include("api.urls")),
    path("", include("webhooks.urls")),
    path("", include("scorecards.admin_urls")),
    path("", include("scorecards.urls")),
    path("admin/", admin.site.urls),
]


def handler400(request, exception):
    """A request refused before a view answered it (cs_platform.bad_requests: NUL in a parameter, a body
    Django cannot read): the API's error format under /api/, the HTML page elsewhere."""
    if request.path.startswith("/api/"):
        return json_bad_request(request, exception)

    return bad_request_page(request, exception)


def handler404(request, exception):
    """API callers get the API's JSON error format; everyone else the HTML page."""
    if request.path.startswith("/api/"):
        return json_not_found(request, exception)
    return page_not_found(request, exception)


def handler500(request):
    """An exception no view or middleware handled: the API's JSON error format under /api/ (a 503 with
    Retry-After when the database or Redis is down), the HTML page elsewhere."""
    if request.path.startswith("/api/"):
        return json_server_error(request)
    return server_error(request)
