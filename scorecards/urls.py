from django.urls import path

from cs_platform.moved import moved
from scorecards import views

urlpatterns = [
    path("settings/weekly-email/", views.weekly_email_preferences, name="weekly_email_preferences"),
    path("weekly-email/preview/", views.weekly_email_preview, name="weekly_email_preview"),
    path("weekly-email/preview/email/", views.weekly_email_preview_email, name="weekly_email_preview_email"),
    # The token is the credential, not an object id: the isolation matrix lists this name apart.
    path("weekly-email/unsubscribe/<str:token>/", views.weekly_email_unsubscribe, name="weekly_email_unsubscribe"),
    # The addresses before issue #17 item 6. Unsubscribe links in emails already sent are served in place,
    # not redirected: mail clients' one-click unsubscribe POSTs to them and may not follow a redirect.
    path("settings/scorecard/", moved("weekly_email_preferences")),
    path("scorecards/preview/", moved("weekly_email_preview")),
    path("scorecards/preview/email/", moved("weekly_email_preview_email")),
    path(
        "scorecards/unsubscribe/<str:token>/",
        views.weekly_email_unsubscribe,
        name="weekly_email_unsubscribe_before_17",
    ),
]
