"""A trace served by a vm-worker over HTTP, for the solver and the agents.

    trace = RemoteTrace("http://127.0.0.1:8002", ExecutionRequest(input=image, model_root=m, step_limit=limit))
    Solver(trace, arity).bisection(lo, hi)

`RemoteTrace` implements `TraceProvider` over the worker's API (services/vm-worker):
POST /executions creates the run (or finds it: an execution is keyed by its content),
GET /executions/{id} polls it until done, POST /executions/{id}/states answers one
dissection round, GET /executions/{id}/proof?step=N the one-step witness.

A node run of the linked two-phase game (docs/two-phase.md) is the same, with the node:

    node = NodeRun(index=i, count=n, operands=graph_run.operands(i))
    trace = RemoteTrace(worker, ExecutionRequest(step_limit=limit, input=x, program_root=P, model_root=M, node=node))
    assert trace.initial_state_hash() == linked_start_state_hash   # the game's agreed start state
"""

from __future__ import annotations

import base64
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import BadInput, NotFound, Upstream
from ..graph.tree import VALUE_TREE_DEPTH
from ..graph.values import decode_value, value_root
from ..protocol.claims import FinalClaim, StepProof
from ..service.clients import ServiceClient
from ..vm import layout as L
from ..vm.merkle import keccak256
from ..vm.node_run import NodeHeader
from ..vm.output import OutputProof, ResultKind
from ..vm.state import State

MAX_STEPS_PER_QUERY = 256  # the worker's limit for one POST /executions/{id}/states
DEFAULT_TIMEOUT = 600.0
MAX_NODES = (1 << VALUE_TREE_DEPTH) - 1  # value slots 1..MAX_NODES (Proofs.MAX_NODES)
INPUT_SLOT = 0


def execution_id(
    program_root: bytes,
    model_root: bytes,
    input_root: bytes,
    step_limit: int,
    node: NodeHeader | None = None,
    operand_roots: Sequence[bytes] = (),
) -> bytes:
    """The id of an execution: keccak256(P || M || I || step_limit as u64 big-endian), and for a node run
    keccak256(P || M || I || step_limit || header || O_0 || ... || O_{k-1}), the header as the node header
    region holds it (big-endian u32s i, n, k, then the k slots) and O_j operand j's value root.

    A function of content only, so every worker replica and every client computes the same id. A whole run's
    preimage is 104 bytes, a node run's at least 116, so no node run has a whole run's id.
    """
    content = program_root + model_root + input_root + step_limit.to_bytes(8, "big")
    if node is None:
        if operand_roots:
            raise ValueError("operand roots without a node header")
        return keccak256(content)
    if len(operand_roots) != len(node.slots):
        raise ValueError(f"{len(node.slots)} operand slots but {len(operand_roots)} operand roots")
    return keccak256(content + node.to_bytes() + b"".join(operand_roots))


@dataclass(frozen=True)
class NodeRun:
    """The node of a node run (docs/two-phase.md, "The link"): node `index` of a graph of `count` nodes, on
    `operands`, (slot, value bytes) in the order of the node header's slots. Slot 0's bytes are value 0, the
    request's input; every other operand is a value as opml.graph.values encodes it."""

    index: int
    count: int
    operands: tuple[tuple[int, bytes], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "operands", tuple((int(slot), bytes(value)) for slot, value in self.operands))

    @property
    def slots(self) -> tuple[int, ...]:
        return tuple(slot for slot, _ in self.operands)

    @property
    def header(self) -> NodeHeader:
        """What the node header region holds (what the registry writes at the link)."""
        return NodeHeader(self.index, self.count, self.slots)

    def operand_roots(self) -> list[bytes]:
        """O_j: each operand's value root, in header order."""
        return [value_root(value) for _, value in self.operands]

    def check(self, input: bytes) -> None:
        """BadInput unless this is a node run the registry can build: 1 <= count <= MAX_NODES, index < count, at
        most MAX_OPERANDS operands, each slot <= index, slot 0's bytes the request's input, every other operand a
        well-formed value (opml.graph.values: a known kind, rank <= 4, its shape's length, canonical floats)."""
        if not 1 <= self.count <= MAX_NODES:
            raise BadInput(f"node count {self.count}: a graph has 1 to {MAX_NODES} nodes")
        if not 0 <= self.index < self.count:
            raise BadInput(f"node index {self.index} is not below the node count {self.count}")
        if len(self.operands) > L.MAX_OPERANDS:
            raise BadInput(f"{len(self.operands)} operands; a node run has at most {L.MAX_OPERANDS}")
        for position, (slot, value) in enumerate(self.operands):
            if not 0 <= slot <= self.index:
                raise BadInput(f"operand {position} is slot {slot}: node {self.index} reads slots 0..{self.index}")
            if slot == INPUT_SLOT:
                if value != input:
                    raise BadInput(
                        f"operand {position} is slot 0, the request's input, but its bytes are not the input"
                    )
                continue
            try:
                decode_value(value)
            except BadInput as error:
                raise BadInput(f"operand {position} (slot {slot}) is not a well-formed value: {error}") from None

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "count": self.count,
            "operands": [
                {"slot": slot, "value_base64": base64.b64encode(value).decode()} for slot, value in self.operands
            ],
        }


