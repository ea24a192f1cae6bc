from django.apps import AppConfig


class DashboardsConfig(AppConfig):
    """Read-only pages that summarise many accounts: home by role, account lists, the portfolio and
    per-segment scorecards. They compose the other apps' selectors and own no models."""

    name = "dashboards"
    default_auto_field = "django.db.models.BigAutoField"
