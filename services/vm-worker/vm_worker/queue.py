"""The job queue that hands each run to one vm-worker replica: procrastinate, on the PostgreSQL server the
stack already has.

Every replica defers runs and works the queue. A run is deferred with its execution id as both the
queueing lock (at most one waits in the queue) and the lock (two never run at once), and the task
first looks for a saved run in the shared store: so a run is executed once, by one replica, however
many replicas were asked for it. A replica that stops mid-run gives the job back (a retry), and
another replica takes it; one that dies mid-run stops sending heartbeats, and the other replicas
give its job back for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable

import procrastinate
import psycopg
from procrastinate.exceptions import AlreadyEnqueued, UniqueViolation

from opml.errors import Unavailable
from opml.service.db import ensure_database
from opml.service.logs import get_logger

log = get_logger("vm_worker.queue")

QUEUE = "vm-runs"
SCHEMA_LOCK = 0x6F706D6C  # the advisory lock under which one replica installs the queue's tables
POLL_SECONDS = 1.0  # how often a worker looks for jobs when no notification came (a fallback)
INTERRUPTED_RETRIES = 20  # times a run given back (a replica stopping, busy or warming up) is taken up again
HEARTBEAT_SECONDS = 2.0  # how often a worker tells the queue it is alive
STALLED_SECONDS = 30.0  # a worker silent this long is dead: its jobs are given back
SWEEP_SECONDS = 5.0  # how often each replica looks for the jobs of dead workers
RESTART_SECONDS = 2.0  # the pause before the queue's worker loop starts again after it failed


class RunInterrupted(Exception):
    """The replica could not run it now (stopping, warming up, a dependency away): the job goes back to the
    queue, for this replica or another."""


class RunQueue:
    def __init__(self, url: str, run: Callable[[bytes], Awaitable[None]], concurrency: int):
        self.url = _libpq_url(url)
        self.concurrency = concurrency
        self.app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=self.url))
        self._worker: asyncio.Task | None = None
        self._sweeper: asyncio.Task | None = None

        @self.app.task(
            name="run_execution",
            queue=QUEUE,
            retry=procrastinate.RetryStrategy(
                max_attempts=INTERRUPTED_RETRIES, wait=1, retry_exceptions={RunInterrupted}
            ),
        )
        async def run_execution(execution_id: str) -> None:
            await run(bytes.fromhex(execution_id))

        self._task = run_execution

    async def start(self) -> None:
        """Create the database and the queue's tables if none exist, then work the queue."""
        await asyncio.to_thread(ensure_database, self.url)
        await self.app.open_async()
        await _install_schema_once(self.url, self.app)
        self._worker = asyncio.create_task(self._work())
        self._sweeper = asyncio.create_task(self._give_back_stalled_jobs())

    async def _work(self) -> None:
        """Work the queue; if the worker fails (the database away longer than its pool waits), start again."""
        while True:
            try:
                await self.app.run_worker_async(
                    queues=[QUEUE],
                    concurrency=self.concurrency,
                    name=f"vm-worker@{socket.gethostname()}",
                    install_signal_handlers=False,
                    fetch_job_polling_interval=POLL_SECONDS,
                    update_heartbeat_interval=HEARTBEAT_SECONDS,
                    stalled_worker_timeout=STALLED_SECONDS,
                    delete_jobs="successful",
                )
            except Exception as error:
                log.warning("the queue's worker stopped; starting it again", error=str(error))
            await asyncio.sleep(RESTART_SECONDS)

    async def stop(self) -> None:
        """Stop taking jobs (the worker first, so nothing new starts); the run in progress, told to stop by
        the pool, is given back as a retry."""
        for task in (self._worker, self._sweeper):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        with contextlib.suppress(Exception):  # never opened (the database never came), or already gone
            await self.app.close_async()

    async def enqueue(self, execution_id: bytes) -> None:
        """Ask for the run of `execution_id`, unless it waits in the queue already."""
        key = execution_id.hex()
        try:
            await self._task.configure(lock=key, queueing_lock=key).defer_async(execution_id=key)
        except AlreadyEnqueued:
            pass
        except procrastinate.exceptions.AppNotOpen:
            raise Unavailable("the job queue is not open yet; retry when /readyz says ready") from None
        except (psycopg.Error, procrastinate.exceptions.ConnectorException) as error:
            raise Unavailable(f"the job queue is unreachable: {error}") from error

    async def _give_back_stalled_jobs(self) -> None:
        """Put the runs of dead workers (a replica killed mid-run) back in the queue, for a live one."""
        manager = self.app.job_manager
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                stalled = await manager.get_stalled_jobs(queue=QUEUE, seconds_since_heartbeat=STALLED_SECONDS)
            except Exception as error:  # the database away for a moment: try again next time
                log.warning("looking for stalled jobs failed", error=str(error))
                continue
            for job in stalled:
                log.warning("giving back the run of a dead worker", job=job.id, lock=job.lock)
                try:
                    await manager.retry_job(job)
                except UniqueViolation:  # the run was asked for again meanwhile: that job takes over
                    await manager.finish_job(job, status=procrastinate.jobs.Status.ABORTED, delete_job=True)
                except Exception as error:  # another replica gave it back first, or the database went away
                    log.info("could not give back a stalled job", job=job.id, error=str(error))

    async def check(self) -> None:
        """Readiness: the queue's worker is running and its database answers."""
        if self._worker is None or self._worker.done():
            raise RuntimeError("the queue's worker is not running")
        if not await self.app.check_connection_async():
            raise RuntimeError("the queue's tables are missing")


async def _install_schema_once(url: str, app: procrastinate.App) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        await connection.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK,))
        try:
            cursor = await connection.execute("SELECT to_regclass('procrastinate_jobs')")
            installed = (await cursor.fetchone())[0] is not None
            if not installed:
                log.info("installing the job queue's tables")
                await app.schema_manager.apply_schema_async()
        finally:
            await connection.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK,))


def _libpq_url(url: str) -> str:
    """psycopg takes postgresql:// URLs; the stack's settings may say postgresql+psycopg://."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)
