"""Greedy generation of an OPLM model as a fixed graph of the linked two-phase game (docs/llm-graph.md).

A request's input (value 0) asks for up to M new tokens after a prompt of P token ids. Its graph is a pure
function of the model's config, P and M (guest/inference/llm_graph.c is the same arithmetic): M steps, each

    embed, per layer LAYER_NODES nodes (rms_norm, q, k, v, rope q, rope k, key cache, value cache, attention,
    o, add, rms_norm, gate, up, swiglu, down, add), the final norm of the last row, the LM head in
    `head_chunks` chunks, argmax

so `node_count = M * (LAYER_NODES * layers + head_chunks + 3)`. Step 0 is the prompt's pass (its P rows at
positions 0..P-1); step s >= 1 feeds the last token chosen, at position P + s - 1. Every node is one op of
opml/models/llm/ops.py, bit for bit guest/inference/llm_ops.c. A step whose previous token was the end of the
sequence is finished: its embedding and every node reading one of its values give FINISHED (float32 [0]), and
its argmax passes the tokens on unchanged, so the node count never depends on the tokens. The last value (the
last step's argmax) holds the generated ids, up to and including the end of the sequence.

    run = evaluate_generation(model_file, request_bytes(prompt, 32))   # every value, root, the tree
    run.final_state, run.node_count, run.tokens                        # the claim and what it says
    node_program(model_file, i, n, run.operands(i), input=...)         # the guest's checks and value, natively
"""

from __future__ import annotations

import math
import os
import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache

import numpy as np

from ...graph.native import (
    EXIT_BAD_NODE_INDEX,
    EXIT_BAD_OPERAND,
    EXIT_WRONG_NODE_COUNT,
    EXIT_WRONG_OPERANDS,
    NodeOutcome,
    NodeRefused,
)
from ...graph.run import ValueRun
from ...graph.tree import VALUE_TREE_SLOTS, ValueTree
from ...graph.values import (
    KIND_F32,
    KIND_I32,
    MAX_VALUE_BYTES,
    VALUE_HEADER_BYTES,
    encode_value,
    encoded_size,
    noncanonical,
    value_root,
)
from ...vm import layout as L
from . import ops
from .format import MAGIC, LlmConfig, LlmFormatError, parse_model
from .generate import Weights

EXIT_MODEL_TOO_LARGE = 14  # a value larger than a region holds (the inference program's code)
EXIT_BAD_GENERATION = 34  # the input is not a generation this model can run

INPUT_WORDS = 2  # max_new_tokens, prompt length: before the ids
ID_BYTES = 4
LAYER_NODES = 17
HEAD_CHUNK_WEIGHTS = 1 << 23  # weights of the LM head per node: about 1e9 VM steps (Q8_0), a few seconds
MATRIX_RANK = 2
TOKENS_RANK = 1
TOKENS_HEADER_BYTES = 12  # kind, rank, the count
MAX_NEW_TOKENS = (L.MAX_OUTPUT_BYTES - TOKENS_HEADER_BYTES) // ID_BYTES  # the output fits a result's output


class Role(IntEnum):
    """A node's role within its step; a layer's roles are contiguous, in the order they run."""

    EMBED = 0  # the step's ids -> [rows, width]
    ATTN_NORM = 1  # rms_norm(x, attn_norm)
    Q = 2  # matmul(attn_norm, attn_q)
    K = 3  # matmul(attn_norm, attn_k)
    V = 4  # matmul(attn_norm, attn_v)
    Q_ROPE = 5  # rope(q), heads
    K_ROPE = 6  # rope(k), kv heads
    K_CACHE = 7  # the previous step's key cache, then k_rope's rows
    V_CACHE = 8  # the previous step's value cache, then v's rows
    ATTENTION = 9  # attention(q_rope, k_cache, v_cache)
    O = 10  # noqa: E741 - matmul(attention, attn_output)
    ATTN_RESIDUAL = 11  # x + o
    FFN_NORM = 12  # rms_norm(attn_residual, ffn_norm)
    GATE = 13  # matmul(ffn_norm, ffn_gate)
    UP = 14  # matmul(ffn_norm, ffn_up)
    SWIGLU = 15  # swiglu(gate, up)
    DOWN = 16  # matmul(swiglu, ffn_down)
    FFN_RESIDUAL = 17  # attn_residual + down: the layer's output
    FINAL_NORM = 18  # rms_norm(the last row of the last layer's output, output_norm)
    HEAD = 19  # logits chunk c: chunk c - 1's logits, then rows of the LM head
    ARGMAX = 20  # the tokens so far: the previous step's, then the argmax of the logits


