from django.urls import path

from accounts import views

urlpatterns = [
    path("<int:account_id>/touchpoints/new/", views.touchpoint_log_view, name="touchpoint_log"),
    path("<int:account_id>/reassign/", views.account_reassign_view, name="account_reassign"),
]
