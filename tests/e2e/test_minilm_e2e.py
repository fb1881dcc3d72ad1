"""all-MiniLM-L6-v2 end to end through the agents: a sentence sent as `text` to POST /inference-requests
becomes a final on-chain embedding, bit for bit the reference executor's; a submitter that lies from a step
deep in the 1.6e10-step run is disputed by the challenger agent down to that step and loses its bond.

The run takes about a minute of VM time and the deployment's challenge window is sized for it (about
2.5 minutes, opml.protocol.parameters.sized_for), so this takes minutes: `make test-minilm-e2e`
(OPML_MINILM_E2E=1, called by .ci/run) runs it, `make test` does not. It prints what it measured.
"""

from __future__ import annotations

import os
import time

import httpx
import numpy as np
import pytest

from opml.models import minilm
from opml.models.formats import Prediction, parse_model
from opml.models.reference import run
from opml.protocol.parameters import MINILM_STEP_LIMIT, kept_share, sized_for
from opml.stack import Stack, StackConfig

from .conftest import Harness, wait_for
from .test_scenarios import claims_by, money

pytestmark = pytest.mark.skipif(
    not os.environ.get("OPML_MINILM_E2E"), reason="minutes long: make test-minilm-e2e runs it"
)

PARAMETERS = sized_for(MINILM_STEP_LIMIT)
SENTENCE = "A man is eating food."
SUBMITTER, CHALLENGER, LIAR = 1, 2, 3
# The liar's states are made up from this step on: about three quarters into the 1.63e10-step run, deep in
# the transformer's layers (the embedding lookup is done in the first few percent), so the game has to
# dissect all of its 9 rounds to find it.
LIE_FROM_STEP = 12_000_000_000
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
                                                  "SUBMITTER_FAULT_LIE_FROM_STEP": str(LIE_FROM_STEP)})  # fmt: skip
        say(f"stack up with a liar in {time.monotonic() - started:.1f} s (window {PARAMETERS.challenge_window} s, "
            f"clocks {PARAMETERS.clock_budget} s, max {PARAMETERS.max_step_limit:,} steps)")  # fmt: skip
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
    (game,) = harness.wait_games_over(request_id, 1, timeout=600)
    game_over = time.monotonic()
    report = harness.wait_final(request_id, timeout=PARAMETERS.challenge_window + 300)
    final = time.monotonic()

    # The request as the API chose it: the tokenizer's ids and mask, and a step limit for the model's run.
    assert report["input_size"] == 2 * minilm.SEQUENCE_LENGTH * 4
    assert report["step_limit"] == MINILM_STEP_LIMIT  # twice the estimate, capped by the chain's maximum

    # The honest claim is final, and its embedding is the reference executor's on the same token ids, bit for bit.
    (honest,) = claims_by(report, harness.address(SUBMITTER))
    assert honest["status"] == "finalized" and honest["exited"] and honest["exit_code"] == 0
    assert 1.5e10 < honest["steps"] < MINILM_STEP_LIMIT
    model_file = httpx.get(f"{harness.url('converter')}/models/{minilm_model['id']}/file", timeout=120).content
    expected = run(parse_model(model_file), minilm.encode_text(SENTENCE))
    on_chain = Prediction.from_bytes(bytes.fromhex(report["result"]["output"][2:]))
    assert on_chain.scores.view(np.uint32).tolist() == expected.scores.view(np.uint32).tolist()
    shown = np.array(report["result"]["embedding"], dtype=np.float32)  # the API's decoded vector: the same bits
    assert (
        shown.shape == (minilm.HIDDEN,) and shown.view(np.uint32).tolist() == expected.scores.view(np.uint32).tolist()
    )
    assert abs(report["result"]["norm"] - 1.0) < 1e-6 and report["result"]["predicted"] is None
    # the challenger's explorer lists it as an embedding, not as the index of its largest element
    (brief,) = [row for row in httpx.get(f"{harness.url('challenger')}/requests", timeout=30).json()["items"]
                if row["id"] == request_id]  # fmt: skip
    assert brief["embedding"] is True and brief["predicted"] is None and brief["status"] == "final"

    # The lie: disputed by the challenger agent down to the very step it starts at, in at most 9 rounds.
    (lie,) = claims_by(report, harness.address(LIAR))
    assert lie["status"] == "rejected" and lie["final_state_hash"] != honest["final_state_hash"]
    dispute = harness.dispute(game["id"])
    assert dispute["status"] == "challenger_won" and dispute["winner"] == harness.address(CHALLENGER)
    assert dispute["claim_id"] == lie["id"]
    assert dispute["lo"] == LIE_FROM_STEP - 1 and dispute["final_step"]["step"] == LIE_FROM_STEP - 1
    assert dispute["rounds"] <= 9
    assert dispute["gas_total"] < 2_000_000  # docs/benchmarks.md: 1.48M for a lie from 90% of this run

    # The bonds: the liar's refunds the challenger's moves and the rest is burned; the honest side is paid.
    received, burned = money(harness, start_block)
    bond = PARAMETERS.claim_bond
    refund = received[harness.address(CHALLENGER)] - PARAMETERS.challenge_bond
    moves = (dispute["rounds"] + 1, dispute["rounds"] + 2)  # challenge, selects, and the final step if it sent it
    assert refund in [count * PARAMETERS.move_refund for count in moves]
    assert refund <= kept_share(PARAMETERS, bond)
    assert burned == bond - refund
    assert received[harness.address(SUBMITTER)] == FEE + bond  # the fee, and its bond back
    assert received[harness.address(LIAR)] == 0

    gas: dict[str, list[int]] = {}
    for tx in report["transactions"]:
        gas.setdefault(tx["events"][0], []).append(tx["gas_used"])
    say(f"honest claim: {honest['steps']:,} steps, final {final - requested:.1f} s after the request "
        f"(the window is {PARAMETERS.challenge_window} s); embedding norm {report['result']['norm']:.7f}")  # fmt: skip
    say(f"the lie from step {LIE_FROM_STEP:,}: {dispute['rounds']} rounds, ended at step {dispute['lo']:,} "
        f"(`{dispute['final_step']['mnemonic']}`), game over {game_over - claimed:.1f} s after the claims, "
        f"{dispute['gas_total']:,} gas for the whole dispute ({len(dispute['transactions'])} transactions)")  # fmt: skip
    say("gas of the request's transactions: " + "; ".join(
        f"{name} {sum(used):,}" + (f" ({len(used)} txs)" if len(used) > 1 else "") for name, used in gas.items()
    ))  # fmt: skip