LAYER_ROLES = tuple(Role(r) for r in range(Role.ATTN_NORM, Role.FFN_RESIDUAL + 1))
assert len(LAYER_ROLES) == LAYER_NODES
MATRIX_OF = {  # a layer's products and the tensor each multiplies by
    Role.Q: "attn_q",
    Role.K: "attn_k",
    Role.V: "attn_v",
    Role.O: "attn_output",
    Role.GATE: "ffn_gate",
    Role.UP: "ffn_up",
    Role.DOWN: "ffn_down",
}


OP_OF_ROLE = {  # the op of opml/models/llm/ops.py each role computes
    Role.EMBED: "embed",
    Role.ATTN_NORM: "rms_norm",
    Role.FFN_NORM: "rms_norm",
    Role.FINAL_NORM: "rms_norm",
    **dict.fromkeys(MATRIX_OF, "matmul"),
    Role.HEAD: "matmul",
    Role.Q_ROPE: "rope",
    Role.K_ROPE: "rope",
    Role.K_CACHE: "kv_append",
    Role.V_CACHE: "kv_append",
    Role.ATTENTION: "attention",
    Role.ATTN_RESIDUAL: "add",
    Role.FFN_RESIDUAL: "add",
    Role.SWIGLU: "swiglu",
    Role.ARGMAX: "argmax",
}
assert set(OP_OF_ROLE) == set(Role)


class Finished:
    """The value of a finished step's node (after the end of the sequence): float32 [0]."""

    def __repr__(self) -> str:
        return "FINISHED"


FINISHED = Finished()
FINISHED_BYTES = encode_value(np.zeros(0, np.float32))


class BadGeneration(NodeRefused):
    """An input that is not a generation this model can run (the node program's exit code 34)."""

    def __init__(self, message: str):
        super().__init__(message, EXIT_BAD_GENERATION)


# --- the input ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenerationRequest:
    """Value 0: big-endian u32 max_new_tokens, u32 prompt length P, then the P prompt ids (u32)."""

    prompt: tuple[int, ...]
    max_new_tokens: int

    def to_bytes(self) -> bytes:
        words = (self.max_new_tokens, len(self.prompt), *self.prompt)
        if any(not 0 <= word < 1 << 32 for word in words):
            raise BadGeneration("max_new_tokens, the prompt's length and its ids are u32")
        return struct.pack(f">{len(words)}I", *words)


def request_bytes(prompt, max_new_tokens: int, config: LlmConfig | None = None) -> bytes:
    """The input asking for up to `max_new_tokens` tokens after `prompt` (token ids); checked against `config`
    (BadGeneration saying what is wrong) when it is given."""
    data = GenerationRequest(tuple(int(i) for i in prompt), int(max_new_tokens)).to_bytes()
    if config is not None:
        read_request(data, config)
    return data


def read_request(data: bytes, config: LlmConfig) -> tuple[GenerationRequest, GenerationGraph]:
    """The input and its graph, with the node program's checks (BadGeneration): exactly 8 + 4P bytes, every id
    in the vocabulary, and a graph the model can run (GenerationGraph)."""
    header = INPUT_WORDS * ID_BYTES
    if len(data) < header:
        raise BadGeneration(f"an input of {len(data)} bytes: it starts with max_new_tokens and the prompt's length")
    max_new_tokens, prompt_length = struct.unpack_from(">II", data)
    if len(data) != header + ID_BYTES * prompt_length:
        raise BadGeneration(f"an input of {len(data)} bytes for a prompt of {prompt_length} ids")
    prompt = np.frombuffer(data, ">u4", offset=header)
    if (prompt >= config.vocab).any():
        raise BadGeneration(f"token id {int(prompt[prompt >= config.vocab][0])} is outside the vocabulary of "
                            f"{config.vocab}")  # fmt: skip
    graph = GenerationGraph(config, prompt_length, max_new_tokens)
    return GenerationRequest(tuple(int(i) for i in prompt), max_new_tokens), graph


