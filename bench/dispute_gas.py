"""Gas of whole dispute games on anvil, for the seed model on input_7, by dissection arity k.

    python bench/dispute_gas.py [--json]

For each k in 2, 8, 16, 32: a fresh registry, a lying claim (its output forged), an
honest challenger, the game played to the final MIPS step. Prints its figures; the
last line is one JSON object with `by_k` and `default` (the deployment default k).
Targets at the default k: claim <= 150k gas, the whole dispute (challenge, every
round, the final step) <= 1.5M gas and <= 6 rounds.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from web3 import Web3

from opml.chain.anvil import Anvil
from opml.chain.contracts import send
from opml.chain.registry import HonestPlayer, Parameters, deploy_all, forged_claim
from opml.chain.toolchain import build_contracts
from opml.guest import INFERENCE, built
from opml.models.formats import Prediction
from opml.vm.elf import Program
from opml.vm.execution import Execution

SEED = Path(__file__).resolve().parents[1] / "models" / "seed-mnist"
ARITIES = (2, 8, 16, 32)


def gas(w3: Web3, call, sender: str, value: int = 0) -> int:
    return send(w3, call, sender, value).gasUsed


def play(w3: Web3, player: HonestPlayer, arity: int) -> dict:
    parameters = Parameters(arity=arity)
    _, registry = deploy_all(w3, parameters)
    owner, liar, challenger = w3.eth.accounts[:3]
    roots = player.execution.region_roots()
    gas(w3, registry.functions.registerProgram(roots["program"], player.execution.program.entry), owner)
    gas(w3, registry.functions.registerModel(roots["model"], b"\x00" * 32, "seed-mnist"), owner)
    request_gas = gas(w3, registry.functions.requestInference(1, 1, (SEED / "input_7.bin").read_bytes(), owner), owner)
    lie = Prediction(3, Prediction.from_bytes(player.result.output).scores).to_bytes()  # "it is a 3"
    claim = forged_claim(player.execution, lie)
    claim_gas = gas(w3, registry.functions.submitClaim(1, *claim), liar, parameters.claim_bond)

    total = gas(w3, registry.functions.challenge(1), challenger, parameters.challenge_bond)
    txs, rounds = 1, 0
    while True:
        _, _, _, _, lo, hi, *_ = registry.functions.games(1).call()
        if hi - lo == 1:
            break
        hashes = player.bisection(registry, lo, hi)  # the liar repeats the truth inside the trace...
        total += gas(w3, registry.functions.bisect(1, hashes), liar)
        segment = player.disputed_segment(registry, lo, hi, hashes)  # ...so the lie is the last step
        total += gas(w3, registry.functions.select(1, segment, hashes), challenger)
        txs, rounds = txs + 2, rounds + 1
    final_step_gas = gas(w3, registry.functions.resolve(1, *player.step_witness(lo)), challenger)
    assert registry.functions.games(1).call()[2] == 3, "the honest challenger must win"
    return {
        "rounds": rounds,
        "txs": txs + 1,
        "total_gas": total + final_step_gas,
        "claim_gas": claim_gas,
        "final_step_gas": final_step_gas,
        "request_gas": request_gas,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args()
    build_contracts()
    model, input = (SEED / "model.bin").read_bytes(), (SEED / "input_7.bin").read_bytes()
    player = HonestPlayer(Execution(Program.from_file(built(INFERENCE.name)), model=model, input=input))
    with Anvil() as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        by_k = {str(k): play(w3, player, k) for k in ARITIES}
    default_k = Parameters().arity
    figures = {"steps": player.result.steps, "by_k": by_k, "default": {"k": default_k, **by_k[str(default_k)]}}
    if not args.json:
        for k, row in by_k.items():
            print(f"k={k:>2}: {row['rounds']} rounds, {row['txs']} txs, dispute {row['total_gas']:,} gas "
                  f"(final step {row['final_step_gas']:,}); claim {row['claim_gas']:,}")  # fmt: skip
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
