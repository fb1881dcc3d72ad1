"""What executions are made of, kept by content: model files, inputs (and node runs' operand values) and
execution specs.

Everything is keyed by a root or an id, so replicas sharing the store directory agree on
every key, and a replica that never saw an execution rebuilds it from its spec. A model
referenced by root comes from the store, else from the converter, and is checked against
its root before it is used or kept.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from opml.errors import BadInput, NotFound
from opml.game.remote import execution_id
from opml.models.formats import model_root
from opml.service.clients import ServiceClient
from opml.store import BlobStore
from opml.vm.node_run import NodeHeader

_SPEC = struct.Struct(">32s32s32sQ")
_HEADER = struct.Struct(">3I")
ROOT_BYTES = 32


@dataclass(frozen=True)
class NodeSpec:
    """A node run's part of its identity: the node header (i, n, the operand slots) and the operands' value
    roots, in header order."""

    header: NodeHeader
    operand_roots: tuple[bytes, ...]

    def __post_init__(self) -> None:
        if len(self.operand_roots) != len(self.header.slots):
            raise ValueError(f"{len(self.header.slots)} operand slots but {len(self.operand_roots)} roots")

    def encode(self) -> bytes:
        return self.header.to_bytes() + b"".join(self.operand_roots)

    @classmethod
    def decode(cls, data: bytes) -> NodeSpec:
        node, count, k = _HEADER.unpack_from(data)
        slots = struct.unpack_from(f">{k}I", data, _HEADER.size)
        at = _HEADER.size + 4 * k
        roots = tuple(data[at + ROOT_BYTES * j : at + ROOT_BYTES * (j + 1)] for j in range(k))
        if len(data) != at + ROOT_BYTES * k:
            raise ValueError(f"a node spec of {len(data)} bytes for {k} operands")
        return cls(NodeHeader(node, count, slots), roots)


@dataclass(frozen=True)
class ExecutionSpec:
    """An execution's identity: the roots P, M, I of its initial memory and its step limit; for a node run, also
    its node header and operand roots (the rest of its initial memory)."""

    program: bytes
    model: bytes
    input: bytes
    step_limit: int
    node: NodeSpec | None = None

    @property
    def id(self) -> bytes:
        if self.node is None:
            return execution_id(self.program, self.model, self.input, self.step_limit)
        return execution_id(
            self.program, self.model, self.input, self.step_limit, self.node.header, self.node.operand_roots
        )

    def encode(self) -> bytes:
        whole = _SPEC.pack(self.program, self.model, self.input, self.step_limit)
        return whole if self.node is None else whole + self.node.encode()

    @classmethod
    def decode(cls, data: bytes) -> ExecutionSpec:
        node = None if len(data) == _SPEC.size else NodeSpec.decode(data[_SPEC.size :])
        return cls(*_SPEC.unpack_from(data), node=node)


class ContentStore:
    def __init__(self, root: Path, converter: ServiceClient | None):
        self.models = BlobStore(root / "models")
        self.inputs = BlobStore(root / "inputs")
        self.specs = BlobStore(root / "executions")
        self.converter = converter

    def model(self, root: bytes) -> bytes:
        """The model file whose root is M: kept here, else fetched from the converter and checked."""
        key = root.hex()
        if key in self.models:
            return self.models.get(key)
        if self.converter is None:
            raise NotFound(f"no model 0x{key} in the store, and no converter is configured to fetch it from")
        data = self.converter.get(f"/models/0x{key}/file").content
        actual = model_root(data)
        if actual != root:
            raise BadInput(f"the converter's file for model 0x{key} has root 0x{actual.hex()}: refused")
        self.models.put(key, data)
        return data

    def keep(self, spec: ExecutionSpec, model: bytes, input: bytes, operands: Sequence[bytes] = ()) -> None:
        """Store what it takes to rebuild the execution (the blobs first, so a spec never dangles). A node run's
        operand values go with the inputs: both are keyed by the root of a 2^28-byte region holding them."""
        self.models.put(spec.model.hex(), model)
        self.inputs.put(spec.input.hex(), input)
        if spec.node is not None:
            for root, value in zip(spec.node.operand_roots, operands, strict=True):
                self.inputs.put(root.hex(), value)
        self.specs.put(spec.id.hex(), spec.encode())

    def spec(self, execution_id: bytes) -> ExecutionSpec:
        try:
            return ExecutionSpec.decode(self.specs.get(execution_id.hex()))
        except NotFound:
            raise NotFound(f"no execution 0x{execution_id.hex()}") from None

    def stored_model(self, root: bytes) -> bytes:
        return self.models.get(root.hex())

    def stored_input(self, root: bytes) -> bytes:
        """An input, or a node run's operand value, by its region root."""
        return self.inputs.get(root.hex())