# --- the graph ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GraphNode:
    """Node `index`: its step, role (and layer or LM head chunk) and the value slots it reads, in order."""

    index: int
    step: int
    role: Role
    layer: int = 0
    chunk: int = 0
    operands: tuple[int, ...] = ()


@dataclass(frozen=True)
class ValueShape:
    """What a value slot (other than 0) holds: float32 [rows, cols], or the tokens so far (int32 [count],
    1 <= count <= max_tokens). A value of a step s >= 1 other than the tokens may be FINISHED instead."""

    rows: int = 0
    cols: int = 0
    tokens: bool = False
    max_tokens: int = 0
    may_be_finished: bool = False


EMBED_OFFSET = 0
FIRST_LAYER_OFFSET = 1


class GenerationGraph:
    """The graph of a request of `prompt_length` prompt ids and `max_new_tokens` steps on a model of `config`."""

    def __init__(self, config: LlmConfig, prompt_length: int, max_new_tokens: int):
        if prompt_length == 0:
            raise BadGeneration("an empty prompt")
        if max_new_tokens == 0:
            raise BadGeneration("max_new_tokens is 0")
        if max_new_tokens > MAX_NEW_TOKENS:
            raise BadGeneration(f"{max_new_tokens} new tokens: at most {MAX_NEW_TOKENS} fit a result's output")
        if prompt_length + max_new_tokens > config.positions:
            raise BadGeneration(f"a prompt of {prompt_length} tokens and {max_new_tokens} new ones exceed the "
                                f"model's context of {config.positions}")  # fmt: skip
        self.config = config
        self.prompt_length = prompt_length
        self.max_new_tokens = max_new_tokens
        self.head_rows = HEAD_CHUNK_WEIGHTS // config.width  # width <= 2^16: at least 128 rows
        self.head_chunks = math.ceil(config.vocab / self.head_rows)
        self.final_norm_offset = FIRST_LAYER_OFFSET + LAYER_NODES * config.layers
        self.argmax_offset = self.final_norm_offset + 1 + self.head_chunks
        self.step_nodes = self.argmax_offset + 1
        self.node_count = max_new_tokens * self.step_nodes
        if self.node_count + 1 > VALUE_TREE_SLOTS:
            raise BadGeneration(f"{max_new_tokens} steps of {self.step_nodes} nodes: more values than the value "
                                f"tree's {VALUE_TREE_SLOTS} slots")  # fmt: skip

    def rows(self, step: int) -> int:
        """The rows of a step's activations: the prompt's at step 0, one token after."""
        return self.prompt_length if step == 0 else 1

    def first_position(self, step: int) -> int:
        return 0 if step == 0 else self.prompt_length + step - 1

    def head_range(self, chunk: int) -> tuple[int, int]:
        """Rows first..stop - 1 of the LM head are chunk `chunk`'s."""
        first = chunk * self.head_rows
        return first, self.config.vocab if chunk + 1 == self.head_chunks else first + self.head_rows

    def slot(self, step: int, offset: int) -> int:
        """The value slot of the node at `offset` of `step` (value j + 1 is node j's)."""
        return step * self.step_nodes + offset + 1

    def layer_slot(self, step: int, layer: int, role: Role) -> int:
        return self.slot(step, FIRST_LAYER_OFFSET + LAYER_NODES * layer + (role - Role.ATTN_NORM))

    def node(self, index: int) -> GraphNode:
        if not 0 <= index < self.node_count:
            raise IndexError(f"node {index} of {self.node_count}")
        step, offset = divmod(index, self.step_nodes)
        tokens_before = 0 if step == 0 else self.slot(step - 1, self.argmax_offset)  # step 0: the input
        if offset == EMBED_OFFSET:
            return GraphNode(index, step, Role.EMBED, operands=(tokens_before,))
        if offset < self.final_norm_offset:
            layer, position = divmod(offset - FIRST_LAYER_OFFSET, LAYER_NODES)
            role = LAYER_ROLES[position]
            return GraphNode(index, step, role, layer=layer, operands=self._layer_operands(step, layer, role))
        if offset == self.final_norm_offset:
            last = self.layer_slot(step, self.config.layers - 1, Role.FFN_RESIDUAL)
            return GraphNode(index, step, Role.FINAL_NORM, operands=(last,))
        normed = self.slot(step, self.final_norm_offset)
        if offset < self.argmax_offset:
            chunk = offset - self.final_norm_offset - 1
            previous = (self.slot(step, offset - 1),) if chunk else ()
            return GraphNode(index, step, Role.HEAD, chunk=chunk, operands=(normed, *previous))
        logits = self.slot(step, self.argmax_offset - 1)
        return GraphNode(index, step, Role.ARGMAX, operands=(logits, tokens_before) if step else (logits,))

    def _layer_operands(self, step: int, layer: int, role: Role) -> tuple[int, ...]:
        def at(r: Role) -> int:
            return self.layer_slot(step, layer, r)

        x = self.slot(step, EMBED_OFFSET) if layer == 0 else self.layer_slot(step, layer - 1, Role.FFN_RESIDUAL)
        if role in (Role.K_CACHE, Role.V_CACHE):  # step 0's cache is its own rows
            rows = at(Role.K_ROPE if role == Role.K_CACHE else Role.V)
            return (rows,) if step == 0 else (self.layer_slot(step - 1, layer, role), rows)
        return {
            Role.ATTN_NORM: (x,),
            Role.Q: (at(Role.ATTN_NORM),),
            Role.K: (at(Role.ATTN_NORM),),
            Role.V: (at(Role.ATTN_NORM),),
            Role.Q_ROPE: (at(Role.Q),),
            Role.K_ROPE: (at(Role.K),),
            Role.ATTENTION: (at(Role.Q_ROPE), at(Role.K_CACHE), at(Role.V_CACHE)),
            Role.O: (at(Role.ATTENTION),),
            Role.ATTN_RESIDUAL: (x, at(Role.O)),
            Role.FFN_NORM: (at(Role.ATTN_RESIDUAL),),
            Role.GATE: (at(Role.FFN_NORM),),
            Role.UP: (at(Role.FFN_NORM),),
            Role.SWIGLU: (at(Role.GATE), at(Role.UP)),
            Role.DOWN: (at(Role.SWIGLU),),
            Role.FFN_RESIDUAL: (at(Role.ATTN_RESIDUAL), at(Role.DOWN)),
        }[role]

    def node_info(self, index: int):
        """Node `index` for people (opml.graph.describe): its op, value shape, role, step, layer and tensor."""
        from ...graph.describe import NodeInfo

        node = self.node(index)
        shape = self.value_shape(index + 1)
        dims = (shape.max_tokens,) if shape.tokens else (shape.rows, shape.cols)
        tensor = None
        if node.role in MATRIX_OF:
            tensor = f"blk.{node.layer}.{MATRIX_OF[node.role]}"
        elif node.role in (Role.ATTN_NORM, Role.FFN_NORM):
            tensor = f"blk.{node.layer}.{'attn_norm' if node.role == Role.ATTN_NORM else 'ffn_norm'}"
        elif node.role == Role.FINAL_NORM:
            tensor = "output_norm"
        elif node.role == Role.HEAD:
            first, stop = self.head_range(node.chunk)
            tensor = f"output[{first}:{stop}]"
        elif node.role == Role.EMBED:
            tensor = "token_embd"
        in_layer = node.role in LAYER_ROLES
        return NodeInfo(index=index, op=OP_OF_ROLE[node.role], shape=dims, role=node.role.name.lower(),
                        step=node.step, layer=node.layer if in_layer else None,
                        chunk=node.chunk if node.role == Role.HEAD else None, tensor=tensor)  # fmt: skip

    def value_shape(self, slot: int) -> ValueShape:
        """What value `slot` (1..n) holds: the shape of node slot - 1's value."""
        node = self.node(slot - 1)
        c = self.config
        if node.role == Role.ARGMAX:
            return ValueShape(tokens=True, max_tokens=node.step + 1)
        rows, cols = self.rows(node.step), c.width  # most roles (heads * head_dim == width)
        if node.role in (Role.K, Role.V, Role.K_ROPE):
            cols = c.kv_heads * c.head_dim
        elif node.role in (Role.K_CACHE, Role.V_CACHE):
            rows, cols = self.prompt_length + node.step, c.kv_heads * c.head_dim
        elif node.role in (Role.GATE, Role.UP, Role.SWIGLU):
            cols = c.ffn
        elif node.role == Role.FINAL_NORM:
            rows = 1
        elif node.role == Role.HEAD:
            rows, cols = 1, self.head_range(node.chunk)[1]
        return ValueShape(rows, cols, may_be_finished=node.step > 0)


