"""The two-phase game through the services (docs/two-phase.md): a graph-format model uploaded to the converter
plays it by default; its honest result is computed natively and becomes final, and a lie in one node's value is
disputed through phase 1, linked and lost at one instruction, as GET /disputes/{id} shows round by round."""

import httpx
import pytest
import torch
from torch import nn

from opml.graph.native import evaluate
from opml.models.convert import graph_from_module
from opml.models.formats import InputType

from .conftest import SEVEN, running

SUBMITTER, CHALLENGER, LIAR = 1, 2, 3


@pytest.fixture(scope="module")
def cnn(harness) -> tuple[str, bytes]:
    """A small CNN in the graph format, uploaded and registered: its id and its file."""
    torch.manual_seed(5)
    network = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                            nn.Linear(4 * 14 * 14, 10))  # fmt: skip
    model = graph_from_module(network, (1, 28, 28), InputType.U8).to_bytes()
    response = httpx.post(f"{harness.url('converter')}/models", files={"file": ("cnn.opmg", model)},
                          data={"register": "true"}, timeout=120)  # fmt: skip
    assert response.status_code in (200, 201), response.text
    return response.json()["id"], model


def test_a_graph_model_plays_the_two_phase_game_and_its_native_result_becomes_final(harness, cnn):
    model_id, model = cnn
    request_id = harness.request(SEVEN, model=model_id)
    report = harness.wait_final(request_id)
    assert report["game"] == "two_phase"
    run = evaluate(model, SEVEN)
    (claim,) = report["claims"]
    assert claim["final_state_hash"] == "0x" + run.final_state.hex() and claim["steps"] == run.node_count
    scores = [float(x) for x in torch.tensor(list(report["result"]["scores"]))]
    assert report["result"]["predicted"] == max(range(len(scores)), key=lambda i: (scores[i], -i))
    assert report["result"]["output"] == "0x" + run.output.hex()


def test_a_lie_in_one_node_is_shown_through_both_phases_down_to_one_instruction(harness, cnn):
    model_id, model = cnn
    lied_node = 2  # the max pool: its output value is flipped by one bit
    liar = ("liar-graph", "submitter", LIAR, {"SUBMITTER_FAULT_LIE": "states",
                                              "SUBMITTER_FAULT_LIE_FROM_STEP": str(lied_node + 1)})  # fmt: skip
    with running(harness, liar):
        request_id = harness.request(SEVEN[:-1] + b"\x01", model=model_id)
        games = harness.wait_games_over(request_id, 2)
        report = harness.wait_final(request_id)
    assert [c["claimant"] for c in report["claims"] if c["status"] == "finalized"] == [harness.address(SUBMITTER)]
    for game in games:
        dispute = harness.dispute(game["id"])
        assert dispute["game"] == "two_phase" and dispute["phase"] == "run"
        assert dispute["status"] == "challenger_won" and dispute["hi"] - dispute["lo"] == 1
        assert dispute["link"]["node"] == lied_node and dispute["link"]["op"] == "maxpool2d"
        assert dispute["link"]["operand_slots"] == [lied_node]  # the value before it: the relu's
        graph_rounds = [r for r in dispute["history"] if r["phase"] == "graph"]
        assert graph_rounds and all(r["nodes"] for r in graph_rounds)  # each point named by its node
        assert [m["move"] for m in dispute["moves"]].count("link") == 1
        assert dispute["final_step"]["mnemonic"] != "unknown"  # the instruction at stake, of the node's run
