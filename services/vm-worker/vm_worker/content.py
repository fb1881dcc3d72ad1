"""What executions are made of, kept by content: model files, inputs and execution specs.

Everything is keyed by a root or an id, so replicas sharing the store directory agree on
every key, and a replica that never saw an execution rebuilds it from its spec. A model
referenced by root comes from the store, else from the converter, and is checked against
its root before it is used or kept.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from opml.errors import BadInput, NotFound
from opml.game.remote import execution_id
from opml.models.formats import model_root
from opml.service.clients import ServiceClient
from opml.store import BlobStore

_SPEC = struct.Struct(">32s32s32sQ")


@dataclass(frozen=True)
class ExecutionSpec:
    """An execution's identity: the roots P, M, I of its initial memory and its step limit."""

    program: bytes
    model: bytes
    input: bytes
    step_limit: int

    @property
    def id(self) -> bytes:
        return execution_id(self.program, self.model, self.input, self.step_limit)

    def encode(self) -> bytes:
        return _SPEC.pack(self.program, self.model, self.input, self.step_limit)

    @classmethod
    def decode(cls, data: bytes) -> ExecutionSpec:
        return cls(*_SPEC.unpack(data))


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

    def keep(self, spec: ExecutionSpec, model: bytes, input: bytes) -> None:
        """Store what it takes to rebuild the execution (the blobs first, so a spec never dangles)."""
        self.models.put(spec.model.hex(), model)
        self.inputs.put(spec.input.hex(), input)
        self.specs.put(spec.id.hex(), spec.encode())

    def spec(self, execution_id: bytes) -> ExecutionSpec:
        try:
            return ExecutionSpec.decode(self.specs.get(execution_id.hex()))
        except NotFound:
            raise NotFound(f"no execution 0x{execution_id.hex()}") from None

    def stored_model(self, root: bytes) -> bytes:
        return self.models.get(root.hex())

    def stored_input(self, root: bytes) -> bytes:
        return self.inputs.get(root.hex())
