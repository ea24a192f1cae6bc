from django.urls import path

from scorecards import views

urlpatterns = [
    path("settings/scorecard/", views.scorecard_preferences, name="scorecard_preferences"),
    path("scorecards/preview/", views.scorecard_preview, name="scorecard_preview"),
    path("scorecards/preview/email/", views.scorecard_preview_email, name="scorecard_preview_email"),
    # The token is the credential, not an object id: the isolation matrix lists this name apart.
    path("scorecards/unsubscribe/<str:token>/", views.scorecard_unsubscribe, name="scorecard_unsubscribe"),
]
