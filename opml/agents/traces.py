"""Where an agent gets the trace of a request: from a vm-worker over HTTP, or computed in-process.

Either way the trace is checked against the chain before it is trusted: its initial state hash
must equal the request's start state, which the registry computed from the registered program
root P, the model root M and the input. An agent that cannot reproduce the start state (the
program is unknown, the model file does not hash to M) refuses to play rather than guess.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from functools import cache
from dataclasses import dataclass
from typing import Protocol

import httpx

from .. import resources
from ..chain.registry import Registry
from ..errors import BadInput, Conflict, NotFound, OpmlError, Upstream
from ..game.remote import ExecutionRequest, NodeRun, RemoteTrace
from ..game.trace import LocalTrace, TraceProvider
from ..guest import INFERENCE, LARGE_OUTPUT, LLM_GRAPH, MALFORMED_OUTPUT, NODE, SPIN, GuestProgram, built
from ..models.formats import model_root
from ..protocol.types import ProgramKind
from ..service.clients import ServiceClient
from ..vm.elf import Program
from ..vm.execution import Execution


@dataclass(frozen=True)
class RequestView:
    """What an agent knows of a request: from its InferenceRequested event and the registry."""

    request_id: int
    program_id: int
    model_id: int
    program_root: bytes
    model_root: bytes
    model_uri: str
    input: bytes
    fee: int
    step_limit: int
    deadline: int
    requester: str
    start_state_hash: bytes
    program_kind: ProgramKind = ProgramKind.WHOLE_RUN  # which game its claims play

    @property
    def graph(self) -> bool:
        """Whether its claims play the two-phase game (a GraphNodes program)."""
        return self.program_kind == ProgramKind.GRAPH_NODES


class Unverifiable(Conflict):
    """The agent cannot reproduce a request's start state, so it will not play for or against it."""


class TraceSource(Protocol):
    def trace_for(self, request: RequestView) -> TraceProvider: ...


class ModelSource(Protocol):
    def model_bytes(self, root: bytes, uri: str) -> bytes:
        """The model file whose root is `root` (raises if it cannot be found)."""
        ...


def builtin_programs() -> dict[bytes, Program]:
    """The guest programs every agent knows, by the root P the registry holds: the inference program, the node
    programs of the two-phase game (graph models', LLM generations'), and the test programs whose runs end with
    each other result kind (a step limit, a malformed or too large output)."""
    return {guest_root(guest): Program.from_file(built(guest.name))
            for guest in (INFERENCE, NODE, LLM_GRAPH, SPIN, MALFORMED_OUTPUT, LARGE_OUTPUT)}  # fmt: skip


@cache
def guest_root(guest: GuestProgram) -> bytes:
    """The root P of a committed guest program's region."""
    return Execution(Program.from_file(built(guest.name))).region_roots()["program"]


def request_view(registry: Registry, event_args: dict) -> RequestView:
    """A RequestView from an InferenceRequested event's arguments (as stored: bytes are 0x-hex)."""
    program = registry.program(event_args["programId"])
    model = registry.model(event_args["modelId"])
    return RequestView(
        request_id=event_args["requestId"],
        program_id=event_args["programId"],
        model_id=event_args["modelId"],
        program_root=program.root,
        model_root=model.root,
        model_uri=model.uri,
        input=_bytes(event_args["input"]),
        fee=event_args["fee"],
        step_limit=event_args["stepLimit"],
        deadline=event_args["deadline"],
        requester=event_args["requester"],
        start_state_hash=_bytes(event_args["startStateHash"]),
        program_kind=program.kind,
    )


def _bytes(value) -> bytes:
    return bytes.fromhex(value[2:]) if isinstance(value, str) else bytes(value)


