from django.apps import AppConfig


class ScorecardsConfig(AppConfig):
    """The weekly executive scorecard email: its content (built from the dashboards' selectors), the
    subscriptions, and a record of each week's delivery to each user."""

    name = "scorecards"
    default_auto_field = "django.db.models.BigAutoField"
