"""What POST /inference-requests checks and chooses before anything is sent (opml/requests.py): a text for a
text model, tokenized outside the VM; the step limit a request gets for its model; how a result is decoded;
and the deployment parameters that let a request run as long as all-MiniLM-L6-v2 does."""

import dataclasses
import math

import numpy as np
import pytest

from opml.errors import BadInput
from opml.guest import INFERENCE, built
from opml.models import minilm
from opml.models.formats import Graph, InputType, Node, Op, Prediction, parse_model
from opml.protocol.parameters import MINILM_STEP_LIMIT, Parameters, sized_for
from opml.readmodel.decode import decode_output
from opml.requests import (
    MIN_STEPS_PER_MULTIPLY_ADD,
    STEPS_PER_MULTIPLY_ADD,
    check_input,
    check_step_limit_covers_run,
    default_step_limit,
    estimated_steps,
    executed_multiply_adds,
    input_from_f32,
    input_from_pixels,
    input_from_text,
    is_image_model,
    is_text_model,
    least_steps,
    multiply_adds,
)
from opml.resources import seed_model_dir
from opml.vm.elf import Program
from opml.vm.execution import Execution
from opml.vm.output import ResultKind

LENGTH = 8


@pytest.fixture(scope="module")
def text_graph():
    """all-MiniLM-L6-v2's first layer over 8 tokens, exported and converted as an upload is."""
    return parse_model(minilm.model_file(length=LENGTH, layers=1))


@pytest.fixture(scope="module")
def seed_graph():
    return parse_model((seed_model_dir() / "model.bin").read_bytes())


def test_the_vocabulary_is_the_tokenizers():
    assert minilm.tokenizer().get_vocab_size() == minilm.VOCABULARY_SIZE


def test_a_text_model_is_one_the_tokenizer_feeds(text_graph, seed_graph):
    assert minilm.text_length(text_graph) == LENGTH and is_text_model(text_graph)
    assert minilm.text_length(seed_graph) is None and not is_text_model(seed_graph)
    # token ids and a mask, but looked up in a table of another vocabulary: its ids are not the tokenizer's
    other = dataclasses.replace(text_graph, tensors=list(text_graph.tensors))
    (gather,) = [node for node in other.nodes if node.op == Op.GATHER]
    other.tensors[gather.tensors[0]] = other.tensors[gather.tensors[0]][:1000]
    assert minilm.text_length(other) is None


def test_a_text_becomes_token_ids_then_the_mask(text_graph):
    data = input_from_text("Hello world", text_graph)
    assert data == minilm.encode_text("Hello world", LENGTH) and len(data) == text_graph.input_bytes
    ids = np.frombuffer(data, ">i4")
    assert ids[0] == 101 and ids[3] == 102 and ids[LENGTH:].tolist() == [1, 1, 1, 1, 0, 0, 0, 0]
    exactly = "one two three four five six"  # [CLS] six words [SEP]: the model's 8 tokens
    assert minilm.token_count(exactly) == LENGTH
    assert np.frombuffer(input_from_text(exactly, text_graph), ">i4")[LENGTH:].all()


def test_texts_that_do_not_fit_are_refused_not_cut(text_graph, seed_graph):
    with pytest.raises(BadInput, match=r"text is 9 tokens .* at most 8"):
        input_from_text("one two three four five six seven", text_graph)
    with pytest.raises(BadInput, match="empty"):
        input_from_text(" \n", text_graph)
    with pytest.raises(BadInput, match="surrogate"):
        input_from_text("caf\udce9", text_graph)
    with pytest.raises(BadInput, match=r"does not read text \(its input is u8 784"):
        input_from_text("Hello world", seed_graph)


def test_the_step_limit_covers_the_models_run(text_graph, seed_graph):
    assert multiply_adds(seed_graph) == 784 * 20 + 20 * 10
    # one layer over 8 tokens: q, k, v and the output dense (384 x 384), the feed-forward (384 x 1536 and
    # back), and per head (12 of 32) the scores and the weighted values (8 x 8 x 32)
    layer = 4 * LENGTH * 384 * 384 + 2 * LENGTH * 384 * 1536 + 2 * 12 * LENGTH * LENGTH * 32
    assert multiply_adds(text_graph) == layer
    assert estimated_steps(text_graph) == layer * STEPS_PER_MULTIPLY_ADD
    # a small model gets the configured default; a large one twice its estimate, capped at the ceiling
    assert default_step_limit(seed_graph, 100_000_000, 1 << 30) == 100_000_000
    assert default_step_limit(text_graph, 100_000_000, 1 << 34) == 2 * layer * STEPS_PER_MULTIPLY_ADD
    needed = layer * STEPS_PER_MULTIPLY_ADD
    assert default_step_limit(text_graph, 100_000_000, needed + 1) == needed + 1
    with pytest.raises(BadInput, match=r"needs about .* at most 1,000,000"):
        default_step_limit(text_graph, 100, 1_000_000)


