"""The inference registry and dispute game from Python: deployment, and the moves of an honest player.

An `HonestPlayer` knows the true execution of a request and answers every question of
the game from it: the claim's arguments, the state hashes at dissection points, which
segment to dispute, and the witness of the final step. Agents, tests and benchmarks
all play through it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from web3 import Web3
from web3.contract import Contract

from ..vm.execution import Execution
from ..vm.layout import OUTPUT
from ..vm.machine import length_prefixed
from .contracts import Artifact, deploy
from .verifier import step_arguments

ETHER = 10**18


@dataclass(frozen=True)
class Parameters:
    """Deployment parameters; the defaults suit a local chain (docs/contracts.md has public-chain values)."""

    arity: int = 16
    claim_bond: int = ETHER // 10
    challenge_bond: int = ETHER // 10
    challenge_window: int = 120  # seconds
    clock_budget: int = 600  # seconds per side
    callback_gas_limit: int = 200_000

    def as_tuple(self) -> tuple:
        return (
            self.arity,
            self.claim_bond,
            self.challenge_bond,
            self.challenge_window,
            self.clock_budget,
            self.callback_gas_limit,
        )


@dataclass(frozen=True)
class Deployment:
    chain_id: int
    mips: str
    registry: str
    parameters: Parameters

    def write(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def read(cls, path: str | Path) -> Deployment:
        data = json.loads(Path(path).read_text())
        return cls(data["chain_id"], data["mips"], data["registry"], Parameters(**data["parameters"]))


def deploy_all(w3: Web3, parameters: Parameters = Parameters()) -> tuple[Deployment, Contract]:
    """Deploy MIPS and the registry; returns the addresses and the registry contract."""
    mips = deploy(w3, Artifact.load("MIPS"))
    registry = deploy(w3, Artifact.load("InferenceRegistry"), mips.address, parameters.as_tuple())
    return Deployment(w3.eth.chain_id, mips.address, registry.address, parameters), registry


def registry_at(w3: Web3, address: str) -> Contract:
    return w3.eth.contract(address=address, abi=Artifact.load("InferenceRegistry").abi)


class HonestPlayer:
    """Plays a dispute game from the true execution of the request under dispute."""

    def __init__(self, execution: Execution):
        self.execution = execution
        self.result = execution.run()

    def claim_arguments(self) -> tuple[bytes, bytes, list[bytes]]:
        """(final state encoding, output, output siblings) for submitClaim."""
        return self.result.final_state.encode(), self.result.output, self.execution.output_siblings()

    def state_hash(self, step: int) -> bytes:
        return self.execution.state_at(step).hash

    def bisection(self, registry: Contract, lo: int, hi: int) -> list[bytes]:
        """The defender's interior hashes for [lo, hi]."""
        points = registry.functions.points(lo, hi).call()
        return [self.state_hash(step) for step in points[1:-1]]

    def disputed_segment(self, registry: Contract, lo: int, hi: int, hashes: list[bytes]) -> int:
        """The first segment whose end hash is not the true one (the last if every interior hash is)."""
        points = registry.functions.points(lo, hi).call()
        for index, claimed in enumerate(hashes):
            if bytes(claimed) != self.state_hash(points[index + 1]):
                return index
        return len(hashes)

    def step_witness(self, lo: int) -> tuple[bytes, bytes]:
        """(stateData, proof) for resolve: the true state at `lo` and its step proof."""
        return step_arguments(self.execution.proof_at(lo))


def forged_claim(execution: Execution, output: bytes) -> tuple[bytes, bytes, list[bytes]]:
    """Claim arguments that pass submitClaim's checks but lie: the run's final memory with its
    output region rewritten to `output`. What a dishonest claimant posts; for tests and benchmarks."""
    machine = execution.machine_at(execution.run().steps)
    machine.memory.write(OUTPUT.start, length_prefixed(output))
    return machine.state().encode(), output, machine.memory.region_siblings(OUTPUT)
