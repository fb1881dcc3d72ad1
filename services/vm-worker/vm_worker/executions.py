"""Executions held by this worker: built from content, run in the background, queried while warm.

- A `Job` is one execution in this process: its `Execution`, its bounded run on a worker
  thread, and what the run reported (the final claim and the console) or why it failed. An
  execution is a whole run of a program, or a node run of the node program (docs/two-phase.md):
  both are Executions, and everything below treats them alike.
- The `ExecutionPool` creates jobs for new requests and finds jobs by id: warm in memory,
  else rebuilt from the spec in the store (any replica sharing the store can do this). All
  VM work runs on bounded thread pools, so the event loop only waits. (The VM holds the GIL
  while it runs, in chunks of one snapshot interval: 2^20 steps, about 5 ms. The event loop
  never waits longer than that.)
- `JobCache` keeps jobs within a memory budget, evicting the least recently used finished
  job first; an evicted job costs one re-run on its next use, never an error. Runs in
  progress are never evicted: a new run that would take them over the budget is refused
  with 503 (retry later) rather than queued without bound.
- With a job queue (replicas behind one name), a run is not started where it is asked for:
  it is deferred to the queue (queue.py), one replica runs it and saves it in the shared run
  store (runs.py), and every replica holding the execution watches the store and loads the
  saved run when it appears. Nothing is run twice; any replica answers queries.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from enum import StrEnum
from typing import TypeVar

from opml.errors import BadInput, Conflict, OpmlError, Unavailable
from opml.game.remote import MAX_STEPS_PER_QUERY, ExecutionRequest
from opml.game.trace import LocalTrace
from opml.protocol.claims import FinalClaim
from opml.service.logs import get_logger
from opml.vm import layout as L
from opml.vm.execution import Execution, RunResult, SavedRun
from opml.vm.machine import StepWitness
from opml.vm.node_run import node_start_state_hash
from opml.vm.warm import compile_kernels

from .content import ContentStore, ExecutionSpec, NodeSpec
from .metrics import WorkerMetrics
from .programs import ProgramCatalog
from .queue import RunInterrupted, RunQueue
from .runs import RunStore
from .settings import VmWorkerSettings

log = get_logger("vm_worker.executions")
T = TypeVar("T")

PROGRESS_REPORT_SECONDS = 1.0  # how often a queued run tells the other replicas how far it is
WATCH_SECONDS = 0.2  # how often replicas look in the run store for the runs they wait for
RETRY_OPEN_SECONDS = 2.0  # how often a replica tries to reach the job queue until it can
REDEFER_SECONDS = 60.0  # a run waited for this long without progress is asked of the queue again

TREE_NODE_BYTES = 160  # a 32-byte hash in a dict, as Python holds it


class Status(StrEnum):
    QUEUED = "queued"  # waiting for a replica of the job queue to take the run
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ShuttingDown(Exception):
    """Raised from a run's progress callback to stop it when the worker stops."""


class Job:
    def __init__(self, spec: ExecutionSpec, execution: Execution):
        self.spec = spec
        self.execution = execution
        self.trace = LocalTrace(execution, spec.step_limit)
        self.finished: Future[None] = Future()  # resolved when the run ends, either way
        self.steps_done = 0
        self.started = False  # the run has begun, here or (with a queue) on some replica
        self.enqueued = False  # with a queue: its run has been deferred to it
        self.taken = False  # with a queue: this replica runs it or loads its saved run (never both)
        self.progress_seen_at = time.monotonic()  # with a queue: when the run last showed progress
        self.result: RunResult | None = None
        self.claim: FinalClaim | None = None
        self.output_root: bytes | None = None  # the output region's root in an exited final state
        self.error: str | None = None
        self.machine_lock = threading.Lock()  # queries share the execution's one machine
        self.reported_at = 0.0  # when the run last reported its progress to the run store

    @property
    def status(self) -> Status:
        if self.claim is not None:
            return Status.DONE
        if self.error is not None:
            return Status.FAILED
        return Status.RUNNING if self.started else Status.QUEUED

    def finish(self, result: RunResult, claim: FinalClaim) -> None:
        if self.finished.done():
            return
        if claim.exited:
            self.output_root = self.execution.final_output().region_root
        self.result, self.claim, self.steps_done = result, claim, claim.steps
        self.finished.set_result(None)

    def finish_from(self, saved: SavedRun) -> None:
        """End with a run saved by the replica that executed it."""
        self.execution.restore_run(saved)
        self.finish(self.execution.run_bounded(self.spec.step_limit), self.trace.final_claim())

    def fail(self, error: str) -> None:
        if self.finished.done():
            return
        self.error = error
        self.finished.set_result(None)

    # --- queries, once the run is done -------------------------------------------------------------

    def state_hashes(self, steps: list[int]) -> list[bytes]:
        """The state hash after each of `steps` (the final state's past the end), as LocalTrace gives them.

        The sorted steps in one pass: from each step on to the next while no snapshot lies between
        them (a narrow round, late in a game, restores once and re-hashes each page once), else from
        the snapshot nearest before it (a wide round, early in a long run, never re-executes the
        stretches between its steps).
        """
        assert self.claim is not None, "queries wait for the run"
        if not steps:
            return []
        last = self.claim.steps
        wanted = sorted({min(step, last) for step in steps})
        hashes: dict[int, bytes] = {}
        with self.machine_lock:
            machine = None
            for step in wanted:
                if machine is None or self.execution.snapshot_step_before(step) > machine.step_count:
                    machine = self.execution.machine_at(step)
                else:
                    machine.run(step - machine.step_count)
                hashes[step] = machine.state().hash
        return [hashes[min(step, last)] for step in steps]

    def proof(self, step: int) -> StepWitness:
        with self.machine_lock:
            return self.execution.proof_at(step)