class CachedTraces:
    """Keeps the last `capacity` traces by request id; subclasses say how to build one."""

    def __init__(self, capacity: int = 64):
        self.capacity = capacity
        self._traces: OrderedDict[int, TraceProvider] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[int, threading.Lock] = {}

    def trace_for(self, request: RequestView) -> TraceProvider:
        with self._lock:
            if request.request_id in self._traces:
                self._traces.move_to_end(request.request_id)
                return self._traces[request.request_id]
            building = self._building.setdefault(request.request_id, threading.Lock())
        with building:  # one computation per request, however many jobs ask
            with self._lock:
                if request.request_id in self._traces:
                    return self._traces[request.request_id]
            trace, initial_hash = self.build(request)
            if initial_hash != request.start_state_hash:
                raise Unverifiable(
                    f"request {request.request_id}: the start state computed here (0x{initial_hash.hex()[:16]}..) "
                    f"is not the one on-chain (0x{request.start_state_hash.hex()[:16]}..)"
                )
            with self._lock:
                self._traces[request.request_id] = trace
                while len(self._traces) > self.capacity:
                    self._traces.popitem(last=False)
                self._building.pop(request.request_id, None)
            return trace

    def build(self, request: RequestView) -> tuple[TraceProvider, bytes]:
        raise NotImplementedError


class LocalTraces(CachedTraces):
    """Traces computed in this process (tests, and agents run without a vm-worker)."""

    def __init__(self, models: ModelSource, programs: dict[bytes, Program] | None = None, capacity: int = 64):
        super().__init__(capacity)
        self.models = models
        self.programs = programs if programs is not None else builtin_programs()

    def build(self, request: RequestView) -> tuple[TraceProvider, bytes]:
        program = self.programs.get(request.program_root)
        if program is None:
            raise Unverifiable(
                f"request {request.request_id}: program 0x{request.program_root.hex()[:16]}.. is unknown here"
            )
        model = self.models.model_bytes(request.model_root, request.model_uri)
        if model_root(model) != request.model_root:
            raise Unverifiable(f"request {request.request_id}: the model file does not hash to the registered root")
        if request.graph:
            return graph_trace(request, program, model, local_node_runs(program, model, request))
        execution = Execution(program, model=model, input=request.input)
        return LocalTrace(execution, request.step_limit), execution.initial_state.hash


class StaticModels:
    """Model files held in memory, by root (tests)."""

    def __init__(self, *files: bytes):
        self.files = {model_root(data): data for data in files}

    def model_bytes(self, root: bytes, uri: str) -> bytes:
        if root not in self.files:
            raise Unverifiable(f"model 0x{root.hex()[:16]}.. is not available here")
        return self.files[root]


class WorkerTraces(CachedTraces):
    """Traces computed by a vm-worker over HTTP (the services' way): the worker fetches the model from the
    converter by its root and checks it; the program must be one the worker knows. A graph request's values are
    computed natively here (that is the point of the two-phase game), from the model file `models` gives."""

    def __init__(self, worker: ServiceClient, models: ModelSource | None = None, capacity: int = 256):
        super().__init__(capacity)
        self.worker = worker
        self.models = models
        self._programs: dict[bytes, Program] | None = None

    def build(self, request: RequestView) -> tuple[TraceProvider, bytes]:
        if request.graph:
            return self._graph(request)
        spec = ExecutionRequest(
            step_limit=request.step_limit,
            input=request.input,
            program_root=request.program_root,
            model_root=request.model_root,
        )
        trace = RemoteTrace(self.worker, spec)
        try:
            return trace, trace.initial_state_hash()
        except (BadInput, NotFound) as error:  # the worker cannot reproduce it: an unknown program or model
            raise Unverifiable(f"request {request.request_id}: {error}") from None

    def _graph(self, request: RequestView) -> tuple[TraceProvider, bytes]:
        if self.models is None:
            raise Unverifiable(f"request {request.request_id}: a graph request needs its model file here")
        if self._programs is None:
            self._programs = builtin_programs()
        program = self._programs.get(request.program_root)
        if program is None:
            raise Unverifiable(f"request {request.request_id}: node program 0x{request.program_root.hex()[:16]}.. "
                               "is unknown here")  # fmt: skip
        model = self.models.model_bytes(request.model_root, request.model_uri)
        return graph_trace(request, program, model, self._node_runs(request))

    def _node_runs(self, request: RequestView):
        """Node runs on the worker (queued there when long, kept in its run store), checked against the start state
        the registry builds at the link (`node_start_state_hash`)."""

        def node_run(header, operands) -> TraceProvider:
            node = NodeRun(header.node, header.node_count, tuple(operands))
            spec = ExecutionRequest(step_limit=request.step_limit, input=request.input,
                                    program_root=request.program_root, model_root=request.model_root, node=node)  # fmt: skip
            return RemoteTrace(self.worker, spec)

        return node_run


