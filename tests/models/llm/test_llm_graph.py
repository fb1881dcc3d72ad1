"""A greedy generation as a graph of the two-phase game (docs/llm-graph.md): the node enumeration, the native run
against generate(), and the LLM node program (llm_graph.elf) in the VM against `node_program` bit for bit, on
tiny random models (every op kind, edge-valued weights, the end of the sequence, every refusal) and on a few
nodes of a real SmolLM2 generation (marked slow: about 25 s, most of it booting the 99 MB model region 4 times).

A tiny model's node run takes milliseconds; a tiny generation of 150 nodes, node by node, about a second.
"""

from __future__ import annotations

import dataclasses
import struct
from dataclasses import dataclass

import numpy as np
import pytest

from opml.graph.native import (
    EXIT_BAD_NODE_INDEX,
    EXIT_BAD_OPERAND,
    EXIT_WRONG_NODE_COUNT,
    EXIT_WRONG_OPERANDS,
    NodeOutcome,
)
from opml.graph.tree import VALUE_TREE_SLOTS, input_state
from opml.graph.values import encode_value, value_root
from opml.guest import LLM_GRAPH, built
from opml.models.llm.format import TensorType, parse_model
from opml.models.llm.generate import Weights, generate
from opml.models.llm.graph import (
    EXIT_BAD_GENERATION,
    FINISHED_BYTES,
    LAYER_NODES,
    MAX_NEW_TOKENS,
    BadGeneration,
    GenerationGraph,
    Role,
    evaluate_generation,
    node_program,
    request_bytes,
)
from opml.vm import layout as L
from opml.vm.elf import Program
from opml.vm.execution import Execution
from opml.vm.node_run import node_start_state_hash

from .tiny import tiny_config, tiny_model

MATRIX_TYPES = (TensorType.Q4_1, TensorType.Q8_0, TensorType.F16, TensorType.F32)
CONFIGS = {
    "gqa": tiny_config(layers=2),  # 4 heads of 16 over 2 kv heads
    "mqa": tiny_config(layers=2, width=96, ffn=64, heads=3, kv_heads=1, head_dim=32, vocab=70, positions=30),
    "mha": tiny_config(width=32, ffn=32, heads=2, kv_heads=2, head_dim=16, vocab=33, positions=12),
}
EOS_OFFSET = 4 * (2 + 11)  # the eos word of an OPLM header: after magic, version and 11 config words
NODE_STEP_LIMIT = 1 << 34
REAL_STEP_LIMIT = 1 << 36


@pytest.fixture(scope="module")
def program() -> Program:
    return Program.from_file(built(LLM_GRAPH.name))


class Tiny:
    """A tiny random model file, its weights, and the VM's node runs on it."""

    def __init__(self, config_name: str, seed: int, edge: bool, eos: int | None = None):
        self.config = CONFIGS[config_name]
        self.rng = np.random.default_rng(seed)
        self.file = tiny_model(self.rng, self.config, MATRIX_TYPES, edge=edge)
        if eos is not None:
            self.file = with_eos(self.file, eos)
        self.weights = Weights(parse_model(self.file))
        self.config = self.weights.config  # with its end of the sequence

    def prompt(self, length: int) -> list[int]:
        return [int(i) for i in self.rng.integers(0, self.config.vocab, length)]


def with_eos(model: bytes, eos: int) -> bytes:
    """The model file with another end-of-sequence id (the same tensors)."""
    return model[:EOS_OFFSET] + struct.pack(">I", eos) + model[EOS_OFFSET + 4 :]


@dataclass(frozen=True)
class VmNode:
    exit_code: int
    value: bytes  # the output region's bytes after its length (a node's value may be longer than a result's cap)
    root: bytes  # the output region's root in the final memory
    stderr: bytes


def vm_node(program: Program, model: bytes, input: bytes, node: int, n: int, operands, limit=NODE_STEP_LIMIT) -> VmNode:
    """The node run in the VM."""
    execution = Execution.node_run(program, model=model, input=input, node=node, node_count=n, operands=operands)
    result = execution.run(max_steps=limit)
    memory = execution.machine_at(result.steps).memory
    length = int.from_bytes(memory.read(L.OUTPUT.start, L.LENGTH_PREFIX_BYTES), "big")
    value = memory.read(L.OUTPUT.start + L.LENGTH_PREFIX_BYTES, min(length, L.MAX_REGION_DATA_BYTES))
    return VmNode(result.exit_code, value, memory.region_root(L.OUTPUT), result.stderr)


