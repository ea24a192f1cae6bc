from django.db.models.signals import post_migrate
from django.dispatch import receiver

from cs_platform.tenancy.roles import app_role_name, grant_app_role


@receiver(post_migrate, dispatch_uid="tenancy_grant_app_role")
def _grant_after_migrate(sender, using, **kwargs):
    # post_migrate fires once per app after all migrations ran; granting on every call is idempotent
    # and covers tables any app created.
    from django.db import connections

    if sender.label == "tenancy":
        grant_app_role(connections[using], app_role_name())
