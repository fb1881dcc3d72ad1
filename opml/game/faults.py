"""Lying on purpose: traces and choices of dishonest parties, for tests, demos and fault injection.

Everything here is a deliberate fault. A lying defender is a `Solver` over a `LyingTrace`
(true up to a step, made up from there, ending in a forged claim); a lying challenger
answers bisections with `RandomChallenger`.
"""

from __future__ import annotations

import dataclasses
import random

from ..vm.execution import Execution
from .solver import Solver
from .trace import FinalClaim, LocalTrace, StepWitness, forged_claim


class LyingTrace:
    """A trace that agrees with the truth before `lie_from` and lies from there on, claiming `claim`."""

    def __init__(self, truth: LocalTrace, claim: FinalClaim, lie_from: int):
        self.truth = truth
        self.claim = claim
        self.lie_from = lie_from

    def final_claim(self) -> FinalClaim:
        return self.claim

    def state_hashes(self, steps: list[int]) -> list[bytes]:
        true = self.truth.state_hashes(steps)
        return [hash if step < self.lie_from else self._made_up(step) for step, hash in zip(steps, true, strict=True)]

    def step_witness(self, step: int) -> StepWitness:
        return self.truth.step_witness(step)  # the truth: a liar cannot prove its lie

    def _made_up(self, step: int) -> bytes:
        if step >= self.claim.steps:
            return self.claim.hash
        state = self.truth.execution.state_at(min(step, self.truth.final_claim().steps))
        return dataclasses.replace(state, lo=state.lo ^ 0x5A5A5A5A, step=step).hash


def lying_output(execution: Execution, step_limit: int) -> bytes:
    """A different output of the same length: for a classifier, another class."""
    output = LocalTrace(execution, step_limit).final_claim().output
    return bytes(byte ^ 0x01 for byte in output[:4]) + output[4:] if output else b"\x00\x00\x00\x01"


def lying_solver(execution: Execution, step_limit: int, arity: int, lie_from: int | None = None) -> Solver:
    """A defender that claims a forged output and whose states are wrong from `lie_from` on (by default
    only the final state is wrong)."""
    truth = LocalTrace(execution, step_limit)
    claim = forged_claim(execution, lying_output(execution, step_limit))
    return Solver(LyingTrace(truth, claim, claim.steps if lie_from is None else lie_from), arity)


class RandomChallenger:
    """A challenger that disputes a random segment each round."""

    def __init__(self, solver: Solver, seed: int = 0):
        self.solver = solver
        self.random = random.Random(seed)

    def disputed_segment(self, lo: int, hi: int, hashes: list[bytes]) -> int:
        return self.random.randrange(len(hashes) + 1)

    def step_witness(self, lo: int) -> StepWitness:
        return self.solver.step_witness(lo)

    def step_leads_to(self, lo: int, hi_hash: bytes) -> bool:
        return self.solver.step_leads_to(lo, hi_hash)

    def claim(self) -> FinalClaim:
        return self.solver.claim()