def vm_equals_native(
    program: Program, model: bytes | Weights, file: bytes, input: bytes, node: int, n: int, operands
) -> NodeOutcome:
    """The node run in the VM and `node_program` natively end alike: the same exit code and, on 0, the same
    value, whose root is the VM's output region's root. The native outcome."""
    native = node_program(model, node, n, operands, input=input)
    vm = vm_node(program, file, input, node, n, operands)
    assert vm.exit_code == native.exit_code, (native.message, vm.stderr)
    if native.exit_code == 0:
        assert vm.value == native.value
        assert vm.root == value_root(native.value)
    else:
        assert vm.value == b""
    return native


# --- the enumeration --------------------------------------------------------------------------------------


def test_the_node_count_and_every_nodes_operands():
    config = CONFIGS["mqa"]
    graph = GenerationGraph(config, prompt_length=5, max_new_tokens=4)
    assert graph.head_chunks == 1 and graph.step_nodes == 1 + LAYER_NODES * config.layers + 3
    assert graph.node_count == 4 * graph.step_nodes
    for index in range(graph.node_count):
        node = graph.node(index)
        assert 1 <= len(node.operands) <= L.MAX_OPERANDS and all(slot <= index for slot in node.operands)
        assert node.step == index // graph.step_nodes
        assert (0 in node.operands) == (node.role == Role.EMBED and node.step == 0)  # only step 0 reads the input
    roles = [graph.node(i).role for i in range(graph.step_nodes)]
    assert roles == [Role.EMBED, *[Role(r) for r in range(1, 18)] * config.layers, Role.FINAL_NORM, Role.HEAD,
                     Role.ARGMAX]  # fmt: skip
    last = graph.node(graph.node_count - 1)
    assert last.role == Role.ARGMAX and last.operands[1] == graph.node_count - graph.step_nodes  # the tokens before


def test_the_lm_head_is_chunked_by_weights_and_the_chunks_cover_the_vocabulary():
    smollm2 = tiny_config(layers=30, width=576, ffn=1536, heads=9, kv_heads=3, head_dim=64, vocab=49152, positions=8192)
    graph = GenerationGraph(smollm2, 16, 32)
    assert (graph.head_rows, graph.head_chunks) == (14563, 4)
    assert [graph.head_range(c) for c in range(4)] == [(0, 14563), (14563, 29126), (29126, 43689), (43689, 49152)]
    assert graph.node_count == 32 * (17 * 30 + 4 + 3) == 16544
    chunk = graph.node(1 + 17 * 30 + 1 + 2)  # step 0, chunk 2: the normed row and chunk 1's logits
    assert (chunk.role, chunk.chunk, chunk.operands) == (Role.HEAD, 2, (1 + 17 * 30 + 1, 1 + 17 * 30 + 3))
    assert graph.value_shape(chunk.index + 1).cols == 43689


def test_inputs_a_model_cannot_run_are_refused_with_a_reason():
    config = tiny_config(layers=4, positions=16400)
    for prompt, new, reason in (
        (0, 4, "an empty prompt"),
        (3, 0, "max_new_tokens is 0"),
        (16390, 11, "exceed the model's context"),
        (3, MAX_NEW_TOKENS + 1, "fit a result's output"),
        (3, 14564, "value tree"),  # 14564 steps of 72 nodes: more than 2^20 values
    ):
        with pytest.raises(BadGeneration, match=reason) as refused:
            GenerationGraph(config, prompt, new)
        assert refused.value.exit_code == EXIT_BAD_GENERATION
    assert GenerationGraph(config, 3, 14563).node_count + 1 <= VALUE_TREE_SLOTS


# --- the native run ----------------------------------------------------------------------------------------


def tokens_value(tokens: list[int]) -> bytes:
    return encode_value(np.array(tokens, np.int32))


