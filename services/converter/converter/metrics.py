"""The converter's Prometheus metrics, beside the request counts and latency every service has."""

from __future__ import annotations

from opml.service.metrics import Metrics


class ConverterMetrics(Metrics):
    def __init__(self) -> None:
        super().__init__("converter")
        self.uploads = self.counter(
            "models_uploaded_total",
            "Model uploads by source format and outcome (created, existing, rejected)",
            ["format", "outcome"],
        )
        self.bytes_stored = self.gauge("model_bytes_stored", "Bytes of model files in the store")
        self.registrations = self.counter(
            "models_registered_total", "On-chain registrations by outcome (sent, known, failed)", ["outcome"]
        )
