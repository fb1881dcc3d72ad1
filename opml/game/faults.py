"""Lying on purpose: traces and choices of dishonest parties, for tests, demos and fault injection.

Everything here is a deliberate fault, and each is a solver the agents are given instead of the
honest one (they never branch on faults themselves). A lying defender is a `Liar`: a solver over a
`LyingTrace` (true up to a step, made up from there, ending in a forged claim); a lying challenger
disputes every claim and answers bisections with `RandomChallenger`; `Silent` stops moving after
some rounds.
"""

from __future__ import annotations

import dataclasses
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

    def agrees_with(self, final_state_hash: bytes, steps: int | None = None) -> bool:
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

    def agrees_with(self, final_state_hash: bytes, steps: int | None = None) -> bool:
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


# --- graph claims (the two-phase game) ----------------------------------------------------------------------


class LyingGraphTrace:
    """A graph run with one bit of one element of value `node + 1` (node `node`'s output) flipped, the later
    values left as they were: its claim's values root differs from S_{node+1} on, so a dispute narrows to that
    node. Its link opens the flipped value and a node run whose final state it made up to hold it (the true
    final state with the output region's root replaced), and in phase 2 every state of that run is true but
    the last: the game ends on the run's last step, which the liar cannot prove."""

    def __init__(self, truth, node: int, element: int = 0, bit: int = 0, recompute=None):
        from ..graph.values import decode_value

        self.truth = truth
        self.node = node
        run = truth.run
        lied = bytearray(run.values[node + 1])
        count = decode_value(run.values[node + 1]).elements.size  # its elements are its last 4 x count bytes
        if count:
            position = len(lied) - 4 * count + 4 * (element % count) + (bit // 8) % 4
        else:  # a value without elements (an LLM's finished step): its last dimension
            position = len(lied) - 1
        lied[position] ^= 1 << (bit % 8)
        # `recompute(slot, value)`, if given, is the run with that value and every later one computed from it: a
        # consistent lie whose output follows from the lied value; else the later values stay the true ones
        self.run = recompute(node + 1, bytes(lied)) if recompute else run.with_value(node + 1, bytes(lied))

    @property
    def node_count(self) -> int:
        return self.run.node_count

    def final_claim(self):
        from ..game.graph import GraphTrace

        return GraphTrace(self.run, self.truth.node_runs).final_claim()

    def state_hashes(self, steps: list[int]) -> list[bytes]:
        n = self.run.node_count
        return [self.run.state(min(step, n)) for step in steps]

    def step_witness(self, step: int) -> StepProof:
        raise TypeError("phase 1 has no VM step to prove")

    def header_of(self, node: int):
        return self.truth.header_of(node)

    def node_trace(self, header):
        """The true node run, except at the lied node: there, true states ending in a made-up final state."""
        truth = self.truth.node_trace(header)
        if header.node != self.node:
            return truth
        claim = self._forged(truth)
        return LyingTrace(truth, claim, claim.steps)

    def link_proof(self, node: int):
        honest = self.truth.link_proof(node)
        if node != self.node:
            return honest
        lied = self.run.link_openings(node).output
        forged = self._forged(self.truth.node_trace(self.header_of(node)))
        return dataclasses.replace(
            honest,
            output=dataclasses.replace(honest.output, value=lied.root),
            final_state=forged.state_data,
        )

    def _forged(self, truth) -> FinalClaim:
        """The node run's true final state with its output region holding the lie."""
        from ..vm.output import memory_root_with_output

        final = truth.final_claim()
        lied_root = self.run.roots[self.node + 1]
        state = dataclasses.replace(final.state, mem_root=memory_root_with_output(lied_root, final.siblings))
        return FinalClaim(state, self.run.values[self.node + 1], final.siblings)