def footprint(execution: Execution) -> int:
    """Bytes an execution holds: its memory's arrays, its snapshots' page maps, the hashes of its trees."""
    memory = execution.machine.memory
    arrays = memory.page_table.nbytes + memory.pool.nbytes + memory.page_dirty.nbytes + memory.dirty_log.nbytes
    page_maps = sum(s.vpages.nbytes + s.pool_pages.nbytes for s in execution.snapshots)
    trees = [memory.upper, *(s.tree for s in execution.snapshots if s.tree is not None)]
    hashes = len(memory.page_roots) + sum(len(tree.nodes) for tree in trees)
    return arrays + page_maps + hashes * TREE_NODE_BYTES


class JobCache:
    """Jobs by id, least recently used first, within a memory budget (running jobs are never evicted)."""

    def __init__(self, budget_bytes: int, metrics: WorkerMetrics):
        self.budget_bytes = budget_bytes
        self.metrics = metrics
        self._jobs: OrderedDict[bytes, Job] = OrderedDict()
        self._sizes: dict[bytes, int] = {}
        self._lock = threading.Lock()

    def get(self, execution_id: bytes) -> Job | None:
        with self._lock:
            job = self._jobs.get(execution_id)
            if job is not None:
                self._jobs.move_to_end(execution_id)
            return job

    def add(self, job: Job) -> None:
        with self._lock:
            self._jobs[job.spec.id] = job
            self._sizes[job.spec.id] = footprint(job.execution)
            self._publish()

    def running_bytes(self) -> int:
        with self._lock:
            return sum(self._sizes[i] for i, job in self._jobs.items() if not job.finished.done())

    def resize(self, job: Job) -> None:
        """Count what `job` holds now (runs and queries grow it), then evict down to the budget:
        finished jobs, least recently used first."""
        with self._lock:
            if self._jobs.get(job.spec.id) is job:
                self._sizes[job.spec.id] = footprint(job.execution)
            total = sum(self._sizes.values())
            for execution_id, held in list(self._jobs.items()):
                if total <= self.budget_bytes:
                    break
                if held.finished.done():
                    del self._jobs[execution_id]
                    total -= self._sizes.pop(execution_id)
            self._publish()

    def _publish(self) -> None:
        self.metrics.cached_bytes.set(sum(self._sizes.values()))
        self.metrics.cached_executions.set(len(self._jobs))


