"""The honest moves of a dispute game, computed from a trace: a pure function of the game's position.

Neither side needs the chain to decide: the defender's bisection of [lo, hi] is the true
state hashes at its interior points; the challenger disputes the first segment whose end
it disagrees with; at one step wide, the witness of that step settles the game.
"""

from __future__ import annotations

from ..protocol import dissection
from ..protocol.claims import FinalClaim, StepProof
from .trace import TraceProvider


class Solver:
    def __init__(self, trace: TraceProvider, arity: int):
        self.trace = trace
        self.arity = arity

    def claim(self) -> FinalClaim:
        return self.trace.final_claim()

    def plays(self, game) -> bool:
        """Whether this side moves in `game` at all: an honest player always does (a fault may not)."""
        return True

    def agrees_with(self, final_state_hash: bytes, steps: int | None = None) -> bool:
        """Whether a claim's final state is the true one (a whole run's state hash commits to its steps)."""
        return bytes(final_state_hash) == self.claim().hash

    def bisection(self, lo: int, hi: int) -> list[bytes]:
        """The defender's hashes for [lo, hi]."""
        return self.trace.state_hashes(dissection.interior_points(lo, hi, self.arity))

    def disputed_segment(self, lo: int, hi: int, hashes: list[bytes]) -> int:
        """The first segment whose end is not the true state: the challenger's answer to a bisection.

        If every interior hash is true, the last segment (ending at the disputed hash) is the one.
        """
        interior = dissection.interior_points(lo, hi, self.arity)
        truth = self.trace.state_hashes(interior)
        for index, (claimed, true) in enumerate(zip(hashes, truth, strict=True)):
            if bytes(claimed) != true:
                return index
        return len(hashes)

    def step_leads_to(self, lo: int, hi_hash: bytes) -> bool:
        """Whether the true step from `lo` ends in `hi_hash`: who wins a game narrowed to [lo, lo + 1]."""
        return self.trace.state_hashes([lo + 1])[0] == bytes(hi_hash)

    def step_witness(self, lo: int) -> StepProof:
        """The witness that settles a game narrowed to [lo, lo + 1]."""
        return self.trace.step_witness(lo)
