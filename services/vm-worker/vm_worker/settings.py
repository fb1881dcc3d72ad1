"""The vm-worker's settings, from VM_WORKER_* environment variables only."""

from __future__ import annotations

from pathlib import Path

from pydantic import field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from opml.service.settings import ServiceSettings


class VmWorkerSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="VM_WORKER_", extra="ignore")

    port: int = 8002
    # Inputs, fetched models and execution specs, content-addressed: replicas may share it.
    store_dir: Path = Path("var/vm-worker")
    # Where models referenced by root come from; empty for none (then only stored or inline models).
    converter_url: str | None = "http://127.0.0.1:8001"
    # Memory budget of the executions kept warm (least recently used evicted first).
    cache_bytes: int = 1 << 30
    # How long POST /executions waits for the run before answering 202 with a URL to poll.
    wait_seconds: float = 2.0
    default_step_limit: int = 1 << 30
    max_step_limit: int = 1 << 34
    # Worker threads for runs, and as many again for queries (states, proofs, loading executions).
    threads: int = 2
    # The job queue shared by replicas behind one name: a PostgreSQL URL (procrastinate's tables are
    # created in it). Empty: every replica runs what it is asked for, in-process.
    queue_url: str | None = None
    # With a queue: where replicas leave saved runs for each other (a volume they all mount).
    runs_dir: Path | None = None
    # Requests carry inputs and inline models as base64; larger models go through the converter.
    max_body_bytes: int = 64 << 20

    @field_validator("converter_url", "queue_url")
    @classmethod
    def empty_means_none(cls, value: str | None) -> str | None:
        return value or None

    @model_validator(mode="after")
    def limits_are_consistent(self) -> VmWorkerSettings:
        if not 1 <= self.default_step_limit <= self.max_step_limit < 1 << 64:
            raise ValueError("need 1 <= default_step_limit <= max_step_limit < 2^64")
        if self.threads < 1 or self.cache_bytes < 0 or self.wait_seconds < 0:
            raise ValueError("threads must be positive; cache_bytes and wait_seconds not negative")
        return self
