"""Prometheus metrics: what this process measures, what upper layers add at scrape time, and the page.

Request latency by view comes from django-prometheus' middleware (django_http_requests_latency_seconds_
by_view_method). Celery tasks are measured here (celery_signals). Numbers read from the database at scrape
time (nightly run age per tenant, delivery backlogs) are collectors the `monitoring` app registers with
`register_scrape_collector`: this layer knows no domain app.

Several processes: gunicorn workers and Celery's pool children each hold their own counters. With
PROMETHEUS_MULTIPROC_DIR set in the environment (an empty directory per container, wiped at start),
prometheus_client writes every process' values there and one scrape aggregates them all."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client.registry import Collector

_TASK_DURATION = Histogram(
    "cs_celery_task_duration_seconds",
    "Run time of Celery tasks, by task name and final state (SUCCESS, FAILURE, RETRY).",
    ["task", "state"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800),
)
_TASK_FAILURES = Counter(
    "cs_celery_task_failures",
    "Celery task failures (including workers lost under a task), by task name and exception class.",
    ["task", "exception"],
)
_scrape_collectors: list[Callable[[], Collector]] = []


def task_duration() -> Histogram:
    return _TASK_DURATION


def task_failures() -> Counter:
    return _TASK_FAILURES


def register_scrape_collector(factory: Callable[[], Collector]) -> None:
    """Upper layers add a collector built fresh for each scrape of the web /metrics page (its numbers
    are read when Prometheus asks, in the scraping process only)."""
    if factory not in _scrape_collectors:
        _scrape_collectors.append(factory)


def multiprocess_mode() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def process_registry() -> CollectorRegistry:
    """This process' metrics, or every process' when PROMETHEUS_MULTIPROC_DIR is set."""
    if multiprocess_mode():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return prometheus_client.REGISTRY


def exposition() -> bytes:
    """The text of a scrape: process metrics, then the scrape-time collectors (their names differ)."""
    page = prometheus_client.generate_latest(process_registry())
    if _scrape_collectors:
        live = CollectorRegistry(auto_describe=False)
        for factory in _scrape_collectors:
            live.register(factory())
        page += prometheus_client.generate_latest(live)
    return page


def address_allowed(address: str, networks: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(network, strict=False) for network in networks)


def start_worker_exporter(port: int) -> None:
    """A Celery worker's metrics on their own port (the worker serves no HTTP otherwise); in multiprocess
    mode the pool children's values are aggregated from the shared directory."""
    prometheus_client.start_http_server(port, registry=process_registry())
