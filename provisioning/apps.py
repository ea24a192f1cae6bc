from django.apps import AppConfig


class ProvisioningConfig(AppConfig):
    """Setting tenants up: a new tenant with seed 000's reference data (segments and KPI targets, the
    health model's default weights, the journey template, the compliance frameworks), and the demo
    tenants. A top layer: it writes into every domain app, and no domain app imports it."""

    name = "provisioning"