# --- one node ----------------------------------------------------------------------------------------------


def read_value(graph: GenerationGraph, slot: int, data: bytes) -> np.ndarray | Finished:
    """Slot `slot`'s bytes (slot >= 1) as the node program reads them: FINISHED, float32 [rows, cols] of the
    slot's shape (canonical), or the tokens so far (int32, ids in the vocabulary). NodeRefused(33) otherwise."""

    def refuse(why: str):
        raise NodeRefused(f"operand of slot {slot}: {why}", EXIT_BAD_OPERAND)

    shape = graph.value_shape(slot)
    if len(data) > L.MAX_REGION_DATA_BYTES:
        refuse(f"{len(data)} bytes: more than its region")
    if len(data) < TOKENS_HEADER_BYTES:
        refuse(f"{len(data)} bytes: shorter than a value")
    kind, rank, first = struct.unpack_from(">III", data)
    if data == FINISHED_BYTES:
        if not shape.may_be_finished:
            refuse("a finished step's value, from a step that is never finished")
        return FINISHED
    if shape.tokens:
        if kind != KIND_I32 or rank != TOKENS_RANK or not 1 <= first <= shape.max_tokens:
            refuse(f"not the tokens of a step {shape.max_tokens - 1} (kind {kind}, rank {rank}, {first})")
        if len(data) != TOKENS_HEADER_BYTES + ID_BYTES * first:
            refuse(f"{len(data)} bytes for {first} tokens")
        ids = np.frombuffer(data, ">u4", offset=TOKENS_HEADER_BYTES)
        if (ids >= graph.config.vocab).any():
            refuse("a token id outside the vocabulary")
        return ids.astype(np.int32)
    if kind != KIND_F32 or rank != MATRIX_RANK or len(data) < TOKENS_HEADER_BYTES + 4:
        refuse(f"not a float32 matrix (kind {kind}, rank {rank})")
    cols = struct.unpack_from(">I", data, TOKENS_HEADER_BYTES)[0]
    if (first, cols) != (shape.rows, shape.cols):
        refuse(f"[{first}, {cols}], not [{shape.rows}, {shape.cols}]")
    if len(data) != encoded_size((first, cols)):
        refuse(f"{len(data)} bytes for [{first}, {cols}]")
    bits = np.frombuffer(data, ">u4", offset=VALUE_HEADER_BYTES + 4 * MATRIX_RANK)
    if noncanonical(bits).any():
        refuse("a float that is not canonical")
    return bits.view(">f4").astype(np.float32).reshape(first, cols)


