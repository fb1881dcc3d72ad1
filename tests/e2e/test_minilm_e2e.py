"""all-MiniLM-L6-v2 end to end through the agents, on the linked two-phase game (docs/two-phase.md): a sentence
sent as `text` to POST /inference-requests becomes a final on-chain embedding, computed natively by the agents
(no VM run of the model: the 1.6e10-step whole run is what the game spares), bit for bit the native
reference's; a submitter that lies about one node deep in the graph is disputed by the challenger and the honest
submitter through phase 1 to that node, linked to the node program's run of it, and through phase 2 to one
instruction, and loses its bond.

`make test-minilm-e2e` (OPML_MINILM_E2E=1, called by .ci/run) runs it, `make test` does not (the model's
conversion and a node run of up to 9e8 steps take a minute or two). It prints what it measured.
"""

from __future__ import annotations

import os
import time

import httpx
import numpy as np
import pytest

from opml.graph.native import evaluate
from opml.graph.values import decode_value
from opml.models import minilm
from opml.protocol.parameters import Parameters, kept_share
from opml.stack import Stack, StackConfig

from .conftest import Harness, wait_for
from .test_scenarios import claims_by, money

pytestmark = pytest.mark.skipif(
    not os.environ.get("OPML_MINILM_E2E"), reason="minutes long: make test-minilm-e2e runs it"
)

# Node runs of up to 2^31 steps (the largest MiniLM node, a 384 x 1536 linear over 16 tokens, is 8.7e8); a window
# for a native check of a second or two; clocks for the node runs a dispute needs (a few seconds each here) and
# both phases' rounds.
PARAMETERS = Parameters(max_step_limit=1 << 31, challenge_window=60, clock_budget=240, request_timeout=1800)
SENTENCE = "A man is eating food."
SUBMITTER, CHALLENGER, LIAR = 1, 2, 3
# The liar flips one bit of this node's value: three quarters into the graph's 186 nodes, deep in the
# transformer's layers, so phase 1 dissects all its rounds to find it.
LIED_NODE = 140
FEE = 10**16


def say(text: str) -> None:
    print(f"[minilm e2e] {text}", flush=True)


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    """The stack deployed for MiniLM (requests of up to 2^34 steps, window and clocks sized for them), with a
    lying submitter beside the honest one from the start, so that both serve the one request."""
    config = StackConfig.ephemeral(tmp_path_factory.mktemp("stack"), parameters=PARAMETERS, echo=False,
                                   poll_interval=0.1)  # fmt: skip
    started = time.monotonic()
    with Stack(config) as stack:
        stack.start_service("liar", "submitter", {"SUBMITTER_DEV_ACCOUNT": str(LIAR), "SUBMITTER_FAULT_LIE": "states",
                                                  "SUBMITTER_FAULT_LIE_FROM_STEP": str(LIED_NODE + 1)})  # fmt: skip
        say(f"stack up with a liar in {time.monotonic() - started:.1f} s (window {PARAMETERS.challenge_window} s, "
            f"clocks {PARAMETERS.clock_budget} s, node runs of at most {PARAMETERS.max_step_limit:,} steps)")  # fmt: skip
        yield Harness(stack)


@pytest.fixture(scope="module")
def minilm_model(harness) -> dict:
    """all-MiniLM-L6-v2 exported to ONNX and uploaded to the converter, which converts and registers it."""
    started = time.monotonic()
    onnx = minilm.export_onnx()
    exported = time.monotonic()
    response = httpx.post(f"{harness.url('converter')}/models", files={"file": ("all-MiniLM-L6-v2.onnx", onnx)},
                          data={"register": "true"}, timeout=600)  # fmt: skip
    assert response.status_code == 201, response.text
    model = response.json()
    say(f"exported ONNX ({len(onnx):,} bytes) in {exported - started:.1f} s; uploaded, converted and registered "
        f"in {time.monotonic() - exported:.1f} s: model {model['id'][:18]}.., {model['size']:,} bytes, "
        f"on-chain id {model['onchain_model_id']}")  # fmt: skip
    return model


def test_text_is_checked_before_anything_is_sent(harness, minilm_model):
    url = f"{harness.url('submitter')}/inference-requests"
    before = harness.registry.count("request")
    long_text = "the quick brown fox jumps over the lazy dog " * 3
    cases = {
        "text too long": ({"model": minilm_model["id"], "text": long_text}, "tokens"),
        "empty text": ({"model": minilm_model["id"], "text": "  "}, "empty"),
        "text on an image model": ({"model": harness.model_id, "text": SENTENCE}, "does not read text"),
        "text and bytes": (
            {"model": minilm_model["id"], "text": SENTENCE, "input_base64": "AAAA"},
            "one way",
        ),
    }
    for case, (body, reason) in cases.items():
        response = httpx.post(url, json=body, timeout=60)
        assert response.status_code == 422, (case, response.text)
        assert reason in response.json()["message"], (case, response.json())
    assert harness.registry.count("request") == before  # nothing was sent