def run_steps(graph: Graph | bytes, data: bytes) -> int:
    model = graph if isinstance(graph, bytes) else graph.to_bytes()
    result = Execution(Program.from_file(built(INFERENCE.name)), model=model, input=data).run()
    assert result.exit_code == 0
    return result.steps


def operands(kind: str, shape: tuple[int, ...], rng) -> np.ndarray:
    """float32 operands of one kind: each takes its own path through the guest's multiply-add."""
    n = math.prod(shape)
    if kind == "bits":  # any float32 at all, NaN and infinities included
        values = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32).view(np.float32)
    elif kind == "special":
        values = rng.choice(np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 3e38, 1e-45, 1.0], np.float32), n)
    elif kind == "cancelling":
        values = np.tile(np.array([1.0, -1.0], np.float32), n // 2 + 1)[:n]
    elif kind == "powers of two":
        values = (2.0 ** rng.integers(-20, 20, n)).astype(np.float32)
    else:
        values = rng.uniform(-1, 1, n).astype(np.float32)
    return values.reshape(shape)


KINDS = ("uniform", "bits", "special", "cancelling", "powers of two")


@pytest.mark.parametrize("kind", KINDS)
def test_the_least_steps_of_a_model_are_a_lower_bound_of_its_run(kind, seed_graph):
    """A request is refused when its step limit is below least_steps: so the VM never takes fewer. Linear,
    matmul and padded convolutions (whose border terms the guest skips) over operands of every kind."""
    rng = np.random.default_rng(len(kind))
    conv_weight = operands(kind, (3, 2, 3, 3), rng)
    models = {
        "linear": (Graph(InputType.F32, (48,), [operands(kind, (24, 48), rng)], [Node(Op.LINEAR, [0], [0], [])]), (48,)),
        "padded conv": (
            Graph(InputType.F32, (2, 4, 4), [conv_weight], [Node(Op.CONV2D, [0], [0], [1, 1, 2, 2])]), (2, 4, 4)),
        "strided conv": (
            Graph(InputType.F32, (2, 7, 7), [conv_weight], [Node(Op.CONV2D, [0], [0], [2, 2, 1, 1])]), (2, 7, 7)),
        "matmul": (
            Graph(InputType.F32, (8, 16), [], [Node(Op.TRANSPOSE, [0], [], [1, 0]), Node(Op.MATMUL, [0, 1], [], [])]),
            (8, 16)),
    }  # fmt: skip
    for name, (graph, shape) in models.items():
        parsed = parse_model(graph.to_bytes())
        assert executed_multiply_adds(parsed) > 0, name
        steps = run_steps(graph, operands(kind, shape, rng).astype(">f4").tobytes())
        assert least_steps(parsed) <= steps, (name, least_steps(parsed), steps)
    for pixels in (bytes(784), bytes([255]) * 784, (seed_model_dir() / "input_7.bin").read_bytes()):
        model = (seed_model_dir() / "model.bin").read_bytes()
        assert least_steps(seed_graph) <= run_steps(model, pixels)


def test_padding_is_no_multiply_add_and_a_step_limit_below_the_least_is_refused(seed_graph):
    one_pixel = parse_model(
        Graph(InputType.F32, (2, 1, 1), [np.ones((4, 2, 3, 3), np.float32)], [Node(Op.CONV2D, [0], [0], [1, 1, 1, 1])])
        .to_bytes()
    )  # fmt: skip
    assert multiply_adds(one_pixel) == 4 * 2 * 9 and executed_multiply_adds(one_pixel) == 4 * 2
    least = least_steps(seed_graph)
    assert least == (784 * 20 + 20 * 10) * MIN_STEPS_PER_MULTIPLY_ADD
    check_step_limit_covers_run(seed_graph, least)
    with pytest.raises(BadInput, match=f"needs at least {least:,} steps .* step_limit is {least - 1:,}") as refused:
        check_step_limit_covers_run(seed_graph, least - 1)
    assert refused.value.details["least_steps"] == least
    check_step_limit_covers_run(seed_graph, 1, allow_below=True)


def test_numbers_and_pixels_become_the_input_a_model_reads(seed_graph):
    weights = [np.ones((1, 4), np.float32)]
    image = Graph(InputType.F32, (1, 2, 2), weights, [Node(Op.FLATTEN, [0], [], []), Node(Op.LINEAR, [1], [0], [])])
    vector = Graph(InputType.F32, (4,), [np.ones((1, 4), np.float32)], [Node(Op.LINEAR, [0], [0], [])])
    assert is_image_model(image) and is_image_model(seed_graph) and not is_image_model(vector)
    numbers = [0.5, -1.25, 3e38, 7]
    assert input_from_f32(numbers, image) == np.array(numbers, ">f4").tobytes() == input_from_f32(numbers, vector)
    assert input_from_pixels([0, 1, 128, 255], image) == np.array([0.0, 1.0, 128.0, 255.0], ">f4").tobytes()
    assert input_from_pixels([7] * 784, seed_graph) == bytes([7] * 784)
    for values, reason in (([1.0] * 3, "reads 4 values .* got 3 numbers"), ([4e38, 0, 0, 0], r"value 0 is 4e\+38")):
        with pytest.raises(BadInput, match=reason):
            input_from_f32(values, vector)
    with pytest.raises(BadInput, match="not float32: send pixels"):
        input_from_f32([0.0] * 784, seed_graph)
    with pytest.raises(BadInput, match="does not read pixels"):
        input_from_pixels([0] * 4, vector)
    with pytest.raises(BadInput, match="between 0 and 255"):
        input_from_pixels([0, 0, 0, 256], image)
    little_endian = np.array([0.5, 0.25, np.uint32(0x3F00FFFF).view(np.float32), 1.0], np.float32).tobytes()
    with pytest.raises(BadInput, match="little-endian"):
        check_input(little_endian, vector)
    check_input(np.array([0.5, 0.25, 1.0, 2.0], ">f4").tobytes(), vector)


def test_the_whole_minilm_run_fits_its_deployment():
    """1.63e10 steps measured (docs/benchmarks.md): the estimate is within 2% of it, and the MiniLM deployment's
    limit is above both (a request would otherwise end "not exited", with no embedding)."""
    multiply_adds_16 = 6 * (4 * 16 * 384 * 384 + 2 * 16 * 384 * 1536 + 2 * 12 * 16 * 16 * 32)
    estimate = multiply_adds_16 * STEPS_PER_MULTIPLY_ADD
    assert abs(estimate / 16_321_879_388 - 1) < 0.02
    assert 16_321_879_388 < estimate < MINILM_STEP_LIMIT


def test_an_embedding_is_shown_with_its_norm_a_classifier_with_its_class():
    vector = np.array([0.6, 0.0, -0.8], np.float32)
    output = Prediction(0, vector).to_bytes()
    shown = decode_output(ResultKind.OUTPUT, 0, output, embedding=True)
    assert shown.embedding == [float(v) for v in vector] and shown.predicted is None and shown.scores is None
    assert shown.norm == pytest.approx(1.0, abs=1e-7)
    classifier = decode_output(ResultKind.OUTPUT, 0, output)
    assert classifier.predicted == 0 and classifier.scores == shown.embedding and classifier.embedding is None
    assert decode_output(ResultKind.OUTPUT, 20, b"", embedding=True).embedding is None  # a failed run has no vector
    assert shown.kind == "output" and shown.exited
    for kind in (ResultKind.STEP_LIMIT_REACHED, ResultKind.MALFORMED_OUTPUT, ResultKind.OUTPUT_TOO_LARGE):
        view = decode_output(kind, 0, b"")
        assert view.kind == kind.label and view.predicted is None and view.output == "0x"
        assert view.exited == (kind != ResultKind.STEP_LIMIT_REACHED)


def test_parameters_sized_for_minilm_cover_its_run_and_rounds():
    base = Parameters()
    sized = sized_for(MINILM_STEP_LIMIT)
    assert sized.max_step_limit == 1 << 34 and sized.arity == base.arity and sized.claim_bond == base.claim_bond
    run = math.ceil((1 << 34) / 150_000_000)  # 115 s at the sizing's rate
    assert sized.challenge_window >= run + 2 and sized.clock_budget >= run + 9 * (8 + 2)  # 8 s a round's query
    assert 16**9 >= sized.max_step_limit > 16**8  # 9 rounds of 16-ary dissection
    public = Parameters(challenge_window=86_400, clock_budget=86_400)  # a day each (docs/contracts.md)
    kept = sized_for(MINILM_STEP_LIMIT, public)
    assert (kept.challenge_window, kept.clock_budget) == (86_400, 86_400)  # never less than the base has
