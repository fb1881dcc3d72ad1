"""What an agent works on: typed keys for its pieces of work, and when each one must be done.

Every piece of work is keyed by its kind and an on-chain id (`WorkKey(WorkKind.GAME, 3)`,
stored as "game:3"), and carries a deadline in chain time: a claim's check must be mined before
the claim's window ends, a game move before the mover's clock runs out, a finalize is due when
its window ends. The scheduler runs the work whose deadline is nearest first, whatever its kind
(op-challenger orders its work by the chess clock the same way).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum


class WorkKind(StrEnum):
    REQUEST = "request"  # a request to serve: compute, commit, reveal, finalize or settle (submitters)
    CLAIM = "claim"  # another party's claim to check against our own result, and to challenge if it differs
    GAME = "game"  # a game this agent plays, on either side
    SWEEP = "sweep"  # a claim this agent beat, whose other games it ends by `timeout` when their clocks run out


@dataclass(frozen=True, order=True)
class WorkKey:
    kind: WorkKind
    id: int

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.id}"

    @classmethod
    def parse(cls, text: str) -> WorkKey:
        kind, _, ident = text.partition(":")
        return cls(WorkKind(kind), int(ident))

    @classmethod
    def request(cls, request_id: int) -> WorkKey:
        return cls(WorkKind.REQUEST, request_id)

    @classmethod
    def claim(cls, claim_id: int) -> WorkKey:
        return cls(WorkKind.CLAIM, claim_id)

    @classmethod
    def game(cls, game_id: int) -> WorkKey:
        return cls(WorkKind.GAME, game_id)

    @classmethod
    def sweep(cls, claim_id: int) -> WorkKey:
        return cls(WorkKind.SWEEP, claim_id)


NO_DEADLINE = math.inf  # work that nothing forces to be done by a given time


@dataclass(frozen=True)
class DueWork:
    """One piece of open work as the scheduler sees it."""

    key: WorkKey
    deadline: float  # chain time it must be mined by (NO_DEADLINE: none); new work counts as due now
    wake_at: float  # wall-clock time before which there is nothing to do (0: now)
