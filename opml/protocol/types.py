"""The protocol's plain data: what the registry holds about programs, models, requests, claims and games, as typed
values (never tuple indexes), and the enums that mirror InferenceRegistry's value for value.

The bottom of the package: the chain client reads the contract into these types, the solvers and the agents
decide on them, the read model shows them. Nothing here talks to a chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from ..vm.output import ResultKind  # noqa: F401  (re-exported: a result's kind is protocol data too)


class ProgramKind(IntEnum):
    """Which game a program's requests play: the single-phase game over a whole run, or the linked two-phase game
    over a graph run's values (docs/two-phase.md)."""

    WHOLE_RUN = 0
    GRAPH_NODES = 1


class Phase(IntEnum):
    """What a game is dissecting: a VM run's states, or (phase 1 of a graph claim's game) a graph run's values."""

    RUN = 0
    GRAPH = 1


class RequestStatus(IntEnum):
    NONE = 0
    OPEN = 1
    FINALIZED = 2
    CANCELLED = 3


class ClaimStatus(IntEnum):
    NONE = 0
    LIVE = 1
    REJECTED = 2
    FINALIZED = 3
    RETIRED = 4
    FORFEITED = 5
    RELEASED = 6  # its request was cancelled while it was live (nobody proved it wrong): bond returned


class Turn(IntEnum):
    DEFENDER = 0
    CHALLENGER = 1


class GameStatus(IntEnum):
    NONE = 0
    ACTIVE = 1
    DEFENDER_WON = 2
    CHALLENGER_WON = 3


@dataclass(frozen=True)
class Request:
    requester: str
    status: RequestStatus
    live_claims: int
    kind: ResultKind  # of the final result (NONE before)
    exit_code: int  # of the final result
    last_claim_at: int  # when the latest claim was revealed (chain time; 0 before any)
    consumer: str
    deadline: int
    fee: int
    step_limit: int
    final_claim: int
    program_id: int
    model_id: int
    start_state_hash: bytes
    output_hash: bytes  # keccak256 of the final output


@dataclass(frozen=True)
class Claim:
    claimant: str
    submitted_at: int
    status: ClaimStatus
    graph: bool  # of a graph request: final_state_hash is the values' root S_n, steps the node count n
    request_id: int
    steps: int
    open_games: int
    refunded: int  # of the claim's bond, refunded so far to challengers who proved it wrong
    final_state_hash: bytes


@dataclass(frozen=True)
class Game:
    challenger: str
    status: GameStatus
    turn: Turn
    phase: Phase
    claim_id: int
    lo: int
    hi: int
    last_move_at: int
    defender_clock: int
    challenger_clock: int
    rounds: int
    moves: int  # the challenger's own moves: its challenge, each select, and a resolve or timeout it sent
    lo_hash: bytes
    hi_hash: bytes
    bisection: bytes

    @property
    def width(self) -> int:
        return self.hi - self.lo

    @property
    def active(self) -> bool:
        return self.status == GameStatus.ACTIVE

    @property
    def deadline(self) -> int:
        """When the side to move runs out of time, in chain time."""
        return self.last_move_at + (self.defender_clock if self.turn == Turn.DEFENDER else self.challenger_clock)

    def clock_left(self, side: Turn, now: int) -> int:
        """Seconds `side` has left at chain time `now` (its clock runs only while it is to move)."""
        clock = self.defender_clock if side == Turn.DEFENDER else self.challenger_clock
        return clock - (now - self.last_move_at) if self.turn == side and self.active else clock


@dataclass(frozen=True)
class Result:
    """A final result as the contract stores it; the output bytes are in ResultFinalized."""

    kind: ResultKind
    exit_code: int
    output_hash: bytes  # keccak256 of the output (of no bytes unless the kind is OUTPUT)

    @property
    def exited(self) -> bool:
        """Whether the run exited (every kind but STEP_LIMIT_REACHED)."""
        return self.kind != ResultKind.STEP_LIMIT_REACHED


@dataclass(frozen=True)
class Program:
    root: bytes
    entry: int
    kind: ProgramKind = ProgramKind.WHOLE_RUN


@dataclass(frozen=True)
class Model:
    root: bytes
    file_hash: bytes
    uri: str