def _check_size(node: GraphNode, rows: int, cols: int) -> None:
    if encoded_size((rows, cols)) > MAX_VALUE_BYTES:
        raise NodeRefused(f"node {node.index}'s value [{rows}, {cols}] is larger than a region",
                          EXIT_MODEL_TOO_LARGE)  # fmt: skip


def compute_node(
    weights: Weights, graph: GenerationGraph, request: GenerationRequest, node: GraphNode, operands: list
) -> np.ndarray | Finished:
    """Node `node`'s value from its operands (arrays as `read_value` gives them, in its order; the input's
    place ignored: its ids are `request`'s): float32 canonical [rows, cols], the tokens (int32 [count]), or
    FINISHED. NodeRefused(14) when the value is larger than a region."""
    c = graph.config
    role = node.role
    if role == Role.EMBED:
        ids = np.asarray(request.prompt, np.int32) if node.step == 0 else operands[0][-1:]
        if node.step > 0 and int(ids[0]) == c.eos:
            return FINISHED  # the previous step ended the sequence
        _check_size(node, ids.size, c.width)
        return ops.embed(weights.embedding, ids)
    if role == Role.ARGMAX:
        before = operands[1] if node.step > 0 else np.zeros(0, np.int32)
        if operands[0] is FINISHED:
            return before.copy()
        return np.concatenate([before, ops.argmax(operands[0])]).astype(np.int32)
    if any(operand is FINISHED for operand in operands):
        return FINISHED  # a finished step's node: nothing to compute
    shape = graph.value_shape(node.index + 1)
    _check_size(node, shape.rows, shape.cols)
    layer = f"blk.{node.layer}."
    if role in (Role.ATTN_NORM, Role.FFN_NORM):
        norm = layer + ("attn_norm" if role == Role.ATTN_NORM else "ffn_norm")
        return ops.rms_norm(operands[0], weights.norms[norm], c.rms_epsilon)
    if role == Role.FINAL_NORM:  # the last row only: its logits choose the next token
        return ops.rms_norm(operands[0][-1:], weights.norms["output_norm"], c.rms_epsilon)
    if role in MATRIX_OF:
        return ops.matmul(operands[0], weights.matrices[layer + MATRIX_OF[role]])
    if role in (Role.Q_ROPE, Role.K_ROPE):
        heads = c.heads if role == Role.Q_ROPE else c.kv_heads
        return ops.rope(operands[0], weights.rope_table, graph.first_position(node.step), heads)
    if role in (Role.K_CACHE, Role.V_CACHE):
        return ops.kv_append(operands[0] if node.step > 0 else None, operands[-1])
    if role == Role.ATTENTION:
        return ops.attention(operands[0], operands[1], operands[2], c.heads, c.kv_heads)
    if role in (Role.ATTN_RESIDUAL, Role.FFN_RESIDUAL):
        return ops.add(operands[0], operands[1])
    if role == Role.SWIGLU:
        return ops.swiglu(operands[0], operands[1])
    # Role.HEAD: chunk c - 1's logits, then rows first..stop - 1 of the LM head
    first, stop = graph.head_range(node.chunk)
    part = ops.matmul(operands[0], weights.head, (first, stop))
    return np.concatenate([operands[1], part], axis=1) if node.chunk else part


