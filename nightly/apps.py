from django.apps import AppConfig


class NightlyConfig(AppConfig):
    """The nightly pipeline: the top layer that orchestrates the domain apps each night (journeys,
    compliance, health, segment snapshots, webhook events, idempotency purge, the audit checkpoint).
    It owns no tables: its record, NightlyRun, belongs to metrics, which the pages read."""

    name = "nightly"