@pytest.mark.parametrize("config_name", sorted(CONFIGS))
def test_the_native_run_is_generate_value_for_value(config_name):
    """Each node's value is generate()'s value of the same op, and the tokens are generate()'s, up to and
    including the end of the sequence (here step 1's token); the fixed graph adds only step 0's caches (which
    generate() keeps as the rotated keys and the values themselves), the tokens so far, and finished steps."""
    tiny = Tiny(config_name, seed=1, edge=False)
    prompt = tiny.prompt(3)
    eos = generate(tiny.weights, prompt, 2, stop_at_eos=False).tokens[1]
    tiny = Tiny(config_name, seed=1, edge=False, eos=eos)
    run = evaluate_generation(tiny.weights, request_bytes(prompt, 4, tiny.config))
    expected = generate(tiny.weights, prompt, 4)
    assert run.tokens == expected.tokens and expected.tokens[-1] == eos and len(expected.tokens) <= 2
    calls = iter(c for c in expected.calls if c.op not in ("last_row", "concat"))
    for index in range(run.node_count):
        node, value = run.graph.node(index), run.values[index + 1]
        if node.step >= len(expected.tokens):  # after the end of the sequence
            assert value == (tokens_value(expected.tokens) if node.role == Role.ARGMAX else FINISHED_BYTES)
        elif node.role in (Role.K_CACHE, Role.V_CACHE) and node.step == 0:
            assert value == run.values[run.graph.node(index).operands[0]]  # the step's own rows
        elif node.role == Role.ARGMAX:
            call = next(calls)
            assert int(expected.values[call.output][0]) == expected.tokens[node.step]
            assert value == tokens_value(expected.tokens[: node.step + 1])
        else:
            call = next(calls)
            assert value == encode_value(expected.values[call.output]), (node, call)
    assert next(calls, None) is None


# --- the node program in the VM -----------------------------------------------------------------------------


@pytest.mark.parametrize("config_name", sorted(CONFIGS))
@pytest.mark.parametrize("edge", [True, False], ids=["edge-weights", "end-of-sequence"])
def test_a_whole_generation_node_by_node_in_the_vm_is_the_native_run(program, config_name, edge):
    """Every node of a tiny generation in the VM: its value and root are the native run's. With edge weights
    (NaN, infinities, subnormal scales) every op meets edge values; without, the end of the sequence comes at
    step 1's token, so steps 2 and 3 are finished (their nodes give FINISHED, the argmax passes the tokens on)."""
    tiny = Tiny(config_name, seed=7, edge=edge)
    prompt = tiny.prompt(3)
    if not edge:
        tokens = generate(tiny.weights, prompt, 2, stop_at_eos=False).tokens
        tiny = Tiny(config_name, seed=7, edge=edge, eos=tokens[1])
    input = request_bytes(prompt, 4, tiny.config)
    run = evaluate_generation(tiny.weights, input)
    if not edge:
        assert run.tokens == tokens[: tokens.index(tokens[1]) + 1] and FINISHED_BYTES in run.values
    for index in range(run.node_count):
        vm = vm_node(program, tiny.file, input, index, run.node_count, run.operands(index))
        assert vm.exit_code == 0, (run.graph.node(index), vm.stderr)
        assert vm.value == run.values[index + 1], run.graph.node(index)
        assert vm.root == run.roots[index + 1]


@pytest.fixture(scope="module")
def gqa():
    """A tiny model, a request whose step 1 ends the sequence, and its run."""
    tiny = Tiny("gqa", seed=3, edge=False)
    prompt = tiny.prompt(3)
    tokens = generate(tiny.weights, prompt, 2, stop_at_eos=False).tokens
    tiny = Tiny("gqa", seed=3, edge=False, eos=tokens[1])
    input = request_bytes(prompt, 3, tiny.config)
    return tiny, input, evaluate_generation(tiny.weights, input)


def node_at(run, step: int, role: Role, layer: int = 0) -> int:
    return next(i for i in range(run.node_count) if run.graph.node(i).step == step and
                run.graph.node(i).role == role and run.graph.node(i).layer == layer)  # fmt: skip