@dataclass(frozen=True)
class ExecutionRequest:
    """What to run: the body of POST /executions.

    The model is given by root (the worker fetches it from its converter and checks it), by
    bytes (checked against `model_root` when both are given), or not at all. With `node`, it is
    a node run of the linked two-phase game: the node program (`program_root` None) on the node.
    """

    step_limit: int
    input: bytes = b""
    program_root: bytes | None = None  # None: the inference program (the node program for a node run)
    model_root: bytes | None = None
    model: bytes | None = None
    node: NodeRun | None = None

    def content_id(self) -> bytes:
        """The id the worker gives this execution (`execution_id`); needs the program's root and the model's
        (its root, or its bytes)."""
        if self.program_root is None:
            raise ValueError("the program's root is needed for the id (null means the worker's default)")
        if self.model_root is not None:
            model = self.model_root
        else:
            from ..models.formats import model_root  # (the model formats are not needed otherwise)

            model = model_root(self.model or b"")
        if self.node is None:
            return execution_id(self.program_root, model, value_root(self.input), self.step_limit)
        return execution_id(
            self.program_root,
            model,
            value_root(self.input),
            self.step_limit,
            self.node.header,
            self.node.operand_roots(),
        )

    def to_json(self) -> dict[str, Any]:
        model: dict[str, str] | None = None
        if self.model is not None:
            model = {"base64": base64.b64encode(self.model).decode()}
            if self.model_root is not None:
                model["root"] = _hex(self.model_root)
        elif self.model_root is not None:
            model = {"root": _hex(self.model_root)}
        body = {
            "program": None if self.program_root is None else {"root": _hex(self.program_root)},
            "model": model,
            "input_base64": base64.b64encode(self.input).decode(),
            "step_limit": self.step_limit,
        }
        if self.node is not None:
            body["node"] = self.node.to_json()
        return body


UNFINISHED = ("queued", "running")  # statuses of an execution whose run has not ended


def create_execution(client: ServiceClient, request: ExecutionRequest, timeout: float = DEFAULT_TIMEOUT) -> dict:
    """POST the execution and wait for its run to end (a 202 is polled at its Location); the worker's
    execution (JSON) with its result."""
    response = client.post("/executions", json=request.to_json())
    if response.status_code == 202:
        return _poll(client, response.headers["location"], timeout)
    return _finished(response.json())


def wait_for_execution(client: ServiceClient, execution_id: str, timeout: float = DEFAULT_TIMEOUT) -> dict:
    """The execution once its run has ended."""
    return _poll(client, f"/executions/{execution_id}", timeout)


def _poll(client: ServiceClient, path: str, timeout: float) -> dict:
    """GET the execution (the worker holds each poll open a while) until its run has ended."""
    deadline = time.monotonic() + timeout
    pause = 0.05
    while (execution := client.get(path).json())["status"] in UNFINISHED:
        if time.monotonic() > deadline:
            raise Upstream(f"execution {execution['id']} is still running after {timeout:.0f} s")
        time.sleep(pause)
        pause = min(pause * 2, 1.0)
    return _finished(execution)


