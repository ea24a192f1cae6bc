from django.contrib import admin

from accounts import models

# Platform superusers only (see cs_platform.admin_site); every row shows its tenant.
for _model in [
    m
    for m in vars(models).values()
    if isinstance(m, type) and issubclass(m, models.TenantOwned) and not m._meta.abstract
]:
    admin.site.register(_model, list_display=["__str__", "tenant"], list_filter=["tenant"])