def test_the_header_must_be_this_generations_node(program, gqa):
    tiny, input, run = gqa
    n = run.node_count
    attention = node_at(run, 1, Role.ATTENTION)
    operands = run.operands(attention)

    def outcome(node=attention, count=n, given=operands) -> int:
        return vm_equals_native(program, tiny.weights, tiny.file, input, node, count, given).exit_code

    assert outcome() == 0
    assert outcome(count=n - 1) == outcome(count=n + 1) == outcome(count=0) == EXIT_WRONG_NODE_COUNT
    assert outcome(node=n) == outcome(node=2**32 - 1) == EXIT_BAD_NODE_INDEX
    other = run.operands(attention + 1)  # the o product's: another node's slots
    assert outcome(given=other) == outcome(given=operands[:2]) == EXIT_WRONG_OPERANDS
    assert outcome(given=operands + operands[:1]) == outcome(given=operands[::-1]) == EXIT_WRONG_OPERANDS


def test_an_operand_that_is_not_its_slots_value_is_refused(program, gqa):
    tiny, input, run = gqa
    n = run.node_count

    def outcome(node: int, position: int, data: bytes) -> int:
        operands = run.operands(node)
        operands[position] = (operands[position][0], data)
        return vm_equals_native(program, tiny.weights, tiny.file, input, node, n, operands).exit_code

    attention = node_at(run, 1, Role.ATTENTION)
    keys = run.values[run.operands(attention)[1][0]]
    rows, cols = struct.unpack_from(">II", keys, 8)
    floats = np.frombuffer(keys, ">f4", offset=16).astype(np.float32).reshape(rows, cols)
    negative_zero = floats.copy()
    negative_zero[0, 0] = -0.0
    payload_nan = floats.view(np.uint32).copy()
    payload_nan[1, 1] = 0x7FC00001
    for bad in (
        keys[:-4],  # shorter than its shape
        keys + b"\0\0\0\0",  # longer
        encode_value(floats[:-1]),  # a row short of the cache
        encode_value(floats.reshape(1, -1)),  # the same elements, another shape
        encode_value(floats.reshape(-1)),  # rank 1
        encode_value(floats.view(np.int32)),  # int32
        struct.pack(">II", 0, 2) + struct.pack(">II", rows, cols) + negative_zero.astype(">f4").tobytes(),
        struct.pack(">II", 0, 2) + struct.pack(">II", rows, cols) + payload_nan.astype(">u4").tobytes(),
        b"",
        b"\0" * 11,
    ):
        assert outcome(attention, 1, bad) == EXIT_BAD_OPERAND
    assert outcome(attention, 1, FINISHED_BYTES) == 0  # a step-1 value may be the finished one: then so is this

    step0 = node_at(run, 0, Role.ATTN_NORM)
    assert outcome(step0, 0, FINISHED_BYTES) == EXIT_BAD_OPERAND  # step 0 is never finished
    embed0 = node_at(run, 0, Role.EMBED)
    assert outcome(embed0, 0, input + b"\0") == outcome(embed0, 0, input[:-4]) == EXIT_BAD_OPERAND  # not the input

    embed1 = node_at(run, 1, Role.EMBED)  # reads step 0's tokens
    tokens = run.values[run.operands(embed1)[0][0]]
    for bad in (
        encode_value(np.array([tiny.config.vocab], np.int32)),  # outside the vocabulary
        encode_value(np.array([-1], np.int32)),
        encode_value(np.array([1, 2], np.int32)),  # step 0 chose one token
        encode_value(np.zeros(0, np.int32)),  # none
        encode_value(np.array([1.0], np.float32)),
        FINISHED_BYTES,  # the tokens are never finished
    ):
        assert outcome(embed1, 0, bad) == EXIT_BAD_OPERAND
    assert outcome(embed1, 0, tokens) == 0
    eos = [(run.operands(embed1)[0][0], tokens_value([tiny.config.eos]))]
    finished = vm_equals_native(program, tiny.weights, tiny.file, input, embed1, n, eos)
    assert finished.value == FINISHED_BYTES  # the sequence ended: the step is finished


