from django.urls import path

from cs_platform.observability import views

# Namespaced so the URL walks of tests/urlwalk.py leave them to tests/observability (readiness answers
# 503 in a test database without a beat tick, and /metrics is not a page).
app_name = "operations"
urlpatterns = [
    path("readyz", views.readiness, name="readyz"),
    path("metrics", views.metrics_page, name="metrics"),
]
