"""Gas of the claim path and of whole dispute games on anvil, for the seed model on input_7, by arity k.

    python bench/dispute_gas.py [--json]

For each k in 2, 8, 16, 32: a fresh registry; an honest claim (commit, reveal, finalize:
`claim_path_gas`, what the submitter pays on every inference); a lying claim (its output
forged) and an honest challenger, the game played to the final MIPS step through the
agents' Player (`challenger_move_gas`: the mean gas of the challenger's own moves, its
challenge, selects and the final step, which a challenger who wins is refunded per move).
Then `finalize_gas_at_output_cap`: the whole finalize transaction of a result whose output
is MAX_OUTPUT_BYTES long (guest tests/large_output), to a consumer that reads the output and
uses all of MAX_CALLBACK_GAS (contracts/test/helpers/GasBurningConsumer.sol).
Prints its figures; the last line is one JSON object with `by_k`, `default` (the deployment
default k), `claim_path_gas` at the default k and `finalize_gas_at_output_cap`.
Targets at the default k: claim_path_gas <= 300k, request <= 220k, the whole dispute
(challenge, every round, the final step) <= 1.5M gas and <= 6 rounds; at the output cap,
finalize <= 10M gas.
"""

from __future__ import annotations

import argparse
import json

from web3 import Web3

from opml import resources
from opml.agents.player import Player, bisections_from_logs, play_out
from opml.agents.responder import Responder
from opml.chain.anvil import Anvil, advance_time, dev_key
from opml.chain.client import TransactionManager
from opml.chain.contracts import Artifact
from opml.chain.deploy import deploy_contracts, inference_program, program_image, register_model, register_program
from opml.chain.events import EventReader
from opml.chain.registry import Registry
from opml.chain.toolchain import build_contracts
from opml.game.faults import lying_solver
from opml.game.moves import Resolve, Select
from opml.game.solver import Solver
from opml.game.trace import LocalTrace
from opml.guest import LARGE_OUTPUT, built
from opml.protocol.parameters import Parameters
from opml.protocol.types import GameStatus, Turn
from opml.vm.elf import Program
from opml.vm.execution import Execution
from opml.vm.layout import MAX_OUTPUT_BYTES
from opml.vm.output import ResultKind

ARITIES = (2, 8, 16, 32)
STEP_LIMIT = 10_000_000
MAX_CALLBACK_GAS = 5_000_000  # InferenceRegistry.MAX_CALLBACK_GAS


def play(w3: Web3, execution: Execution, arity: int) -> dict:
    parameters = Parameters(arity=arity, challenge_window=600, clock_budget=3_600)
    owner, submitter, liar, challenger = (TransactionManager(w3, dev_key(i)) for i in range(4))
    deployment = deploy_contracts(w3, owner, parameters)
    registry = Registry(w3, deployment.registry)
    program_id = register_program(registry, owner, program_image(execution.program))
    model_id = register_model(registry, owner, (resources.seed_model_dir() / "model.bin").read_bytes(), "seed-mnist")
    input = (resources.seed_model_dir() / "input_7.bin").read_bytes()
    request_gas = owner.send(registry.request_inference(program_id, model_id, input, STEP_LIMIT), value=1).gas_used

    honest = Solver(LocalTrace(execution, STEP_LIMIT), arity)
    commit_gas = submitter.send(registry.commit_claim(1, honest.claim(), submitter.address)).gas_used
    reveal_gas = submitter.send(registry.submit_claim(1, honest.claim()), value=parameters.claim_bond).gas_used

    lie = lying_solver(execution, STEP_LIMIT, arity)  # true states but a forged final one: the last step lies
    liar.send(registry.commit_claim(1, lie.claim(), liar.address))
    lie_claim_gas = liar.send(registry.submit_claim(1, lie.claim()), value=parameters.claim_bond).gas_used
    challenge_gas = challenger.send(registry.challenge(2), value=parameters.challenge_bond).gas_used
    total = challenge_gas

    bisections = bisections_from_logs(EventReader(w3, registry.contract), deployment.start_block)
    moves = play_out(
        registry,
        1,
        Player(registry, Responder(registry, liar), Turn.DEFENDER, lie, bisections),
        Player(registry, Responder(registry, challenger), Turn.CHALLENGER, honest, bisections),
    )
    total += sum(outcome.sent.gas_used for outcome in moves)
    txs = 1 + len(moves)
    final_step_gas = moves[-1].sent.gas_used
    challenger_moves = [challenge_gas] + [
        outcome.sent.gas_used for outcome in moves if isinstance(outcome.move, Select | Resolve)
    ]
    game = registry.game(1)
    assert game.status == GameStatus.CHALLENGER_WON, "the honest challenger must win"

    advance_time(w3, parameters.challenge_window)
    finalize_gas = submitter.send(registry.finalize(1, honest.claim())).gas_used
    return {
        "rounds": game.rounds,
        "txs": txs,
        "total_gas": total,
        "claim_gas": lie_claim_gas,
        "final_step_gas": final_step_gas,
        "challenger_moves": len(challenger_moves),
        "challenger_move_gas": sum(challenger_moves) // len(challenger_moves),
        "request_gas": request_gas,
        "commit_gas": commit_gas,
        "reveal_gas": reveal_gas,
        "finalize_gas": finalize_gas,
        "claim_path_gas": commit_gas + reveal_gas + finalize_gas,
    }


