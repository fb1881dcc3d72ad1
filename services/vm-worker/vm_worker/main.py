"""The vm-worker app: `create_app(settings)` for tests and the launcher, `python -m vm_worker` to serve.

The lifespan opens the store and the execution pool; the pool warms the VM on a thread
(numba loads its compiled functions from the cache on disk, or compiles them), and
/readyz says ready once it has and the converter, if one is configured, answers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from opml.service.app import Check, add_check
from opml.service.app import create_app as create_service_app
from opml.service.clients import ServiceClient
from opml.service.run import serve

from . import routes
from .content import ContentStore
from .executions import ExecutionPool
from .metrics import WorkerMetrics
from .settings import VmWorkerSettings

DESCRIPTION = """Runs programs in the deterministic MIPS VM and answers for their traces: the final claim,
the state hash at any step (one dissection round per request), the witness of any step for the
on-chain verifier, and the golden image. An execution is keyed by its content, so every replica
computes the same id and any replica sharing the store directory can answer for it. With a job
queue (VM_WORKER_QUEUE_URL), a run is executed once by one replica and saved for all of them."""

CONVERTER_PROBE_SECONDS = 2.0


def create_app(settings: VmWorkerSettings | None = None) -> FastAPI:
    settings = settings or VmWorkerSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        converter = _converter(settings, timeout=60.0, attempts=3)
        probe = _converter(settings, timeout=CONVERTER_PROBE_SECONDS, attempts=1)
        pool = ExecutionPool(settings, ContentStore(settings.store_dir, converter), app.state.metrics)
        app.state.pool = pool
        await pool.start()
        add_check(app, Check("vm", pool.programs))
        if pool.queue is not None:
            add_check(app, Check("queue", pool.queue.check))
        if probe is not None:
            add_check(app, Check("converter", lambda: probe.get("/healthz")))
        try:
            yield
        finally:
            await pool.close()
            for client in (converter, probe):
                if client is not None:
                    client.close()

    app = create_service_app(
        name="vm-worker",
        title="OPML vm-worker",
        description=DESCRIPTION,
        settings=settings,
        routers=[routes.router],
        lifespan=lifespan,
        metrics=WorkerMetrics(),
        max_body_bytes=settings.max_body_bytes,
    )
    return app


def _converter(settings: VmWorkerSettings, timeout: float, attempts: int) -> ServiceClient | None:
    if settings.converter_url is None:
        return None
    return ServiceClient("converter", settings.converter_url, timeout=timeout, attempts=attempts)


def main() -> None:
    settings = VmWorkerSettings()
    serve(create_app(settings), settings)
