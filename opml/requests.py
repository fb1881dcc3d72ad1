"""Asking for an inference: everything checked before anything is sent, then one requestInference.

The submitter's POST /inference-requests and `opml request` both come here: the model (by on-chain
id or by root M) must be registered and its file obtainable; the input must be what the model reads
(its byte length, pixel values 0-255 for image models, or a text the packaged tokenizer turns into
the token ids and mask a text model reads); the fee and step limit must be within bounds, and a
request that gives no step limit gets one that covers its model's run. Only then is the transaction
sent, and the request id read from its event.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from web3.logs import DISCARD

from .chain.client import TransactionManager
from .chain.registry import Registry
from .errors import BadInput, NotFound
from .models import minilm
from .models.formats import Graph, InputType, Op, parse_model
from .models.summary import summarize

# VM steps per multiply-add of a model's linear, matmul and conv2d layers, rounded up from the 95.4 that
# all-MiniLM-L6-v2 takes (16.32e9 steps for 171M multiply-adds, docs/benchmarks.md): nearly all of a large
# model's steps are its dot products (opml_dot, guest/inference/dot.c).
STEPS_PER_MULTIPLY_ADD = 96


@dataclass(frozen=True)
class SentRequest:
    request_id: int
    tx_hash: bytes
    gas_used: int


def resolve_model_id(registry: Registry, model: int | str, registered: dict[bytes, int]) -> int:
    """The on-chain id of a model given by id or by root (0x-hex); `registered` maps roots to ids."""
    if isinstance(model, int) or (isinstance(model, str) and model.isdigit()):
        model_id = int(model)
        registry.model(model_id)  # NotFound if it is not registered
        return model_id
    try:
        root = bytes.fromhex(str(model).removeprefix("0x"))
    except ValueError:
        raise BadInput(f"model must be an on-chain id or a root (0x and 64 hex digits), not {model!r}") from None
    if len(root) != 32:
        raise BadInput(f"model must be an on-chain id or a root (0x and 64 hex digits), not {model!r}")
    if root not in registered:
        raise NotFound(f"no model with root {model} is registered on-chain (register it with the converter)")
    return registered[root]


def input_from_pixels(pixels: list[int], model_file: bytes | Graph) -> bytes:
    """Pixel values (0-255) as the input of an image model."""
    graph = model_file if isinstance(model_file, Graph) else parse_model(model_file)
    if graph.input_type != InputType.U8:
        raise BadInput("this model does not read pixels (its input is float32): send the input as bytes")
    if any(not 0 <= value <= 255 for value in pixels):
        raise BadInput("pixel values must be between 0 and 255")
    return bytes(pixels)


def input_from_text(text: str, graph: Graph) -> bytes:
    """A text as the input of a text model: token ids then the attention mask (opml.models.minilm), the
    tokenizer run here, outside the VM. A text longer than the model reads is refused, not cut."""
    length = minilm.text_length(graph)
    if length is None:
        raise BadInput(
            f"this model does not read text (its input is {graph.input_type.name.lower()} "
            f"{'x'.join(map(str, graph.input_shape))}; a text model reads token ids and a mask, [2, L] int32, "
            f"from a table of the tokenizer's {minilm.VOCABULARY_SIZE} tokens): send its input as bytes"
        )
    return minilm.encode_text_exactly(text, length)


def is_text_model(graph: Graph) -> bool:
    """A model the packaged tokenizer feeds: its output is a sentence embedding, not class scores."""
    return minilm.text_length(graph) is not None


def multiply_adds(graph: Graph) -> int:
    """The multiply-adds of a model's linear, matmul and conv2d layers (shapes from its summary)."""
    total = 0
    for layer, node in zip(summarize(graph).layers, graph.nodes, strict=True):
        outputs = math.prod(layer.output_shape)
        if node.op == Op.LINEAR:
            total += outputs * graph.tensors[node.tensors[0]].shape[1]  # weight [out, in]
        elif node.op == Op.MATMUL:
            total += outputs * layer.input_shapes[0][-1]
        elif node.op == Op.CONV2D:
            weight = graph.tensors[node.tensors[0]]  # [oc, c, kh, kw]
            total += outputs * (weight.size // weight.shape[0])
    return total


def estimated_steps(graph: Graph) -> int:
    return multiply_adds(graph) * STEPS_PER_MULTIPLY_ADD


def default_step_limit(graph: Graph, configured: int, ceiling: int) -> int:
    """The step limit of a request that gives none: twice the model's estimated run (a claim at the limit is
    "not exited", no result), at least `configured`, at most `ceiling` (the chain's maxStepLimit, or less
    if this submitter serves less). A model whose estimate is above the ceiling is refused here: its run
    could not end within any limit the request may have."""
    needed = estimated_steps(graph)
    if needed > ceiling:
        raise BadInput(
            f"this model needs about {needed:.2e} steps ({multiply_adds(graph):,} multiply-adds) and requests "
            f"here may allow at most {ceiling:,}: deploy with a larger maxStepLimit (docs/contracts.md), or give "
            "step_limit"
        )
    return min(ceiling, max(configured, 2 * needed))


def check_input(input: bytes, model_file: bytes | Graph) -> None:
    graph = model_file if isinstance(model_file, Graph) else parse_model(model_file)
    if len(input) != graph.input_bytes:
        raise BadInput(
            f"the model reads {graph.input_bytes} bytes of input ({graph.input_type.name.lower()} "
            f"{'x'.join(map(str, graph.input_shape))}); got {len(input)}"
        )


def check_bounds(registry: Registry, fee: int, step_limit: int, balance: int) -> None:
    limit = registry.parameters.max_step_limit
    if not 1 <= step_limit <= limit:
        raise BadInput(f"step_limit must be between 1 and {limit}, not {step_limit}")
    if fee < 0:
        raise BadInput("fee cannot be negative")
    if fee >= balance:
        raise BadInput(f"the requester's balance ({balance} wei) cannot pay a fee of {fee} wei and the gas")


def send_request(
    registry: Registry, tx: TransactionManager, program_id: int, model_id: int, input: bytes, fee: int, step_limit: int
) -> SentRequest:
    """Send requestInference; the request id comes from the InferenceRequested event of the receipt."""
    sent = tx.send(registry.request_inference(program_id, model_id, input, step_limit), value=fee)
    receipt = registry.w3.eth.get_transaction_receipt(sent.tx_hash)
    events = registry.contract.events.InferenceRequested().process_receipt(receipt, errors=DISCARD)
    return SentRequest(events[0]["args"]["requestId"], sent.tx_hash, sent.gas_used)