def finalize_at_output_cap(w3: Web3) -> int:
    """Gas of the whole finalize transaction of an output MAX_OUTPUT_BYTES long (every byte nonzero) to the
    costliest consumer: one that reads the output and uses all of MAX_CALLBACK_GAS."""
    parameters = Parameters(challenge_window=600, callback_gas_limit=MAX_CALLBACK_GAS)
    owner, submitter = (TransactionManager(w3, dev_key(i)) for i in range(2))
    deployment = deploy_contracts(w3, owner, parameters)
    registry = Registry(w3, deployment.registry)
    program = Program.from_file(built(LARGE_OUTPUT.name))
    program_id = register_program(registry, owner, program_image(program))
    model_id = register_model(registry, owner, b"", "empty")
    artifact = Artifact.load("GasBurningConsumer")
    consumer = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    consumer_address = owner.send(consumer.constructor(), intent="deploy GasBurningConsumer").contract_address
    input = MAX_OUTPUT_BYTES.to_bytes(4, "big")  # large_output writes as many bytes as its input asks for
    owner.send(registry.request_inference(program_id, model_id, input, STEP_LIMIT, consumer_address), value=1)
    request_id = registry.count("request")
    claim = LocalTrace(Execution(program, input=input), STEP_LIMIT).final_claim()
    assert claim.kind == ResultKind.OUTPUT and len(claim.output) == MAX_OUTPUT_BYTES, "an output at the cap"
    submitter.send(registry.commit_claim(request_id, claim, submitter.address))
    submitter.send(registry.submit_claim(request_id, claim), value=parameters.claim_bond)
    advance_time(w3, parameters.challenge_window)
    gas = submitter.send(registry.finalize(registry.count("claim"), claim)).gas_used
    assert registry.result(request_id) is not None, "finalized"
    return gas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args()
    build_contracts()
    model = (resources.seed_model_dir() / "model.bin").read_bytes()
    input = (resources.seed_model_dir() / "input_7.bin").read_bytes()
    execution = Execution(inference_program(), model=model, input=input)
    with Anvil() as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        by_k = {str(k): play(w3, execution, k) for k in ARITIES}
        finalize_gas_at_output_cap = finalize_at_output_cap(w3)
    default = by_k[str(Parameters().arity)]
    figures = {
        "steps": execution.run().steps,
        "by_k": by_k,
        "default": {"k": Parameters().arity, **default},
        "claim_path_gas": default["claim_path_gas"],
        "output_cap_bytes": MAX_OUTPUT_BYTES,
        "finalize_gas_at_output_cap": finalize_gas_at_output_cap,
    }
    if not args.json:
        for k, row in by_k.items():
            print(f"k={k:>2}: {row['rounds']} rounds, {row['txs']} txs, dispute {row['total_gas']:,} gas "
                  f"(final step {row['final_step_gas']:,}); request {row['request_gas']:,}; claim path "
                  f"{row['claim_path_gas']:,} (commit {row['commit_gas']:,}, reveal {row['reveal_gas']:,}, "
                  f"finalize {row['finalize_gas']:,}); challenger move {row['challenger_move_gas']:,} on average "
                  f"({row['challenger_moves']} moves)")  # fmt: skip
        print(
            f"finalize at the output cap ({MAX_OUTPUT_BYTES:,} bytes, {MAX_CALLBACK_GAS:,}-gas consumer): "
            f"{finalize_gas_at_output_cap:,} gas"
        )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
