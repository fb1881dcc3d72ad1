"""Full dispute games on anvil under the hardened rules, for the seed MNIST model: real VM states, the
real final step, typed reads, and every transaction sent the way the agents send them."""

import random
import subprocess
import sys

import pytest
from web3 import Web3
from web3.logs import DISCARD

from opml.agents.player import Player, bisections_from_logs, play_out
from opml.agents.responder import Responder
from opml.chain.anvil import advance_time, dev_key
from opml.chain.client import TransactionManager
from opml.chain.deploy import deploy_contracts, program_image, register_model, register_program
from opml.chain.errors import TxReverted
from opml.chain.events import EventReader
from opml.chain.registry import Deployment, Registry
from opml.game.faults import LyingTrace, RandomChallenger, lying_output
from opml.game.solver import Solver
from opml.game.trace import LocalTrace, forged_claim
from opml.guest import INFERENCE, LARGE_OUTPUT, MALFORMED_OUTPUT, SPIN, built
from opml.models.formats import Prediction
from opml.protocol.parameters import Parameters
from opml.protocol.types import ClaimStatus, GameStatus, RequestStatus, ResultKind, Turn
from opml.vm.elf import Program
from opml.vm.execution import Execution

from ..models.conftest import SEED

PARAMETERS = Parameters(arity=16, challenge_window=600, clock_budget=3_600, max_step_limit=10_000_000)
STEP_LIMIT = 5_000_000
FEE = 10**15


@pytest.fixture(scope="module")
def execution():
    model, input = (SEED / "model.bin").read_bytes(), (SEED / "input_7.bin").read_bytes()
    return Execution(Program.from_file(built(INFERENCE.name)), model=model, input=input)


@pytest.fixture(scope="module")
def honest(execution):
    return Solver(LocalTrace(execution, STEP_LIMIT), PARAMETERS.arity)


class Party:
    """A dev account with its own transaction manager."""

    def __init__(self, w3: Web3, index: int):
        self.tx = TransactionManager(w3, dev_key(index))
        self.address = self.tx.address


@pytest.fixture()
def chain(w3):
    """A fresh registry with the inference program and the seed model, and a request for input_7."""
    owner = Party(w3, 0)
    deployment = deploy_contracts(w3, owner.tx, PARAMETERS)
    registry = Registry(w3, deployment.registry)
    program_id = register_program(registry, owner.tx, program_image(Program.from_file(built(INFERENCE.name))))
    model_id = register_model(registry, owner.tx, (SEED / "model.bin").read_bytes(), "models/seed-mnist/model.bin")
    input = (SEED / "input_7.bin").read_bytes()
    owner.tx.send(registry.request_inference(program_id, model_id, input, STEP_LIMIT), value=FEE)
    return registry, deployment, program_id, model_id


def claim(registry: Registry, party: Party, request_id: int, final_claim) -> int:
    party.tx.send(registry.commit_claim(request_id, final_claim, party.address))
    party.tx.send(registry.submit_claim(request_id, final_claim), value=PARAMETERS.claim_bond)
    return registry.count("claim")


def play(registry, deployment, game_id, defender: Party, defender_solver, challenger: Party, challenger_solver):
    """Both sides move through the agents' Player until the game ends; returns the rounds played."""
    bisections = bisections_from_logs(EventReader(registry.w3, registry.contract), deployment.start_block)
    play_out(
        registry,
        game_id,
        Player(registry, Responder(registry, defender.tx), Turn.DEFENDER, defender_solver, bisections),
        Player(registry, Responder(registry, challenger.tx), Turn.CHALLENGER, challenger_solver, bisections),
    )
    return registry.game(game_id).rounds


