from django.urls import path

from metrics import views

urlpatterns = [
    path("nightly-runs/", views.nightly_runs, name="nightly_runs"),
    path("accounts/<int:account_id>/surveys/new/", views.survey_record, name="survey_record"),
]
