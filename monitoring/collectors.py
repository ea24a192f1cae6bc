"""Prometheus collectors read at scrape time (web /metrics): nightly run age per tenant and the delivery
backlogs. Two queries per scrape, whatever the number of tenants."""

from __future__ import annotations

from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from cs_platform.outbox import UNFINISHED
from monitoring.selectors import delivery_backlog, nightly_run_ages


class DomainCollector(Collector):
    def collect(self):
        now = timezone.now()
        age = GaugeMetricFamily(
            "cs_nightly_run_age_seconds",
            "Seconds since each tenant's last successful nightly run finished (since the tenant was created "
            "if it never had one).",
            labels=["tenant"],
        )
        for row in nightly_run_ages():
            age.add_metric([row.slug], (now - (row.last_done or row.created_at)).total_seconds())
        yield age

        backlog = GaugeMetricFamily(
            "cs_delivery_backlog",
            "Emails (weekly scorecards) and webhook deliveries waiting to be sent, by kind and status.",
            labels=["kind", "status"],
        )
        oldest = GaugeMetricFamily(
            "cs_delivery_backlog_oldest_seconds",
            "Age of the oldest email or webhook delivery still waiting, by kind.",
            labels=["kind"],
        )
        rows = delivery_backlog()
        # Every series is present (at 0) so alerts and graphs need no absent() tricks.
        waiting = {(kind, status): 0 for kind in ("scorecard_email", "webhook") for status in UNFINISHED}
        first: dict[str, float] = {"scorecard_email": 0.0, "webhook": 0.0}
        for row in rows:
            waiting[(row.kind, row.status)] = row.waiting
            if row.oldest is not None:
                first[row.kind] = max(first[row.kind], (now - row.oldest).total_seconds())
        for (kind, status), count in sorted(waiting.items()):
            backlog.add_metric([kind, status], count)
        for kind, seconds in sorted(first.items()):
            oldest.add_metric([kind], seconds)
        yield backlog
        yield oldest