def test_a_sentence_becomes_a_final_embedding_and_a_deep_lie_loses(harness, minilm_model):
    start_block = harness.w3.eth.block_number
    requested = time.monotonic()
    response = httpx.post(f"{harness.url('submitter')}/inference-requests",
                          json={"model": minilm_model["id"], "text": SENTENCE, "fee": FEE}, timeout=120)  # fmt: skip
    assert response.status_code == 202, response.text
    request_id = response.json()["request_id"]
    say(f"request {request_id}: {SENTENCE!r} on-chain ({response.json()['gas_used']:,} gas)")

    wait_for(lambda: len(harness.report(request_id).get("claims", [])) == 2, 600, "the honest and the lying claim",
             interval=1.0)  # fmt: skip
    claimed = time.monotonic()
    say(f"both claims revealed {claimed - requested:.1f} s after the request (the VM runs, the liar's in-process)")
    games = harness.wait_games_over(request_id, 2, timeout=900)  # the challenger's and the honest submitter's
    game_over = time.monotonic()
    report = harness.wait_final(request_id, timeout=PARAMETERS.challenge_window + 900)
    final = time.monotonic()

    # The request as the API chose it: the tokenizer's ids and mask, the two-phase game, and a step limit that
    # bounds each node's run.
    assert report["input_size"] == 2 * minilm.SEQUENCE_LENGTH * 4
    assert report["game"] == "two_phase"
    model_file = httpx.get(f"{harness.url('converter')}/models/{minilm_model['id']}/file", timeout=120).content
    native = evaluate(model_file, minilm.encode_text(SENTENCE))

    # The honest claim is final: the native values' root and node count, and its embedding, bit for bit.
    (honest,) = claims_by(report, harness.address(SUBMITTER))
    assert honest["status"] == "finalized" and honest["steps"] == native.node_count
    assert honest["final_state_hash"] == "0x" + native.final_state.hex()
    assert report["result"]["output"] == "0x" + native.output.hex()
    expected = decode_value(native.output).elements.reshape(-1).astype(np.float32)
    shown = np.array(report["result"]["embedding"], dtype=np.float32)  # the API's decoded vector: the same bits
    assert shown.shape == (minilm.HIDDEN,) and shown.view(np.uint32).tolist() == expected.view(np.uint32).tolist()
    assert abs(report["result"]["norm"] - 1.0) < 1e-6 and report["result"]["predicted"] is None
    # the challenger's explorer lists it as an embedding, not as the index of its largest element
    (brief,) = [row for row in httpx.get(f"{harness.url('challenger')}/requests", timeout=30).json()["items"]
                if row["id"] == request_id]  # fmt: skip
    assert brief["embedding"] is True and brief["predicted"] is None and brief["status"] == "final"

    # The lie: disputed through phase 1 to its node, linked, and through phase 2 to one instruction.
    (lie,) = claims_by(report, harness.address(LIAR))
    assert lie["status"] == "rejected" and lie["final_state_hash"] != honest["final_state_hash"]
    disputes = [harness.dispute(game["id"]) for game in games]
    assert {d["challenger"] for d in disputes} == {harness.address(CHALLENGER), harness.address(SUBMITTER)}
    for dispute in disputes:
        assert dispute["status"] == "challenger_won" and dispute["claim_id"] == lie["id"]
        assert dispute["game"] == "two_phase" and dispute["phase"] == "run" and dispute["hi"] - dispute["lo"] == 1
        assert dispute["link"]["node"] == LIED_NODE
        assert dispute["rounds"] <= 12
        assert dispute["gas_total"] < 2_500_000
    (dispute,) = [d for d in disputes if d["challenger"] == harness.address(CHALLENGER)]

    # The bonds: the liar's refunds each challenger's moves and the rest is burned; the honest side is paid.
    received, burned = money(harness, start_block)
    bond = PARAMETERS.claim_bond
    refunds = {d["challenger"]: received[d["challenger"]] - PARAMETERS.challenge_bond for d in disputes}
    refunds[harness.address(SUBMITTER)] -= FEE + bond  # the honest submitter was also paid for its claim
    assert all(0 < refund <= kept_share(PARAMETERS, bond) for refund in refunds.values())
    assert burned == bond - sum(refunds.values())
    assert received[harness.address(LIAR)] == 0

    gas: dict[str, list[int]] = {}
    for tx in report["transactions"]:
        gas.setdefault(tx["events"][0], []).append(tx["gas_used"])
    phases = [sum(1 for r in dispute["history"] if r["phase"] == phase) for phase in ("graph", "run")]
    say(f"honest claim: {honest['steps']} nodes computed natively, final {final - requested:.1f} s after the request "
        f"(the window is {PARAMETERS.challenge_window} s); embedding norm {report['result']['norm']:.7f}")  # fmt: skip
    say(f"the lie in node {LIED_NODE} ({dispute['link']['op']}): {phases[0]} rounds over nodes, linked, {phases[1]} "
        f"over its {dispute['link']['steps']:,}-step run, ended at step {dispute['lo']:,} "
        f"(`{dispute['final_step']['mnemonic']}`), game over {game_over - claimed:.1f} s after the claims, "
        f"{dispute['gas_total']:,} gas for the whole dispute ({len(dispute['transactions'])} transactions)")  # fmt: skip
    say("gas of the request's transactions: " + "; ".join(
        f"{name} {sum(used):,}" + (f" ({len(used)} txs)" if len(used) > 1 else "") for name, used in gas.items()
    ))  # fmt: skip