def test_an_honest_claim_wins_beside_a_lie_that_the_honest_challenger_defeats(w3, chain, execution, honest):
    registry, deployment, _, _ = chain
    submitter, liar, challenger = Party(w3, 1), Party(w3, 2), Party(w3, 3)
    assert registry.request(1).start_state_hash == execution.initial_state.hash  # computed on-chain

    lie_from = random.Random(3).randrange(1, honest.claim().steps)  # the liar's states are wrong from here on
    lie = forged_claim(execution, lying_output(execution, STEP_LIMIT))
    liar_solver = Solver(LyingTrace(honest.trace, lie, lie_from), PARAMETERS.arity)
    lie_id = claim(registry, liar, 1, lie)
    honest_id = claim(registry, submitter, 1, honest.claim())
    assert registry.request(1).live_claims == 2
    assert not honest.agrees_with(registry.claim(lie_id).final_state_hash)

    challenger.tx.send(registry.challenge(lie_id), value=PARAMETERS.challenge_bond)
    rounds = play(registry, deployment, 1, liar, liar_solver, challenger, honest)
    game = registry.game(1)
    assert game.status == GameStatus.CHALLENGER_WON
    assert rounds <= 6 and game.lo == lie_from - 1  # narrowed to the very step where the lie starts
    assert registry.claim(lie_id).status == ClaimStatus.REJECTED

    advance_time(w3, PARAMETERS.challenge_window)
    finalized = submitter.tx.send(registry.finalize(honest_id, honest.claim()))
    result = registry.result(1)
    assert result.kind == ResultKind.OUTPUT and result.exit_code == 0
    assert result.output_hash == Web3.keccak(honest.claim().output)
    assert Prediction.from_bytes(honest.claim().output).predicted == 7
    assert registry.request(1).status == RequestStatus.FINALIZED

    moves = registry.game(1).moves
    assert moves == rounds + 1  # its challenge and every select (the liar itself sent the losing final step)
    refund = moves * PARAMETERS.move_refund
    receipt = w3.eth.get_transaction_receipt(finalized.tx_hash)
    paid = [
        (e.args.account, e.args.amount)
        for e in registry.contract.events.Paid().process_receipt(receipt, errors=DISCARD)
    ]
    assert paid == [(submitter.address, FEE + PARAMETERS.claim_bond)]  # finalize pays the claimant directly
    assert registry.balance_of(submitter.address) == 0
    assert registry.balance_of(challenger.address) == PARAMETERS.challenge_bond + refund
    assert registry.balance_of(liar.address) == 0
    assert registry.burned() == PARAMETERS.claim_bond - refund
    before = challenger.tx.balance()
    sent = challenger.tx.send(registry.withdraw())
    gas_cost = sent.gas_used * w3.eth.get_transaction_receipt(sent.tx_hash)["effectiveGasPrice"]
    assert challenger.tx.balance() - before + gas_cost == PARAMETERS.challenge_bond + refund


def test_an_honest_defender_beats_a_lying_challenger(w3, chain, honest):
    registry, deployment, _, _ = chain
    submitter, challenger = Party(w3, 4), Party(w3, 5)
    claim_id = claim(registry, submitter, 1, honest.claim())
    challenger.tx.send(registry.challenge(claim_id), value=PARAMETERS.challenge_bond)
    play(registry, deployment, 1, submitter, honest, challenger, RandomChallenger(honest, seed=4))
    assert registry.game(1).status == GameStatus.DEFENDER_WON
    advance_time(w3, PARAMETERS.challenge_window)
    submitter.tx.send(registry.finalize(claim_id, honest.claim()))
    assert registry.result(1).output_hash == Web3.keccak(honest.claim().output)


def test_a_never_exiting_request_ends_by_its_step_limit(w3, chain):
    registry, deployment, _, model_id = chain
    owner, submitter, challenger = Party(w3, 0), Party(w3, 6), Party(w3, 7)
    spin = Program.from_file(built(SPIN.name))
    program_id = register_program(registry, owner.tx, program_image(spin))
    limit = 3_000_000
    owner.tx.send(registry.request_inference(program_id, model_id, b"", limit), value=FEE)
    request_id = registry.count("request")
    truth = Solver(LocalTrace(Execution(spin), limit), PARAMETERS.arity)
    final = truth.claim()
    assert not final.exited and final.steps == limit
    claim_id = claim(registry, submitter, request_id, final)
    challenger.tx.send(registry.challenge(claim_id), value=PARAMETERS.challenge_bond)
    play(registry, deployment, 1, submitter, truth, challenger, RandomChallenger(truth, seed=9))
    assert registry.game(1).status == GameStatus.DEFENDER_WON
    advance_time(w3, PARAMETERS.challenge_window)
    submitter.tx.send(registry.finalize(claim_id, final))
    result = registry.result(request_id)
    assert result is not None and not result.exited and result.output_hash == Web3.keccak(b"")
    assert result.kind == ResultKind.STEP_LIMIT_REACHED


