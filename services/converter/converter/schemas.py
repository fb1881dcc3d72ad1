"""What the converter's API takes and answers, with the examples Swagger UI shows (the seed MNIST model)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field

from opml.models.ingest import FileFormat, SourceFormat

from .db import ModelRecord

SEED_ROOT = "0xf1687898013ba7826844ad63f48651f07a47bd05026787aa674c5e579bb7dea0"
SEED_FILE_HASH = "0x48a7a75e7ec1df72042571e4eecf93fc340d657751d9c5ad55fd44543457b8c5"

ModelId = Annotated[
    str,
    Path(
        description="The model's root M (the Merkle root of the VM's model region holding the file), 0x-hex",
        pattern=r"^0x[0-9a-fA-F]{64}$",
        examples=[SEED_ROOT],
    ),
]


class UploadFormat(StrEnum):
    """What the uploaded file is; `auto` tells by its first bytes."""

    AUTO = "auto"
    SEED = "seed"
    GRAPH = "graph"
    STATE_DICT = "state_dict"
    ONNX = "onnx"
    OPLM = "oplm"
    GGUF = "gguf"

    @property
    def source(self) -> SourceFormat | None:
        return None if self == UploadFormat.AUTO else SourceFormat(self.value)


class LayerOut(BaseModel):
    index: int = Field(description="Position in the graph; its output is value index + 1")
    op: str = Field(description="The op's name, as docs/models.md lists them (linear, conv2d, layernorm, matmul, ...)")
    inputs: list[int] = Field(description="Value ids it reads: 0 is the model's input, k the output of layer k-1")
    input_shapes: list[list[int]]
    output_shape: list[int]
    parameters: int = Field(description="Elements of its weight and bias")
    attributes: dict[str, int] = Field(description="Kernel sizes, strides and paddings")


class SummaryOut(BaseModel):
    input_type: Literal["u8", "f32", "i32"] = Field(
        description="u8: one byte per value (0-255); f32: big-endian float32; i32: big-endian int32 (token ids)"
    )
    input_shape: list[int]
    input_bytes: int = Field(description="Length of an input file for this model")
    output_size: int = Field(description="Number of scores the model writes")
    parameter_count: int
    layers: list[LayerOut]


SEED_SUMMARY = {
    "input_type": "u8",
    "input_shape": [784],
    "input_bytes": 784,
    "output_size": 10,
    "parameter_count": 15910,
    "layers": [
        {"index": 0, "op": "linear", "inputs": [0], "input_shapes": [[784]], "output_shape": [20],
         "parameters": 15700, "attributes": {}},
        {"index": 1, "op": "relu", "inputs": [1], "input_shapes": [[20]], "output_shape": [20], "parameters": 0,
         "attributes": {}},
        {"index": 2, "op": "linear", "inputs": [2], "input_shapes": [[20]], "output_shape": [10], "parameters": 210,
         "attributes": {}},
        {"index": 3, "op": "softmax", "inputs": [3], "input_shapes": [[10]], "output_shape": [10], "parameters": 0,
         "attributes": {}},
    ],
}  # fmt: skip


class LanguageModelOut(BaseModel):
    """A language model's config (an OPLM model file, docs/llm.md): its requests are greedy generations, played
    as a fixed graph of the two-phase game (docs/llm-graph.md)."""

    layers: int
    width: int = Field(description="The embedding length")
    ffn: int = Field(description="The feed-forward length")
    heads: int
    kv_heads: int
    head_dim: int
    vocabulary: int = Field(description="Tokens in its vocabulary")
    context: int = Field(description="Positions: a prompt and its new tokens together fit in this many")
    bos: int
    eos: int = Field(description="The end-of-sequence token: a generation stops after it")
    rope_base: float
    rms_epsilon: float
    parameters: int = Field(description="Weights (a tied LM head counted once)")
    tensor_types: dict[str, int] = Field(description="Tensors by type: F32, F16, Q4_1, Q8_0")
    tokenizer: str | None = Field(
        description="smollm2: the submitter's packaged tokenizer speaks its vocabulary, so a request may be a "
        "prompt or chat messages and its answer is shown as text; null: send token ids (input_base64)"
    )


SMOLLM2_ROOT = "0x6364eb1162a80618e046ac935a356b57234a875fab33cdd3e60658594f4a2f8a"  # opml llm convert's file
SMOLLM2_EXAMPLE = {
    "layers": 30, "width": 576, "ffn": 1536, "heads": 9, "kv_heads": 3, "head_dim": 64, "vocabulary": 49152,
    "context": 8192, "bos": 1, "eos": 2, "rope_base": 100000.0, "rms_epsilon": 1e-05, "parameters": 134515008,
    "tensor_types": {"Q8_0": 1, "F32": 62, "Q4_1": 210}, "tokenizer": "smollm2",
}  # fmt: skip


class ModelOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": SEED_ROOT,
                    "root": SEED_ROOT,
                    "file_hash": SEED_FILE_HASH,
                    "size": 63684,
                    "format": "seed",
                    "source_format": "state_dict",
                    "summary": SEED_SUMMARY,
                    "onchain_model_id": 1,
                    "registry": "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512",
                    "file_url": f"http://127.0.0.1:8001/models/{SEED_ROOT}/file",
                    "created_at": "2025-11-25T15:00:00Z",
                },
                {
                    "id": SMOLLM2_ROOT,
                    "root": SMOLLM2_ROOT,
                    "file_hash": "0x8cd34b438cb3a29844091cd24e53cd4dcc54c2f77fb92f4969e3aba16ae740c4",
                    "size": 98679488,
                    "format": "oplm",
                    "source_format": "gguf",
                    "summary": None,
                    "language_model": SMOLLM2_EXAMPLE,
                    "onchain_model_id": 2,
                    "registry": "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512",
                    "file_url": f"http://127.0.0.1:8001/models/{SMOLLM2_ROOT}/file",
                    "created_at": "2025-11-25T15:05:00Z",
                },
            ]
        }
    )

    id: str = Field(description="The model's id in this API: its root M, 0x-hex")
    root: str = Field(description="Root M of the model region holding the file (what the VM and the chain use)")
    file_hash: str = Field(description="keccak256 of the model file, 0x-hex (registerModel's fileHash)")
    size: int = Field(description="Bytes of the model file")
    format: FileFormat = Field(
        description="Format of the model file: seed or graph (docs/models.md), or oplm for a language model "
        "(docs/llm.md)"
    )
    source_format: SourceFormat = Field(description="What was uploaded")
    summary: SummaryOut | None = Field(
        description="A graph's layers (seed and graph formats); null for a language model"
    )
    language_model: LanguageModelOut | None = Field(
        None, description="For a language model (format oplm): its config; null for other models"
    )
    onchain_model_id: int | None = Field(description="Its id in the registry, null until registered")
    registry: str | None = Field(description="Address of the registry that id is in")
    file_url: str = Field(description="Where to fetch the model file (the uri registered on-chain)")
    created_at: datetime

    @classmethod
    def from_record(cls, record: ModelRecord, file_url: str) -> ModelOut:
        return cls(
            id=record.root,
            root=record.root,
            file_hash=record.file_hash,
            size=record.size,
            format=record.file_format,
            source_format=record.source_format,
            summary=None if record.file_format == FileFormat.OPLM else SummaryOut.model_validate(record.summary),
            language_model=LanguageModelOut.model_validate(record.summary)
            if record.file_format == FileFormat.OPLM
            else None,
            onchain_model_id=record.onchain_model_id,
            registry=record.registry_address,
            file_url=file_url,
            created_at=record.created_at,
        )


class ModelPage(BaseModel):
    items: list[ModelOut] = Field(description="Newest first")
    total: int = Field(description="Number of models stored")
