"""SmolLM2-135M-Instruct through the services on anvil (docs/llm-graph.md, docs/models.md "A language model"): the
packaged GGUF's OPLM file uploaded to the converter and registered; a prompt sent to POST /inference-requests is a
greedy generation played with the LLM node program, its claim computed natively by the agents and final, the tokens
those of `evaluate_generation` and the text the tokenizer's decoding; a submitter that lies about one element of one
intermediate value of a generated token's step (its layer, op and token drawn at random, OPML_LLM_E2E_SEED replays a
draw) is disputed through phase 1 to that node, linked to the node's run in the VM, and through phase 2 to one
instruction, and loses its bond, as GET /disputes/{id} and the explorer (in Chromium) show; bad requests are 422s.

The stack is its own: node runs need a larger step limit than the shared one's (an LM head chunk is 1.02e9 steps).
"""

from __future__ import annotations

import os
import random
import time

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from opml.models.llm.format import parse_model as parse_llm_model
from opml.models.llm.gguf_import import packaged_model_file
from opml.models.llm.graph import LAYER_ROLES, GenerationGraph, evaluate_generation, weights_of
from opml.models.llm.requests import text_input
from opml.models.llm.steps import step_limit_for
from opml.models.llm.tokenizer import packaged_tokenizer
from opml.protocol.parameters import Parameters, kept_share
from opml.stack import Stack, StackConfig

from .conftest import Harness, wait_for
from .test_explorer import CHROMIUM, CHROMIUM_ARGS, assert_accessible, shoot
from .test_scenarios import claims_by, money

pytestmark = pytest.mark.slow

PROMPT = "Once upon a time, there was a"  # 8 tokens, and no end of the sequence within the answer
NEW_TOKENS = 6
SUBMITTER, CHALLENGER, LIAR = 1, 2, 3
FEE = 10**16
SEED = int(os.environ.get("OPML_LLM_E2E_SEED", str(random.SystemRandom().randrange(1 << 16))))


def say(text: str) -> None:
    print(f"[llm e2e] {text}", flush=True)


@pytest.fixture(scope="module")
def harness(tmp_path_factory, timing):
    """Node runs of up to 2^31 steps (a short prompt's longest node, an LM head chunk, is 1.02e9: about 4 s here,
    after a 2-5 s boot that hashes the model region); a window for the native claim (a second or two after the
    weights' first dequantization, 1.5 s); clocks for a node run per side and both phases' rounds."""
    base = Parameters(max_step_limit=1 << 31, request_timeout=900)
    parameters = timing.sized(base, steps=1 << 31, window_floor=20, clock_floor=120)
    config = StackConfig.ephemeral(tmp_path_factory.mktemp("llm"), parameters=parameters, echo=False,
                                   poll_interval=0.1)  # fmt: skip
    started = time.monotonic()
    with Stack(config) as stack:
        say(f"stack up in {time.monotonic() - started:.1f} s: window {parameters.challenge_window} s, clocks "
            f"{parameters.clock_budget} s, node runs of at most {parameters.max_step_limit:,} steps")  # fmt: skip
        yield Harness(stack)


@pytest.fixture(scope="module")
def smollm2(harness) -> dict:
    """The packaged GGUF as an OPLM model file, uploaded to the converter and registered on-chain."""
    started = time.monotonic()
    model = packaged_model_file()
    converted = time.monotonic()
    response = httpx.post(f"{harness.url('converter')}/models", files={"file": ("smollm2.oplm", model)},
                          data={"register": "true"}, timeout=600)  # fmt: skip
    assert response.status_code in (200, 201), response.text
    upload = response.json()
    say(f"converted in {converted - started:.1f} s; uploaded and registered in {time.monotonic() - converted:.1f} s: "
        f"model {upload['id'][:18]}.., {upload['size']:,} bytes, on-chain id {upload['onchain_model_id']}")  # fmt: skip
    assert upload["format"] == "oplm" and upload["summary"] is None
    language_model = upload["language_model"]
    assert (language_model["layers"], language_model["width"], language_model["vocabulary"]) == (30, 576, 49152)
    assert language_model["context"] == 8192 and language_model["tokenizer"] == "smollm2"
    assert httpx.get(f"{harness.url('converter')}/models/{upload['id']}", timeout=30).json() == upload
    return {**upload, "file": model}