@pytest.mark.parametrize(
    ("guest", "input", "kind"),
    [
        (MALFORMED_OUTPUT, b"", ResultKind.MALFORMED_OUTPUT),  # a nonzero byte after a zero-length output
        (LARGE_OUTPUT, b"", ResultKind.OUTPUT_TOO_LARGE),  # the length prefix 0xFFFFFFFF
        (LARGE_OUTPUT, (65_537).to_bytes(4, "big"), ResultKind.OUTPUT_TOO_LARGE),  # one byte above the cap
        (LARGE_OUTPUT, (65_536).to_bytes(4, "big"), ResultKind.OUTPUT),  # exactly the cap
    ],
    ids=["malformed", "beyond the region", "above the cap", "at the cap"],
)
def test_every_output_region_ends_its_request_with_its_kind(w3, chain, guest, input, kind):
    registry, deployment, _, model_id = chain
    owner, submitter, challenger = Party(w3, 0), Party(w3, 6), Party(w3, 7)
    program = Program.from_file(built(guest.name))
    program_id = register_program(registry, owner.tx, program_image(program))
    owner.tx.send(registry.request_inference(program_id, model_id, input, STEP_LIMIT), value=FEE)
    request_id = registry.count("request")
    execution = Execution(program, model=(SEED / "model.bin").read_bytes(), input=input)  # the request's model
    assert execution.initial_state.hash == registry.request(request_id).start_state_hash
    truth = Solver(LocalTrace(execution, STEP_LIMIT), PARAMETERS.arity)
    final = truth.claim()
    assert final.kind == kind and final.exited and (final.proof is None) == (kind == ResultKind.OUTPUT)
    claim_id = claim(registry, submitter, request_id, final)
    challenger.tx.send(registry.challenge(claim_id), value=PARAMETERS.challenge_bond)
    game_id = registry.count("game")
    play(registry, deployment, game_id, submitter, truth, challenger, RandomChallenger(truth, seed=5))
    assert registry.game(game_id).status == GameStatus.DEFENDER_WON  # the true state cannot be refuted
    advance_time(w3, PARAMETERS.challenge_window)
    submitter.tx.send(registry.finalize(claim_id, final))
    result = registry.result(request_id)
    assert result is not None and result.kind == kind and result.exit_code == 0
    assert result.output_hash == Web3.keccak(final.output)
    assert len(final.output) == (65_536 if kind == ResultKind.OUTPUT else 0)


def test_reverts_come_back_as_named_errors(w3, chain, honest):
    registry, _, _, _ = chain
    submitter = Party(w3, 8)
    with pytest.raises(TxReverted) as error:
        submitter.tx.send(registry.submit_claim(1, honest.claim()), value=PARAMETERS.claim_bond)
    assert error.value.name == "NoCommitment"
    with pytest.raises(TxReverted) as error:
        submitter.tx.send(registry.challenge(99), value=PARAMETERS.challenge_bond)
    assert error.value.name == "UnknownClaim" and error.value.args_ == {"claimId": 99}
    assert "UnknownClaim(claimId=99)" in str(error.value)
    with pytest.raises(TxReverted) as error:
        submitter.tx.send(registry.commit_claim(2, honest.claim(), submitter.address))  # no request 2 yet
    assert error.value.name == "UnknownRequest" and error.value.args_ == {"requestId": 2}


def test_the_deploy_command_writes_a_deployment_the_services_can_use(anvil, w3, tmp_path):
    out = tmp_path / "deployment.json"
    result = subprocess.run(
        [sys.executable, "-m", "opml.cli", "deploy", "--rpc", anvil.url, "-o", str(out), "--arity", "8"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    deployment = Deployment.read(out)
    assert deployment.parameters.arity == 8 and deployment.chain_id == w3.eth.chain_id
    registry = Registry(w3, deployment.registry)
    assert registry.parameters == deployment.parameters
    assert registry.program(deployment.program_id).root == program_image(Program.from_file(built(INFERENCE.name))).root
    assert registry.model(deployment.model_id).uri == "models/seed-mnist/model.bin"
    refused = subprocess.run(
        [sys.executable, "-m", "opml.cli", "deploy", "--rpc", "http://127.0.0.1:9", "-o", str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert refused.returncode != 0 and "does not answer" in refused.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "opml.cli", "deploy", "--rpc", anvil.url, "-o", str(out), "--challenge-window", "0"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert bad.returncode != 0 and "InvalidParameter" in bad.stderr and "challengeWindow" in bad.stderr