def encode(value: np.ndarray | Finished) -> bytes:
    """A node's value as bytes (opml.graph.values' encoding)."""
    return FINISHED_BYTES if value is FINISHED else encode_value(value)


def is_llm_model(model: bytes) -> bool:
    """Whether a model file is an OPLM model (its requests are generations: this graph), by its magic."""
    return len(model) >= 4 and struct.unpack_from(">I", model)[0] == MAGIC


@lru_cache(maxsize=1)
def weights_of(model: bytes) -> Weights:
    """The model file's weights (parsed once per file; dequantized on first use)."""
    return Weights(parse_model(model))


def node_program(
    model: bytes | Weights, node: int, node_count: int, operands: list[tuple[int, bytes]], *, input: bytes
) -> NodeOutcome:
    """The LLM node program's outcome for this node run, natively, its checks in its order: the model parses,
    the input is a generation it can run (34), the node count is its graph's (30), the node index is below it
    (31), the operand slots are the node's (32), each operand is its slot's value (33; slot 0: the input's
    very bytes); then the node's value (14 if larger than a region). `operands` are (slot, value bytes) in the
    order of the header's slots; unlike a graph model's, the node count depends on the request's input."""
    try:
        weights = model if isinstance(model, Weights) else weights_of(model)
    except LlmFormatError as error:
        return NodeOutcome(error.exit_code, message=str(error))
    try:
        request, graph = read_request(input, weights.config)
    except BadGeneration as refused:
        return NodeOutcome(refused.exit_code, message=str(refused))
    if node_count != graph.node_count:
        return NodeOutcome(EXIT_WRONG_NODE_COUNT, message=f"the graph has {graph.node_count} nodes, not {node_count}")
    if not 0 <= node < node_count:
        return NodeOutcome(EXIT_BAD_NODE_INDEX, message=f"node {node} of {node_count}")
    description = graph.node(node)
    slots = tuple(slot for slot, _ in operands)
    if slots != description.operands:
        return NodeOutcome(EXIT_WRONG_OPERANDS, message=f"node {node} reads slots {description.operands}, not {slots}")
    try:
        arrays = [_read_operand(graph, slot, data, input) for slot, data in operands]
        value = compute_node(weights, graph, request, description, arrays)
    except NodeRefused as refused:
        return NodeOutcome(refused.exit_code, message=str(refused))
    return NodeOutcome(0, encode(value))


