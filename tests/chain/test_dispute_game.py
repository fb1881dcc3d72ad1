"""Full dispute games on anvil for the seed MNIST model: real VM states, the real final step."""

import dataclasses
import random
import subprocess
import sys

import pytest

from opml.chain.anvil import advance_time
from opml.chain.contracts import send
from opml.chain.registry import Deployment, HonestPlayer, Parameters, deploy_all, forged_claim, registry_at
from opml.guest import INFERENCE, built
from opml.models.formats import Prediction, model_root
from opml.vm.elf import Program
from opml.vm.execution import Execution
from opml.vm.state import State

from ..models.conftest import SEED

PARAMETERS = Parameters(arity=16)


@pytest.fixture(scope="module")
def honest():
    model, input = (SEED / "model.bin").read_bytes(), (SEED / "input_7.bin").read_bytes()
    return HonestPlayer(Execution(Program.from_file(built(INFERENCE.name)), model=model, input=input))


@pytest.fixture()
def setup(w3, honest):
    """A fresh registry with the inference program, the seed model and a request for input_7."""
    _, registry = deploy_all(w3, PARAMETERS)
    roots = honest.execution.region_roots()
    send(w3, registry.functions.registerProgram(roots["program"], honest.execution.program.entry))
    model = (SEED / "model.bin").read_bytes()
    assert model_root(model) == roots["model"]
    send(w3, registry.functions.registerModel(roots["model"], w3.keccak(model), "models/seed-mnist/model.bin"))
    input = (SEED / "input_7.bin").read_bytes()
    send(w3, registry.functions.requestInference(1, 1, input, "0x" + "00" * 20), value=10**15)
    start = registry.functions.requests(1).call()[7]
    assert bytes(start) == honest.execution.initial_state.hash  # the start state computed on-chain
    return registry


def play(w3, registry, game_id, defender_hashes, challenger_segment, defender, challenger):
    rounds = 0
    while True:
        game = registry.functions.games(game_id).call()
        lo, hi = game[4], game[5]
        if hi - lo == 1:
            break
        hashes = defender_hashes(lo, hi)
        send(w3, registry.functions.bisect(game_id, hashes), defender)
        send(w3, registry.functions.select(game_id, challenger_segment(lo, hi, hashes), hashes), challenger)
        rounds += 1
    return rounds, lo


def test_a_lying_defender_loses_to_the_honest_challenger_and_pays(w3, honest, setup):
    registry = setup
    defender, challenger = w3.eth.accounts[1], w3.eth.accounts[2]
    lie = Prediction(3, Prediction.from_bytes(honest.result.output).scores[::-1].copy()).to_bytes()
    state, output, siblings = forged_claim(honest.execution, lie)
    send(w3, registry.functions.submitClaim(1, state, output, siblings), defender, PARAMETERS.claim_bond)
    send(w3, registry.functions.challenge(1), challenger, PARAMETERS.challenge_bond)
    diverge = random.Random(3).randrange(1, honest.result.steps)  # the liar's states are wrong from here on

    def liar_hashes(lo, hi):
        points = registry.functions.points(lo, hi).call()[1:-1]
        return [honest.state_hash(p) if p < diverge else dataclasses.replace(honest.execution.state_at(p), lo=1).hash for p in points]

    rounds, lo = play(w3, registry, 1, liar_hashes, lambda lo, hi, h: honest.disputed_segment(registry, lo, hi, h), defender, challenger)
    assert rounds <= 6
    assert lo == diverge - 1  # narrowed to the very step where the lie starts
    send(w3, registry.functions.resolve(1, *honest.step_witness(lo)), challenger)
    assert registry.functions.games(1).call()[2] == 3  # ChallengerWon
    assert registry.functions.requests(1).call()[1] == 1  # the request is open again
    before = w3.eth.get_balance(challenger)
    receipt = send(w3, registry.functions.withdraw(), challenger)
    gained = w3.eth.get_balance(challenger) - before + receipt.gasUsed * receipt.effectiveGasPrice
    assert gained == PARAMETERS.claim_bond + PARAMETERS.challenge_bond


def test_an_honest_defender_beats_a_lying_challenger_and_the_result_becomes_final(w3, honest, setup):
    registry = setup
    defender, challenger = w3.eth.accounts[3], w3.eth.accounts[4]
    state, output, siblings = honest.claim_arguments()
    assert State.decode(state).exit_code == 0 and Prediction.from_bytes(output).predicted == 7
    send(w3, registry.functions.submitClaim(1, state, output, siblings), defender, PARAMETERS.claim_bond)
    send(w3, registry.functions.challenge(1), challenger, PARAMETERS.challenge_bond)
    choices = random.Random(4)

    rounds, lo = play(w3, registry, 1, lambda lo, hi: honest.bisection(registry, lo, hi),
                      lambda lo, hi, hashes: choices.randrange(len(hashes) + 1), defender, challenger)  # fmt: skip
    send(w3, registry.functions.resolve(1, *honest.step_witness(lo)), defender)
    assert registry.functions.games(1).call()[2] == 2  # DefenderWon
    advance_time(w3, PARAMETERS.challenge_window)
    send(w3, registry.functions.finalize(1, state, output, siblings))
    is_final, exit_code, result = registry.functions.resultOf(1).call()
    assert is_final and exit_code == 0 and Prediction.from_bytes(bytes(result)).predicted == 7
    assert registry.functions.balances(defender).call() == PARAMETERS.claim_bond + PARAMETERS.challenge_bond + 10**15


def test_the_deploy_command_writes_addresses_services_can_use(anvil, w3, tmp_path):
    out = tmp_path / "deployment.json"
    result = subprocess.run(
        [sys.executable, "-m", "opml.cli", "deploy", "--rpc", anvil.url, "-o", str(out), "--arity", "8"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    deployment = Deployment.read(out)
    assert deployment.parameters.arity == 8 and deployment.chain_id == w3.eth.chain_id
    registry = registry_at(w3, deployment.registry)
    assert registry.functions.arity().call() == 8
    assert registry.functions.verifier().call() == deployment.mips
    refused = subprocess.run(
        [sys.executable, "-m", "opml.cli", "deploy", "--rpc", "http://127.0.0.1:9", "-o", str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert refused.returncode == 2 and "no Ethereum node answers" in refused.stderr
