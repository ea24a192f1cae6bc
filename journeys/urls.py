from django.urls import path

from journeys import views

urlpatterns = [
    path("decisions/", views.decision_list, name="decision_list"),
    path("accounts/<int:account_id>/decisions/new/", views.decision_create_view, name="decision_create"),
    path("decisions/<int:decision_id>/resolve/", views.decision_resolve_view, name="decision_resolve"),
    path("activities/<int:activity_id>/complete/", views.activity_complete_view, name="activity_complete"),
]
