"""The main job on the embedded default: what `make run` shows.

The seed's MNIST model classifies the seed's handwritten 7 inside the VM: golden image
(roots P, I, M), run to exit, the prediction checked against the native reference, and
a step proof checked by the on-chain verifier (MIPS.sol) on a local anvil node. Later
parts of the system (registry, dispute game, agents) extend this into the full
request -> claim -> dispute flow.
"""

from __future__ import annotations

import time
from pathlib import Path

from web3 import Web3

from .chain.anvil import Anvil
from .chain.contracts import Artifact, deploy
from .chain.toolchain import build_contracts
from .chain.verifier import onchain_post_state_hash
from .guest import INFERENCE, built
from .models.formats import Prediction
from .models.reference import predict
from .vm.elf import Program
from .vm.execution import Execution

DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "models" / "seed-mnist"


def main() -> None:
    model = (DEFAULT_MODEL / "model.bin").read_bytes()
    input = (DEFAULT_MODEL / "input_7.bin").read_bytes()
    start = time.perf_counter()
    execution = Execution(Program.from_file(built(INFERENCE.name)), model=model, input=input)
    print(f"golden image: state {execution.initial_state.hash.hex()} ({time.perf_counter() - start:.3f} s)")
    for name, root in execution.region_roots().items():
        print(f"  {name:8} root {root.hex()}")

    start = time.perf_counter()
    result = execution.run()
    elapsed = time.perf_counter() - start
    prediction = Prediction.from_bytes(result.output)
    reference = predict(model, input)
    print(f"run: exit {result.exit_code}, {result.steps:,} steps in {elapsed:.3f} s; predicted {prediction.predicted}")
    print(f"  final state {result.final_state.hash.hex()}")
    print(f"  output equals the native reference bit for bit: {result.output == reference.to_bytes()}")

    step = result.steps // 2
    witness = execution.proof_at(step)
    build_contracts()
    with Anvil() as node:
        mips = deploy(Web3(Web3.HTTPProvider(node.url)), Artifact.load("MIPS"))
        onchain = onchain_post_state_hash(mips, witness)
    agrees = onchain == witness.post_state.hash
    print(f"step {step:,} on-chain (MIPS.sol on anvil): post-state {onchain.hex()[:16]}.., agrees with the VM: {agrees}")
    if result.output != reference.to_bytes() or prediction.predicted != 7 or not agrees:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
