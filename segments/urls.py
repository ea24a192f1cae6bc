from django.urls import path

from segments import views

urlpatterns = [
    path("scorecards/", views.scorecards, name="scorecards"),
    path("scorecards/<int:scorecard_id>/", views.scorecard_edit, name="scorecard_edit"),
]
