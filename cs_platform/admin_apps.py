"""The admin's app config, apart from the site itself: the site module imports models, which an app
config module must not (it is imported while the app registry is still loading)."""

from django.contrib.admin.apps import AdminConfig


class PlatformAdminConfig(AdminConfig):
    default_site = "cs_platform.admin_site.PlatformAdminSite"
