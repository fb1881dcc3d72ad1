"""Asking for an inference: everything checked before anything is sent, then one requestInference.

The submitter's POST /inference-requests and `opml request` both come here: the model (by on-chain
id or by root M) must be registered and its file obtainable; the input must be what the model reads
(its byte length; pixel values 0-255 for image models; float32 numbers for float models, sent
big-endian; or a text the packaged tokenizer turns into the token ids and mask a text model reads);
the fee and step limit must be within bounds, a step limit below the least its model's run can take
is refused (it could only end at the limit, with no result, and still pay its fee), and a request
that gives no step limit gets one that covers its model's run. Only then is the transaction sent,
and the request id read from its event.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np
from web3.logs import DISCARD

from .chain.client import TransactionManager
from .chain.registry import Registry
from .errors import BadInput, NotFound
from .models import minilm
from .models.formats import GRAPH_MAGIC, Graph, InputType, Op, parse_model
from .models.summary import summarize

# VM steps per multiply-add of a model's linear, matmul and conv2d layers, rounded up from the 95.4 that
# all-MiniLM-L6-v2 takes (16.32e9 steps for 171M multiply-adds, docs/benchmarks.md): nearly all of a large
# model's steps are its dot products (opml_dot, guest/inference/dot.c).
STEPS_PER_MULTIPLY_ADD = 96
# Steps per output element of a node without a dot product (softmax, erf, layernorm: the costliest elementwise ops
# of the graph format, with their soft-float exp and division), and the node program's work before its node.
STEPS_PER_ELEMENT = 2_000
NODE_RUN_OVERHEAD_STEPS = 2_000_000
# The fewest VM steps a multiply-add of those layers can take: a lower bound, so that a request is refused
# only when its run surely cannot end within its step limit. Measured (the inference program, marginal cost
# per multiply-add of a LINEAR and a CONV2D layer over operands of every kind: random, random bits, zeros,
# infinities, NaN, huge, powers of two, cancelling): a dot product's multiply-add takes 90 to 145 steps, a
# convolution's 185 to 232; 64 leaves a third of the cheapest for paths not measured.
MIN_STEPS_PER_MULTIPLY_ADD = 64
# What an image's channels can be: gray, RGB, RGBA. A float32 model with an input [C, H, W] of these reads pixels.
IMAGE_CHANNELS = (1, 3, 4)


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
    if root in registered:
        return registered[root]
    # registered a moment ago, before the agent's index read its event: the newest registrations, from the chain
    newest = registry.count("model")
    for model_id in range(newest, max(registered.values(), default=0), -1):
        if registry.model(model_id).root == root:
            return model_id
    raise NotFound(f"no model with root {model} is registered on-chain (register it with the converter)")


def is_image_model(graph: Graph) -> bool:
    """A model that reads pixels: any u8 model (as the seed's: the pixel bytes themselves), or a float32 model
    whose input is an image, [C, H, W] with 1, 3 or 4 channels (given the pixel values as floats)."""
    if graph.input_type == InputType.U8:
        return True
    shape = graph.input_shape
    return graph.input_type == InputType.F32 and len(shape) == 3 and shape[0] in IMAGE_CHANNELS


def _describe_input(graph: Graph) -> str:
    return f"{graph.input_type.name.lower()} {'x'.join(map(str, graph.input_shape))}"


def _check_count(given: int, what: str, graph: Graph) -> None:
    count = math.prod(graph.input_shape)
    if given != count:
        raise BadInput(f"the model reads {count:,} values ({_describe_input(graph)}); got {given:,} {what}")


def input_from_pixels(pixels: list[int], model_file: bytes | Graph) -> bytes:
    """Pixel values (0-255) as the input of an image model: the bytes themselves for a u8 model, and for a
    float32 image model the same values as big-endian float32 (0.0 to 255.0, not scaled: a model trained
    on scaled or normalized pixels is given exactly what it expects as input_f32)."""
    graph = model_file if isinstance(model_file, Graph) else parse_model(model_file)
    if not is_image_model(graph):
        raise BadInput(
            f"this model does not read pixels (its input is {_describe_input(graph)}, not an image [C, H, W] of "
            f"1, 3 or 4 channels): send its input as input_f32 (numbers) or input_base64 (bytes)"
        )
    if any(not 0 <= value <= 255 for value in pixels):
        raise BadInput("pixel values must be between 0 and 255")
    _check_count(len(pixels), "pixels", graph)
    if graph.input_type == InputType.U8:
        return bytes(pixels)
    return np.asarray(pixels, dtype=">f4").tobytes()


def input_from_f32(values: list[float], model_file: bytes | Graph) -> bytes:
    """Numbers as the input of a float32 model: big-endian float32, what the inference program reads (numpy's
    default is little-endian: bytes from `array.tobytes()` would be read as other numbers)."""
    graph = model_file if isinstance(model_file, Graph) else parse_model(model_file)
    if graph.input_type != InputType.F32:
        hint = "pixels (0-255)" if graph.input_type == InputType.U8 else "text, or input_base64"
        raise BadInput(f"this model's input is {_describe_input(graph)}, not float32: send {hint}")
    _check_count(len(values), "numbers", graph)
    return f32_bytes(values)


def f32_bytes(values: list[float]) -> bytes:
    """Numbers as big-endian float32; each must be finite in float32 (NaN, infinities and numbers beyond
    float32's range are refused, not sent as something else)."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise BadInput("input_f32 must be a list of numbers") from None
    if array.ndim != 1:
        raise BadInput("input_f32 must be a flat list of numbers (C, H, W order for an image)")
    with np.errstate(over="ignore", invalid="ignore"):
        converted = array.astype(">f4")
    bad = np.flatnonzero(~np.isfinite(converted))
    if bad.size:
        raise BadInput(
            f"input_f32 must be finite float32 numbers (at most {float(np.finfo(np.float32).max):.4g} in size); "
            f"value {int(bad[0])} is {values[int(bad[0])]!r}"
        )
    return converted.tobytes()


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
    return _multiply_adds(graph, padding_counts=True)


def _multiply_adds(graph: Graph, padding_counts: bool) -> int:
    return sum(_node_multiply_adds(graph, padding_counts))


def _node_multiply_adds(graph: Graph, padding_counts: bool) -> list[int]:
    """Each node's multiply-adds (0 for an op without a dot product)."""
    counts = []
    for layer, node in zip(summarize(graph).layers, graph.nodes, strict=True):
        outputs = math.prod(layer.output_shape)
        count = 0
        if node.op == Op.LINEAR:
            count = outputs * graph.tensors[node.tensors[0]].shape[1]  # weight [out, in]
        elif node.op == Op.MATMUL:
            count = outputs * layer.input_shapes[0][-1]
        elif node.op == Op.CONV2D:
            weight = graph.tensors[node.tensors[0]]  # [oc, c, kh, kw]
            if padding_counts:
                count = outputs * (weight.size // weight.shape[0])
            else:
                channels, height, width = layer.input_shapes[0]
                stride_h, stride_w, pad_h, pad_w = node.params[:4]
                rows = _terms(height, weight.shape[2], stride_h, pad_h, layer.output_shape[1])
                columns = _terms(width, weight.shape[3], stride_w, pad_w, layer.output_shape[2])
                count = weight.shape[0] * channels * rows * columns
        counts.append(count)
    return counts


def largest_node_steps(graph: Graph) -> int:
    """An estimate of the steps of the node program's longest run of one node (the two-phase game's step limit
    bounds each node's run): its multiply-adds at STEPS_PER_MULTIPLY_ADD, or its output elements at
    STEPS_PER_ELEMENT for an op without a dot product, plus what the program does before any node (reading the
    model's header and the node's operands)."""
    layers = summarize(graph).layers
    per_node = [
        max(macs * STEPS_PER_MULTIPLY_ADD, math.prod(layer.output_shape) * STEPS_PER_ELEMENT)
        for macs, layer in zip(_node_multiply_adds(graph, padding_counts=True), layers, strict=True)
    ]
    return max(per_node, default=0) + NODE_RUN_OVERHEAD_STEPS


def estimated_steps(graph: Graph) -> int:
    return multiply_adds(graph) * STEPS_PER_MULTIPLY_ADD


def uses_two_phase(model_file: bytes) -> bool:
    """Whether a model's requests play the two-phase game by default: a graph-format model does (its claims are
    computed natively, a dispute runs one node); the seed's format keeps the whole run in the VM (its tutorial)."""
    return len(model_file) >= 4 and struct.unpack(">I", model_file[:4])[0] == GRAPH_MAGIC


def default_step_limit(graph: Graph, configured: int, ceiling: int, per_node: bool = False) -> int:
    """The step limit of a request that gives none: twice the model's estimated run (a claim at the limit is
    "not exited", no result), or for the two-phase game (`per_node`) twice its largest node's run (a node that
    cannot end within the limit cannot be linked); at least `configured`, at most `ceiling` (the chain's
    maxStepLimit, or less if this submitter serves less). A model whose estimate is above the ceiling is
    refused here: its run could not end within any limit the request may have."""
    needed = largest_node_steps(graph) if per_node else estimated_steps(graph)
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
            f"the model reads {graph.input_bytes} bytes of input ({_describe_input(graph)}); got {len(input)}"
        )
    if graph.input_type == InputType.F32:
        values = np.frombuffer(input, dtype=">f4")
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise BadInput(
                f"the input holds NaN or infinity read as the model reads it, big-endian float32 (value {int(bad[0])}); "
                "little-endian bytes (numpy's default) read so are other numbers: send the numbers as input_f32, "
                "or the bytes of array.astype('>f4')"
            )


def executed_multiply_adds(graph: Graph) -> int:
    """The multiply-adds the inference program surely executes: those of `multiply_adds`, less the terms a
    padded convolution skips at the borders (the guest adds no term for a padding position)."""
    return _multiply_adds(graph, padding_counts=False)


def _terms(size: int, kernel: int, stride: int, pad: int, outputs: int) -> int:
    """Over the outputs along one axis, the kernel positions that fall inside the input (not on padding)."""
    return sum(1 for o in range(outputs) for k in range(kernel) if 0 <= o * stride + k - pad < size)


def least_steps(graph: Graph) -> int:
    """A lower bound on the steps of the model's run in the inference program, whatever its input."""
    return executed_multiply_adds(graph) * MIN_STEPS_PER_MULTIPLY_ADD


def check_step_limit_covers_run(graph: Graph, step_limit: int, allow_below: bool = False) -> None:
    """Refuse a step limit below the least the model's run takes: such a request can only end at its limit,
    "final" with no result, and pays its fee for it. `allow_below` lets it through (a test of the limit)."""
    least = least_steps(graph)
    if step_limit < least and not allow_below:
        raise BadInput(
            f"this model needs at least {least:,} steps (about {estimated_steps(graph):,}: "
            f"{multiply_adds(graph):,} multiply-adds), and step_limit is {step_limit:,}: its run would stop at the "
            "limit with no result and still pay the fee. Leave step_limit out (the service sizes it for the "
            "model), give more, or set allow_step_limit_below_run to send it anyway",
            details={"least_steps": least, "estimated_steps": estimated_steps(graph), "step_limit": step_limit},
        )


# --- language models (OPLM files: greedy generations, docs/llm-graph.md) ------------------------------------


def is_language_model(model_file: bytes) -> bool:
    """An OPLM model file: its requests are generations, played with the LLM node program."""
    from .models.llm.graph import is_llm_model

    return is_llm_model(model_file)


def generation_input(
    model,
    *,
    prompt: str | None = None,
    messages: list[dict[str, str]] | None = None,
    input: bytes | None = None,
    max_new_tokens: int,
) -> bytes:
    """The input of a generation request to a language model (`model`: its parsed OPLM file): a prompt continued
    as is, chat messages rendered with the model's chat template (the assistant's turn opened), or the input's
    bytes as given (big-endian u32 max_new_tokens, prompt length, ids: then `max_new_tokens` is theirs).
    BadInput (422) for a prompt longer than the context, a tokenizer that does not speak the model's vocabulary,
    an input the LLM node program would refuse."""
    from .models.llm.requests import chat_input, read_request, text_input, tokenizer_for

    config = model.config
    if input is not None:
        read_request(input, config)  # BadGeneration (a BadInput) says what is wrong
        return input
    tokenizer = tokenizer_for(config)
    if tokenizer is None:
        raise BadInput(
            f"this language model's vocabulary ({config.vocab:,} tokens, bos {config.bos}, eos {config.eos}) is not "
            "the packaged tokenizer's (SmolLM2's): send its input as input_base64 (big-endian u32 max_new_tokens, "
            "the prompt's length, then its token ids)"
        )
    if messages is not None:
        data = chat_input(messages, max_new_tokens, config, tokenizer)
    else:
        if not (prompt or "").strip():
            raise BadInput("prompt is empty: give some text to continue")
        try:
            prompt.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (JSON can carry one)
            raise BadInput("prompt is not valid Unicode (it has a lone surrogate)") from None
        data = text_input(prompt, max_new_tokens, config, tokenizer)
    return data  # text_input and chat_input refuse a prompt that exceeds the context, saying how many tokens fit


def generation_step_limit(model, input: bytes, ceiling: int, chain_limit: int) -> int:
    """The step limit of a generation request: a quarter over the estimate of its longest node run
    (opml.models.llm.steps), since for the two-phase game the step limit bounds each node's run. Refused (422)
    when that exceeds `ceiling` (the chain's maxStepLimit, or less if this submitter serves less), saying what
    deployment the prompt needs."""
    from .models.llm.requests import read_request
    from .models.llm.steps import largest_node_steps, longest_prompt_for, step_limit_for

    request, _ = read_request(input, model.config)
    prompt, new = len(request.prompt), request.max_new_tokens
    needed = step_limit_for(model, prompt, new)
    if needed > ceiling:
        fits = longest_prompt_for(model, ceiling, new)
        raise BadInput(
            f"a prompt of {prompt} tokens makes node runs of about {largest_node_steps(model, prompt, new):.3g} VM "
            f"steps, so its requests need a step limit of {needed:,}; requests here may allow at most {ceiling:,} "
            f"(prompts of up to {fits} tokens). Deploy with maxStepLimit {_power_of_two_above(needed)} or more "
            "(`opml up --llm` deploys with 2^33: prompts of up to 83 tokens), or send a shorter prompt",
            details={"prompt_tokens": prompt, "step_limit_needed": needed, "max_step_limit": ceiling,
                     "chain_max_step_limit": chain_limit, "longest_prompt": fits},
        )  # fmt: skip
    return needed


def check_generation_step_limit(model, input: bytes, step_limit: int) -> None:
    """Refuse a generation's step_limit below the estimate of its longest node run: a dispute reaching that node
    could not link it, and the honest claim would lose its game there."""
    from .models.llm.requests import read_request
    from .models.llm.steps import largest_node_steps

    request, _ = read_request(input, model.config)
    longest = largest_node_steps(model, len(request.prompt), request.max_new_tokens)
    if step_limit < longest:
        raise BadInput(
            f"step_limit is {step_limit:,}, but this generation's longest node run takes about {longest:,} steps (a "
            "generation request's step limit bounds each node's run, and a node that cannot end within it cannot be "
            "linked): leave step_limit out (the service sizes it), or give more",
            details={"step_limit": step_limit, "longest_node_steps": longest},
        )


def _power_of_two_above(value: int) -> str:
    return f"2^{max(value - 1, 1).bit_length()}"


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
