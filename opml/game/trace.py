"""What a player knows about a run: its final claim, its state hashes, the witness of any step.

A `TraceProvider` answers from a local `Execution` (`LocalTrace`) or from a vm-worker
over HTTP (`opml.game.remote.RemoteTrace`); the solver and the agents see only this
interface. Every trace is bounded by the request's step limit: a run that has not
exited by then ends there, not exited ("step limit reached").
"""

from __future__ import annotations

from typing import Protocol

from ..protocol.claims import FinalClaim, StepProof
from ..vm.execution import Execution
from ..vm.layout import OUTPUT
from ..vm.machine import length_prefixed
from ..vm.output import REGION_SIBLING_COUNT, ResultKind

SIBLING_COUNT = REGION_SIBLING_COUNT


class TraceProvider(Protocol):
    def final_claim(self) -> FinalClaim:
        """The honest claim of the run."""
        ...

    def state_hashes(self, steps: list[int]) -> list[bytes]:
        """The state hash after each of `steps` instructions (the final state's past the end)."""
        ...

    def step_witness(self, step: int) -> StepProof:
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

    def step_witness(self, step: int) -> StepProof:
        witness = self.execution.proof_at(step)
        return StepProof(witness.pre_state.encode(), witness.proof)


def forged_claim(execution: Execution, output: bytes) -> FinalClaim:
    """A claim that passes submitClaim's checks but lies: the run's final memory with its output region
    rewritten to `output`. What a dishonest claimant posts (tests, demos, fault injection)."""
    machine = execution.machine_at(execution.run().steps)
    machine.memory.write(OUTPUT.start, length_prefixed(output))
    return FinalClaim(machine.state(), output, tuple(machine.memory.region_siblings(OUTPUT)), ResultKind.OUTPUT)
