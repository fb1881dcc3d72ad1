"""The vm-worker's request and response bodies. Hashes, states and byte strings are 0x-prefixed hex;
inputs and inline models are base64. `opml.game.remote.RemoteTrace` reads exactly these shapes."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from opml.game.remote import MAX_NODES, MAX_STEPS_PER_QUERY, ExecutionRequest, NodeRun
from opml.game.trace import SIBLING_COUNT
from opml.vm.layout import MAX_INPUT_BYTES, MAX_MODEL_BYTES, MAX_OPERANDS, MAX_REGION_DATA_BYTES
from opml.vm.machine import StepWitness
from opml.vm.output import REGION_HEIGHT, LeafProof, OutputProof, ResultKind

from .content import NodeSpec
from .executions import Job, Status
from .programs import KnownProgram

HASH_PATTERN = r"^0x[0-9a-fA-F]{64}$"
EXAMPLE_ROOT = "0x" + "5c" * 32
EXAMPLE_ID = "0x" + "a1" * 32
STEP_MAX = (1 << 64) - 1  # steps are u64 in the state encoding
BASE64_PATTERN = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"


def _base64_length(byte_count: int) -> int:
    return 4 * ((byte_count + 2) // 3)


def _base64_decoder(max_bytes: int, what: str):
    def decode(value: object) -> bytes:
        if not isinstance(value, str):
            raise ValueError("expected a base64 string")
        if len(value) > _base64_length(max_bytes):  # refused before decoding
            raise ValueError(f"the {what} holds at most {max_bytes} bytes")
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error as error:
            raise ValueError(f"not base64: {error}") from None

    return decode


def Base64Bytes(max_bytes: int, what: str, description: str):  # noqa: N802 (a type)
    """Bytes sent as a base64 string, at most `max_bytes` (the capacity of their region) once decoded."""
    return Annotated[
        bytes,
        BeforeValidator(_base64_decoder(max_bytes, what)),
        Field(max_length=max_bytes),
        WithJsonSchema(
            {
                "type": "string",
                "description": description,
                "pattern": BASE64_PATTERN,
                "maxLength": _base64_length(max_bytes),
            }
        ),
    ]


Hash = Annotated[str, Field(pattern=HASH_PATTERN, examples=[EXAMPLE_ROOT])]
InputBytes = Base64Bytes(MAX_INPUT_BYTES, "input region", "The input region's bytes, base64")
ModelBytes = Base64Bytes(MAX_MODEL_BYTES, "model region", "The model file, base64")
ValueBytes = Base64Bytes(
    MAX_REGION_DATA_BYTES,
    "operand region",
    "The value's bytes, base64: the request's input for slot 0, else a value as docs/two-phase.md encodes it",
)


def hex0x(data: bytes) -> str:
    return "0x" + data.hex()


def from_hex(text: str) -> bytes:
    return bytes.fromhex(text[2:])


# --- requests ----------------------------------------------------------------------------------


class ProgramRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    root: Hash = Field(description="Root P of a built-in program (GET /programs)")


class ModelRef(BaseModel):
    """A model by root (fetched from the converter), by bytes, or by both (the bytes are checked)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"root": EXAMPLE_ROOT}, {"base64": "Z2dtbA=="}]}
    )

    root: Hash | None = Field(None, description="Model root M")
    base64: ModelBytes | None = None

    @model_validator(mode="after")
    def names_a_model(self) -> ModelRef:
        if self.root is None and self.base64 is None:
            raise ValueError("give the model's root, its bytes (base64), or both; or null for no model")
        return self


class OperandIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slot: int = Field(ge=0, lt=MAX_NODES, strict=True, description="The value's slot: 0 the input, j + 1 node j's")
    value_base64: ValueBytes


