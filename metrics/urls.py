from django.urls import path

from metrics import views

urlpatterns = [
    path("nightly-runs/", views.nightly_runs, name="nightly_runs"),
]