def test_a_request_the_model_cannot_run_is_refused_alike(program, gqa):
    tiny, input, run = gqa
    prompt = list(struct.unpack_from(">3I", input, 8))

    def outcome(data: bytes, node_count: int = 4, operands=None) -> int:
        given = [(0, data)] if operands is None else operands
        return vm_equals_native(program, tiny.weights, tiny.file, data, 0, node_count, given).exit_code

    positions, vocab = tiny.config.positions, tiny.config.vocab
    for bad in (
        struct.pack(">II", 4, 0),  # no prompt
        struct.pack(">5I", 0, 3, *prompt),  # no new tokens
        struct.pack(f">{2 + positions - 3}I", 4, positions - 3, *[1] * (positions - 3)),  # beyond the context
        struct.pack(">5I", 4, 3, prompt[0], vocab, prompt[2]),  # an id outside the vocabulary
        struct.pack(">5I", 4, 4, *prompt),  # one id short of its length
        struct.pack(">5I", 4, 3, *prompt) + b"\0",
        b"\0\0\0\4",
        b"",
    ):
        assert outcome(bad) == EXIT_BAD_GENERATION
    request_bytes(prompt, positions - 3, tiny.config)  # exactly the context: fine

    bad_magic = b"XXXX" + tiny.file[4:]
    for model, code in ((bad_magic, 10), (tiny.file[:-1], 12), (tiny.file + b"\0", 16)):
        native = vm_equals_native(program, model, model, input, 0, run.node_count, run.operands(0))
        assert native.exit_code == code


def test_the_limits_of_a_request_in_the_vm(program):
    """The output cap and the value tree's slots refuse an input as the Python side does; one step below, the
    node count is right."""
    config = tiny_config(layers=4, positions=16400)
    file = tiny_model(np.random.default_rng(5), config, edge=False)
    weights = Weights(parse_model(file))
    for new in (MAX_NEW_TOKENS + 1, 14564):
        data = struct.pack(">4I", new, 2, 5, 6)
        assert vm_equals_native(program, weights, file, data, 0, 1, [(0, data)]).exit_code == EXIT_BAD_GENERATION
    data = struct.pack(">4I", 14563, 2, 5, 6)
    n = GenerationGraph(config, 2, 14563).node_count
    assert vm_equals_native(program, weights, file, data, 0, n, [(0, data)]).exit_code == 0


def test_a_value_longer_than_a_results_output_is_a_nodes_value(program):
    """A node's value is bounded by its region, not by a result's output cap: the logits of a vocabulary of
    20,000 (80 KB) are the LM head's value, and the argmax reads them."""
    config = tiny_config(width=32, ffn=32, heads=2, kv_heads=2, vocab=20_000, positions=8)
    file = tiny_model(np.random.default_rng(11), config, edge=False)
    weights = Weights(parse_model(file))
    input = request_bytes([3, 4], 1, config)
    run = evaluate_generation(weights, input)
    head = run.node_count - 2
    assert run.graph.node(head).role == Role.HEAD and len(run.values[head + 1]) > L.MAX_OUTPUT_BYTES
    for node in (head, head + 1):
        assert vm_equals_native(program, weights, file, input, node, run.node_count, run.operands(node)).exit_code == 0


# --- the agents' side ---------------------------------------------------------------------------------------


def test_the_agents_trace_of_a_generation_links_a_node(gqa):
    """An OPLM model's two-phase request gets the generation's run (not a graph model's), and the honest link of
    a node is a node run of the LLM node program from the start state the registry would build."""
    from opml.agents.traces import LocalTraces, RequestView, StaticModels, Unverifiable, guest_root
    from opml.game.faults import LyingGraphTrace
    from opml.guest import NODE
    from opml.models.formats import model_root
    from opml.protocol.types import ProgramKind
    from opml.vm.state import State

    tiny, input, run = gqa
    P = guest_root(LLM_GRAPH)  # noqa: N806 - the spec's names
    view = RequestView(
        request_id=1, program_id=3, model_id=2, program_root=P, model_root=model_root(tiny.file), model_uri="tiny",
        input=input, fee=1, step_limit=NODE_STEP_LIMIT, deadline=0, requester="0x0",
        start_state_hash=input_state(input), program_kind=ProgramKind.GRAPH_NODES,
    )  # fmt: skip
    trace = LocalTraces(StaticModels(tiny.file)).trace_for(view)
    assert trace.run.final_state == run.final_state and trace.final_claim().output == run.output
    node = node_at(run, 1, Role.ATTENTION)
    header = trace.header_of(node)
    assert header.slots == run.graph.node(node).operands and header.node_count == run.node_count
    link = trace.link_proof(node)
    start = node_start_state_hash(P, Program.from_file(built(LLM_GRAPH.name)).entry, value_root(input),
                                  view.model_root, node, run.node_count, header.slots,
                                  [run.roots[s] for s in header.slots])  # fmt: skip
    assert trace.node_trace(header).state_hashes([0]) == [start]
    assert State.decode(link.final_state).exited and link.output.value == run.roots[node + 1]

    liar = LyingGraphTrace(trace, node=node_at(run, 2, Role.Q))  # a finished step's value: its dims are flipped
    assert liar.run.values[liar.node + 1] != run.values[liar.node + 1] and liar.final_claim().hash != run.final_state

    wrong = dataclasses.replace(view, request_id=2, program_root=guest_root(NODE))
    with pytest.raises(Unverifiable, match="llm_graph"):
        LocalTraces(StaticModels(tiny.file)).trace_for(wrong)