class NodeIn(BaseModel):
    """The node of a node run (docs/two-phase.md, "The link"): what the registry writes into the node header
    (i, n, the operand slots) and the operands' values."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"index": 2, "count": 4, "operands": [{"slot": 2, "value_base64": "AAAAAAAAAAEAAAAB"}]}]
        },
    )

    index: int = Field(ge=0, lt=MAX_NODES, strict=True, description="i: the node to compute (the game's step)")
    count: int = Field(ge=1, le=MAX_NODES, strict=True, description="n: the graph claim's node count")
    operands: list[OperandIn] = Field(
        max_length=MAX_OPERANDS, description="Node i's operands in its inputs' order: operand j goes to region j"
    )

    @model_validator(mode="after")
    def is_a_node_of_the_graph(self) -> NodeIn:
        if self.index >= self.count:
            raise ValueError(f"node index {self.index} is not below the node count {self.count}")
        for position, operand in enumerate(self.operands):
            if operand.slot > self.index:
                raise ValueError(
                    f"operand {position} is slot {operand.slot}: node {self.index} reads slots 0..{self.index}"
                )
        return self

    def to_node(self) -> NodeRun:
        return NodeRun(self.index, self.count, tuple((o.slot, o.value_base64) for o in self.operands))


class ExecutionIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"program": None, "model": {"root": EXAMPLE_ROOT}, "input_base64": "AAEC", "step_limit": 1 << 30},
                {
                    "program": None,
                    "model": {"root": EXAMPLE_ROOT},
                    "input_base64": "AAEC",
                    "step_limit": 1 << 30,
                    "node": {"index": 0, "count": 4, "operands": [{"slot": 0, "value_base64": "AAEC"}]},
                },
            ]
        },
    )

    program: ProgramRef | None = Field(
        None, description="null: the inference program, or for a node run the node program"
    )
    model: ModelRef | None = Field(None, description="null: an empty model region")
    input_base64: InputBytes = b""
    step_limit: int | None = Field(None, ge=1, le=STEP_MAX, strict=True, description="null: the worker's default")
    node: NodeIn | None = Field(
        None, description="A node run of the linked two-phase game (docs/two-phase.md); null: a whole run"
    )

    def to_request(self, default_step_limit: int) -> ExecutionRequest:
        model_root = None if self.model is None or self.model.root is None else from_hex(self.model.root)
        return ExecutionRequest(
            step_limit=default_step_limit if self.step_limit is None else self.step_limit,
            input=self.input_base64,
            program_root=None if self.program is None else from_hex(self.program.root),
            model_root=model_root,
            model=None if self.model is None else self.model.base64,
            node=None if self.node is None else self.node.to_node(),
        )


class StatesIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"steps": [0, 122109, 244218]}]})

    steps: list[Annotated[int, Field(ge=0, le=STEP_MAX, strict=True)]] = Field(max_length=MAX_STEPS_PER_QUERY)


# --- responses ---------------------------------------------------------------------------------


class Roots(BaseModel):
    program: str
    model: str
    input: str

    @classmethod
    def of(cls, roots: dict[str, bytes]) -> Roots:
        return cls(**{name: hex0x(root) for name, root in roots.items()})


class OperandOut(BaseModel):
    slot: int
    root: str = Field(description="The operand's value root O_j")


class NodeOut(BaseModel):
    """A node run's node: the header the registry writes (i, n, the slots) and the operands' value roots."""

    index: int
    count: int
    operands: list[OperandOut]
    header_root: str = Field(description="Hd: the root of the node header region")

    @classmethod
    def of(cls, node: NodeSpec | None) -> NodeOut | None:
        if node is None:
            return None
        return cls(
            index=node.header.node,
            count=node.header.node_count,
            operands=[
                OperandOut(slot=slot, root=hex0x(root)) for slot, root in zip(node.header.slots, node.operand_roots)
            ],
            header_root=hex0x(node.header.root),
        )


class LeafProofOut(BaseModel):
    """A 32-byte leaf of the output region, its index there and its siblings inside the region."""

    leaf: str
    index: int
    siblings: list[str] = Field(min_length=REGION_HEIGHT, max_length=REGION_HEIGHT, description="Bottom first")

    @classmethod
    def of(cls, proof: LeafProof) -> LeafProofOut:
        return cls(leaf=hex0x(proof.leaf), index=proof.index, siblings=[hex0x(s) for s in proof.siblings])


class OutputProofOut(BaseModel):
    """The argument of the registry's finalizeMalformed: the output region's length leaf, a leaf holding a
    nonzero byte after the output (malformed_output only), and the region's siblings in memory."""

    region_siblings: list[str] = Field(min_length=SIBLING_COUNT, max_length=SIBLING_COUNT)
    first: LeafProofOut
    second: LeafProofOut

    @classmethod
    def of(cls, proof: OutputProof) -> OutputProofOut:
        return cls(
            region_siblings=[hex0x(s) for s in proof.region_siblings],
            first=LeafProofOut.of(proof.first),
            second=LeafProofOut.of(proof.second),
        )


ResultKindName = Literal[tuple(kind.label for kind in ResultKind if kind != ResultKind.NONE)]


class ResultOut(BaseModel):
    steps: int
    exited: bool
    exit_code: int
    kind: ResultKindName = Field(  # type: ignore[valid-type]
        description="The registry's result kind: output, step_limit_reached, malformed_output or output_too_large"
    )
    final_state: str = Field(description="The 190-byte state encoding")
    final_state_hash: str
    output: str = Field(
        description="The output's bytes (empty unless the kind is output). A node run's is the node's value when "
        "it fits the output cap (65536 bytes); a larger value is output_too_large, its root in output_root"
    )
    output_root: str | None = Field(
        default=None,
        description="The output region's root in the final memory (null if the run did not exit): for a node run "
        "that exits 0, the node's value root V, which the link checks",
    )
    output_siblings: list[str] = Field(
        min_length=SIBLING_COUNT, max_length=SIBLING_COUNT, description="Nodes 19, 8, 5, 3 of the final memory"
    )
    output_proof: OutputProofOut | None = Field(
        default=None, description="For malformed_output and output_too_large: the proof finalizeMalformed takes"
    )
    stdout: str
    stderr: str


class ExecutionOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": EXAMPLE_ID,
                    "status": "done",
                    "steps_done": 1953757,
                    "step_limit": 1 << 30,
                    "roots": {"program": EXAMPLE_ROOT, "model": EXAMPLE_ROOT, "input": EXAMPLE_ROOT},
                    "node": None,
                    "initial_state_hash": EXAMPLE_ROOT,
                    "result": {
                        "steps": 1953757,
                        "exited": True,
                        "exit_code": 0,
                        "kind": "output",
                        "final_state": "0x" + "00" * 190,
                        "final_state_hash": EXAMPLE_ROOT,
                        "output": "0x00000007",
                        "output_root": EXAMPLE_ROOT,
                        "output_siblings": [EXAMPLE_ROOT] * SIBLING_COUNT,
                        "output_proof": None,
                        "stdout": "",
                        "stderr": "",
                    },
                    "error": None,
                }
            ]
        }
    )

    id: str
    status: Status
    steps_done: int
    step_limit: int
    roots: Roots
    node: NodeOut | None = Field(default=None, description="A node run's node; null for a whole run")
    initial_state_hash: str = Field(
        description="The start state: a whole run's the request's, a node run's the one the registry builds at the link"
    )
    result: ResultOut | None
    error: str | None

    @classmethod
    def of(cls, job: Job) -> ExecutionOut:
        return cls(
            id=hex0x(job.spec.id),
            status=job.status,
            steps_done=job.steps_done,
            step_limit=job.spec.step_limit,
            roots=Roots.of(job.execution.region_roots()),
            node=NodeOut.of(job.spec.node),
            initial_state_hash=hex0x(job.execution.initial_state.hash),
            result=None if job.claim is None else _result(job),
            error=job.error,
        )


def _result(job: Job) -> ResultOut:
    claim, result = job.claim, job.result
    assert claim is not None and result is not None
    return ResultOut(
        steps=claim.steps,
        exited=claim.exited,
        exit_code=claim.state.exit_code,
        kind=claim.kind.label,
        final_state=hex0x(claim.state_data),
        final_state_hash=hex0x(claim.hash),
        output=hex0x(claim.output),
        output_root=None if job.output_root is None else hex0x(job.output_root),
        output_siblings=[hex0x(sibling) for sibling in claim.siblings],
        output_proof=None if claim.proof is None else OutputProofOut.of(claim.proof),
        stdout=result.stdout.decode(errors="replace"),
        stderr=result.stderr.decode(errors="replace"),
    )


class StatesOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"hashes": [EXAMPLE_ROOT]}]})

    hashes: list[str]


class ProofOut(BaseModel):
    """The witness of one step: the arguments of MIPS.step (pre_state, proof) and what it must return."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "step": 1000,
                    "pre_state": "0x" + "00" * 190,
                    "pre_state_hash": EXAMPLE_ROOT,
                    "proof": "0x" + "00" * 1792,
                    "data_address": None,
                    "post_state_hash": EXAMPLE_ROOT,
                }
            ]
        }
    )

    step: int
    pre_state: str
    pre_state_hash: str
    proof: str = Field(description="Instruction proof then data proof, 1792 bytes")
    data_address: int | None = Field(description="The aligned address of the step's one data access, if any")
    post_state_hash: str

    @classmethod
    def of(cls, witness: StepWitness) -> ProofOut:
        return cls(**witness.to_json())


class GoldenOut(BaseModel):
    """The initial state of the execution: the seed's --outputGolden."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "initial_state": "0x" + "00" * 190,
                    "initial_state_hash": EXAMPLE_ROOT,
                    "roots": {"program": EXAMPLE_ROOT, "model": EXAMPLE_ROOT, "input": EXAMPLE_ROOT},
                }
            ]
        }
    )

    initial_state: str
    initial_state_hash: str
    roots: Roots
    node: NodeOut | None = Field(default=None, description="A node run's node; null for a whole run")

    @classmethod
    def of(cls, job: Job) -> GoldenOut:
        state = job.execution.initial_state
        return cls(
            initial_state=hex0x(state.encode()),
            initial_state_hash=hex0x(state.hash),
            roots=Roots.of(job.execution.region_roots()),
            node=NodeOut.of(job.spec.node),
        )


class ProgramOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "inference/inference",
                    "root": EXAMPLE_ROOT,
                    "entry": 4194304,
                    "default": True,
                    "kind": "whole_run",
                }
            ]
        }
    )

    name: str
    root: str
    entry: int
    default: bool
    kind: Literal["whole_run", "graph_nodes"] = Field(
        description="whole_run: runs whole models (requests without a node); graph_nodes: the node program, for "
        "node runs (docs/two-phase.md)"
    )

    @classmethod
    def of(cls, program: KnownProgram, default: bool) -> ProgramOut:
        return cls(
            name=program.name, root=hex0x(program.root), entry=program.entry, default=default, kind=program.kind_label
        )
