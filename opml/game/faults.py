"""Lying on purpose: traces and choices of dishonest parties, for tests, demos and fault injection.

Everything here is a deliberate fault, and each is a solver the agents are given instead of the
honest one (they never branch on faults themselves). A lying defender is a `Liar`: a solver over a
`LyingTrace` (true up to a step, made up from there, ending in a forged claim); a lying challenger
disputes every claim and answers bisections with `RandomChallenger`; `Silent` stops moving after
some rounds.
"""

from __future__ import annotations

import random

from ..protocol.claims import FinalClaim, StepProof
from ..vm.execution import Execution
from ..vm.merkle import keccak256
from .solver import Solver
from .trace import LocalTrace, forged_claim


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

    def step_witness(self, step: int) -> StepProof:
        return self.truth.step_witness(step)  # the truth: a liar cannot prove its lie

    def _made_up(self, step: int) -> bytes:
        """A hash no state has (a liar need not make up whole states: nobody can open them anyway)."""
        if step >= self.claim.steps:
            return self.claim.hash
        return keccak256(b"made up" + self.claim.hash + step.to_bytes(8, "big"))


class Liar(Solver):
    """A solver over a lying trace. It lies about its own claim only: it agrees with every other claim, so an
    agent given it disputes nobody (the tests watch one lie at a time)."""

    def agrees_with(self, final_state_hash: bytes) -> bool:
        return True


def lying_output(execution: Execution, step_limit: int) -> bytes:
    """A different output of the same length: for a classifier, another class."""
    output = LocalTrace(execution, step_limit).final_claim().output
    return bytes(byte ^ 0x01 for byte in output[:4]) + output[4:] if output else b"\x00\x00\x00\x01"


def lying_solver(execution: Execution, step_limit: int, arity: int, lie_from: int | None = None) -> Solver:
    """A defender that claims a forged output and whose states are wrong from `lie_from` on (by default
    only the final state is wrong)."""
    truth = LocalTrace(execution, step_limit)
    claim = forged_claim(execution, lying_output(execution, step_limit))
    return Liar(LyingTrace(truth, claim, claim.steps if lie_from is None else lie_from), arity)


class RandomChallenger:
    """A challenger that disputes every claim, and a random segment each round."""

    def __init__(self, solver: Solver, seed: int = 0):
        self.solver = solver
        self.random = random.Random(seed)

    def agrees_with(self, final_state_hash: bytes) -> bool:
        return False

    def plays(self, game) -> bool:
        return True

    def disputed_segment(self, lo: int, hi: int, hashes: list[bytes]) -> int:
        return self.random.randrange(len(hashes) + 1)

    def step_witness(self, lo: int) -> StepProof:
        return self.solver.step_witness(lo)

    def step_leads_to(self, lo: int, hi_hash: bytes) -> bool:
        return self.solver.step_leads_to(lo, hi_hash)

    def claim(self) -> FinalClaim:
        return self.solver.claim()


class Silent:
    """A player that stops moving (and calling `timeout`) once a game has gone `after_rounds` rounds (0: it
    never moves): the other side wins on time."""

    def __init__(self, solver, after_rounds: int):
        self.solver = solver
        self.after_rounds = after_rounds

    def plays(self, game) -> bool:
        return game.rounds < self.after_rounds

    def __getattr__(self, name: str):
        return getattr(self.solver, name)