def _read_operand(graph: GenerationGraph, slot: int, data: bytes, input: bytes):
    if slot == 0:  # the link proves its root at slot 0: it is the request's input itself
        if data != input:
            raise NodeRefused("operand of slot 0 is not the request's input", EXIT_BAD_OPERAND)
        return None
    return read_value(graph, slot, data)


# --- a whole run -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenerationRun(ValueRun):
    """Every value of a generation's graph on one input, their roots and the value tree: an honest claim."""

    graph: GenerationGraph
    request: GenerationRequest
    values: list[bytes]  # value j's bytes, j = 0..n (value 0: the input as sent)
    roots: list[bytes]
    tree: ValueTree

    def operand_slots(self, node: int) -> tuple[int, ...]:
        return self.graph.node(node).operands

    @property
    def tokens(self) -> list[int]:
        """The generated ids (the output), up to and including the end of the sequence."""
        return output_tokens(self.output)


def output_tokens(output: bytes) -> list[int]:
    """The token ids of a generation's output value (int32 [count])."""
    if len(output) < TOKENS_HEADER_BYTES:
        raise BadGeneration(f"an output of {len(output)} bytes is not a list of tokens")
    kind, rank, count = struct.unpack_from(">III", output)
    if kind != KIND_I32 or rank != TOKENS_RANK or len(output) != TOKENS_HEADER_BYTES + ID_BYTES * count:
        raise BadGeneration(f"an output of kind {kind}, rank {rank} and {len(output)} bytes is not a list of tokens")
    return [int(i) for i in np.frombuffer(output, ">i4", offset=TOKENS_HEADER_BYTES)]


def evaluate_generation(
    model: bytes | Weights, input: bytes, threads: int | None = None, replaced: dict[int, bytes] | None = None
) -> GenerationRun:
    """Every value of the generation `input` asks of `model`, their roots (hashed on `threads` threads, all
    cores by default) and the value tree. BadGeneration if the node program would refuse the input.

    `replaced` puts other bytes in some slots, and every later node computes on them (a lying player's run whose
    later values follow from its lie: a changed token changes the rest of the answer)."""
    weights = model if isinstance(model, Weights) else weights_of(model)
    request, graph = read_request(input, weights.config)
    arrays: list = [None]  # value 0 is read as the request
    values = [input]
    with np.errstate(all="ignore"):
        for index in range(graph.node_count):
            node = graph.node(index)
            value = compute_node(weights, graph, request, node, [arrays[slot] for slot in node.operands])
            if replaced and index + 1 in replaced:
                values.append(replaced[index + 1])
                arrays.append(_as_array(graph, index + 1, replaced[index + 1]))
                continue
            arrays.append(value)
            values.append(encode(value))
    del arrays
    roots = value_roots(values, threads)
    return GenerationRun(graph, request, values, roots, ValueTree(roots))


def _as_array(graph: GenerationGraph, slot: int, data: bytes):
    """A value's bytes as the next nodes compute on them, without the node program's checks (a made-up value)."""
    if data == FINISHED_BYTES:
        return FINISHED
    _, rank = struct.unpack_from(">II", data)
    dims = struct.unpack_from(f">{rank}I", data, VALUE_HEADER_BYTES)
    offset = VALUE_HEADER_BYTES + 4 * rank
    if graph.value_shape(slot).tokens:
        return np.frombuffer(data, ">u4", offset=offset).astype(np.int32)
    return np.frombuffer(data, ">f4", offset=offset).astype(np.float32).reshape(dims)


def value_roots(values: list[bytes], threads: int | None = None) -> list[bytes]:
    """The root of every value: the many finished steps' values share one; the rest are hashed in parallel (the
    Merkle kernels release the GIL)."""
    finished_root = value_root(FINISHED_BYTES)
    with ThreadPoolExecutor(max_workers=threads or os.cpu_count() or 1) as pool:
        return list(pool.map(lambda v: finished_root if v == FINISHED_BYTES else value_root(v), values))
