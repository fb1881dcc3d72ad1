"""The linked two-phase game through the agents on a real anvil (docs/two-phase.md): a graph request's honest claim
is computed natively and becomes final; a lie in one node's value is disputed through phase 1 to that node, linked
to the node program's run, and through phase 2 to one instruction, and the liar loses its bond."""

import pytest
import torch
from torch import nn

from opml.agents.challenger import ChallengerAgent
from opml.agents.solvers import SubmitterFaults
from opml.agents.submitter import SubmitterAgent
from opml.agents.traces import LocalTraces, StaticModels
from opml.chain.anvil import dev_key
from opml.chain.client import TransactionManager, connect
from opml.chain.deploy import deploy_with_defaults, register_model
from opml.chain.registry import Registry
from opml.graph.native import evaluate
from opml.models.convert import graph_from_module
from opml.models.formats import InputType
from opml.protocol.parameters import Parameters
from opml.protocol.types import ClaimStatus, GameStatus, Phase
from opml.resources import seed_model_dir

from .test_agents import CONFIG, Running, final_claim_of, make, patience, wait_for

SEED_MODEL = (seed_model_dir() / "model.bin").read_bytes()
SEVEN = (seed_model_dir() / "input_7.bin").read_bytes()
NODE_STEP_LIMIT = 1 << 26  # a node's run, at most: the CNN's largest node is 1.7e7 steps
BASE = Parameters(max_step_limit=NODE_STEP_LIMIT)


def cnn_model() -> tuple[bytes, bytes]:
    """A small CNN (conv, relu, pool, linear) as a graph-format model, and an input for it."""
    torch.manual_seed(3)
    network = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 14 * 14, 10)
    )
    return graph_from_module(network, (1, 28, 28), InputType.U8).to_bytes(), SEVEN


MODELS = {"seed_mlp": lambda: (SEED_MODEL, SEVEN), "cnn": cnn_model}
# the CNN goes through the services in make test (tests/e2e/test_two_phase_e2e.py); here in make test-slow
NAMES = ["seed_mlp", pytest.param("cnn", marks=pytest.mark.slow)]


@pytest.fixture()
def chain(anvil, timing):
    w3 = connect(anvil.url)
    parameters = timing.sized(BASE, steps=NODE_STEP_LIMIT)  # clocks for phase 1 and a node's run in phase 2
    deployment = deploy_with_defaults(w3, TransactionManager(w3, dev_key(0)), parameters, "seed")
    return w3, deployment, Registry(w3, deployment.registry)


@pytest.fixture()
def database(tmp_path):
    return lambda name: str(tmp_path / f"{name}.db")


def graph_request(chain, model: bytes, input: bytes) -> tuple[int, int]:
    """A request of the node program (the two-phase game) on `model`; its id and the model's."""
    w3, deployment, registry = chain
    owner = TransactionManager(w3, dev_key(9))
    model_id = register_model(registry, owner, model, "test")
    owner.send(registry.request_inference(deployment.node_program_id, model_id, input, NODE_STEP_LIMIT), value=10**15)
    return registry.count("request"), model_id


@pytest.mark.parametrize("name", NAMES)
def test_an_honest_graph_request_is_computed_natively_and_becomes_final(chain, database, name):
    _, _, registry = chain
    model, input = MODELS[name]()
    traces = LocalTraces(StaticModels(model))
    submitter = make(SubmitterAgent, chain, 1, database, traces)
    challenger = make(ChallengerAgent, chain, 2, database, traces)
    request_id, _ = graph_request(chain, model, input)
    with Running(submitter, challenger):
        wait_for(lambda: final_claim_of(registry, request_id) is not None, patience(registry), "finality")
    run = evaluate(model, input)
    claim = final_claim_of(registry, request_id)
    assert claim.graph and claim.final_state_hash == run.final_state and claim.steps == run.node_count
    assert registry.count("game") == 0
    assert registry.result(request_id).output_hash == registry.w3.keccak(run.output)


@pytest.mark.parametrize("name", NAMES)
def test_a_lie_in_one_node_is_disputed_to_that_node_linked_and_lost_at_one_instruction(chain, database, name):
    _, _, registry = chain
    model, input = MODELS[name]()
    run = evaluate(model, input)
    lied_node = run.node_count // 2  # a node inside the graph: its value and every later root differ
    traces = LocalTraces(StaticModels(model))
    honest = make(SubmitterAgent, chain, 1, database, traces)
    liar = make(SubmitterAgent, chain, 3, database, traces,
                solvers=SubmitterFaults(lie="states", lie_from_step=lied_node + 1).solvers(traces))  # fmt: skip
    challenger = make(ChallengerAgent, chain, 2, database, traces)
    request_id, _ = graph_request(chain, model, input)
    with Running(honest, liar, challenger):
        wait_for(lambda: final_claim_of(registry, request_id) is not None, patience(registry), "finality")
        wait_for(lambda: registry.count("game") >= 2 and not any(registry.game(g).active for g in (1, 2)),
                 patience(registry), "both games' end")  # fmt: skip
    assert final_claim_of(registry, request_id).claimant == honest.address
    for game_id in (1, 2):
        game = registry.game(game_id)
        assert registry.claim(game.claim_id).claimant == liar.address
        assert game.status == GameStatus.CHALLENGER_WON
        assert game.phase == Phase.RUN and game.hi - game.lo == 1  # linked, then narrowed to one instruction
        linked = liar.store.events(name="Linked", game_id=game_id)
        assert linked and int(linked[0].args["header"][2:10], 16) == lied_node  # the node of the lie
    assert registry.claim(registry.game(1).claim_id).status == ClaimStatus.REJECTED
    assert CONFIG.poll_interval  # the agents played every move themselves