class FetchedModels:
    """Model files by root: from the converter, else from the registered uri (a path under the OPML root, or
    an http(s) URL). Every file is checked against the root before use, and kept."""

    def __init__(self, converter: ServiceClient | None):
        self.converter = converter
        self._files: dict[bytes, bytes] = {}

    def model_bytes(self, root: bytes, uri: str) -> bytes:
        if root in self._files:
            return self._files[root]
        for source in (self._from_converter, self._from_uri):
            data = source(root, uri)
            if data is not None and model_root(data) == root:
                self._files[root] = data
                return data
        raise Unverifiable(f"no file for model 0x{root.hex()[:16]}.. that hashes to its root (uri {uri!r})")

    def _from_converter(self, root: bytes, uri: str) -> bytes | None:
        if self.converter is None:
            return None
        try:
            return self.converter.get(f"/models/0x{root.hex()}/file").content
        except (NotFound, Upstream):
            return None

    @staticmethod
    def _from_uri(root: bytes, uri: str) -> bytes | None:
        if uri.startswith(("http://", "https://")):
            try:
                response = httpx.get(uri, timeout=30, follow_redirects=True)
            except httpx.HTTPError:
                return None
            return response.content if response.status_code == 200 else None
        try:
            path = (resources.root() / uri).resolve()
        except OpmlError:
            return None
        inside = resources.root().resolve() in path.parents
        return path.read_bytes() if inside and path.is_file() else None


class PreparedTraces:
    """Trace runs kept off the agent's job workers: `prepare` starts a request's run on a small compute pool,
    `ready` gives the trace once its run is done (raising what the run raised, e.g. Unverifiable). A job that
    finds its trace not ready returns at once and is woken by `on_ready(request_id)`, so a move never waits
    for a worker held by a long run. A run that failed for a passing reason (a worker down) is forgotten, so
    the next `prepare` starts it again."""

    def __init__(self, source: TraceSource, *, workers: int, name: str, on_ready, on_seconds=None):
        from concurrent.futures import ThreadPoolExecutor

        self.source = source
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"{name}-compute")
        self._runs: dict[int, object] = {}  # request id -> Future of the trace
        self._lock = threading.Lock()
        self._on_ready = on_ready
        self._on_seconds = on_seconds or (lambda seconds: None)

    def prepare(self, view: RequestView) -> None:
        with self._lock:
            if view.request_id in self._runs:
                return
            future = self._pool.submit(self._run, view)
            self._runs[view.request_id] = future
        future.add_done_callback(lambda done: self._finished(view.request_id, done))

    def ready(self, view: RequestView) -> TraceProvider | None:
        """The trace if its run is done; None (and the run started) if not. A run that failed is reported by
        raising its error; unless the error is that the request cannot be verified here (which does not
        pass), the run is forgotten, so asking again later starts it again."""
        with self._lock:
            future = self._runs.get(view.request_id)
        if future is None:
            self.prepare(view)
            return None
        if not future.done():
            return None
        error = future.exception()
        if error is None:
            return future.result()
        if not isinstance(error, Unverifiable):
            with self._lock:
                if self._runs.get(view.request_id) is future:
                    del self._runs[view.request_id]
        raise error

    def task(self, key, compute):
        """The result of `compute()` (a node run for phase 2, say) once it is done, run on the compute pool under
        `key` (one run per key); None (and the run started) if not done yet. Errors as `ready` raises them."""
        with self._lock:
            future = self._runs.get(key)
            if future is None:
                future = self._runs[key] = self._pool.submit(compute)
                future.add_done_callback(lambda done: self._on_ready(key))
        if not future.done():
            return None
        error = future.exception()
        if error is None:
            return future.result()
        with self._lock:
            if self._runs.get(key) is future:
                del self._runs[key]
        raise error

    def computed(self, request_id: int) -> TraceProvider | None:
        """The trace of a request whose run is done and succeeded, if there is one (never starts a run)."""
        with self._lock:
            future = self._runs.get(request_id)
        if future is None or not future.done() or future.exception() is not None:
            return None
        return future.result()

    def wait(self, view: RequestView, timeout: float | None = None) -> TraceProvider:
        """The trace, waiting for its run (the read APIs, which have no scheduler to wake them)."""
        self.prepare(view)
        with self._lock:
            future = self._runs[view.request_id]
        return future.result(timeout)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self, view: RequestView) -> TraceProvider:
        import time

        started = time.monotonic()
        trace = self.source.trace_for(view)
        trace.final_claim()
        self._on_seconds(time.monotonic() - started)
        return trace

    def _finished(self, request_id: int, future) -> None:
        self._on_ready(request_id)


