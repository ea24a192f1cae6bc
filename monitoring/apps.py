from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Monitoring"

    def ready(self) -> None:
        from cs_platform.observability.checks import register_readiness_check
        from cs_platform.observability.metrics import register_scrape_collector
        from monitoring.checks import NightlyRunAge
        from monitoring.collectors import DomainCollector

        register_readiness_check("nightly_runs", NightlyRunAge)
        register_scrape_collector(DomainCollector)
