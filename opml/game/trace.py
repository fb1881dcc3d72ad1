"""What a player knows about a run: its final claim, its state hashes, the witness of any step.

A `TraceProvider` answers from a local `Execution` (`LocalTrace`) or from a vm-worker
over HTTP (`opml.game.remote.RemoteTrace`); the solver and the agents see only this
interface. Every trace is bounded by the request's step limit: a run that has not
exited by then ends there, not exited ("step limit reached").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..vm.execution import Execution
from ..vm.layout import OUTPUT
from ..vm.machine import length_prefixed
from ..vm.output import REGION_SIBLING_COUNT, OutputProof, ResultKind
from ..vm.state import State

SIBLING_COUNT = REGION_SIBLING_COUNT


@dataclass(frozen=True)
class FinalClaim:
    """The arguments of submitClaim and of the call that finalizes it: the final state, its result kind, its
    output and the proofs. `finalize(state, output, siblings)` for OUTPUT and STEP_LIMIT_REACHED;
    `finalizeMalformed(state, proof)` for MALFORMED_OUTPUT and OUTPUT_TOO_LARGE. A kind left NONE is the
    one an exited state with this output has (OUTPUT), or STEP_LIMIT_REACHED for a state that has not exited.
    """

    state: State
    output: bytes
    siblings: tuple[bytes, ...]  # the output region's siblings in memory (nodes 19, 8, 5, 3)
    kind: ResultKind = ResultKind.NONE
    proof: OutputProof | None = None  # for MALFORMED_OUTPUT and OUTPUT_TOO_LARGE

    def __post_init__(self) -> None:
        if self.kind == ResultKind.NONE:
            default = ResultKind.OUTPUT if self.state.exited else ResultKind.STEP_LIMIT_REACHED
            object.__setattr__(self, "kind", default)
        if self.kind in (ResultKind.MALFORMED_OUTPUT, ResultKind.OUTPUT_TOO_LARGE) and self.proof is None:
            raise ValueError(f"a {self.kind.label} claim needs its output proof")

    @property
    def state_data(self) -> bytes:
        return self.state.encode()

    @property
    def hash(self) -> bytes:
        return self.state.hash

    @property
    def steps(self) -> int:
        return self.state.step

    @property
    def exited(self) -> bool:
        return self.state.exited


@dataclass(frozen=True)
class StepWitness:
    """The arguments of resolve: the state before the step and the step's proof."""

    state_data: bytes
    proof: bytes


class TraceProvider(Protocol):
    def final_claim(self) -> FinalClaim:
        """The honest claim of the run."""
        ...

    def state_hashes(self, steps: list[int]) -> list[bytes]:
        """The state hash after each of `steps` instructions (the final state's past the end)."""
        ...

    def step_witness(self, step: int) -> StepWitness:
        """The pre-state at `step` and the proof of the instruction executed from it."""
        ...


class LocalTrace:
    """A trace computed in this process from an `Execution`, bounded by `step_limit`."""

    def __init__(self, execution: Execution, step_limit: int):
        self.execution = execution
        self.step_limit = step_limit
        self._claim: FinalClaim | None = None

    def final_claim(self) -> FinalClaim:
        if self._claim is None:
            result = self.execution.run_bounded(self.step_limit)
            if result.final_state.exited:
                final = self.execution.final_output()
                self._claim = FinalClaim(
                    result.final_state, final.reading.output, final.siblings, final.reading.kind, final.proof
                )
            else:
                siblings = (b"\x00" * 32,) * SIBLING_COUNT
                self._claim = FinalClaim(result.final_state, b"", siblings, ResultKind.STEP_LIMIT_REACHED)
        return self._claim

    def state_hashes(self, steps: list[int]) -> list[bytes]:
        last = self.final_claim().steps
        return [self.execution.state_at(min(step, last)).hash for step in steps]

    def step_witness(self, step: int) -> StepWitness:
        witness = self.execution.proof_at(step)
        return StepWitness(witness.pre_state.encode(), witness.proof)


def forged_claim(execution: Execution, output: bytes) -> FinalClaim:
    """A claim that passes submitClaim's checks but lies: the run's final memory with its output region
    rewritten to `output`. What a dishonest claimant posts (tests, demos, fault injection)."""
    machine = execution.machine_at(execution.run().steps)
    machine.memory.write(OUTPUT.start, length_prefixed(output))
    return FinalClaim(machine.state(), output, tuple(machine.memory.region_siblings(OUTPUT)), ResultKind.OUTPUT)