class RemoteTrace:
    """The trace of one execution on a vm-worker.

    Built from an execution id, it reads what the worker has (or recomputes from its store);
    built from an `ExecutionRequest`, it creates the execution on first use and creates it
    again if the worker has forgotten it. The roots and the initial state are known as soon
    as the worker has the execution; the claim and the queries wait for its run.
    """

    def __init__(
        self, worker: str | ServiceClient, execution: str | ExecutionRequest, timeout: float = DEFAULT_TIMEOUT
    ):
        self.client = worker if isinstance(worker, ServiceClient) else ServiceClient("vm-worker", worker, timeout=300)
        self.request = execution if isinstance(execution, ExecutionRequest) else None
        self.timeout = timeout
        self._id = execution if isinstance(execution, str) else None
        self._described: dict | None = None  # the worker's execution, maybe still running
        self._finished: dict | None = None
        self._claim: FinalClaim | None = None

    # --- TraceProvider ---------------------------------------------------------------------

    def final_claim(self) -> FinalClaim:
        if self._claim is None:
            result = self.execution()["result"]
            proof = result.get("output_proof")  # a worker older than result kinds has neither field
            self._claim = FinalClaim(
                state=State.decode(_bytes(result["final_state"])),
                output=_bytes(result["output"]),
                siblings=tuple(_bytes(sibling) for sibling in result["output_siblings"]),
                kind=ResultKind[result["kind"].upper()] if "kind" in result else ResultKind.NONE,
                proof=None if proof is None else OutputProof.from_json(proof),
            )
        return self._claim

    def state_hashes(self, steps: list[int]) -> list[bytes]:
        hashes: list[bytes] = []
        for start in range(0, len(steps), MAX_STEPS_PER_QUERY):
            chunk = steps[start : start + MAX_STEPS_PER_QUERY]
            answer = self._query("POST", "states", json={"steps": chunk}).json()
            hashes.extend(_bytes(h) for h in answer["hashes"])
        return hashes

    def step_witness(self, step: int) -> StepProof:
        witness = self._query("GET", "proof", params={"step": step}).json()
        return StepProof(state_data=_bytes(witness["pre_state"]), proof=_bytes(witness["proof"]))

    # --- the execution behind it ---------------------------------------------------------------

    @property
    def execution_id(self) -> str:
        """The execution's id on the worker (0x-hex), as it reports it."""
        return self._description()["id"]

    def roots(self) -> dict[str, bytes]:
        """The roots P, M, I of the execution's initial memory (to compare with the chain's)."""
        return {name: _bytes(root) for name, root in self._description()["roots"].items()}

    def initial_state_hash(self) -> bytes:
        """The hash of the golden image: what the registry computes as the request's start state (for a node
        run, the start state it builds at the link: the game's agreed start state of phase 2)."""
        return _bytes(self._description()["initial_state_hash"])

    def execution(self) -> dict:
        """The worker's execution (JSON) once its run has ended."""
        if self._finished is None:
            described = self._description()
            if described["status"] in UNFINISHED:
                self._finished = wait_for_execution(self.client, described["id"], self.timeout)
            else:
                self._finished = _finished(described)
        return self._finished

    def _description(self) -> dict:
        """The worker's execution as first seen (created from the request, or read by id)."""
        if self._described is None:
            if self.request is not None:
                self._described = self._create(self.request)
            else:
                self._described = self.client.get(f"/executions/{self._id}").json()
        return self._described

    def _create(self, request: ExecutionRequest) -> dict:
        described = self.client.post("/executions", json=request.to_json()).json()
        expected = self._expected_id()
        if expected is not None and _bytes(described["id"]) != expected:
            raise Upstream(
                f"the vm-worker's execution {described['id']} is not the one asked for (0x{expected.hex()}): "
                "it ran other content"
            )
        return described

    def _expected_id(self) -> bytes | None:
        """The request's id as computed here, when it can be without hashing an inline model: None if not."""
        request = self.request
        if request is None or request.program_root is None or request.model is not None:
            return None
        return request.content_id()

    def _query(self, method: str, what: str, **kwargs: Any):
        """A query on the execution (the worker waits for its run); one that the worker has forgotten is
        created again and the query retried once."""
        path = f"/executions/{self.execution_id}/{what}"
        try:
            return self.client.request(method, path, **kwargs)
        except NotFound:
            if self.request is None:
                raise
            self._create(self.request)
            return self.client.request(method, path, **kwargs)


def _finished(execution: dict) -> dict:
    if execution["status"] == "failed":
        raise Upstream(f"execution {execution['id']} failed on the vm-worker: {execution['error']}")
    return execution


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


def _bytes(text: str) -> bytes:
    return bytes.fromhex(text.removeprefix("0x"))