class ExecutionPool:
    def __init__(self, settings: VmWorkerSettings, content: ContentStore, metrics: WorkerMetrics):
        self.settings = settings
        self.content = content
        self.metrics = metrics
        self.cache = JobCache(settings.cache_bytes, metrics)
        self._runs = ThreadPoolExecutor(settings.threads, thread_name_prefix="vm-run")
        self._queries = ThreadPoolExecutor(settings.threads, thread_name_prefix="vm-query")
        self._admitting = threading.Lock()
        self._closing = threading.Event()
        self._warm = self._queries.submit(warm_up)
        # With a job queue: the runs this replica waits for, watched in the shared run store.
        self.queue: RunQueue | None = None
        self.run_store: RunStore | None = None
        self._waiting: dict[bytes, Job] = {}
        self._watcher: threading.Thread | None = None
        self._opening: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        if settings.queue_url is not None:
            self.queue = RunQueue(settings.queue_url, self.run_queued, concurrency=settings.threads)
            self.run_store = RunStore(settings.runs_dir or settings.store_dir / "runs")
            self._watcher = threading.Thread(target=self._watch, name="vm-watch", daemon=True)

    async def start(self) -> None:
        """With a queue: open it in the background once the VM is warm (a replica takes no job it cannot run
        yet); /readyz says ready when its worker runs."""
        if self.queue is not None:
            self._loop = asyncio.get_running_loop()
            self._watcher.start()
            self._opening = asyncio.create_task(self._open_queue())

    async def _open_queue(self) -> None:
        await asyncio.wrap_future(self._warm)
        while True:
            try:
                await self.queue.start()
                return
            except Exception as error:  # the database not up yet: keep trying, /readyz says not ready
                log.warning("the job queue is unreachable; retrying", error=str(error))
                await asyncio.sleep(RETRY_OPEN_SECONDS)

    def programs(self) -> ProgramCatalog:
        """The built-in programs, once the VM is warm; until then Unavailable (503), as /readyz says."""
        if not self._warm.done():
            raise Unavailable("the VM is warming up; retry when /readyz says ready")
        return self._warm.result()

    async def close(self) -> None:
        """Stop: runs end at their next snapshot (a queued one goes back to the queue), queued work drains,
        threads are joined."""
        self._closing.set()
        if self.queue is not None:
            if self._opening is not None:
                self._opening.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._opening
            await self.queue.stop()
        await asyncio.to_thread(self._runs.shutdown, wait=True)
        await asyncio.to_thread(self._queries.shutdown, wait=True)

    # --- what the routes call ------------------------------------------------------------------

    async def create(self, request: ExecutionRequest) -> Job:
        return await self._enqueued(await self._on_query_thread(self._create, request))

    async def find(self, execution_id: bytes) -> Job:
        job = self.cache.get(execution_id)
        if job is not None:
            self.metrics.cache_hits.inc()
            return job
        return await self._enqueued(await self._on_query_thread(self._recompute, execution_id))

    async def settled(self, job: Job, timeout: float | None) -> Job:
        """The job once its run has ended, or as it is after `timeout` seconds (None: no limit)."""
        if not job.finished.done():
            try:
                await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(job.finished)), timeout)
            except TimeoutError:
                pass
        return job

    async def state_hashes(self, execution_id: bytes, steps: list[int]) -> list[bytes]:
        if len(steps) > MAX_STEPS_PER_QUERY:
            raise BadInput(f"at most {MAX_STEPS_PER_QUERY} steps per query, got {len(steps)}")
        job = await self._finished(execution_id)
        for step in steps:
            _check_step(step, job.spec.step_limit, inclusive=True)
        hashes = await self._on_query_thread(job.state_hashes, steps)
        self.cache.resize(job)
        return hashes

    async def proof(self, execution_id: bytes, step: int) -> StepWitness:
        job = await self._finished(execution_id)
        _check_step(step, job.spec.step_limit, inclusive=False)
        witness = await self._on_query_thread(job.proof, step)
        self.cache.resize(job)
        return witness

    # --- on worker threads -----------------------------------------------------------------------

    def _create(self, request: ExecutionRequest) -> Job:
        if not 1 <= request.step_limit <= self.settings.max_step_limit:
            raise BadInput(f"step_limit must be 1..{self.settings.max_step_limit}, got {request.step_limit}")
        node = request.node
        program = self.programs().for_run(request.program_root, node_run=node is not None)
        if node is not None:
            node.check(request.input)
        model = self._model(request)
        if node is None:
            execution = Execution(program.program, model=model, input=request.input)
        else:
            execution = Execution.node_run(
                program.program,
                model=model,
                input=request.input,
                node=node.index,
                node_count=node.count,
                operands=node.operands,
            )
        roots = execution.region_roots()
        if request.model_root is not None and roots["model"] != request.model_root:
            raise BadInput(f"the model's bytes have root 0x{roots['model'].hex()}, not 0x{request.model_root.hex()}")
        node_spec = None
        if node is not None:
            operand_roots = tuple(execution.initial_region_root(L.OPERANDS[j]) for j in range(len(node.operands)))
            node_spec = NodeSpec(node.header, operand_roots)
        spec = ExecutionSpec(roots["program"], roots["model"], roots["input"], request.step_limit, node_spec)
        self.content.keep(spec, model, request.input, [] if node is None else [value for _, value in node.operands])
        return self._admit(spec, execution)

    def _model(self, request: ExecutionRequest) -> bytes:
        if request.model is not None:
            return request.model
        if request.model_root is not None:
            return self.content.model(request.model_root)
        return b""

    def _recompute(self, execution_id: bytes) -> Job:
        """The job of an execution known only from the store: rebuilt from its spec."""
        return self._admit(*self._rebuilt(execution_id))

    def _rebuilt(self, execution_id: bytes) -> tuple[ExecutionSpec, Execution]:
        """The spec of an execution in the store, and its execution booted from the stored content."""
        spec = self.content.spec(execution_id)
        program = self.programs().get(spec.program)
        model, input = self.content.stored_model(spec.model), self.content.stored_input(spec.input)
        if spec.node is None:
            execution = Execution(program.program, model=model, input=input)
            matches = True
        else:  # a node run: its operand values are stored with the inputs, by their roots
            header, operand_roots = spec.node.header, spec.node.operand_roots
            operands = [(slot, self.content.stored_input(root)) for slot, root in zip(header.slots, operand_roots)]
            execution = Execution.node_run(
                program.program,
                model=model,
                input=input,
                node=header.node,
                node_count=header.node_count,
                operands=operands,
            )
            # Its start state is the registry's from the spec's roots: the header and operands are the spec's too.
            expected = node_start_state_hash(
                spec.program,
                program.entry,
                spec.input,
                spec.model,
                header.node,
                header.node_count,
                header.slots,
                operand_roots,
            )
            matches = execution.initial_state.hash == expected
        roots = execution.region_roots()
        if not matches or (roots["program"], roots["model"], roots["input"]) != (spec.program, spec.model, spec.input):
            raise OpmlError(f"the stored content of execution 0x{execution_id.hex()} does not match its spec")
        return spec, execution

    def _admit(self, spec: ExecutionSpec, execution: Execution) -> Job:
        """The job of `spec`: the one held already, else a new one whose run starts now (or, with a queue,
        is loaded from the run store if some replica has run it, else waits for the queue)."""
        with self._admitting:
            held = self.cache.get(spec.id)
            if held is not None and not (self.queue is not None and held.error is not None):
                self.metrics.cache_hits.inc()
                return held  # (with a queue, a failed run asked for again is tried again)
            running = self.cache.running_bytes()
            if running and running + footprint(execution) > self.settings.cache_bytes:
                raise Unavailable(f"busy: the runs in progress hold {running} bytes of {self.settings.cache_bytes}")
            self.metrics.cache_misses.inc()
            job = Job(spec, execution)
            self.cache.add(job)
            if self.queue is None:
                job.started = True
                self._runs.submit(self._run, job)
            else:
                self.run_store.forget_failure(spec.id)  # asked again: a failed run may be tried again
                self._waiting[spec.id] = job
        return job

    def _run(self, job: Job) -> None:
        started = time.perf_counter()
        job.started = True
        try:
            result = job.execution.run_bounded(job.spec.step_limit, progress=lambda steps: self._progress(job, steps))
            claim = job.trace.final_claim()
            if self.run_store is not None:
                self.run_store.save_run(job.spec.id, job.execution.saved_run())
        except ShuttingDown:
            job.fail("the worker stopped before the run ended")
        except Exception as error:  # a bug or a fault of the machine: report it on the execution
            log.exception("run failed", execution=job.spec.id.hex())
            self.metrics.executions.labels("failed").inc()
            job.fail(f"{type(error).__name__}: {error}")
            if self.run_store is not None:
                self.run_store.report_failure(job.spec.id, job.error)
        else:
            self.metrics.executions.labels("exited" if claim.exited else "step_limit").inc()
            self.metrics.steps.inc(claim.steps)
            job.finish(result, claim)
        finally:
            self.metrics.vm_seconds.inc(time.perf_counter() - started)
            self.cache.resize(job)

    def _progress(self, job: Job, steps: int) -> None:
        if self._closing.is_set():
            raise ShuttingDown
        job.steps_done = steps
        if self.run_store is not None and time.monotonic() - job.reported_at > PROGRESS_REPORT_SECONDS:
            self.run_store.report_progress(job.spec.id, steps)
            job.reported_at = time.monotonic()

    async def _finished(self, execution_id: bytes) -> Job:
        job = await self.settled(await self.find(execution_id), timeout=None)
        if job.claim is None:
            raise Conflict(f"execution 0x{execution_id.hex()} failed: {job.error}")
        return job

    async def _on_query_thread(self, work: Callable[..., T], *args) -> T:
        return await asyncio.wrap_future(self._queries.submit(work, *args))

    # --- with a job queue ------------------------------------------------------------------------

    async def _enqueued(self, job: Job) -> Job:
        """Defer the run of a job that waits for the queue (once; a failed defer is tried on the next ask)."""
        if self.queue is not None and not job.enqueued and not job.finished.done():
            await self.queue.enqueue(job.spec.id)
            job.enqueued = True
        return job

    async def run_queued(self, execution_id: bytes) -> None:
        """The queue's task: run the execution here and save the run for every replica, unless some replica
        has run it already. What cannot be done now goes back to the queue; a run that cannot be rebuilt
        from the store is reported failed to the replicas waiting for it."""
        if self._closing.is_set():
            raise RunInterrupted(f"this replica is stopping: 0x{execution_id.hex()} goes back to the queue")
        try:
            job = await self._on_query_thread(self._job_to_run, execution_id)
        except (Unavailable, OSError) as error:
            raise RunInterrupted(f"0x{execution_id.hex()} cannot run here now: {error}") from error
        except Exception as error:
            log.exception("a queued run cannot be rebuilt", execution=execution_id.hex())
            self.run_store.report_failure(execution_id, f"{type(error).__name__}: {error}")
            return
        if job is None:
            return
        await asyncio.wrap_future(self._runs.submit(self._run, job))
        if job.claim is None and self._closing.is_set():
            raise RunInterrupted(f"this replica stopped during the run of 0x{execution_id.hex()}")

    def _job_to_run(self, execution_id: bytes) -> Job | None:
        """The job this replica will run for the queue, taken so the watcher never loads it meanwhile; None
        if there is nothing to run (a replica ran it already, or this one runs or loads it)."""
        if self.run_store.has_run(execution_id):
            return None
        built: tuple[ExecutionSpec, Execution] | None = None
        while True:
            with self._admitting:
                held = self.cache.get(execution_id)
                if held is not None and held.error is None:  # (a failed job is replaced)
                    if held.taken or held.claim is not None:
                        return None
                    held.taken = True
                    self._waiting.pop(execution_id, None)
                    return held
                if built is not None:
                    spec, execution = built
                    running = self.cache.running_bytes()
                    if running and running + footprint(execution) > self.settings.cache_bytes:
                        raise Unavailable(
                            f"busy: the runs in progress hold {running} bytes of {self.settings.cache_bytes}"
                        )
                    job = Job(spec, execution)
                    job.enqueued = job.taken = True
                    self.cache.add(job)
                    return job
            built = self._rebuilt(execution_id)  # outside the lock: booting a large model takes a while

    def _watch(self) -> None:
        """Follow the runs this replica waits for in the shared store: progress while another replica runs
        them, the saved run (loaded here) or the failure when it ends."""
        while not self._closing.wait(WATCH_SECONDS):
            for execution_id, job in list(self._waiting.items()):
                try:
                    self._look_up(job)
                except Exception as error:  # a bad saved run (or anything else) must not stop the watcher
                    log.exception("loading a saved run failed", execution=execution_id.hex())
                    job.fail(f"loading the saved run failed: {type(error).__name__}: {error}")
                if job.finished.done():
                    self._waiting.pop(execution_id, None)

    def _look_up(self, job: Job) -> None:
        execution_id = job.spec.id
        if self.run_store.has_run(execution_id):
            with self._admitting:
                if job.taken:
                    return  # the queue gave its run to this replica meanwhile
                job.taken = True
                self._waiting.pop(execution_id, None)
            with job.machine_lock:
                job.finish_from(self.run_store.load_run(execution_id))
            self.metrics.runs_loaded.inc()
            self.cache.resize(job)
            return
        progress = self.run_store.progress(execution_id)
        if progress is not None and progress.error is not None:
            job.fail(progress.error)
            return
        if progress is not None and progress.steps != job.steps_done:
            job.started, job.steps_done = True, progress.steps
            job.progress_seen_at = time.monotonic()
        elif time.monotonic() - job.progress_seen_at > REDEFER_SECONDS:
            # No sign of the run for a while (its queue job lost, or given up after its retries): ask again.
            # If it still waits in the queue, this is a no-op (its queueing lock).
            job.progress_seen_at = time.monotonic()
            asyncio.run_coroutine_threadsafe(self.queue.enqueue(execution_id), self._loop)


def warm_up() -> ProgramCatalog:
    """Load the built-in programs and call every VM function once, so numba compiles them (or loads
    them from its cache on disk) here and not in the first request."""
    catalog = ProgramCatalog.builtin()
    compile_kernels(catalog.default.program)
    return catalog


def _check_step(step: int, step_limit: int, inclusive: bool) -> None:
    top = step_limit if inclusive else step_limit - 1
    if not 0 <= step <= top:
        raise BadInput(f"step {step} is outside this execution's trace: 0..{top}")
