from django.urls import path

from cs_platform.moved import moved
from scorecards import admin_views

urlpatterns = [
    path("settings/weekly-email/deliveries/", admin_views.weekly_email_deliveries, name="weekly_email_deliveries"),
    path("settings/scorecards/deliveries/", moved("weekly_email_deliveries")),
]