def post(harness, body: dict) -> httpx.Response:
    return httpx.post(f"{harness.url('submitter')}/inference-requests", json=body, timeout=120)


def test_bad_requests_are_refused_before_anything_is_sent(harness, smollm2):
    before = harness.registry.count("request")
    llm, seed = smollm2["id"], harness.model_id
    deployment = harness.stack.deployment
    cases = {
        "a prompt longer than the context": ({"model": llm, "prompt": "a " * 8_200}, "context of 8192"),
        "a prompt whose node runs need a larger deployment": (
            {"model": llm, "prompt": "the quick brown fox jumps over the lazy dog. " * 4}, "Deploy with maxStepLimit"),
        "an empty prompt": ({"model": llm, "prompt": "  "}, "empty"),
        "a prompt on a model that is not a language model": ({"model": seed, "prompt": PROMPT}, "language models"),
        "messages on a model that is not a language model": (
            {"model": seed, "messages": [{"role": "user", "content": "hi"}]}, "language models"),
        "text on the language model": ({"model": llm, "text": PROMPT}, "send prompt"),
        "pixels on the language model": ({"model": llm, "pixels": [0] * 784}, "send prompt"),
        "a prompt and messages": (
            {"model": llm, "prompt": PROMPT, "messages": [{"role": "user", "content": "hi"}]}, "one way"),
        "too many new tokens": ({"model": llm, "prompt": PROMPT, "max_new_tokens": 65}, "at most 64"),
        "the whole-run program": ({"model": llm, "prompt": PROMPT, "program": deployment.program_id},
                                  "LLM node program"),
        "a step limit below the longest node": ({"model": llm, "prompt": PROMPT, "step_limit": 10**8},
                                                "longest node run"),
    }  # fmt: skip
    malformed = {
        "messages with an unknown role": {"model": llm, "messages": [{"role": "robot", "content": "hi"}]},
        "a message without content": {"model": llm, "messages": [{"role": "user"}]},
        "a message with another field": {"model": llm, "messages": [{"role": "user", "content": "hi", "name": "x"}]},
        "no messages": {"model": llm, "messages": []},
        "messages that are not a list": {"model": llm, "messages": "hi"},
        "max_new_tokens of 0": {"model": llm, "prompt": PROMPT, "max_new_tokens": 0},
    }
    for case, (body, reason) in cases.items():
        response = post(harness, body)
        assert response.status_code == 422, (case, response.text)
        assert reason in response.json()["message"], (case, response.json())
    for case, body in malformed.items():
        response = post(harness, body)
        assert response.status_code == 422 and response.json()["error"] == "bad_input", (case, response.text)
    assert harness.registry.count("request") == before  # nothing was sent


