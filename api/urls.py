from django.urls import path

from api import views

urlpatterns = [
    path("api/v1/me/", views.MeView.as_view(), name="api_me"),
    path("settings/api-tokens/", views.api_tokens, name="api_tokens"),
    path("settings/api-tokens/<int:token_id>/revoke/", views.api_token_revoke_view, name="api_token_revoke"),
]
