from django.urls import path

from cs_platform.moved import moved
from segments import views

urlpatterns = [
    path("health-model/", views.health_model, name="health_model"),
    path("health-model/<int:scorecard_id>/", views.health_model_edit, name="health_model_edit"),
    # Before issue #17 the health model's pages were "scorecards", a word the weekly email also used.
    path("scorecards/", moved("health_model")),
    path("scorecards/<int:scorecard_id>/", moved("health_model_edit")),
]
