"""The vm-worker's Prometheus metrics, beside the request metrics every service has."""

from __future__ import annotations

from opml.service.metrics import Metrics


class WorkerMetrics(Metrics):
    def __init__(self):
        super().__init__("vm_worker")
        self.executions = self.counter("executions_total", "Runs ended, by outcome", ["outcome"])
        self.steps = self.counter("vm_steps_total", "VM steps executed by runs")
        self.vm_seconds = self.counter("vm_seconds_total", "Seconds worker threads spent running the VM")
        self.runs_loaded = self.counter("runs_loaded_total", "Runs loaded from the shared run store, not run here")
        self.cache_hits = self.counter("cache_hits_total", "Executions found warm in memory")
        self.cache_misses = self.counter("cache_misses_total", "Executions built: new ones and recomputed ones")
        self.cached_bytes = self.gauge("cached_bytes", "Estimated memory held by warm executions")
        self.cached_executions = self.gauge("cached_executions", "Executions held warm in memory")