def test_a_prompt_is_answered_and_final(harness, smollm2):
    started = time.monotonic()
    response = post(harness, {"model": smollm2["id"], "prompt": PROMPT, "max_new_tokens": NEW_TOKENS})
    assert response.status_code == 202, response.text
    request_id = response.json()["request_id"]
    report = harness.wait_final(request_id)
    final_s = time.monotonic() - started

    config = weights_of(smollm2["file"]).config
    input = text_input(PROMPT, NEW_TOKENS, config)
    run = evaluate_generation(smollm2["file"], input)
    tokenizer = packaged_tokenizer()
    assert report["game"] == "two_phase" and report["program_id"] == harness.stack.deployment.llm_program_id
    assert report["input_size"] == len(input)
    prompt_ids = tokenizer.encode(PROMPT)
    assert report["step_limit"] == step_limit_for(parse_llm_model(smollm2["file"]), len(prompt_ids), NEW_TOKENS)
    (claim,) = report["claims"]
    assert claim["final_state_hash"] == "0x" + run.final_state.hex() and claim["steps"] == run.node_count
    result = report["result"]
    assert result["tokens"] == run.tokens and len(run.tokens) == NEW_TOKENS
    assert result["text"] == tokenizer.decode(run.tokens)
    assert result["output"] == "0x" + run.output.hex() and result["predicted"] is None
    generation = report["generation"]
    assert generation["prompt_tokens"] == prompt_ids and generation["prompt"] == PROMPT
    assert generation["max_new_tokens"] == NEW_TOKENS and generation["tokens"] == run.tokens
    assert generation["text"] == result["text"] and generation["finished"] is False
    (brief,) = [row for row in httpx.get(f"{harness.url('challenger')}/requests", timeout=30).json()["items"]
                if row["id"] == request_id]  # fmt: skip
    assert brief["language_model"] is True and brief["text"] == result["text"] and brief["predicted"] is None
    say(f"{PROMPT!r} -> {result['text']!r}: {run.node_count:,} nodes, final {final_s:.1f} s after the request "
        f"(window {harness.parameters.challenge_window} s)")  # fmt: skip


def drawn_node(graph: GenerationGraph) -> tuple[int, int, int, str]:
    """A node of a generated token's step, drawn with SEED: (node, token step, layer, role)."""
    draw = random.Random(SEED)
    step = draw.randrange(graph.max_new_tokens)
    layer = draw.randrange(graph.config.layers)
    role = draw.choice(LAYER_ROLES)
    return graph.layer_slot(step, layer, role) - 1, step, layer, role.name.lower()


