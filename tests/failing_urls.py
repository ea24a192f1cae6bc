"""A URLconf for the failure tests (tests/api/test_server_errors.py, tests/observability/test_logs.py): the
project's URLs and error handlers, plus one API view and two pages that fail with an exception nothing
handles (a bug, as far as Django can tell)."""

from __future__ import annotations

from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from cs_platform.urls import handler400, handler404, handler500
from cs_platform.urls import urlpatterns as project_urlpatterns

__all__ = ["handler400", "handler404", "handler500", "urlpatterns"]


class FailingApiView(APIView):
    permission_classes = [AllowAny]

    def get(self, request):
        raise RuntimeError("a bug in an API view")


def failing_page(request):
    raise RuntimeError("a bug in a page")


def explode(request):
    raise RuntimeError("boom: the failing view of tests/observability")


urlpatterns = [
    path("api/v1/failing/", FailingApiView.as_view()),
    path("failing/", failing_page),
    path("test-failure", explode, name="test_failure"),
    *project_urlpatterns,
]