# --- the real model -----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_nodes_of_a_real_generation_in_the_vm_are_the_native_values(program, llm_weights, llm_model_file):
    """A 16-token prompt's generation on SmolLM2: step 1's deepest attention, a Q4_1 product, a chunk of the LM
    head after the first (its operands: the normed row and the logits so far) and the argmax, each in the VM
    over the real model region, equal the native values and roots."""
    from opml.models.llm.tokenizer import packaged_tokenizer

    prompt = packaged_tokenizer().encode("Once upon a time, in a small village by the sea, there lived a")
    assert len(prompt) == 16
    input = request_bytes(prompt, 2, llm_weights.config)
    run = evaluate_generation(llm_weights, input)
    assert llm_weights.model["blk.0.ffn_up"].type == TensorType.Q4_1
    chosen = [
        node_at(run, 1, Role.ATTENTION, layer=29),
        node_at(run, 1, Role.UP, layer=0),
        next(i for i in range(run.node_count) if run.graph.node(i).step == 1 and run.graph.node(i).chunk == 2),
        run.node_count - 1,  # the argmax: the tokens so far
    ]
    for node in chosen:
        vm = vm_node(program, llm_model_file, input, node, run.node_count, run.operands(node), REAL_STEP_LIMIT)
        assert vm.exit_code == 0, (run.graph.node(node), vm.stderr)
        assert vm.value == run.values[node + 1] and vm.root == run.roots[node + 1], run.graph.node(node)
    assert run.tokens == generate(llm_weights, prompt, 2).tokens


# --- request inputs and outputs -------------------------------------------------------------------------------


def test_inputs_from_text_and_chat_and_outputs_as_ids_and_text():
    from opml.models.llm.requests import chat_input, output_text, output_tokens, text_input
    from opml.models.llm.tokenizer import packaged_tokenizer

    tokenizer = packaged_tokenizer()
    smollm2 = tiny_config(layers=30, width=576, ffn=1536, heads=9, kv_heads=3, head_dim=64, vocab=49152, positions=8192)
    assert text_input("Once upon a time", 8, smollm2) == request_bytes(tokenizer.encode("Once upon a time"), 8)
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    data = chat_input(messages, 32, smollm2)
    assert data == request_bytes(tokenizer.chat_ids(messages), 32)
    assert struct.unpack_from(">II", data) == (32, len(tokenizer.chat_ids(messages)))
    with pytest.raises(BadGeneration, match="exceeds the model's context of 8192 tokens"):
        text_input("once more " * 5000, 32, smollm2)
    with pytest.raises(BadGeneration, match="empty prompt"):
        text_input("", 32, smollm2)
    answer = [504, 3575, 282, 4649, 314, 7042, 30, 2]
    output = encode_value(np.array(answer, np.int32))
    assert output_tokens(output) == answer
    assert output_text(output) == "The capital of France is Paris.<|im_end|>"
    assert output_text(output, skip_special_tokens=True) == "The capital of France is Paris."
    with pytest.raises(BadGeneration, match="not a list of tokens"):
        output_tokens(FINISHED_BYTES)