def test_a_lie_in_one_value_of_a_generated_token_is_disputed_through_both_phases(harness, smollm2):
    config = weights_of(smollm2["file"]).config
    input = text_input(PROMPT, NEW_TOKENS, config)
    run = evaluate_generation(smollm2["file"], input)
    node, step, layer, role = drawn_node(run.graph)
    say(f"OPML_LLM_E2E_SEED={SEED}: the liar flips one bit of one element of node {node:,} (token {step}, layer "
        f"{layer}, {role})")  # fmt: skip
    liar = harness.stack.start_service("liar-llm", "submitter", {
        "SUBMITTER_DEV_ACCOUNT": str(LIAR), "SUBMITTER_FAULT_LIE": "states",
        "SUBMITTER_FAULT_LIE_FROM_STEP": str(node + 1)})  # fmt: skip
    try:
        start_block = harness.w3.eth.block_number
        requested = time.monotonic()
        response = post(harness, {"model": smollm2["id"], "prompt": PROMPT, "max_new_tokens": NEW_TOKENS, "fee": FEE})
        assert response.status_code == 202, response.text
        request_id = response.json()["request_id"]
        wait_for(lambda: len(harness.report(request_id).get("claims", [])) == 2, 300, "both claims", interval=0.5)
        revealed = time.monotonic()
        games = harness.wait_games_over(request_id, 2)
        over = time.monotonic()
        report = harness.wait_final(request_id)
    finally:
        liar.stop()
        harness.stack.services.pop(liar.name, None)

    (honest,) = claims_by(report, harness.address(SUBMITTER))
    (lie,) = claims_by(report, harness.address(LIAR))
    assert honest["status"] == "finalized" and lie["status"] == "rejected"
    assert report["result"]["tokens"] == run.tokens  # the honest answer is final
    disputes = [harness.dispute(game["id"]) for game in games]
    assert {d["challenger"] for d in disputes} == {harness.address(CHALLENGER), harness.address(SUBMITTER)}
    for dispute in disputes:
        assert dispute["status"] == "challenger_won" and dispute["claim_id"] == lie["id"]
        assert dispute["game"] == "two_phase" and dispute["phase"] == "run" and dispute["hi"] - dispute["lo"] == 1
        link = dispute["link"]
        assert (link["node"], link["step"], link["layer"], link["role"]) == (node, step, layer, role)
        assert link["op"] == run.graph.node_info(node).op and link["steps"] > 0
        assert [o["slot"] for o in link["operands"]] == list(run.graph.node(node).operands)
        assert all(o["node"]["index"] == o["slot"] - 1 for o in link["operands"] if o["slot"] > 0)  # each named
        phase1 = [r for r in dispute["history"] if r["phase"] == "graph"]
        assert phase1 and all(r["nodes"] and all(n["step"] is not None for n in r["nodes"]) for r in phase1)
        assert dispute["final_step"]["mnemonic"] != "unknown"  # an instruction of the node's run
        assert dispute["generation"]["prompt"] == PROMPT and dispute["generation"]["tokens"] == run.tokens
    received, burned = money(harness, start_block)
    assert received[harness.address(LIAR)] == 0  # the liar's bond is lost: refunds to each challenger, the rest burned
    bond = harness.parameters.claim_bond
    refunds = {d["challenger"]: received[d["challenger"]] - harness.parameters.challenge_bond for d in disputes}
    refunds[harness.address(SUBMITTER)] -= FEE + bond  # the honest submitter was paid for its claim too
    assert all(0 < value <= kept_share(harness.parameters, bond) for value in refunds.values())
    assert burned == bond - sum(refunds.values())

    (dispute,) = [d for d in disputes if d["challenger"] == harness.address(CHALLENGER)]
    phases = [sum(1 for r in dispute["history"] if r["phase"] == phase) for phase in ("graph", "run")]
    say(f"claims revealed {revealed - requested:.1f} s after the request; games over {over - revealed:.1f} s later: "
        f"{phases[0]} rounds over {run.node_count:,} nodes, linked node {node:,} ({dispute['link']['op']}, a "
        f"{dispute['link']['steps']:,}-step run), {phases[1]} rounds to step {dispute['lo']:,} "
        f"(`{dispute['final_step']['mnemonic']}`), {dispute['gas_total']:,} gas")  # fmt: skip
    explorer_shows_both_phases(harness, dispute, run)


def explorer_shows_both_phases(harness: Harness, dispute: dict, run) -> None:
    """The game page in Chromium: the prompt and the answer beside the game, phase 1's picture over the values, the
    link naming the node's token, layer and op, phase 2's picture down to the instruction."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{harness.url('challenger')}/ui/disputes/{dispute['id']}")
        expect(page.locator("[data-prompt]")).to_have_text(PROMPT)
        expect(page.locator("[data-answer]")).to_have_text(packaged_tokenizer().decode(run.tokens))
        pictures = page.locator("#dissection figure.picture")
        expect(pictures).to_have_count(2)
        phase1 = sum(1 for r in dispute["history"] if r["phase"] == "graph")
        expect(page.locator('figure[data-phase="graph"] g.pic-row')).to_have_count(phase1 + 1)
        expect(page.locator('figure[data-phase="node"] g.pic-row')).to_have_count(dispute["rounds"] - phase1 + 1)
        link = dispute["link"]
        box = page.locator("#link")
        expect(box).to_have_attribute("data-link-step", str(link["step"]))
        expect(box).to_have_attribute("data-link-layer", str(link["layer"]))
        expect(box).to_contain_text(f"token {link['step']}, layer {link['layer']}, {link['role'].replace('_', ' ')}")
        expect(page.locator("[data-token-step]")).to_contain_text(f"token {link['step']}")
        expect(page.locator("[data-verdict]")).to_contain_text("the challenger was right")
        assert_accessible(page)
        shoot(page, "llm-two-phase-game")
        browser.close()
