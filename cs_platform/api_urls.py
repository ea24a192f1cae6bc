"""The REST API's version 1 URL space, wired at the top layer: each app's `api.py` registers its resources
on one router and may add plain paths (bulk ingest, exports) in its `urlpatterns`. The API base in `api`
sits below the apps, so the wiring that names every app lives here (README, "Architecture")."""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from accounts import api as accounts_api
from api import audit_checkpoints as audit_checkpoints_api
from api import audit_events as audit_api
from compliance import api as compliance_api
from dashboards import api as dashboards_api
from journeys import api as journeys_api
from metrics import api as metrics_api
from segments import api as segments_api

API_MODULES = (
    dashboards_api,  # the account resource first, as in the schema
    accounts_api,
    segments_api,
    metrics_api,
    journeys_api,
    compliance_api,
    audit_api,
    audit_checkpoints_api,
)

router = SimpleRouter()
extra_v1 = []
for module in API_MODULES:
    module.register(router)
    extra_v1 += getattr(module, "urlpatterns", [])

urlpatterns = [
    path("api/v1/", include(extra_v1)),
    path("api/v1/", include(router.urls)),
]
