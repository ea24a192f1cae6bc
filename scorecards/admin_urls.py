from django.urls import path

from scorecards import admin_views

urlpatterns = [
    path("settings/scorecards/deliveries/", admin_views.scorecard_deliveries, name="scorecard_deliveries"),
]