# --- graph requests (the two-phase game) -------------------------------------------------------------------


def graph_trace(request: RequestView, program: Program, model: bytes, node_runs) -> tuple[TraceProvider, bytes]:
    """A graph request's trace: every value computed natively (by the model's format: `native_run`), the node runs a
    dispute needs from `node_runs`; with S_0, which must be the request's start state. A request whose program is
    not its model format's node program is refused: none of its nodes could be linked."""
    from ..game.graph import GraphTrace
    from ..graph.native import NodeRefused

    expected = node_program_of(model)
    if request.program_root != guest_root(expected):
        raise Unverifiable(f"request {request.request_id}: a model of this format plays the two-phase game with the "
                           f"node program {expected.name}, not program 0x{request.program_root.hex()[:16]}..")  # fmt: skip
    try:
        run = native_run(model, request.input)
    except NodeRefused as refused:  # the node program would refuse a node of the honest run: nothing to claim
        raise Unverifiable(f"request {request.request_id}: {refused}") from None
    return GraphTrace(run, node_runs), run.state(0)


def node_program_of(model: bytes) -> GuestProgram:
    """The node program a model's two-phase requests play with: the LLM node program for an OPLM model (its
    requests are generations), the graph node program for a graph-format model."""
    from ..models.llm.graph import is_llm_model

    return LLM_GRAPH if is_llm_model(model) else NODE


def native_run(model: bytes, input: bytes):
    """The honest run of a two-phase request (an `opml.graph.run.ValueRun`), by the model's format: an OPLM
    model's generation (opml.models.llm.graph), a graph-format model's run (opml.graph.native). The parsed model
    is kept: parsing a large one (MiniLM's 91 MB) costs as much as running it."""
    from ..graph.native import evaluate
    from ..models.llm.graph import evaluate_generation, is_llm_model

    parsed = _parsed(model, is_llm_model(model))
    return evaluate_generation(parsed, input) if is_llm_model(model) else evaluate(parsed, input)


_PARSED: OrderedDict[int, tuple[bytes, object]] = OrderedDict()
_PARSED_KEPT = 4
_parsing = threading.Lock()


def _parsed(model: bytes, llm: bool):
    """The model parsed (a Graph, or an LLM's Weights), kept for the last few model files (by identity: the
    agents hold one copy of each file)."""
    from ..models.formats import parse_model
    from ..models.llm.graph import weights_of

    with _parsing:
        kept = _PARSED.get(id(model))
        if kept is not None and kept[0] is model:
            _PARSED.move_to_end(id(model))
            return kept[1]
        parsed = weights_of(model) if llm else parse_model(model)
        _PARSED[id(model)] = (model, parsed)
        while len(_PARSED) > _PARSED_KEPT:
            _PARSED.popitem(last=False)
        return parsed


def local_node_runs(program: Program, model: bytes, request: RequestView):
    """Node runs in this process: the node program's run for a header and its operands, bounded by the request's
    step limit (for a graph request, a bound on each node's run)."""

    def node_run(header, operands) -> TraceProvider:
        execution = Execution.node_run(program, model=model, input=request.input, node=header.node,
                                       node_count=header.node_count, operands=list(operands))  # fmt: skip
        return LocalTrace(execution, request.step_limit)

    return node_run
