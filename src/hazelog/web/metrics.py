"""Prometheus metrics of one service: a registry per app (several apps may share a process,
as in the tests), the HTTP metrics every service has, and GET /metrics in the text format."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest
from sanic import Request
from sanic.response import BaseHTTPResponse, HTTPResponse, raw

# Seconds: from a fast local answer to a whole-log read under load.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A route label for requests that matched none (404, 405): one series, not one per path.
UNMATCHED = "unmatched"


class ServiceMetrics:
    """The metrics every hazelog service has; a service's own are added on `registry`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "hazelog_http_requests",
            "HTTP requests answered, by route, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "hazelog_http_request_duration_seconds",
            "Time to answer an HTTP request, by route and method",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        # Refreshes gauges that need an await (a map size) just before a scrape.
        self.before_scrape: list[Callable[[], Awaitable[object]]] = []

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def route_label(request: Request[Any, Any]) -> str:
    route = request.route
    if route is None:
        return UNMATCHED
    return "/" + route.path.lstrip("/")


def started(request: Request[Any, Any]) -> None:
    request.ctx.metrics_started = time.perf_counter()


def observe(
    metrics: ServiceMetrics, request: Request[Any, Any], response: BaseHTTPResponse
) -> None:
    began: float | None = getattr(request.ctx, "metrics_started", None)
    route = route_label(request)
    metrics.requests.labels(route, request.method, str(response.status)).inc()
    if began is not None:
        metrics.latency.labels(route, request.method).observe(time.perf_counter() - began)


async def metrics_response(metrics: ServiceMetrics) -> HTTPResponse:
    for refresh in metrics.before_scrape:
        await refresh()
    return raw(metrics.exposition(), content_type=CONTENT_TYPE_LATEST)
