"""Gas of the claim path and of whole dispute games on anvil, for the seed model on input_7, by arity k.

    python bench/dispute_gas.py [--json]

For each k in 2, 8, 16, 32: a fresh registry; an honest claim (commit, reveal, finalize:
`claim_path_gas`, what the submitter pays on every inference); a lying claim (its output
forged) and an honest challenger, the game played to the final MIPS step through the
agents' Player. Prints its figures; the last line is one JSON object with `by_k`,
`default` (the deployment default k) and `claim_path_gas` at the default k.
Targets at the default k: claim_path_gas <= 300k, request <= 220k, the whole dispute
(challenge, every round, the final step) <= 1.5M gas and <= 6 rounds.
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
from opml.chain.deploy import deploy_contracts, inference_program, program_image, register_model, register_program
from opml.chain.events import EventReader
from opml.chain.registry import GameStatus, Parameters, Registry, Turn
from opml.chain.toolchain import build_contracts
from opml.game.faults import lying_solver
from opml.game.solver import Solver
from opml.game.trace import LocalTrace
from opml.vm.execution import Execution

ARITIES = (2, 8, 16, 32)
STEP_LIMIT = 10_000_000


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
    total = challenger.send(registry.challenge(2), value=parameters.challenge_bond).gas_used

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
        "request_gas": request_gas,
        "commit_gas": commit_gas,
        "reveal_gas": reveal_gas,
        "finalize_gas": finalize_gas,
        "claim_path_gas": commit_gas + reveal_gas + finalize_gas,
    }


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
    default = by_k[str(Parameters().arity)]
    figures = {
        "steps": execution.run().steps,
        "by_k": by_k,
        "default": {"k": Parameters().arity, **default},
        "claim_path_gas": default["claim_path_gas"],
    }
    if not args.json:
        for k, row in by_k.items():
            print(f"k={k:>2}: {row['rounds']} rounds, {row['txs']} txs, dispute {row['total_gas']:,} gas "
                  f"(final step {row['final_step_gas']:,}); request {row['request_gas']:,}; claim path "
                  f"{row['claim_path_gas']:,} (commit {row['commit_gas']:,}, reveal {row['reveal_gas']:,}, "
                  f"finalize {row['finalize_gas']:,})")  # fmt: skip
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
