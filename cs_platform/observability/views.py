"""/healthz (liveness), /readyz (readiness) and /metrics (Prometheus).

Liveness answers from the process alone: no database, cache or broker, so a dependency outage never
makes an orchestrator restart healthy web processes (which would not bring the dependency back).
Readiness runs every check and answers 200 or 503 with which check failed; it is open (orchestrators
and load balancers probe it unauthenticated), so its output is fixed short messages and counts only."""

from __future__ import annotations

import asyncio
import hmac
import logging

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.utils.cache import add_never_cache_headers
from health_check.views import HealthCheckView

from cs_platform.observability import metrics
from cs_platform.observability.checks import readiness_checks

logger = logging.getLogger(__name__)


def liveness(request):
    """The process is up and answering; touches no dependency and no tenant data."""
    return HttpResponse("ok", content_type="text/plain")


class ReadinessView(HealthCheckView):
    """django-health-check's runner (checks concurrently, each within its timeout), our own answer:
    JSON, 503 (not the library's 500) when a check fails, never cached."""

    http_method_names = ["get", "head"]

    async def get(self, request, *args, **kwargs):
        named = readiness_checks()
        # ?checks=database,cache,broker: a load balancer takes web out of rotation only when web itself
        # cannot serve, while monitoring probes everything (a stale nightly run is an alert, not a reason
        # to stop serving pages). Unknown names are a 400, so a typo never reads as "all passed".
        wanted = request.GET.get("checks")
        if wanted is not None:
            names = [name.strip() for name in wanted[:200].split(",") if name.strip()]
            known = [name for name, _check in named]
            unknown = [name for name in names if name not in known]
            if not names or unknown or len(wanted) > 200:
                body = {
                    "error": "unknown_checks",
                    "detail": "checks= takes a comma-separated subset of these names.",
                    "known": known,
                }
                return JsonResponse(body, status=400)
            named = [(name, check) for name, check in named if name in names]
        with self.get_executor() as executor:
            results = await asyncio.gather(*(check.get_result(executor) for _name, check in named))
        report = {}
        for (name, _check), result in zip(named, results, strict=True):
            report[name] = "ok" if result.error is None else str(result.error.message)
        failed = [name for name, status in report.items() if status != "ok"]
        if failed:
            logger.warning("readiness failed: %s", ", ".join(f"{name}: {report[name]}" for name in failed))
        body = {"status": "unavailable" if failed else "ok", "failed": failed, "checks": report}
        response = JsonResponse(body, status=503 if failed else 200)
        add_never_cache_headers(response)
        return response


readiness = ReadinessView.as_view()


def metrics_page(request):
    """Prometheus text format. Allowed from METRICS_ALLOWED_IPS (the direct peer, REMOTE_ADDR: scrape the
    container, not through a proxy) or with `Authorization: Bearer <METRICS_TOKEN>`; 403 otherwise."""
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    by_token = bool(token) and hmac.compare_digest(header.encode(), f"Bearer {token}".encode())
    by_address = metrics.address_allowed(request.META.get("REMOTE_ADDR", ""), settings.METRICS_ALLOWED_IPS)
    if not (by_token or by_address):
        return HttpResponse("forbidden\n", status=403, content_type="text/plain")
    response = HttpResponse(metrics.exposition(), content_type=metrics.prometheus_client.CONTENT_TYPE_LATEST)
    add_never_cache_headers(response)
    return response
