"""Prometheus metrics for a service: its own registry (so tests can build many apps in one process),
request counts and latency by route, and whatever the service adds."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self, namespace: str):
        self.namespace = namespace
        self.registry = CollectorRegistry()
        self.requests = self.counter(
            "http_requests_total", "HTTP requests by route and status", ["method", "route", "status"]
        )
        self.latency = self.histogram("http_request_seconds", "HTTP request latency by route", ["method", "route"])
        self.up = self.gauge("up", "1 while the service runs")
        self.up.set(1)

    def counter(self, name: str, help: str, labels: list[str] | None = None) -> Counter:
        return Counter(name, help, labels or [], namespace=self.namespace, registry=self.registry)

    def gauge(self, name: str, help: str, labels: list[str] | None = None) -> Gauge:
        return Gauge(name, help, labels or [], namespace=self.namespace, registry=self.registry)

    def histogram(self, name: str, help: str, labels: list[str] | None = None, buckets=Histogram.DEFAULT_BUCKETS):
        return Histogram(name, help, labels or [], namespace=self.namespace, registry=self.registry, buckets=buckets)
