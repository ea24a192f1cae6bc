"""The project's URLs plus one view that fails, for the failed-request log test."""

from django.urls import path

from cs_platform.urls import urlpatterns as project_urlpatterns


def explode(request):
    raise RuntimeError("boom: the failing view of tests/observability")


urlpatterns = [path("test-failure", explode, name="test_failure"), *project_urlpatterns]
